r"""Chunkwise-parallel evaluation of matrix-state recurrences (mLSTM, DeltaNet).

The sequence is cut into chunks of ``L`` steps. Inside a chunk every step is computed at once
from the state that entered the chunk (a few ``(L, L)`` and ``(L, d)`` matrix products, the
"chunkwise" or "chunkwise-parallel" form of Yang et al. 2024, sec. 3.2, and Beck et al. 2024,
appendix); a ``jax.lax.scan`` carries the state from chunk to chunk, ``T / L`` steps in all.

Resets (the state entering step ``t`` is the initial carry ``h0`` again) split a chunk into
segments. :func:`segments` describes them for each chunk, so the chunk's matrices couple only
steps of one segment, and each step takes its segment's start state: the state that entered the
chunk, or ``h0`` after a reset inside the chunk.

Shapes: every sequence is ``(*lead, T, d)`` (per-head scalars have ``d = 1``), ``resets`` is
``(*lead', T)`` with ``lead'`` broadcastable to ``lead``. The last chunk is padded with the values
the cell gives (chosen so that padded steps keep the state unchanged), so the state after the
scan is the state after step ``T``. The steps where ``valid`` is false (right padding) take the
same values, so each sequence's state is held after its last valid step.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp


class Segments(NamedTuple):
    same: jax.Array  # shape=(*lead, L, L), bool: s <= t and s in t's segment
    from_start: jax.Array  # shape=(*lead, L), bool: t's segment began before the chunk
    start: jax.Array  # shape=(*lead, L), int32: first step of t's segment within the chunk


def segments(resets: Optional[jax.Array], L: int) -> Segments:
    """The segments of one chunk from its ``resets: (*lead, L)`` (``None``: one segment)."""
    t = jnp.arange(L, dtype=jnp.int32)
    causal = t[:, None] >= t[None, :]
    if resets is None:
        return Segments(causal, jnp.ones((L,), bool), jnp.zeros((L,), jnp.int32))
    seg = jnp.cumsum(resets.astype(jnp.int32), axis=-1)
    same = (seg[..., :, None] == seg[..., None, :]) & causal
    start = jax.lax.cummax(jnp.where(resets, t, 0), axis=resets.ndim - 1)
    return Segments(same, seg == 0, start)


def decay_from_start(log_decay: jax.Array, start: jax.Array):
    """``(G, G_seg)`` for ``log_decay: (*lead, L)``: ``G_t`` the sum of ``log_decay`` over the
    chunk's steps ``<= t``, ``G_seg_t`` the sum over t's segment's steps ``<= t``."""
    G = jnp.cumsum(log_decay, axis=-1)
    before = jnp.concatenate([jnp.zeros_like(G[..., :1]), G[..., :-1]], axis=-1)
    start = jnp.broadcast_to(start, G.shape)
    return G, G - jnp.take_along_axis(before, start, axis=-1)


def pair_decay(G: jax.Array, same: jax.Array) -> jax.Array:
    """``(*lead, L, L)``: ``exp(G_t - G_s)`` where ``same[t, s]``, else 0 (no ``exp`` of the
    masked, possibly large positive, differences: finite gradients)."""
    return jnp.exp(jnp.where(same, G[..., :, None] - G[..., None, :], -jnp.inf))


def start_states(from_start: jax.Array, entering, h0, nlead: int):
    """Every step's segment start state, ``(*lead, L, ...)`` per leaf of ``entering`` and ``h0``
    (``(*lead, ...)``, ``nlead`` leading axes): ``entering`` where ``from_start``, else ``h0``."""

    def pick(a, b):
        m = from_start.reshape(from_start.shape + (1,) * (a.ndim - nlead))
        return jnp.where(m, jnp.expand_dims(a, nlead), jnp.expand_dims(b, nlead))

    return jax.tree.map(pick, entering, h0)


