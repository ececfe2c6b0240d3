r"""Associative scans for the diagonal linear recurrence :math:`h_t = a_t \odot h_{t-1} + b_t`.

Cells whose update is linear in the carry (minGRU, minLSTM, LRU) use these for their ``parallel``
form. Both functions return every state ``h_1 .. h_T`` at once with ``jax.lax.associative_scan``
(Blelloch 1990; as used for linear RNNs by Martin & Cundy 2018 and Orvieto et al. 2023, sec. 3).

Shapes: ``a, b: (*batch, T, H)``, ``h0: (*batch, H)``, ``resets: (*batch, T)`` booleans or ``None``.
Where ``resets[..., t]`` is true the state entering step ``t`` is ``h0`` again, not ``h_{t-1}``:
the decay from the past is zeroed and the initial state is used instead,

.. math::  h_t = a_t \odot h_0 + b_t \qquad \text{(reset at } t\text{)},

which is what :func:`seqjax.unroll` does for ``resets`` (packed sequences). Where ``valid: (*batch,
T)`` is false (right padding) the step keeps the state exactly, :math:`a_t = 1, b_t = 0`, so the
last state is the state after each sequence's last valid step.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

LOG_ZERO = -1e30  # log b of a step that adds nothing: exp(LOG_ZERO) == 0 in float32 and wider


def _starts(b: jax.Array, resets: Optional[jax.Array]) -> jax.Array:
    """``(*batch, T, 1)`` booleans: where the state entering the step is ``h0`` (t = 0, resets)."""
    T = b.shape[-2]
    first = jnp.arange(T) == 0
    starts = first if resets is None else jnp.logical_or(resets, first)
    starts = jnp.broadcast_to(starts, b.shape[:-1])
    return starts[..., None]


def linear_scan(
    a: jax.Array,
    b: jax.Array,
    h0: jax.Array,
    *,
    resets: Optional[jax.Array] = None,
    valid: Optional[jax.Array] = None,
) -> jax.Array:
    r"""All states of :math:`h_t = a_t h_{t-1} + b_t` (real or complex) by associative scan.

    The pairs :math:`(a, b)` compose with the associative operator
    :math:`(a_i, b_i) \bullet (a_j, b_j) = (a_j a_i,\; a_j b_i + b_j)` (``i`` before ``j``;
    Orvieto et al. 2023, sec. 3.1). The initial state enters as :math:`b_t + a_t h_0` at every step
    that starts a segment (``t = 0`` and resets), whose decay is then zeroed.

    Example:
      >>> import jax.numpy as jnp
      >>> a, b, h0 = jnp.full((3, 1), 0.5), jnp.ones((3, 1)), jnp.zeros(1)
      >>> linear_scan(a, b, h0)[:, 0]
      Array([1.  , 1.5 , 1.75], dtype=float32)
      >>> linear_scan(a, b, h0, resets=jnp.array([False, False, True]))[:, 0]
      Array([1. , 1.5, 1. ], dtype=float32)
      >>> linear_scan(a, b, h0, valid=jnp.array([True, True, False]))[:, 0]
      Array([1. , 1.5, 1.5], dtype=float32)
    """
    if valid is not None:  # padded steps hold the state: a = 1, b = 0
        keep = valid[..., None]
        a, b = jnp.where(keep, a, jnp.ones_like(a)), jnp.where(keep, b, jnp.zeros_like(b))
    starts = _starts(b, resets)
    b = b + jnp.where(starts, a * h0[..., None, :], jnp.zeros_like(b))
    a = jnp.where(starts, jnp.zeros_like(a), a)

    def combine(earlier, later):
        a_i, b_i = earlier
        a_j, b_j = later
        return a_j * a_i, a_j * b_i + b_j

    _, h = jax.lax.associative_scan(combine, (a, b), axis=b.ndim - 2)
    return h


def log_linear_scan(
    log_a: jax.Array,
    log_b: jax.Array,
    h0: jax.Array,
    *,
    resets: Optional[jax.Array] = None,
    valid: Optional[jax.Array] = None,
) -> jax.Array:
    r"""All states of :math:`h_t = a_t h_{t-1} + b_t` for positive ``a, b`` given in log space.

    The part of :math:`h_t` that comes from the inputs stays positive, so it is carried as its
    logarithm :math:`B_t`, and the accumulated decay as :math:`A_t = \sum \log a` (Heinsen 2023,
    "Efficient parallelization of a ubiquitous sequential computation"; Feng et al. 2024, appendix
    "log-space version"). Pairs compose with the associative operator

    .. math::  (A_i, B_i) \bullet (A_j, B_j) = (A_i + A_j,\; \mathrm{logaddexp}(B_i + A_j, B_j))

    and :math:`h_t = e^{A_t} h_0 + e^{B_t}`, so ``h0`` may have any sign (zeros included) without a
    ``log 0``. Where ``resets`` is true the pair restarts (a segmented scan), which is the decay
    ``a = 0`` without the ``-inf`` of ``log 0``. Padded steps (``valid`` false) hold the state:
    :math:`\log a = 0` and :math:`\log b =` ``LOG_ZERO``, a finite stand-in for :math:`\log 0`
    (``exp`` of it is 0, and the derivatives of ``logaddexp`` stay finite, as at ``-inf`` they
    need not).

    Heinsen's two-pass form (``A = cumsum(log a)``, then ``A + logcumsumexp(log b - A)``) computes
    the same states, but subtracts two numbers that grow like ``t * |log a|``: in float32 it lost
    about 5e-5 relative accuracy by ``t = 512``, 2e-3 by ``t = 16384``, and was off by more than
    100% with gates of magnitude 1e3, where this pairwise form stays within 4e-6 of a float64 loop;
    it was also slower here (``docs/benchmarks.md``, "Log-space scan forms").

    Example:
      >>> import jax.numpy as jnp
      >>> log_a, log_b = jnp.log(jnp.full((3, 1), 0.5)), jnp.zeros((3, 1))
      >>> log_linear_scan(log_a, log_b, jnp.array([-2.0]))[:, 0]
      Array([0. , 1. , 1.5], dtype=float32)
    """
    axis = log_b.ndim - 2
    if valid is not None:
        keep = valid[..., None]
        log_a = jnp.where(keep, log_a, jnp.zeros_like(log_a))
        log_b = jnp.where(keep, log_b, jnp.full_like(log_b, LOG_ZERO))
    if resets is None:

        def combine(earlier, later):
            A_i, B_i = earlier
            A_j, B_j = later
            return A_i + A_j, jnp.logaddexp(B_i + A_j, B_j)

        A, B = jax.lax.associative_scan(combine, (log_a, log_b), axis=axis)
    else:
        flags = jnp.broadcast_to(jnp.asarray(resets, bool), log_b.shape[:-1])[..., None]

        def combine(earlier, later):
            f_i, A_i, B_i = earlier
            f_j, A_j, B_j = later
            A = jnp.where(f_j, A_j, A_i + A_j)
            B = jnp.where(f_j, B_j, jnp.logaddexp(B_i + A_j, B_j))
            return jnp.logical_or(f_i, f_j), A, B

        _, A, B = jax.lax.associative_scan(combine, (flags, log_a, log_b), axis=axis)
    return jnp.exp(A) * h0[..., None, :] + jnp.exp(B)
