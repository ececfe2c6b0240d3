r"""Gate statistics for LSTM and GRU cells: how open the gates are and how many saturate.

Gates are recomputed from the carries the cell visits and the inputs, with the cell's own
parameters (``w_x``, ``w_h``, ``b``), so the cell code stays untouched:

* LSTM (:mod:`seqjax.cells.lstm`, gate order ``i, f, g, o``):
  :math:`[i, f, g, o] = x_t W_x + h_{t-1} W_h + b`; the sigmoid gates are
  ``input`` :math:`\sigma(i)`, ``forget`` :math:`\sigma(f)` and ``output`` :math:`\sigma(o)`.
  A forget gate near 1 keeps the memory :math:`c` (Gers et al. 2000).
* GRU (:mod:`seqjax.cells.gru`, gate order ``r, z, n``): ``reset`` :math:`\sigma(x_t W_{xr} +
  h_{t-1} W_{hr} + b_r)` and ``update`` :math:`z` likewise. In
  :math:`h_t = (1 - z) \odot n + z \odot h_{t-1}` an update gate near 1 keeps the state, the GRU's
  analogue of an open forget gate (Cho et al. 2014; Chung et al. 2014).

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
from seqjax.cells.base import Cell

GATES = {"lstm": ("input", "forget", "output"), "gru": ("reset", "update")}


class GateStats(NamedTuple):
    mean: jax.Array  # shape=(), mean gate value over batch, time and units
    saturated: jax.Array  # shape=(), fraction of values < threshold or > 1 - threshold
    low: jax.Array  # shape=(), fraction < threshold (gate shut)
    high: jax.Array  # shape=(), fraction > 1 - threshold (gate open)
    mean_per_step: jax.Array  # shape=(T,), mean over batch and units at each step


def gate_values(cell: Cell, params, xs: jax.Array, carry=None) -> dict:
    """The sigmoid gate values at every step, ``{name: (*batch, T, H)}``.

    Args:
      cell: an LSTM or GRU cell (``cell.name`` is ``"lstm"`` or ``"gru"``; both GRU forms).
      params: its parameters.
      xs: inputs ``(*batch, T, input_size)``.
      carry: initial carry (zeros if ``None``).

    Returns:
      ``{"input", "forget", "output"}`` for the LSTM, ``{"reset", "update"}`` for the GRU.
    """
    if cell.name not in GATES:
        raise ValueError(f"cell {cell.name!r}: gate statistics exist for {', '.join(GATES)}")
    if xs.ndim < 2:
        raise ValueError(f"xs.shape={xs.shape}: expected (*batch, T, input_size)")
    carry0 = cell.initial_carry(params, xs.shape[:-2]) if carry is None else carry
    prev = _previous_carries(cell, params, xs, carry0)
    H = cell.hidden_size
    p = cell.project(params, xs)  # x_t W_x + b for all steps
    if cell.name == "lstm":
        z = p + prev.h @ params["w_h"]
        i, f, _, o = jnp.split(z, 4, axis=-1)
        return {
            "input": jax.nn.sigmoid(i),
            "forget": jax.nn.sigmoid(f),
            "output": jax.nn.sigmoid(o),
        }
    # GRU, either form: r and z read the first 2H columns of w_h; n does not enter the gates.
    rz = p[..., : 2 * H] + prev @ params["w_h"][:, : 2 * H]
    r, z = jnp.split(rz, 2, axis=-1)
    return {"reset": jax.nn.sigmoid(r), "update": jax.nn.sigmoid(z)}


def gate_stats(cell: Cell, params, xs: jax.Array, carry=None, *, threshold: float = 0.1) -> dict:
    """Mean and saturation of each sigmoid gate over a batch of sequences.

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
