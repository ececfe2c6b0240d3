r"""Lipschitz RNN (Erichson, Azencot, Queiruga, Hodgkinson & Mahoney 2021, "Lipschitz Recurrent
Neural Networks", ICLR).

A continuous-time RNN with a linear part and a nonlinear part, each matrix split into a
symmetric and a skew-symmetric part with a shift (sec. 3; row-vector form):

.. math::
    A_{\beta,\gamma} &= (1 - \beta)(M_A + M_A^\top) + \beta (M_A - M_A^\top) - \gamma_A I \\
    W_{\beta,\gamma} &= (1 - \beta)(M_W + M_W^\top) + \beta (M_W - M_W^\top) - \gamma_W I \\
    \dot h &= h A_{\beta,\gamma} + \tanh(h W_{\beta,\gamma} + x U + b)

With :math:`\beta` near 1 the symmetric parts, which can make the system unstable, are small;
the shifts :math:`\gamma` move the spectrum to the left (the paper's Lipschitz and stability
bounds, sec. 3). Discretised with step :math:`\epsilon`, the input held over the step:

* ``solver="euler"``: :math:`h_t = h_{t-1} + \epsilon f(h_{t-1}, x_t)`;
* ``solver="midpoint"`` (explicit midpoint rule, a second-order Runge-Kutta scheme):
  :math:`h_t = h_{t-1} + \epsilon f(h_{t-1} + \tfrac{\epsilon}{2} f(h_{t-1}, x_t), x_t)`,

with :math:`f(h, x) = h A + \tanh(h W + x U + b)`. The paper tunes :math:`\beta`, the
:math:`\gamma` and :math:`\epsilon` per task; the defaults (:math:`\beta = 0.75`,
:math:`\gamma_A = \gamma_W = 0.001`, :math:`\epsilon = 0.03`) lie in that range (the authors'
README runs pixel MNIST with :math:`\beta = 0.75`, :math:`\gamma = 0.01`,
:math:`\epsilon = 0.01`). Initialisation as the authors' code:
:math:`M_A, M_W \sim N(0, (\sigma / H)^2)` (``init_std`` is :math:`\sigma`), :math:`U` Glorot
normal, :math:`b = 0`.

Parameters: ``m_a, m_w (H, H)``, ``u (input, H)``, ``b (H,)``. Capabilities:
``recurrent_blocks`` ``{"a": A, "w": W}``; ``prepare`` adds :math:`A_{\beta,\gamma}` and
:math:`W_{\beta,\gamma}` under the keys ``"A"`` and ``"W"`` (built once per sequence instead of
once per step); no gates.
"""

from __future__ import annotations

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

SOLVERS = ("euler", "midpoint")
glorot_normal = jax.nn.initializers.glorot_normal()


def split_matrix(m: jax.Array, beta: float, gamma: float) -> jax.Array:
    """``(1 - beta)(M + M^T) + beta (M - M^T) - gamma I``."""
    eye = jnp.eye(m.shape[-1], dtype=m.dtype)
    return (1.0 - beta) * (m + m.T) + beta * (m - m.T) - gamma * eye


def lipschitz(
    hidden_size: int,
    *,
    beta: float = 0.75,
    gamma_a: float = 0.001,
    gamma_w: float = 0.001,
    step_size: float = 0.03,
    solver: str = "euler",
    init_std: float = 1.0,
    kernel_init: inits.InitSpec = glorot_normal,
    param_dtype=jnp.float32,
) -> Cell:
    """Lipschitz RNN cell.

    Args:
      hidden_size: H.
      beta: the weight of the skew-symmetric part, in ``[0, 1]``.
      gamma_a, gamma_w: the shifts of ``A`` and ``W``.
      step_size: the step size of the discretisation.
      solver: ``"euler"`` or ``"midpoint"``.
      init_std: sigma in ``M ~ N(0, (sigma / H)^2)`` (the authors' ``init_std``).
      kernel_init: initialiser of ``U`` (Glorot normal, the authors' choice).
      param_dtype: dtype of the parameters.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.lipschitz(8, solver="midpoint")
      >>> params = cell.init(jax.random.key(0), 3)
      >>> sorted(cell.recurrent_blocks(params))
      ['a', 'w']
      >>> carry, y = cell.step(params, cell.initial_carry(params, (2,)), jnp.ones((2, 3)))
      >>> y.shape
      (2, 8)
    """
    check_size("hidden_size", hidden_size)
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta={beta!r}: must lie in [0, 1]")
    if not step_size > 0:
        raise ValueError(f"step_size={step_size!r}: must be positive (the step size)")
    if solver not in SOLVERS:
        raise ValueError(f"solver={solver!r}: choose one of {', '.join(SOLVERS)}")
    H = hidden_size
    k_init = inits.get(kernel_init)

    def init(key, input_size: int):
        check_size("input_size", input_size)
        ka, kw, ku = jax.random.split(key, 3)
        normal = lambda k: jax.random.normal(k, (H, H), jnp.float32) * (init_std / H)  # noqa: E731
        return {
            "m_a": normal(ka).astype(param_dtype),
            "m_w": normal(kw).astype(param_dtype),
            "u": k_init(ku, (input_size, H), param_dtype),
            "b": jnp.zeros((H,), param_dtype),
        }

    a_of = lambda params: split_matrix(params["m_a"], beta, gamma_a)  # noqa: E731
    w_of = lambda params: split_matrix(params["m_w"], beta, gamma_w)  # noqa: E731

    def matrices(params):
        return derived(params, "A", a_of), derived(params, "W", w_of)

    def prepare(params):
        return {**params, "A": a_of(params), "W": w_of(params)}

    project = linear_projection("u")

    def recur(params, h, p):
        A, W = matrices(params)
        f = lambda h: h @ A + jnp.tanh(h @ W + p)  # noqa: E731
        if solver == "euler":
            h = h + step_size * f(h)
        else:
            h = h + step_size * f(h + 0.5 * step_size * f(h))
        return h, h

    return Cell(
        init=init,
        initial_carry=zeros_carry(H, "m_a"),
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="lipschitz",
        recurrent_blocks=lambda params: dict(zip(("a", "w"), matrices(params))),
        prepare=prepare,
    )
