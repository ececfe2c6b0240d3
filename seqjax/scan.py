"""Drivers that run a cell over a sequence.

:func:`unroll` scans ``cell.step`` (or ``cell.recur`` over a hoisted input projection) with
``jax.lax.scan``; it handles right padding (``lengths``), carry resets (``resets``), reversal within
each sequence's own length, rematerialisation and returning every step's carry.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from seqjax.cells.base import Cell


def default_hoist() -> bool:
    """Whether :func:`unroll` hoists the input projection out of the loop by default.

    On CPU, measured (``docs/benchmarks.md``, ``seqjax bench cells``): hoisting made a training
    step 3-44% slower for 8 of 9 LSTM/GRU/Elman shapes, as the in-loop projection runs on the idle
    core. On GPU/TPU it returns ``True``, cuDNN's design (one large input matmul before the
    recurrence); that side is not yet measured in this repository.
    """
    return jax.default_backend() != "cpu"


def reverse_within_lengths(xs: jax.Array, lengths: Optional[jax.Array]) -> jax.Array:
    """Reverses ``xs: (*batch, T, ...)`` along time within each sequence's valid prefix.

    Padding (positions ``t >= length``) stays where it is. Applying it twice is the identity.
    """
    T = xs.shape[len(jnp.shape(lengths)) if lengths is not None else 0]
    if lengths is None:
        return jnp.flip(xs, axis=-2) if xs.ndim >= 2 else jnp.flip(xs)
    lengths = jnp.asarray(lengths)
    t = jnp.arange(T)
    idx = jnp.where(t < lengths[..., None], lengths[..., None] - 1 - t, t)  # (*batch, T)
    idx = idx.reshape(idx.shape + (1,) * (xs.ndim - idx.ndim))
    return jnp.take_along_axis(xs, idx, axis=lengths.ndim)


def _where(mask, new, old):
    """Per-leaf ``where`` with ``mask: (*batch,)`` broadcast over each leaf's trailing axes."""

    def pick(a, b):
        m = mask.reshape(mask.shape + (1,) * (a.ndim - mask.ndim))
        return jnp.where(m, a, b)

    return jax.tree.map(pick, new, old)


def unroll(
    cell: Cell,
    params,
    xs: jax.Array,
    carry=None,
    *,
    lengths: Optional[jax.Array] = None,
    resets: Optional[jax.Array] = None,
    reverse: bool = False,
    unroll: int = 1,
    remat: bool = False,
    return_carries: bool = False,
    hoist: Optional[bool] = None,
):
    """Runs ``cell`` over the time axis of ``xs`` with ``jax.lax.scan``.

    Args:
      cell: a :class:`seqjax.cells.Cell`.
      params: the cell's parameters.
      xs: inputs, batch-major ``(*batch, T, input_size)``.
      carry: initial carry; zeros (``cell.initial_carry``) if ``None``.
      lengths: ``(*batch,)`` integer valid lengths (right padding). Outputs at ``t >= length`` are
        exactly zero, the returned carry is the carry after the last valid step, and padded inputs
        get zero gradient.
      resets: ``(*batch, T)`` booleans; where true the carry is reset to the initial carry before
        that step (packed sequences, episode boundaries).
      reverse: run each sequence backwards (within its own length when ``lengths`` is given);
        outputs are returned in the original time order. With ``resets``, segments stay segments.
      unroll: passed to ``jax.lax.scan``.
      remat: rematerialise each step in the backward pass (``jax.checkpoint``): memory O(T * carry)
        instead of O(T * activations).
      return_carries: also return every step's carry, batch-major ``(*batch, T, ...)`` per leaf.
      hoist: compute ``cell.project`` for all steps as one matmul before the loop and run only
        ``cell.recur`` inside it; ``None`` picks the measured default per platform
        (:func:`default_hoist`).

    Returns:
      ``(ys, carry)`` with ``ys: (*batch, T, hidden)``, or ``(ys, carry, carries)`` when
      ``return_carries``.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.gru(8)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> ys, h = seqjax.unroll(cell, params, jnp.ones((2, 5, 3)), lengths=jnp.array([5, 2]))
      >>> ys.shape, bool((ys[1, 2:] == 0).all())
      ((2, 5, 8), True)
    """
    if xs.ndim < 2:
        raise ValueError(f"xs.shape={xs.shape}: expected (*batch, T, input_size)")
    batch_shape = xs.shape[:-2]
    T = xs.shape[-2]
    init_carry = cell.initial_carry(params, batch_shape) if carry is None else carry
    if hoist is None:
        hoist = default_hoist()

    if lengths is not None:
        lengths = jnp.broadcast_to(jnp.asarray(lengths), batch_shape)
    if resets is not None:
        resets = jnp.broadcast_to(jnp.asarray(resets, bool), (*batch_shape, T))
    if reverse:
        xs = reverse_within_lengths(xs, lengths)
        if resets is not None:
            # A segment that starts at t in forward time ends at t - 1; running backwards, the
            # carry must reset before the step that ended the previous segment.
            ends = jnp.concatenate([resets[..., 1:], jnp.zeros_like(resets[..., :1])], axis=-1)
            resets = reverse_within_lengths(ends, lengths)

    # Time-major views. Projecting straight into time-major avoids a copy of the inputs.
    tm = lambda a: jnp.moveaxis(a, len(batch_shape), 0)  # noqa: E731
    inputs = cell.project(params, tm(xs)) if hoist else tm(xs)
    step_fn = cell.recur if hoist else cell.step
    valid = None
    if lengths is not None:
        valid = jnp.arange(T).reshape((T,) + (1,) * len(batch_shape)) < lengths  # (T, *batch)
    resets_tm = tm(resets) if resets is not None else None

    def body(c, scanned):
        x, v, r = scanned
        if r is not None:
            c = _where(r, init_carry, c)
        new_c, y = step_fn(params, c, x)
        if v is not None:
            new_c = _where(v, new_c, c)
            y = jnp.where(v.reshape(v.shape + (1,) * (y.ndim - v.ndim)), y, jnp.zeros_like(y))
        return new_c, ((y, new_c) if return_carries else y)

    if remat:
        body = jax.checkpoint(body)
    final, out = jax.lax.scan(body, init_carry, (inputs, valid, resets_tm), unroll=unroll)

    bm = lambda a: jnp.moveaxis(a, 0, len(batch_shape))  # noqa: E731
    ys, carries = out if return_carries else (out, None)
    ys = bm(ys)
    if reverse:
        ys = reverse_within_lengths(ys, lengths)
    if not return_carries:
        return ys, final
    carries = jax.tree.map(bm, carries)
    if reverse:
        carries = jax.tree.map(lambda a: reverse_within_lengths(a, lengths), carries)
    return ys, final, carries
