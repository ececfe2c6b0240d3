"""Gradient-flow diagnostics for recurrent cells: pure JAX functions over the Cell contract.

* :func:`grad_norms_per_step`: ``||dL/dh_t||`` for every step in one backward pass.
* :func:`jacobian_products`: ``dh_T/dh_t`` (products of step Jacobians) and its singular values.
* :func:`recurrent_spectrum` (of ``cell.recurrent_blocks``), :func:`spectral_radius`,
  :func:`max_singular_value` and
  :func:`pascanu_vanishing_condition` (Pascanu, Mikolov & Bengio 2013).
* :func:`gate_stats` / :func:`gate_values`: gate openness and saturation of any cell that declares
  its gates (``cell.gates``).

All work under ``jax.jit`` (close over the cell and the loss function).
"""

from seqjax.analysis.gates import GateStats, gate_stats, gate_values, has_gates
from seqjax.analysis.gradients import (
    GradNorms,
    grad_norms_per_step,
    perturbed_unroll,
)
from seqjax.analysis.jacobians import JacobianProducts, jacobian_products, step_jacobians
from seqjax.analysis.spectra import (
    ACTIVATION_DERIVATIVE_BOUND,
    Spectrum,
    VanishingCondition,
    max_singular_value,
    pascanu_vanishing_condition,
    recurrent_blocks,
    recurrent_spectrum,
    spectral_radius,
)

__all__ = [
    "ACTIVATION_DERIVATIVE_BOUND",
    "GateStats",
    "GradNorms",
    "JacobianProducts",
    "Spectrum",
    "VanishingCondition",
    "gate_stats",
    "gate_values",
    "grad_norms_per_step",
    "has_gates",
    "jacobian_products",
    "max_singular_value",
    "pascanu_vanishing_condition",
    "perturbed_unroll",
    "recurrent_blocks",
    "recurrent_spectrum",
    "spectral_radius",
    "step_jacobians",
]
