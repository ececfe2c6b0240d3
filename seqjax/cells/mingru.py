r"""Minimal GRU (Feng et al. 2024, "Were RNNs All We Needed?", sec. 3.1).

The GRU's gates and candidate drop their dependence on :math:`h_{t-1}` (sec. 3.1.1) and the
candidate drops its ``tanh`` range restriction (sec. 3.1.2), which leaves a recurrence linear in
the carry (sec. 3.1.3):

.. math::
    z_t &= \sigma(x_t W_z + b_z), \qquad \tilde h_t = g(x_t W_h + b_h) \\
    h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

with the paper's log-space activation :math:`g(x) = x + 0.5` for :math:`x \ge 0` and
:math:`\sigma(x)` otherwise (appendix "log-space version"), which keeps :math:`\tilde h_t > 0` so
the parallel form can run in log space: :math:`\log(1 - z_t) = -\operatorname{softplus}(k_t)`,
:math:`\log z_t = -\operatorname{softplus}(-k_t)` for :math:`k_t = x_t W_z + b_z`.

Parameters: ``w_x (input, 2H)``, ``b (2H,)``, blocks in the order ``z, h~``. ``project`` is the
input matmul, ``recur`` the elementwise update; ``parallel`` solves the whole sequence with
:func:`seqjax.cells.linear_scan.log_linear_scan` (or, with ``log_space=False``, the equally
accurate and faster linear-space :func:`seqjax.cells.linear_scan.linear_scan`). The carry and
all gate arithmetic are float32 whatever the parameter dtype (as recurrentgemma accumulates its
scan); outputs are cast back to the dtype of the projected inputs (the parameters' dtype, to
which inputs are cast).

Capabilities: ``gates`` ``{"update": z_t}`` (input-only); no recurrent matrix
(``recurrent_blocks`` is ``None``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from seqjax.cells import inits
from seqjax.cells.base import Cell, check_size, make_step
from seqjax.cells.linear_scan import linear_scan, log_linear_scan

ACC = jnp.float32  # accumulation dtype of the carry and the scan


def g(x: jax.Array) -> jax.Array:
    """Feng et al. 2024's positive activation: ``x + 0.5`` for ``x >= 0``, ``sigmoid(x)`` else."""
    return jnp.where(x >= 0, x + 0.5, jax.nn.sigmoid(x))


def log_g(x: jax.Array) -> jax.Array:
    """``log g(x)``, finite for every finite ``x`` (both branches are, so gradients are too)."""
    return jnp.where(x >= 0, jnp.log(jax.nn.relu(x) + 0.5), -jax.nn.softplus(-x))


def float32_carry(hidden_size: int):
    """``initial_carry`` for the min* cells: float32 zeros whatever the parameters' dtype."""

    def initial_carry(params, batch_shape=()):
        del params
        return jnp.zeros((*tuple(batch_shape), hidden_size), ACC)

    return initial_carry


def scan_states(log_a, log_b, carry, resets, log_space: bool, valid=None) -> jax.Array:
    """All states of ``h_t = a_t h_{t-1} + b_t`` from ``log a, log b``: in log space (the paper's
    form) or, with ``log_space=False``, by the plain linear-space associative scan, as accurate
    here (``a`` in (0, 1) and ``b > 0``: no cancellation; underflow goes to the right limit 0)
    and two to three times as fast on CPU (``docs/benchmarks.md``, "Modern cells"). Where
    ``valid`` is false the state is held (``z = 0``: ``a = 1``, ``b = 0``)."""
    carry = carry.astype(ACC)
    if log_space:
        return log_linear_scan(log_a, log_b, carry, resets=resets, valid=valid)
    return linear_scan(jnp.exp(log_a), jnp.exp(log_b), carry, resets=resets, valid=valid)


def finish(hs: jax.Array, carry: jax.Array, out_dtype, return_carries: bool):
    """``(ys, final carry[, carries])`` from all states ``hs: (*batch, T, H)`` of a min* cell."""
    final = hs[..., -1, :] if hs.shape[-2] else carry
    ys = hs.astype(out_dtype)
    return (ys, final, hs) if return_carries else (ys, final)


def mingru(
    hidden_size: int,
    *,
    kernel_init: inits.InitSpec = "glorot_uniform",
    bias_init: inits.InitSpec = "zeros",
    param_dtype=jnp.float32,
    log_space: bool = True,
) -> Cell:
    """minGRU cell (Feng et al. 2024, sec. 3.1.3) with a sequential and a parallel form.

    Args:
      hidden_size: H.
      kernel_init, bias_init: initialisers by name (:mod:`seqjax.cells.inits`).
      param_dtype: dtype of the parameters (the carry is float32 regardless).
      log_space: run the parallel form in log space (the paper's appendix); ``False`` uses the
        linear-space associative scan, as accurate here and 2-3x faster on CPU.

    Returns:
      A :class:`Cell` whose ``parallel(params, carry, xs, *, resets=None, return_carries=False,
      valid=None)`` returns ``(ys, carry)`` (and every step's carry if asked) for ``xs: (*batch,
      T, input)``; the state is held at the steps where ``valid`` is false.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.mingru(8)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> xs = jax.random.normal(jax.random.key(1), (2, 5, 3))
      >>> ys, h = cell.parallel(params, cell.initial_carry(params, (2,)), xs)
      >>> ys_seq, h_seq = seqjax.unroll(cell, params, xs, backend="sequential")
      >>> bool(jnp.allclose(ys, ys_seq, atol=1e-6))
      True
    """
    check_size("hidden_size", hidden_size)
    H = hidden_size
    k_init, b_init = inits.get(kernel_init), inits.get(bias_init)

    def init(key, input_size: int):
        check_size("input_size", input_size)
        kx, kb = jax.random.split(key)
        return {
            "w_x": k_init(kx, (input_size, 2 * H), param_dtype),
            "b": b_init(kb, (2 * H,), param_dtype),
        }

    def project(params, x):
        return x.astype(params["w_x"].dtype) @ params["w_x"] + params["b"]

    def recur(params, h, p):
        del params
        k, u = jnp.split(p.astype(ACC), 2, axis=-1)
        h = jax.nn.sigmoid(-k) * h + jax.nn.sigmoid(k) * g(u)  # (1 - z) h + z g(h~)
        return h, h.astype(p.dtype)

    def gates(params, h, p):
        del params, h  # the gate reads the input only (sec. 3.1.1)
        return {"update": jax.nn.sigmoid(p[..., :H].astype(ACC))}

    def parallel(params, carry, xs, *, resets=None, return_carries=False, valid=None):
        p = project(params, xs)
        k, u = jnp.split(p.astype(ACC), 2, axis=-1)
        log_a = -jax.nn.softplus(k)  # log(1 - z_t)
        log_b = -jax.nn.softplus(-k) + log_g(u)  # log z_t + log h~_t
        hs = scan_states(log_a, log_b, carry, resets, log_space, valid)
        return finish(hs, carry, p.dtype, return_carries)

    return Cell(
        init=init,
        initial_carry=float32_carry(H),
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="mingru",
        parallel=parallel,
        gates=gates,
    )
