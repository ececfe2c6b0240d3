r"""Long short-term memory (Hochreiter & Schmidhuber 1997) with a forget gate (Gers et al. 2000).

.. math::
    [i, f, g, o] &= x_t W_x + h_{t-1} W_h + b \\
    c_t &= \sigma(f) \odot c_{t-1} + \sigma(i) \odot \tanh(g) \\
    h_t &= \sigma(o) \odot \tanh(c_t)

All four gates come from one fused ``(input, 4H)`` and one ``(H, 4H)`` matmul, gate order
``i, f, g, o`` along the last axis (PyTorch's and cuDNN's order). Parameters: ``w_x (input, 4H)``,
``w_h (H, 4H)``, ``b (4H,)``. The carry is ``LSTMCarry(h, c)``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from seqjax.cells import fused, inits
from seqjax.cells.base import Cell, check_size, make_step


class LSTMCarry(NamedTuple):
    h: jax.Array  # shape=(*batch, H), the output / hidden state
    c: jax.Array  # shape=(*batch, H), the memory cell


def lstm(
    hidden_size: int,
    forget_bias: float = 1.0,
    *,
    chrono_t_max: Optional[float] = None,
    kernel_init: inits.InitSpec = "glorot_uniform",
    recurrent_init: inits.InitSpec = "orthogonal",
    bias_init: inits.InitSpec = "zeros",
    param_dtype=jnp.float32,
) -> Cell:
    """LSTM cell with a forget gate.

    Args:
      hidden_size: H.
      forget_bias: added to the forget gate's bias at init (Gers et al. 2000; Jozefowicz et al.
        2015, sec. 2.3, recommend 1.0 so that the cell remembers by default).
      chrono_t_max: if set, chrono initialisation (Tallec & Ollivier 2018, sec. 3) for dependencies
        up to this many steps: forget bias ``log(U(1, T_max-1))``, input bias its negative. It
        replaces ``forget_bias``.
      kernel_init, recurrent_init, bias_init: initialisers by name (:mod:`seqjax.cells.inits`);
        the recurrent one is applied to each ``(H, H)`` gate block.
      param_dtype: dtype of the parameters.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.lstm(16)
      >>> params = cell.init(jax.random.key(0), 4)
      >>> params["w_h"].shape
      (16, 64)
      >>> carry, y = cell.step(params, cell.initial_carry(params, (2,)), jnp.ones((2, 4)))
      >>> carry.c.shape
      (2, 16)
    """
    check_size("hidden_size", hidden_size)
    H = hidden_size
    k_init = inits.get(kernel_init)
    r_init = inits.blockwise(inits.get(recurrent_init), 4)
    b_init = inits.get(bias_init)

    def init(key, input_size: int):
        check_size("input_size", input_size)
        kx, kh, kb, kc = jax.random.split(key, 4)
        b = b_init(kb, (4 * H,), param_dtype)
        if chrono_t_max is not None:
            b_f, b_i = inits.chrono_bias(kc, H, chrono_t_max, param_dtype)
            b = b.at[0:H].set(b_i).at[H : 2 * H].set(b_f)
        else:
            b = b.at[H : 2 * H].add(forget_bias)
        return {
            "w_x": k_init(kx, (input_size, 4 * H), param_dtype),
            "w_h": r_init(kh, (H, 4 * H), param_dtype),
            "b": b,
        }

    def initial_carry(params, batch_shape=()):
        z = jnp.zeros((*tuple(batch_shape), H), params["w_h"].dtype)
        return LSTMCarry(z, z)

    def project(params, x):
        return x.astype(params["w_x"].dtype) @ params["w_x"] + params["b"]

    def recur(params, carry, p):
        z = p + carry.h @ params["w_h"]
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * carry.c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return LSTMCarry(h, c), h

    return Cell(
        init=init,
        initial_carry=initial_carry,
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="lstm",
        fused=fused.lstm(LSTMCarry),
    )
