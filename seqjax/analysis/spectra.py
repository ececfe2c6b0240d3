r"""Spectra of recurrent matrices and Pascanu et al.'s sufficient condition for vanishing gradients.

For an Elman network :math:`h_t = f(x_t W_x + h_{t-1} W_h + b)` (row vectors, as in
:mod:`seqjax.cells.elman`) the step Jacobian is
:math:`J_t = \operatorname{diag}(f'(a_t))\, W_h^\top`, so with :math:`|f'| \le \gamma` and
:math:`\lambda_1` the largest singular value of :math:`W_h`,

.. math::
    \Big\| \frac{\partial h_T}{\partial h_t} \Big\| \le (\gamma \lambda_1)^{T-t}.

Pascanu, Mikolov & Bengio (2013, sec. 2.1): :math:`\lambda_1 < 1/\gamma` is *sufficient* for the
long-term gradient to vanish exponentially, and :math:`\lambda_1 > 1/\gamma` is *necessary* for it
to explode. :math:`\gamma = 1` for tanh, :math:`1/4` for the logistic sigmoid; for ReLU and the
identity :math:`|f'| \le 1`, so :math:`\gamma = 1` too. The spectral radius
:math:`\rho(W_h) \le \lambda_1` governs the linear case in the limit :math:`T - t \to \infty`
(echo-state networks, Jaeger 2001). Transposing a matrix changes neither.

A cell declares its recurrent matrices as :attr:`seqjax.cells.Cell.recurrent_blocks` (one ``(H, H)``
block per gate for gated cells) and, where the Elman-type bound applies, :math:`\gamma` as
:attr:`seqjax.cells.Cell.activation_bound`; :func:`recurrent_spectrum` reports each block and
reads nothing else of the cell. The Pascanu bound is stated for the Elman recurrence only.
"""

from __future__ import annotations

from typing import NamedTuple, Union

import jax
import jax.numpy as jnp

from seqjax.cells.base import Cell

# gamma: a bound on |f'(a)| for the activation f (Pascanu et al. 2013, sec. 2.1).
ACTIVATION_DERIVATIVE_BOUND = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0, "identity": 1.0}


def spectral_radius(w: jax.Array) -> jax.Array:
    """Largest ``|eigenvalue|`` of a square matrix (or a stack ``(..., n, n)``).

    Uses ``jnp.linalg.eigvals`` (a general, non-symmetric eigensolver).
    """
    return jnp.max(jnp.abs(jnp.linalg.eigvals(w)), axis=-1)


def max_singular_value(w: jax.Array) -> jax.Array:
    """Largest singular value (the spectral norm) of a matrix or a stack ``(..., m, n)``."""
    return jnp.linalg.svd(w, compute_uv=False)[..., 0]


def recurrent_blocks(cell: Cell, params) -> dict:
    """The cell's recurrent matrices ``{name: (H, H)}`` (``cell.recurrent_blocks(params)``), e.g.
    ``i, f, g, o`` for the LSTM, ``r, z, n`` for the GRU, ``h`` for Elman."""
    if cell.recurrent_blocks is None:
        raise ValueError(
            f"cell {cell.name!r} declares no dense recurrent matrix (cell.recurrent_blocks is None)"
        )
    return cell.recurrent_blocks(params)


class Spectrum(NamedTuple):
    spectral_radius: jax.Array  # shape=(), largest |eigenvalue| of one (H, H) block
    max_singular_value: jax.Array  # shape=(), its largest singular value


def recurrent_spectrum(cell: Cell, params) -> dict:
    """Spectral radius and largest singular value of each of the cell's recurrent blocks.

    Returns:
      ``{block name: Spectrum}`` in the cell's block order.

    Example:
      >>> import jax, seqjax
      >>> cell = seqjax.cells.elman(16, recurrent_init="spectral:0.9")
      >>> spec = recurrent_spectrum(cell, cell.init(jax.random.key(0), 1))
      >>> {k: round(float(s.spectral_radius), 3) for k, s in spec.items()}
      {'h': 0.9}
    """
    return {
        name: Spectrum(spectral_radius(w), max_singular_value(w))
        for name, w in recurrent_blocks(cell, params).items()
    }


class VanishingCondition(NamedTuple):
    max_singular_value: jax.Array  # shape=(), lambda_1, the largest singular value of W_h
    bound: jax.Array  # shape=(), 1 / gamma
    holds: jax.Array  # shape=(), bool: lambda_1 < 1/gamma, so long-term gradients vanish


def pascanu_vanishing_condition(
    w_h: jax.Array, activation: Union[str, float] = "tanh"
) -> VanishingCondition:
    r"""Pascanu et al. (2013, sec. 2.1): :math:`\lambda_1(W_h) < 1/\gamma` makes gradients vanish.

    Args:
      w_h: the ``(H, H)`` recurrent matrix of an Elman cell.
      activation: ``"tanh"`` (:math:`\gamma = 1`), ``"sigmoid"`` (1/4), ``"relu"`` (1),
        ``"identity"`` (1), or :math:`\gamma` itself as a number.

    Returns:
      :class:`VanishingCondition`. ``holds`` is a sufficient condition: when true,
      :math:`\|\partial h_T/\partial h_t\| \le (\gamma\lambda_1)^{T-t} \to 0`; when false the
      gradient may or may not vanish (:math:`\lambda_1 > 1/\gamma` is only necessary for explosion).

    Example:
      >>> import jax.numpy as jnp
      >>> c = pascanu_vanishing_condition(0.9 * jnp.eye(3), "tanh")
      >>> float(c.max_singular_value), float(c.bound), bool(c.holds)
      (0.8999999761581421, 1.0, True)
      >>> bool(pascanu_vanishing_condition(2.0 * jnp.eye(3), "sigmoid").holds)  # 2 < 4
      True
    """
    if isinstance(activation, str):
        if activation not in ACTIVATION_DERIVATIVE_BOUND:
            raise ValueError(
                f"activation={activation!r}: choose one of "
                f"{', '.join(ACTIVATION_DERIVATIVE_BOUND)} or give gamma as a number"
            )
        gamma = ACTIVATION_DERIVATIVE_BOUND[activation]
    else:
        gamma = float(activation)
        if gamma <= 0:
            raise ValueError(f"gamma={gamma!r}: must be positive (a bound on |f'|)")
    if w_h.ndim != 2 or w_h.shape[0] != w_h.shape[1]:
        raise ValueError(f"w_h.shape={w_h.shape}: expected a square (H, H) matrix")
    lam = max_singular_value(w_h)
    bound = jnp.asarray(1.0 / gamma, lam.dtype)
    return VanishingCondition(max_singular_value=lam, bound=bound, holds=lam < bound)
