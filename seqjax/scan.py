"""Drivers that run a cell over a sequence.

:func:`unroll` scans ``cell.step`` (or ``cell.recur`` over a hoisted input projection) with
``jax.lax.scan``; it handles right padding (``lengths``), carry resets (``resets``), reversal within
each sequence's own length, rematerialisation and returning every step's carry.

:func:`parallel` evaluates a cell whose recurrence is linear in the carry (minGRU, minLSTM, LRU)
with its associative-scan form ``cell.parallel``, with the same ``lengths``, ``resets``,
``reverse`` and ``return_carries`` semantics. ``unroll(..., backend=...)`` chooses between the two;
``"auto"`` looks the choice up in :data:`AUTO_BACKEND`, a table of measured timings.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp

from seqjax import cudnn
from seqjax.cells import fused
from seqjax.cells.base import Cell, accepts_keyword, prepared
from seqjax.errors import UserError


def default_hoist() -> bool:
    """Whether :func:`unroll` hoists the input projection out of the loop by default.

    ``False`` on CPU: keeping ``x_t W_x`` in the loop was faster for the fused and the scanned
    LSTM, GRU and Elman steps at 32/128/256 and 16/1024/128 in ``docs/performance.md``'s lever
    table (hoisting 1.08-1.21x the time, except one noisy Elman figure), and in the earlier
    in-process runs of ``docs/benchmarks.md``. ``True`` on GPU/TPU, cuDNN's design (one large
    input matmul before the recurrence), not yet measured here (``experiments/bench/gpu.py``).
    """
    return jax.default_backend() != "cpu"


def valid_mask(lengths: Optional[jax.Array], batch_shape: tuple, T: int) -> jax.Array:
    """``(*batch, T)`` booleans, true at the valid steps ``t < length`` (all true without lengths).

    Example:
      >>> valid_mask(jnp.array([3, 1]), (2,), 4).astype(int).tolist()
      [[1, 1, 1, 0], [1, 0, 0, 0]]
    """
    if lengths is None:
        return jnp.ones((*batch_shape, T), bool)
    lengths = jnp.broadcast_to(jnp.asarray(lengths), batch_shape)
    return jnp.arange(T, dtype=lengths.dtype) < lengths[..., None]


def reverse_within_lengths(xs: jax.Array, lengths: Optional[jax.Array]) -> jax.Array:
    """Reverses ``xs: (*batch, T, ...)`` along time within each sequence's valid prefix.

    Padding (positions ``t >= length``) stays where it is. Applying it twice is the identity.
    """
    T = xs.shape[len(jnp.shape(lengths)) if lengths is not None else 0]
    if lengths is None:
        return jnp.flip(xs, axis=-2) if xs.ndim >= 2 else jnp.flip(xs)
    lengths = jnp.asarray(lengths)
    t = jnp.arange(T, dtype=lengths.dtype)  # same integer type: no promotion under x64
    idx = jnp.where(t < lengths[..., None], lengths[..., None] - 1 - t, t)  # (*batch, T)
    idx = idx.reshape(idx.shape + (1,) * (xs.ndim - idx.ndim))
    return jnp.take_along_axis(xs, idx, axis=lengths.ndim)


def reverse_resets(resets: jax.Array, lengths: Optional[jax.Array]) -> jax.Array:
    """The ``resets`` of the sequence reversed within its lengths, so that segments stay segments.

    A segment that starts at ``t`` in forward time ends at ``t - 1``; running backwards, the carry
    must reset before the step that ended the previous segment.
    """
    ends = jnp.concatenate([resets[..., 1:], jnp.zeros_like(resets[..., :1])], axis=-1)
    return reverse_within_lengths(ends, lengths)


def _reverse_carries(carries, lengths: Optional[jax.Array], nb: int):
    """:func:`reverse_within_lengths` for every step's carries ``(*batch, T, ...)``, whose leaves
    may have several trailing axes (matrix states): time is axis ``nb``, not ``-2``."""
    if lengths is None:
        return jax.tree.map(lambda a: jnp.flip(a, axis=nb), carries)
    return jax.tree.map(lambda a: reverse_within_lengths(a, lengths), carries)


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
    backend: str = "auto",
):
    """Runs ``cell`` over the time axis of ``xs`` with ``jax.lax.scan`` (or an associative scan).

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
      backend: one of :data:`BACKENDS`.

        * ``"sequential"``: ``jax.lax.scan`` over ``cell.step`` (or ``cell.recur``).
        * ``"parallel"``: the cell's associative-scan form (:func:`parallel`; cells with
          ``cell.parallel``); ``unroll`` and ``hoist`` do not apply.
        * ``"fused"``: the whole sequence through ``cell.fused`` (:mod:`seqjax.cells.fused`;
          LSTM, GRU with ``reset_after``, Elman), a ``jax.custom_jvp`` whose reverse mode does one
          matmul per step and the weight gradients as single large matmuls after the loop. It
          takes ``lengths``, ``reverse`` and ``hoist``, not ``resets``, ``return_carries``,
          ``remat`` or ``unroll``; it composes with every JAX transformation.
        * ``"cudnn"``: cells with ``cell.fused.cudnn_lstm`` (the LSTM) through cuDNN
          (:mod:`seqjax.cudnn`), NVIDIA GPUs only, ``xs: (B, T, input)``, with ``lengths`` and
          ``reverse``. A ``jax.custom_vjp``: no forward-mode differentiation.
        * ``"auto"`` (default): :func:`auto_backend`'s measured choice between sequential and
          parallel (sequential when ``unroll`` or ``hoist`` is given), and the fused form instead
          of the sequential loop where :func:`auto_fused` says so and no option rules it out.
          It never picks ``"cudnn"``, so whatever it picks supports ``jit``, ``vmap``, ``grad``,
          ``jvp``, ``jacfwd``, ``jacrev``, ``linearize`` and ``hessian`` on every platform.

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
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = resolve_auto(
            cell,
            xs.shape[-2],
            unroll=unroll,
            hoist=hoist,
            resets=resets is not None,
            return_carries=return_carries,
            remat=remat,
        )
    if backend == "parallel":
        return parallel(
            cell,
            params,
            xs,
            carry,
            lengths=lengths,
            resets=resets,
            reverse=reverse,
            remat=remat,
            return_carries=return_carries,
        )
    if backend in ("cudnn", "fused"):  # whole-sequence kernels: fewer options than the loop
        _check_kernel(cell, backend, xs, resets, return_carries, remat, unroll)
    if backend == "cudnn":
        return _cudnn(cell, params, xs, carry, lengths, reverse)
    params = prepared(cell, params)  # derived matrices once per call, not once per step
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
            resets = reverse_resets(resets, lengths)

    # Time-major views. Projecting straight into time-major avoids a copy of the inputs.
    tm = lambda a: jnp.moveaxis(a, len(batch_shape), 0)  # noqa: E731
    inputs = cell.project(params, tm(xs)) if hoist and backend != "fused" else tm(xs)
    step_fn = cell.recur if hoist else cell.step
    valid = None
    if lengths is not None:
        valid = jnp.moveaxis(valid_mask(lengths, batch_shape, T), -1, 0)  # (T, *batch)
    resets_tm = tm(resets) if resets is not None else None

    def body(c, scanned):
        x, v, r = scanned
        held = c  # past a sequence's end the carry is held, even across a reset flag there
        if r is not None:
            c = _where(r, init_carry, c)
        new_c, y = step_fn(params, c, x)
        if v is not None:
            new_c = _where(v, new_c, held)
            y = jnp.where(v.reshape(v.shape + (1,) * (y.ndim - v.ndim)), y, jnp.zeros_like(y))
        return new_c, ((y, new_c) if return_carries else y)

    if backend == "fused":
        final, out = _fused(cell, params, init_carry, inputs, valid, batch_shape, hoist)
    else:
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
        carries = _reverse_carries(carries, lengths, len(batch_shape))
    return ys, final, carries