def _chunk(a: jax.Array, L: int, pad_value: float) -> jax.Array:
    """``(*lead, T, d) -> (n, *lead, L, d)``, T padded with ``pad_value`` up to ``n * L``."""
    T = a.shape[-2]
    n = -(-T // L)
    widths = [(0, 0)] * a.ndim
    widths[-2] = (0, n * L - T)
    a = jnp.pad(a, widths, constant_values=pad_value)
    a = a.reshape(a.shape[:-2] + (n, L, a.shape[-1]))
    return jnp.moveaxis(a, -3, 0)


def _unchunk(a: jax.Array, nlead: int, T: int) -> jax.Array:
    """``(n, *lead, L, ...) -> (*lead, T, ...)`` (``nlead`` leading axes), padding dropped."""
    a = jnp.moveaxis(a, 0, nlead)
    a = a.reshape(a.shape[:nlead] + (-1,) + a.shape[nlead + 2 :])
    return jax.lax.slice_in_dim(a, 0, T, axis=nlead)


def run_chunks(
    chunk_step: Callable,
    carry,
    xs: Sequence[jax.Array],
    pads: Sequence[float],
    resets: Optional[jax.Array],
    chunk_size: int,
    need_states: bool,
    valid: Optional[jax.Array] = None,
):
    """Runs ``chunk_step`` over the chunks of ``xs`` with ``jax.lax.scan``.

    Args:
      chunk_step: ``(carry, xs_chunk, segments, need_states) -> (carry, out, states)`` with
        ``xs_chunk`` the chunk of each sequence ``(*lead, L, d)``, ``out: (*lead, L, d_out)`` and
        ``states`` every step's carry (a pytree of ``(*lead, L, ...)`` leaves) or ``None``.
      carry: the state entering the first chunk.
      xs: sequences ``(*lead, T, d)``.
      pads: the value each sequence is padded with in the last chunk.
      resets: ``(*lead', T)`` booleans or ``None``.
      chunk_size: the longest chunk; sequences shorter than it make one chunk of their length.
      need_states: also return every step's carry.
      valid: ``(*lead', T)`` booleans or ``None``; where false each sequence takes its pad value.

    Returns:
      ``(out, carry, states)``: ``out: (*lead, T, d_out)``, the carry after step ``T``, and the
      states ``(*lead, T, ...)`` per leaf (``None`` unless ``need_states``).
    """
    T = xs[0].shape[-2]
    nlead = xs[0].ndim - 2
    if valid is not None:
        xs = [jnp.where(valid[..., None], a, jnp.full_like(a, p)) for a, p in zip(xs, pads)]
    L = max(1, min(chunk_size, T))
    chunks = [_chunk(a, L, p) for a, p in zip(xs, pads)]
    r = None if resets is None else _chunk(resets[..., None], L, False)[..., 0]

    def body(c, inputs):
        xs_c, r_c = inputs
        c, out, states = chunk_step(c, xs_c, segments(r_c, L), need_states)
        return c, (out, states)

    final, (out, states) = jax.lax.scan(body, carry, (chunks, r))
    out = _unchunk(out, nlead, T)
    if need_states:
        states = jax.tree.map(lambda a: _unchunk(a, nlead, T), states)
    return out, final, states


def run_heads(
    chunk_step: Callable,
    carry,
    xs: Sequence[jax.Array],
    pads: Sequence[float],
    resets: Optional[jax.Array],
    chunk_size: int,
    need_states: bool,
    valid: Optional[jax.Array] = None,
):
    """:func:`run_chunks` for per-head sequences ``(*batch, T, heads, d)`` and ``resets, valid:
    (*batch, T)``: the heads axis moves before time (a leading axis of the chunk step, which
    sees ``(*batch, heads, L, d)``) and back, in ``out`` and ``states`` as well."""
    nb = xs[0].ndim - 3
    xs = [jnp.moveaxis(a, nb, nb + 1) for a in xs]
    per_head = lambda m: None if m is None else jnp.expand_dims(m, nb)  # noqa: E731
    out, final, states = run_chunks(
        chunk_step, carry, xs, pads, per_head(resets), chunk_size, need_states, per_head(valid)
    )
    back = lambda a: jnp.moveaxis(a, nb, nb + 1)  # noqa: E731
    return back(out), final, (jax.tree.map(back, states) if need_states else None)
