r"""Minimal gated unit (Zhou, Wu, Zhang & Zhou 2016, "Minimal Gated Unit for Recurrent Neural
Networks", International Journal of Automation and Computing 13(3), sec. 3).

A GRU with one gate: the forget gate plays both the GRU's reset and (as :math:`1 - z`) update
roles (sec. 3; row-vector form):

.. math::
    f_t &= \sigma(x_t W_{xf} + h_{t-1} W_{hf} + b_f) \\
    \tilde h_t &= \tanh(x_t W_{xh} + (f_t \odot h_{t-1}) W_{hh} + b_h) \\
    h_t &= (1 - f_t) \odot h_{t-1} + f_t \odot \tilde h_t

Parameters: ``w_x (input, 2H)``, ``w_h (H, 2H)``, ``b (2H,)``, blocks in the order ``f, h~``.
Initialisation as for the GRU here (the paper gives none): Glorot input kernel, orthogonal
recurrent blocks, zero bias. Capabilities: ``gates`` ``{"forget": f_t}`` and
``recurrent_blocks`` ``{"f", "h"}``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from seqjax.cells import inits
from seqjax.cells.base import (
    Cell,
    check_size,
    linear_projection,
    make_step,
    split_blocks,
    zeros_carry,
)


def mgu(
    hidden_size: int,
    *,
    kernel_init: inits.InitSpec = "glorot_uniform",
    recurrent_init: inits.InitSpec = "orthogonal",
    bias_init: inits.InitSpec = "zeros",
    param_dtype=jnp.float32,
) -> Cell:
    """MGU cell (Zhou et al. 2016).

    Args:
      hidden_size: H.
      kernel_init, recurrent_init, bias_init: initialisers by name (:mod:`seqjax.cells.inits`);
        the recurrent one is applied to each ``(H, H)`` block.
      param_dtype: dtype of the parameters.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.mgu(8)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> params["w_h"].shape
      (8, 16)
      >>> carry, y = cell.step(params, cell.initial_carry(params, (2,)), jnp.ones((2, 3)))
      >>> y.shape
      (2, 8)
    """
    check_size("hidden_size", hidden_size)
    H = hidden_size
    k_init = inits.get(kernel_init)
    r_init = inits.blockwise(inits.get(recurrent_init), 2)
    b_init = inits.get(bias_init)

    def init(key, input_size: int):
        check_size("input_size", input_size)
        kx, kh, kb = jax.random.split(key, 3)
        return {
            "w_x": k_init(kx, (input_size, 2 * H), param_dtype),
            "w_h": r_init(kh, (H, 2 * H), param_dtype),
            "b": b_init(kb, (2 * H,), param_dtype),
        }

    project = linear_projection()

    def forget(params, h, p):
        return jax.nn.sigmoid(p[..., :H] + h @ params["w_h"][:, :H])

    def recur(params, h, p):
        f = forget(params, h, p)
        candidate = jnp.tanh(p[..., H:] + (f * h) @ params["w_h"][:, H:])
        h = (1.0 - f) * h + f * candidate
        return h, h

    return Cell(
        init=init,
        initial_carry=zeros_carry(H),
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="mgu",
        gates=lambda params, h, p: {"forget": forget(params, h, p)},
        recurrent_blocks=lambda params: split_blocks(params["w_h"], ("f", "h")),
    )