def _fused(cell: Cell, params, carry, xs, valid, batch_shape, hoist):
    """``cell.fused`` over time-major inputs ``xs: (T, *batch, input)``, with the batch axes
    flattened into one for the call."""
    T, B = xs.shape[0], math.prod(batch_shape)
    flat = lambda a, lead: a.reshape((*lead, B) + a.shape[len(lead) + len(batch_shape) :])  # noqa: E731
    valid = None if valid is None else flat(valid, (T,))
    carry = jax.tree.map(lambda a: flat(a, ()), carry)
    ys, final = fused.sequence(cell.fused, params, carry, flat(xs, (T,)), valid, hoist=hoist)
    unflat = lambda a, lead: a.reshape((*lead, *batch_shape) + a.shape[len(lead) + 1 :])  # noqa: E731
    return jax.tree.map(lambda a: unflat(a, ()), final), unflat(ys, (T,))


def _check_kernel(cell, backend, xs, resets, return_carries, remat, unroll) -> None:
    """The options and cells that ``backend="fused"`` or ``"cudnn"`` cannot take."""
    options = {
        "resets": resets is not None,
        "return_carries": return_carries,
        "remat": remat,
        "unroll": unroll != 1,
    }
    taken = [k for k, given in options.items() if given]
    if cell.fused is None:
        why = f"cell {cell.name!r} has no fused form (cell.fused is None)"
    elif backend == "cudnn" and cell.fused.cudnn_lstm is None:
        why = f"cuDNN runs only LSTM cells (cell {cell.name!r} has no cell.fused.cudnn_lstm)"
    elif backend == "cudnn" and xs.ndim != 3:
        why = f"needs xs of shape (B, T, input_size), got {xs.shape}"
    else:
        why = "it does not take " + ", ".join(taken) if taken else ""
    if why:
        raise ValueError(f"backend={backend!r}: {why}; use backend='sequential'")


