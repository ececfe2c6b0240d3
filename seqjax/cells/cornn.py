r"""Coupled oscillatory RNN (Rusch & Mishra 2021, "Coupled Oscillatory Recurrent Neural Network
(coRNN): An Accurate and (Gradient) Stable Architecture for Learning Long Time Dependencies",
ICLR).

A network of damped, driven, coupled oscillators :math:`y'' = \sigma(W y + \mathcal{W} y' + V u +
b) - \gamma y - \epsilon y'`, written as a first-order system in :math:`(y, z = y')` and
discretised with the implicit-explicit scheme of sec. 2 (row-vector form):

.. math::
    z_n &= z_{n-1} + \Delta t\, \sigma(y_{n-1} W + z_{n-1} \mathcal{W} + u_n V + b)
        - \Delta t\, \gamma\, y_{n-1} - \Delta t\, \epsilon\, z_n \\
    y_n &= y_{n-1} + \Delta t\, z_n

with :math:`\sigma = \tanh`; solving the first line for :math:`z_n`,
:math:`z_n = (z_{n-1} + \Delta t (\sigma(\cdot) - \gamma y_{n-1})) / (1 + \Delta t\, \epsilon)`.
``implicit_damping=False`` takes the damping at :math:`z_{n-1}` instead (fully explicit), as the
authors' code does. The output is :math:`y_n`; the carry is ``CoRNNCarry(y, z)``. The paper
bounds the hidden states and the gradients independently of the sequence length (sec. 3).

Defaults are the authors' sequential-MNIST hyper-parameters (:math:`\Delta t = 0.042`,
:math:`\gamma = 2.7`, :math:`\epsilon = 4.7`). Initialisation as the authors' code (one PyTorch
``nn.Linear`` over ``[u, z, y]``): every weight and the bias :math:`U(\pm 1/\sqrt{I + 2H})`.
Parameters: ``w (H, H)``, ``w_z (H, H)`` (:math:`\mathcal{W}`), ``v (input, H)``, ``b (H,)``.

Capabilities: ``recurrent_blocks`` ``{"y": W, "z": script W}``, the matrices that multiply
``y_{n-1}`` and ``z_{n-1}``; ``output`` ``carry.y``; no gates.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from seqjax.cells.base import (
    Cell,
    check_size,
    linear_projection,
    make_step,
    uniform_params,
    zeros_pair,
)


class CoRNNCarry(NamedTuple):
    y: jax.Array  # shape=(*batch, H), the oscillators' positions (the output)
    z: jax.Array  # shape=(*batch, H), their velocities


def cornn(
    hidden_size: int,
    *,
    dt: float = 0.042,
    stiffness: float = 2.7,
    damping: float = 4.7,
    implicit_damping: bool = True,
    param_dtype=jnp.float32,
) -> Cell:
    """coRNN cell.

    Args:
      hidden_size: H, the number of oscillators.
      dt: the time step (the paper's Delta t).
      stiffness: the oscillators' stiffness (the restoring force per unit of ``y``).
      damping: their damping.
      implicit_damping: the IMEX scheme of the paper (damping at ``z_n``); ``False`` is the
        explicit form of the authors' code.
      param_dtype: dtype of the parameters.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.cornn(8)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> carry, y = cell.step(params, cell.initial_carry(params, (2,)), jnp.ones((2, 3)))
      >>> carry.z.shape, y.shape
      ((2, 8), (2, 8))
    """
    check_size("hidden_size", hidden_size)
    for name, value in (("dt", dt), ("stiffness", stiffness), ("damping", damping)):
        if not value > 0:
            raise ValueError(f"{name}={value!r}: must be positive")
    H = hidden_size

    def init(key, input_size: int):
        check_size("input_size", input_size)
        bound = 1.0 / math.sqrt(input_size + 2 * H)
        shapes = {"w": (H, H), "w_z": (H, H), "v": (input_size, H), "b": (H,)}
        return uniform_params(key, shapes, bound, param_dtype)

    project = linear_projection("v")

    def recur(params, carry, p):
        y, z = carry
        force = jnp.tanh(y @ params["w"] + z @ params["w_z"] + p) - stiffness * y
        if implicit_damping:
            z = (z + dt * force) / (1.0 + dt * damping)
        else:
            z = z + dt * (force - damping * z)
        y = y + dt * z
        return CoRNNCarry(y, z), y

    return Cell(
        init=init,
        initial_carry=zeros_pair(CoRNNCarry, H),
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="cornn",
        recurrent_blocks=lambda params: {"y": params["w"], "z": params["w_z"]},
        output=lambda params, carry, p: carry.y,
    )
