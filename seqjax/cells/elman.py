"""Elman recurrent network (Elman 1990, "Finding structure in time"), and the IRNN.

.. math::  h_t = f(x_t W_x + h_{t-1} W_h + b)

Parameters: ``w_x (input, H)``, ``w_h (H, H)``, ``b (H,)``. With ``activation="relu"`` and
``recurrent_init="identity"`` (bias zero) this is the IRNN of Le, Jaitly & Hinton 2015, sec. 2.

Capabilities: ``recurrent_blocks`` ``{"h": w_h}`` and ``activation_bound`` 1 (``|f'| <= 1`` for
tanh, ReLU and the identity).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from seqjax.cells import fused, inits
from seqjax.cells.base import Cell, check_size, make_step, zeros_carry

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu, "identity": lambda x: x}
# gamma >= |f'| for each activation (Pascanu et al. 2013, sec. 2.1): 1 for all three.
DERIVATIVE_BOUND = {"tanh": 1.0, "relu": 1.0, "identity": 1.0}


def elman(
    hidden_size: int,
    activation: str = "tanh",
    *,
    kernel_init: inits.InitSpec = "glorot_uniform",
    recurrent_init: inits.InitSpec = "orthogonal",
    bias_init: inits.InitSpec = "zeros",
    param_dtype=jnp.float32,
) -> Cell:
    """Elman RNN cell ``h_t = activation(x_t W_x + h_{t-1} W_h + b)``.

    Args:
      hidden_size: H, the size of the hidden state and output.
      activation: ``"tanh"`` (Elman 1990), ``"relu"`` (with ``recurrent_init="identity"``: IRNN,
        Le et al. 2015) or ``"identity"`` (a linear RNN).
      kernel_init, recurrent_init, bias_init: initialisers by name (see :mod:`seqjax.cells.inits`).
      param_dtype: dtype of the parameters; ``step`` computes in this dtype.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.elman(8, activation="relu", recurrent_init="identity")
      >>> params = cell.init(jax.random.key(0), 3)
      >>> carry, y = cell.step(params, cell.initial_carry(params, (2,)), jnp.ones((2, 3)))
      >>> y.shape
      (2, 8)
    """
    check_size("hidden_size", hidden_size)
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    act = ACTIVATIONS[activation]
    k_init, r_init, b_init = inits.get(kernel_init), inits.get(recurrent_init), inits.get(bias_init)

    def init(key, input_size: int):
        check_size("input_size", input_size)
        kx, kh, kb = jax.random.split(key, 3)
        return {
            "w_x": k_init(kx, (input_size, hidden_size), param_dtype),
            "w_h": r_init(kh, (hidden_size, hidden_size), param_dtype),
            "b": b_init(kb, (hidden_size,), param_dtype),
        }

    def project(params, x):
        return x.astype(params["w_x"].dtype) @ params["w_x"] + params["b"]

    def recur(params, h, p):
        h = act(p + h @ params["w_h"])
        return h, h

    return Cell(
        init=init,
        initial_carry=zeros_carry(hidden_size),
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=hidden_size,
        name="elman",
        recurrent_blocks=lambda params: {"h": params["w_h"]},
        activation_bound=DERIVATIVE_BOUND[activation],
        fused=fused.elman(act),
    )