def _cudnn(cell: Cell, params, xs, carry, lengths, reverse):
    """``backend="cudnn"``: one LSTM layer through cuDNN (:mod:`seqjax.cudnn`)."""
    if not cudnn.available():
        raise UserError(
            f"backend='cudnn': needs an NVIDIA GPU with jax[cuda], but JAX runs on "
            f"{jax.default_backend()}; use backend='auto' or 'sequential'"
        )
    B = xs.shape[0]
    carry = cell.initial_carry(params, (B,)) if carry is None else carry
    if lengths is not None:
        lengths = jnp.broadcast_to(jnp.asarray(lengths), (B,))
    if reverse:
        xs = reverse_within_lengths(xs, lengths)
    h0, c0 = carry
    layer = cell.fused.cudnn_lstm(params)
    ys, h, c = cudnn.lstm([layer], xs, h0[None], c0[None], lengths)
    if reverse:
        ys = reverse_within_lengths(ys, lengths)
    return ys, type(carry)(h[0], c[0])


BACKENDS = ("auto", "sequential", "parallel", "fused", "cudnn")

# backend="auto": for each platform, ``(longest T, backend)`` rows tried in order; ``None`` means
# any length. Source: docs/benchmarks.md, "Modern cells: sequential vs parallel" (training steps
# of minGRU, minLSTM and LRU, batch 16, hidden 256, `python experiments/bench/modern.py`).
AUTO_BACKEND: dict = {
    # Measured on a 2-core CPU: sequential faster for all three cells at T = 128, 1024 and 4096
    # (sequential / parallel time 0.19 to 0.71), with 2.4-2.6x less memory.
    "cpu": ((None, "sequential"),),
    # Not measured (no accelerator was available): the papers' evidence, Feng et al. 2024
    # (minGRU/minLSTM 175x faster than GRU/LSTM at T = 512 on a GPU) and Orvieto et al. 2023.
    "gpu": ((None, "parallel"),),
    "tpu": ((None, "parallel"),),
}


