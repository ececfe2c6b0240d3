r"""Gate statistics of gated cells: how open the gates are and how many saturate.

The gates come from the cell itself: a cell that has gates sets :attr:`seqjax.cells.Cell.gates`,
``(params, carry, p) -> {name: (*batch, H)}``, the gate activations of the step
``cell.recur(params, carry, p)`` would take. Here they are evaluated at every step, from the
carries the cell visits and the projected inputs ``p = cell.project(params, xs)``, so a new cell
gets gate statistics by declaring its gates, with no edit here. For example the LSTM's ``input``,
``forget`` and ``output`` gates (a forget gate near 1 keeps the memory, Gers et al. 2000) and the
GRU's ``reset`` and ``update`` gates (an update gate near 1 keeps the state; Cho et al. 2014).

A sigmoid gate is *saturated* when its value is below ``threshold`` or above ``1 - threshold``
(default 0.1: below 0.1 or above 0.9): there :math:`\sigma' = \sigma(1-\sigma) < 0.09`, so little
gradient flows into the gate's pre-activation (gate saturation as a cause of vanishing
gradients: Chandar et al. 2019). Statistics are over every example, time step and unit.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from seqjax.analysis.jacobians import _previous_carries
from seqjax.cells.base import Cell, prepared


class GateStats(NamedTuple):
    mean: jax.Array  # shape=(), mean gate value over batch, time and units
    saturated: jax.Array  # shape=(), fraction of values < threshold or > 1 - threshold
    low: jax.Array  # shape=(), fraction < threshold (gate shut)
    high: jax.Array  # shape=(), fraction > 1 - threshold (gate open)
    mean_per_step: jax.Array  # shape=(T,), mean over batch and units at each step


def has_gates(cell: Cell) -> bool:
    """Whether ``cell`` declares gates (:attr:`seqjax.cells.Cell.gates`)."""
    return cell.gates is not None


def gate_values(cell: Cell, params, xs: jax.Array, carry=None) -> dict:
    """The gate values at every step, ``{name: (*batch, T, H)}``, from ``cell.gates``.

    Args:
      cell: a cell with gates (``cell.gates`` is not ``None``).
      params: its parameters.
      xs: inputs ``(*batch, T, input_size)``.
      carry: initial carry (zeros if ``None``).

    Returns:
      The cell's gates by name, e.g. ``{"input", "forget", "output"}`` for the LSTM.
    """
    if not has_gates(cell):
        raise ValueError(f"cell {cell.name!r} declares no gates (cell.gates is None)")
    if xs.ndim < 2:
        raise ValueError(f"xs.shape={xs.shape}: expected (*batch, T, input_size)")
    params = prepared(cell, params)
    carry0 = cell.initial_carry(params, xs.shape[:-2]) if carry is None else carry
    prev = _previous_carries(cell, params, xs, carry0)  # the carry each step reads
    return cell.gates(params, prev, cell.project(params, xs))


def gate_stats(cell: Cell, params, xs: jax.Array, carry=None, *, threshold: float = 0.1) -> dict:
    """Mean and saturation of each gate over a batch of sequences.

    Args:
      cell, params, xs, carry: as :func:`gate_values`.
      threshold: a gate value ``g`` is saturated when ``g < threshold`` or ``g > 1 - threshold``.

    Returns:
      ``{gate name: GateStats}`` (``"forget"`` for the LSTM and ``"update"`` for the GRU are the
      memory-keeping gates).

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.lstm(8, forget_bias=5.0)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> s = gate_stats(cell, params, jnp.zeros((2, 6, 3)))["forget"]
      >>> round(float(s.mean), 4), float(s.saturated)  # sigmoid(5) = 0.9933 > 0.9
      (0.9933, 1.0)
    """
    if not 0.0 < threshold < 0.5:
        raise ValueError(f"threshold={threshold!r}: must lie in (0, 0.5)")
    out = {}
    nb = xs.ndim - 2
    for name, g in gate_values(cell, params, xs, carry).items():
        low = jnp.mean((g < threshold).astype(g.dtype))
        high = jnp.mean((g > 1.0 - threshold).astype(g.dtype))
        axes = tuple(range(nb)) + (g.ndim - 1,)
        out[name] = GateStats(jnp.mean(g), low + high, low, high, jnp.mean(g, axis=axes))
    return out
