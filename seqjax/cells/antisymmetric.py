r"""AntisymmetricRNN (Chang, Chen, Haber & Chi 2019, "AntisymmetricRNN: A Dynamical System View on
Recurrent Neural Networks", ICLR).

The forward-Euler discretisation, with step :math:`\epsilon`, of the ODE
:math:`h' = \tanh((W_h - W_h^\top) h + V_h x + b_h)`, whose Jacobian has purely imaginary
eigenvalues: stable and non-dissipative (sec. 3). A diffusion :math:`\gamma` keeps the Euler
scheme stable (sec. 3):

.. math::
    M &= W_h - W_h^\top - \gamma I \\
    h_t &= h_{t-1} + \epsilon \tanh(h_{t-1} M + x_t V_h + b_h)

and, with ``gated=True``, an input gate on the update that reads the same :math:`M`
(sec. 3, "gating mechanism"):

.. math::
    z_t &= \sigma(h_{t-1} M + x_t V_z + b_z) \\
    h_t &= h_{t-1} + \epsilon\, z_t \odot \tanh(h_{t-1} M + x_t V_h + b_h)

(row-vector form; :math:`h M` uses :math:`M^\top = -W_h + W_h^\top - \gamma I`, the same family.)
Every eigenvalue of :math:`M` has real part :math:`-\gamma`.

Initialisation: :math:`W_h \sim N(0, \sigma^2/H)` (``recurrent_std`` is :math:`\sigma`, tuned
in the paper's experiments), input kernel Glorot uniform, zero bias. Parameters: ``w (H, H)``
(:math:`W_h`), ``v (input, H)`` (or ``(input, 2H)`` with the gate, blocks ``h, z``) and ``b``
likewise.

Capabilities: ``recurrent_blocks`` ``{"h": M}`` (for the gated form the gate reads the same
matrix); ``gates`` ``{"input": z_t}`` for the gated form; ``prepare`` adds :math:`M` under the
key ``"M"`` (built once per sequence instead of once per step).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from seqjax.cells import inits
from seqjax.cells.base import (
    Cell,
    check_size,
    derived,
    linear_projection,
    make_step,
    zeros_carry,
)


def antisymmetric(
    hidden_size: int,
    *,
    step_size: float = 0.01,
    diffusion: float = 0.01,
    gated: bool = False,
    recurrent_std: float = 1.0,
    kernel_init: inits.InitSpec = "glorot_uniform",
    bias_init: inits.InitSpec = "zeros",
    param_dtype=jnp.float32,
) -> Cell:
    """AntisymmetricRNN cell, plain or gated.

    Args:
      hidden_size: H.
      step_size: the Euler step size (the paper tunes it in ``{1, 0.1, 0.01, 0.001}``).
      diffusion: the diffusion added to keep the discretisation stable (same grid).
      gated: add the input gate (the paper's gated variant).
      recurrent_std: sigma in ``W_h ~ N(0, sigma^2 / H)``.
      kernel_init, bias_init: initialisers by name (:mod:`seqjax.cells.inits`).
      param_dtype: dtype of the parameters.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.antisymmetric(8, gated=True)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> m = cell.recurrent_blocks(params)["h"]
      >>> bool(jnp.allclose(jnp.linalg.eigvals(m).real, -0.01, atol=1e-5))
      True
    """
    check_size("hidden_size", hidden_size)
    if not step_size > 0:
        raise ValueError(f"step_size={step_size!r}: must be positive (the Euler step size)")
    if not diffusion >= 0:
        raise ValueError(f"diffusion={diffusion!r}: must be >= 0 (the diffusion)")
    H = hidden_size
    G = 2 if gated else 1
    k_init, b_init = inits.get(kernel_init), inits.get(bias_init)

    def init(key, input_size: int):
        check_size("input_size", input_size)
        kw, kv, kb = jax.random.split(key, 3)
        w = jax.random.normal(kw, (H, H), jnp.float32) * (recurrent_std / math.sqrt(H))
        return {
            "w": w.astype(param_dtype),
            "v": k_init(kv, (input_size, G * H), param_dtype),
            "b": b_init(kb, (G * H,), param_dtype),
        }

    def antisymmetric_part(params):
        w = params["w"]
        return w - w.T - diffusion * jnp.eye(H, dtype=w.dtype)

    def m_of(params):
        return derived(params, "M", antisymmetric_part)

    def prepare(params):
        return {**params, "M": antisymmetric_part(params)}

    project = linear_projection("v")

    def parts(params, h, p):
        """``(hM + x V_h + b_h, z)``; ``z`` is ``None`` without the gate."""
        hm = h @ m_of(params)
        z = jax.nn.sigmoid(hm + p[..., H:]) if gated else None
        return hm + p[..., :H], z

    def recur(params, h, p):
        a, z = parts(params, h, p)
        update = jnp.tanh(a) if z is None else z * jnp.tanh(a)
        h = h + step_size * update
        return h, h

    return Cell(
        init=init,
        initial_carry=zeros_carry(H, "w"),
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="antisymmetric",
        gates=(lambda params, h, p: {"input": parts(params, h, p)[1]}) if gated else None,
        recurrent_blocks=lambda params: {"h": m_of(params)},
        prepare=prepare,
    )