# backend="auto": platforms where cells with a fused form (LSTM, GRU with reset_after, Elman) use it
# when no option rules it out. Source: docs/performance.md, "What was tried on the CPU": the fused
# training step took 0.66-0.96 of the lax.scan's time for all three cells at 32/128/256 and
# 16/1024/128 (paired in-process rounds; the fair tables of docs/benchmarks.md supersede them).
# Not measured on GPUs and TPUs, which keep the scan until experiments/bench/gpu.py has run.
AUTO_FUSED = ("cpu",)


def auto_fused(cell: Cell, platform: Optional[str] = None) -> bool:
    """Whether ``unroll(..., backend="auto")`` runs ``cell`` with ``backend="fused"`` (when no
    ``resets``, ``return_carries``, ``remat``, ``unroll`` or ``hoist`` is given)."""
    return cell.fused is not None and (platform or jax.default_backend()) in AUTO_FUSED


def resolve_auto(
    cell: Cell,
    seq_len: int,
    platform: Optional[str] = None,
    *,
    unroll: int = 1,
    hoist: Optional[bool] = None,
    resets: bool = False,
    return_carries: bool = False,
    remat: bool = False,
) -> str:
    """The backend ``unroll(..., backend="auto")`` runs with these options on ``platform``.

    :func:`auto_backend` between sequential and parallel (sequential when a loop option,
    ``unroll`` or ``hoist``, is given), then the fused form instead of the sequential loop where
    :func:`auto_fused` says so and no option (``resets``, ``return_carries``, ``remat``,
    ``unroll``) rules it out. Never ``"cudnn"``.
    """
    loop_options = unroll != 1 or hoist is not None
    backend = "sequential" if loop_options else auto_backend(cell, seq_len, platform)
    fusable = not (resets or return_carries or remat) and unroll == 1
    if backend == "sequential" and fusable and auto_fused(cell, platform):
        return "fused"
    return backend


def auto_backend(cell: Cell, seq_len: int, platform: Optional[str] = None) -> str:
    """The backend ``unroll(..., backend="auto")`` uses for ``cell`` on sequences of ``seq_len``.

    ``"sequential"`` for cells without a parallel form and for platforms without a table entry;
    otherwise the first row of ``AUTO_BACKEND[platform]`` whose longest T covers ``seq_len``.
    ``platform`` defaults to ``jax.default_backend()``.
    """
    if cell.parallel is None:
        return "sequential"
    rows: Sequence = AUTO_BACKEND.get(platform or jax.default_backend(), ())
    for longest, choice in rows:
        if longest is None or seq_len <= longest:
            return choice
    return "sequential"


