r"""Gradient-flow diagnostics of a sequence model during training: the task/analysis seam.

:func:`probe` closes over a task's model and loss and returns a jitted
``(params, batch) -> dict`` built on :mod:`seqjax.analysis`:

* ``"grad_h"``: :math:`\|\partial L / \partial h_t\|` of the top recurrent layer for every distance
  :math:`k = T - t` (:func:`seqjax.analysis.grad_norms_per_step`; Bengio et al. 1994, Pascanu et al.
  2013, sec. 2.1), with :math:`L` each example's own loss, averaged over the batch. The loop logs
  it at a few distances (:func:`at_distances`: ``grad_h/k=0``, ``k=1``, ``k=10``, ``k=T/2``,
  ``k=T``).
* ``"spectral_radius"`` and ``"max_singular_value"`` of the top layer's recurrent matrix (the
  largest over gate blocks; per block as ``"spectral_radius/<gate>"`` for gated cells), and for a
  tanh/ReLU Elman cell ``"pascanu_rate"`` :math:`= \gamma \lambda_1`, the per-step factor of
  Pascanu et al.'s bound :math:`\|\partial h_T / \partial h_t\| \le (\gamma\lambda_1)^{T-t}`.
* ``"gate/<name>/mean"`` and ``"gate/<name>/saturated"`` for LSTM and GRU gates
  (:func:`seqjax.analysis.gate_stats`).

Padded batches (``lengths``) read the output at each sequence's last valid step, so there ``k``
counts from the padded end ``T``, not each sequence's own end.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import analysis
from seqjax.layers import rnn
from seqjax.models.sequence import last_valid

# Gate-block names of w_h's columns, in each cell's order (seqjax.analysis.recurrent_blocks).
BLOCKS = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}


def distances(T: int) -> tuple[int, ...]:
    """The distances logged during training: ``0, 1, 10, T // 2, T`` (those ``<= T``), sorted.

    Example:
      >>> distances(50), distances(8)
      ((0, 1, 10, 25, 50), (0, 1, 4, 8))
    """
    return tuple(sorted({k for k in (0, 1, 10, T // 2, T) if k <= T}))


def at_distances(diag: dict) -> dict[str, float]:
    """The diagnostics as flat scalars: ``grad_h`` at :func:`distances`, the rest unchanged."""
    out = {}
    for key, value in diag.items():
        if key == "grad_h":
            g = np.asarray(value)
            T = len(g) - 1
            out.update({f"grad_h/k={k}": float(g[k]) for k in distances(T)})
        else:
            out[key] = float(value)
    return out


def probe(model, cell, loss_fn: Callable, config) -> Callable[[dict, dict], dict]:
    """A jitted ``(params, batch) -> diagnostics`` for a :func:`seqjax.models.sequence_model`.

    Args:
      model: the sequence model (its ``readout``: ``"last"`` or ``"every"``).
      cell: its recurrent cell (every layer uses it; the top layer is measured).
      loss_fn: ``(outputs, batch) -> (mean loss, metrics)``; applied to each example alone.
      config: the experiment config (``model.num_layers``, ``model.activation``).
    """
    num_layers = config.model.num_layers
    lower = rnn(cell, num_layers - 1) if num_layers > 1 else None
    activation = config.model.get("activation", "tanh")

    def per_example_loss(outputs, batch):
        def one(o, b):
            value, _ = loss_fn(o[None], jax.tree.map(lambda a: a[None], b))
            return value

        return jax.vmap(one)(outputs, batch)

    def run(params, batch):
        xs, lengths = batch["x"], batch.get("lengths")
        if lower is not None:
            xs, _ = lower.apply(params["rnn"][:-1], xs, lengths=lengths)
        top = params["rnn"][-1]
        w, b = params["readout"]["w"], params["readout"]["b"]
        targets = {k: v for k, v in batch.items() if k not in ("x", "lengths")}

        def losses(ys, _final):
            if model.readout == "last":
                ys = last_valid(ys, lengths)
            return per_example_loss(ys.astype(w.dtype) @ w + b, targets)

        g = analysis.grad_norms_per_step(cell, top, xs, losses)
        out = {"grad_h": g.total, "loss": g.loss}
        w_h = top.get("w_h") if isinstance(top, dict) else None
        if w_h is not None and w_h.ndim == 2 and w_h.shape[1] % w_h.shape[0] == 0:
            spec = analysis.recurrent_spectrum(top)
            out["spectral_radius"] = jnp.max(spec.spectral_radius)
            out["max_singular_value"] = jnp.max(spec.max_singular_value)
            for i, name in enumerate(BLOCKS.get(cell.name, ())):
                out[f"spectral_radius/{name}"] = spec.spectral_radius[i]
                out[f"max_singular_value/{name}"] = spec.max_singular_value[i]
            gamma = analysis.ACTIVATION_DERIVATIVE_BOUND.get(activation)
            if cell.name == "elman" and gamma is not None:
                out["pascanu_rate"] = gamma * out["max_singular_value"]
        if cell.name in analysis.GATES:
            for name, s in analysis.gate_stats(cell, top, xs).items():
                out[f"gate/{name}/mean"] = s.mean
                out[f"gate/{name}/saturated"] = s.saturated
        return out

    return jax.jit(run)


def decay_rate(grad_h, skip: int = 1) -> float:
    r"""The per-step factor :math:`r` of a least-squares fit :math:`\log\|g_k\| \approx
    \log C + k \log r` over ``k >= skip`` (``k = 0`` carries the readout's direct term), up to the
    first norm that is 0 or not finite (float32 underflows after a few hundred steps of fast
    decay); ``nan`` with fewer than two points.

    Example:
      >>> round(decay_rate(3.0 * 0.9 ** np.arange(20)), 6)
      0.9
      >>> round(decay_rate([5.0, 1.0, 0.5, 0.25, 0.0, 0.0]), 6)
      0.5
    """
    g = np.asarray([np.nan if v is None else v for v in grad_h], np.float64)[skip:]
    bad = ~(np.isfinite(g) & (g > 0))
    if bad.any():
        g = g[: int(np.argmax(bad))]
    if len(g) < 2:
        return float("nan")
    slope = np.polyfit(np.arange(len(g)), np.log(g), 1)[0]
    return float(np.exp(slope))


__all__ = ["BLOCKS", "at_distances", "decay_rate", "distances", "probe"]
