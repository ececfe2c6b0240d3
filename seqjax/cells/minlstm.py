r"""Minimal LSTM (Feng et al. 2024, "Were RNNs All We Needed?", sec. 3.2).

The LSTM's gates drop their dependence on :math:`h_{t-1}` (sec. 3.2.1), the candidate drops its
``tanh`` (sec. 3.2.2), the output gate goes and the forget and input gates are normalised to sum
to one so that the state's scale does not depend on time (sec. 3.2.3). The result (sec. 3.2.4):

.. math::
    f_t &= \sigma(x_t W_f + b_f), \quad i_t = \sigma(x_t W_i + b_i), \quad
        \tilde h_t = g(x_t W_h + b_h) \\
    f'_t &= \frac{f_t}{f_t + i_t}, \quad i'_t = \frac{i_t}{f_t + i_t} \\
    h_t &= f'_t \odot h_{t-1} + i'_t \odot \tilde h_t

with :math:`g` as in :mod:`seqjax.cells.mingru`. Both the step and the parallel form compute the
normalised gates stably from :math:`d_t = \operatorname{softplus}(-k^f_t) -
\operatorname{softplus}(-k^i_t) = \log i_t - \log f_t`: :math:`f'_t = \sigma(-d_t)`,
:math:`i'_t = \sigma(d_t)`, i.e. :math:`\log f'_t = -\operatorname{softplus}(d_t)` and
:math:`\log i'_t = -\operatorname{softplus}(-d_t)` (the paper's log-space appendix). The literal
quotient :math:`f/(f+i)` is ``0/0`` once both gates underflow.

Parameters: ``w_x (input, 3H)``, ``b (3H,)``, blocks in the order ``f, i, h~``. Capabilities:
``gates`` ``{"forget": f'_t, "input": i'_t}``, the normalised gates the update uses (input-only;
``f' + i' = 1``); no recurrent matrix. The carry is
float32 whatever the parameter dtype; outputs are cast back to the projected inputs' dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from seqjax.cells import inits
from seqjax.cells.base import Cell, check_size, make_step
from seqjax.cells.mingru import ACC, finish, float32_carry, g, log_g, scan_states


def _log_ratio(kf: jax.Array, ki: jax.Array) -> jax.Array:
    """``d = log i - log f`` for ``f = sigmoid(kf)``, ``i = sigmoid(ki)``."""
    return jax.nn.softplus(-kf) - jax.nn.softplus(-ki)


def minlstm(
    hidden_size: int,
    *,
    kernel_init: inits.InitSpec = "glorot_uniform",
    bias_init: inits.InitSpec = "zeros",
    param_dtype=jnp.float32,
    log_space: bool = True,
) -> Cell:
    """minLSTM cell (Feng et al. 2024, sec. 3.2.4) with a sequential and a parallel form.

    Args:
      hidden_size: H.
      kernel_init, bias_init: initialisers by name (:mod:`seqjax.cells.inits`).
      param_dtype: dtype of the parameters (the carry is float32 regardless).
      log_space: run the parallel form in log space (the paper's appendix); ``False`` uses the
        linear-space associative scan (see :func:`seqjax.cells.mingru.scan_states`).

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.minlstm(8)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> params["w_x"].shape
      (3, 24)
      >>> xs = jax.random.normal(jax.random.key(1), (2, 5, 3))
      >>> ys, h = seqjax.parallel(cell, params, xs, lengths=jnp.array([5, 3]))
      >>> bool((ys[1, 3:] == 0).all())
      True
    """
    check_size("hidden_size", hidden_size)
    H = hidden_size
    k_init, b_init = inits.get(kernel_init), inits.get(bias_init)

    def init(key, input_size: int):
        check_size("input_size", input_size)
        kx, kb = jax.random.split(key)
        return {
            "w_x": k_init(kx, (input_size, 3 * H), param_dtype),
            "b": b_init(kb, (3 * H,), param_dtype),
        }

    def project(params, x):
        return x.astype(params["w_x"].dtype) @ params["w_x"] + params["b"]

    def recur(params, h, p):
        del params
        kf, ki, u = jnp.split(p.astype(ACC), 3, axis=-1)
        d = _log_ratio(kf, ki)
        h = jax.nn.sigmoid(-d) * h + jax.nn.sigmoid(d) * g(u)  # f' h + i' g(h~)
        return h, h.astype(p.dtype)

    def gates(params, h, p):
        del params, h  # the gates read the input only (sec. 3.2.1)
        kf, ki, _ = jnp.split(p.astype(ACC), 3, axis=-1)
        d = _log_ratio(kf, ki)
        return {"forget": jax.nn.sigmoid(-d), "input": jax.nn.sigmoid(d)}  # f', i'

    def parallel(params, carry, xs, *, resets=None, return_carries=False, valid=None):
        p = project(params, xs)
        kf, ki, u = jnp.split(p.astype(ACC), 3, axis=-1)
        d = _log_ratio(kf, ki)
        log_a = -jax.nn.softplus(d)  # log f'_t
        log_b = -jax.nn.softplus(-d) + log_g(u)  # log i'_t + log h~_t
        hs = scan_states(log_a, log_b, carry, resets, log_space, valid)
        return finish(hs, carry, p.dtype, return_carries)

    return Cell(
        init=init,
        initial_carry=float32_carry(H),
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="minlstm",
        parallel=parallel,
        gates=gates,
    )