def parallel(
    cell: Cell,
    params,
    xs: jax.Array,
    carry=None,
    *,
    lengths: Optional[jax.Array] = None,
    resets: Optional[jax.Array] = None,
    reverse: bool = False,
    remat: bool = False,
    return_carries: bool = False,
):
    """Runs a cell whose recurrence is linear in the carry with its associative-scan form.

    Same arguments and results as :func:`unroll` (which calls this for ``backend="parallel"``),
    and the same values to tolerance:

    * ``resets``: handed to ``cell.parallel``, which zeroes the decay at marked steps and feeds the
      initial carry in instead (:mod:`seqjax.cells.linear_scan`).
    * ``lengths``: padded inputs are zeroed before the scan (so they get exactly zero gradient),
      outputs past each sequence's end are zero, and the returned carry is the carry at the last
      valid step (the initial carry for length 0); with ``return_carries`` the carries past the
      end hold that last carry, as :func:`unroll`'s do. A cell whose ``parallel`` accepts
      ``valid`` holds the state on padded steps itself (every built-in one does), so no step's
      carry is materialised for this; otherwise the last valid carry is gathered from all of
      them (``return_carries=True`` is asked of the cell).
    * ``reverse``: each sequence is reversed within its length (:func:`reverse_within_lengths`),
      resets shifted to segment ends (:func:`reverse_resets`), and the results reversed back.
    * ``remat``: the backward pass recomputes the scan from its inputs (``jax.checkpoint``).

    Raises:
      ValueError: the cell has no parallel form (``cell.parallel is None``).

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.mingru(8)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> xs = jax.random.normal(jax.random.key(1), (2, 6, 3))
      >>> kw = dict(lengths=jnp.array([6, 4]), reverse=True)
      >>> ys, h = seqjax.parallel(cell, params, xs, **kw)
      >>> ys_seq, h_seq = seqjax.unroll(cell, params, xs, backend="sequential", **kw)
      >>> bool(jnp.allclose(ys, ys_seq, atol=1e-6) and jnp.allclose(h, h_seq, atol=1e-6))
      True
    """
    if cell.parallel is None:
        raise ValueError(
            f"cell {cell.name!r} has no parallel form (its recurrence is not linear in the carry); "
            "use backend='sequential' or a cell such as mingru, minlstm or lru"
        )
    if xs.ndim < 2:
        raise ValueError(f"xs.shape={xs.shape}: expected (*batch, T, input_size)")
    params = prepared(cell, params)
    batch_shape = xs.shape[:-2]
    T = xs.shape[-2]
    nb = len(batch_shape)
    init_carry = cell.initial_carry(params, batch_shape) if carry is None else carry
    valid = None
    if lengths is not None:
        lengths = jnp.broadcast_to(jnp.asarray(lengths), batch_shape)
        valid = valid_mask(lengths, batch_shape, T)
        xs = jnp.where(valid[..., None], xs, jnp.zeros_like(xs))
    if resets is not None:
        resets = jnp.broadcast_to(jnp.asarray(resets, bool), (*batch_shape, T))
    if reverse:
        xs = reverse_within_lengths(xs, lengths)
        if resets is not None:
            resets = reverse_resets(resets, lengths)
    holds = valid is not None and accepts_keyword(cell.parallel, "valid")
    if holds and resets is not None:
        resets = resets & valid  # past a sequence's end the carry is held, even across a reset
    need_carries = return_carries or (lengths is not None and not holds)
    masks = {"valid": valid} if holds else {}

    def run(params, init_carry, xs, resets):
        kw = dict(resets=resets, return_carries=need_carries, **masks)
        return cell.parallel(params, init_carry, xs, **kw)

    if remat:
        run = jax.checkpoint(run)
    out = run(params, init_carry, xs, resets)
    ys, final = out[0], out[1]
    carries = out[2] if need_carries else None

    if lengths is not None:
        ys = jnp.where(valid[..., None], ys, jnp.zeros_like(ys))
    if lengths is not None and not holds:  # pick each sequence's last valid carry

        def at_last_valid(states, init):
            idx = jnp.maximum(lengths - 1, 0).reshape(batch_shape + (1,) * (states.ndim - nb))
            last = jnp.take_along_axis(states, idx, axis=nb).squeeze(nb)
            return _where(lengths > 0, last, init)

        final = jax.tree.map(at_last_valid, carries, init_carry)

        def hold(states, last):
            m = valid.reshape(valid.shape + (1,) * (states.ndim - nb - 1))
            return jnp.where(m, states, jnp.expand_dims(last, nb))

        carries = jax.tree.map(hold, carries, final)
    if reverse:
        ys = reverse_within_lengths(ys, lengths)
        if carries is not None:
            carries = _reverse_carries(carries, lengths, nb)
    return (ys, final, carries) if return_carries else (ys, final)
