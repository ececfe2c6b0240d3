r"""Long expressive memory (Rusch, Mishra, Erichson & Mahoney 2022, "Long Expressive Memory for
Sequence Modeling", ICLR).

A multiscale discretisation of a system of ODEs in two states :math:`(y, z)`, with learned,
input-dependent time steps (sec. 2, eq. 3; row-vector form):

.. math::
    \Delta t_n &= \Delta t\, \hat\sigma(y_{n-1} W_1 + u_n V_1 + b_1) \\
    \overline{\Delta t}_n &= \Delta t\, \hat\sigma(y_{n-1} W_2 + u_n V_2 + b_2) \\
    z_n &= (1 - \Delta t_n) \odot z_{n-1} + \Delta t_n \odot \sigma(y_{n-1} W_z + u_n V_z + b_z) \\
    y_n &= (1 - \overline{\Delta t}_n) \odot y_{n-1}
        + \overline{\Delta t}_n \odot \sigma(z_n W_y + u_n V_y + b_y)

with :math:`\hat\sigma` the logistic sigmoid and :math:`\sigma = \tanh`. For
:math:`\Delta t \le 1` each update is a convex combination, so states starting in
:math:`[-1, 1]` stay there (the paper's bound on the hidden states, sec. 3). The output is
:math:`y_n`; the carry ``LEMCarry(y, z)``.

Initialisation as the authors' code: every weight and bias :math:`U(\pm 1/\sqrt{H})`.
Parameters: ``v (input, 4H)`` (blocks ``1, 2, z, y``), ``b (4H,)``, ``w (H, 3H)`` (blocks ``1, 2,
z``, multiplying :math:`y_{n-1}`), ``w_y (H, H)`` (multiplying :math:`z_n`).

Capabilities: ``gates`` ``{"dt": sigma_hat(...), "dt_bar": ...}`` (the time-step gates before the
scaling by ``dt``), ``recurrent_blocks`` ``{"dt", "dt_bar", "z"}``, the blocks of ``w``, and
``output`` ``carry.y``.
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
    split_blocks,
    uniform_params,
    zeros_pair,
)


class LEMCarry(NamedTuple):
    y: jax.Array  # shape=(*batch, H), the fast state (the output)
    z: jax.Array  # shape=(*batch, H), the slow state


def lem(hidden_size: int, *, dt: float = 1.0, param_dtype=jnp.float32) -> Cell:
    """LEM cell.

    Args:
      hidden_size: H.
      dt: the largest time step, ``0 < dt <= 1`` (the paper's Delta t; 1 keeps the bound on the
        states).
      param_dtype: dtype of the parameters.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.lem(8)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> carry, y = cell.step(params, cell.initial_carry(params, (2,)), 100 * jnp.ones((2, 3)))
      >>> bool((jnp.abs(y) <= 1).all()), sorted(cell.gates(params, carry, cell.project(
      ...     params, jnp.ones((2, 3)))))
      (True, ['dt', 'dt_bar'])
    """
    check_size("hidden_size", hidden_size)
    if not 0 < dt <= 1:
        raise ValueError(f"dt={dt!r}: must lie in (0, 1] (the largest time step)")
    H = hidden_size

    def init(key, input_size: int):
        check_size("input_size", input_size)
        bound = 1.0 / math.sqrt(H)
        shapes = {"v": (input_size, 4 * H), "b": (4 * H,), "w": (H, 3 * H), "w_y": (H, H)}
        return uniform_params(key, shapes, bound, param_dtype)

    project = linear_projection("v")

    def time_gates(params, y, p):
        """``(sigma_hat_1, sigma_hat_2, y W_z)``: the two gates and the ``z`` block's matmul."""
        a1, a2, az = jnp.split(y @ params["w"], 3, axis=-1)
        return jax.nn.sigmoid(a1 + p[..., :H]), jax.nn.sigmoid(a2 + p[..., H : 2 * H]), az

    def recur(params, carry, p):
        y, z = carry
        g1, g2, az = time_gates(params, y, p)
        dt_n, dt_bar = dt * g1, dt * g2
        z = (1.0 - dt_n) * z + dt_n * jnp.tanh(az + p[..., 2 * H : 3 * H])
        y = (1.0 - dt_bar) * y + dt_bar * jnp.tanh(z @ params["w_y"] + p[..., 3 * H :])
        return LEMCarry(y, z), y

    def gates(params, carry, p):
        g1, g2, _ = time_gates(params, carry.y, p)
        return {"dt": g1, "dt_bar": g2}

    return Cell(
        init=init,
        initial_carry=zeros_pair(LEMCarry, H),
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="lem",
        gates=gates,
        recurrent_blocks=lambda params: split_blocks(params["w"], ("dt", "dt_bar", "z")),
        output=lambda params, carry, p: carry.y,
    )
