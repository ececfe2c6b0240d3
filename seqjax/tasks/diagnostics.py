r"""Gradient-flow diagnostics of a sequence model during training: the task/analysis seam.

:func:`probe` closes over a task's model and loss and returns a jitted
``(params, batch) -> dict`` built on :mod:`seqjax.analysis`:

* ``"grad_h"``: :math:`\|\partial L / \partial h_t\|` of the top recurrent layer for every distance
  :math:`k = T - t` (:func:`seqjax.analysis.grad_norms_per_step`; Bengio et al. 1994, Pascanu et al.
  2013, sec. 2.1), with :math:`L` each example's own loss, averaged over the batch. The loop logs
  it at a few distances (:func:`at_distances`: ``grad_h/k=0``, ``k=1``, ``k=10``, ``k=T/2``,
  ``k=T``).
* for cells with ``cell.recurrent_blocks``: ``"spectral_radius"`` and ``"max_singular_value"`` of
  the top layer's recurrent matrices (the largest over blocks; per block as
  ``"spectral_radius/<block>"`` where there is more than one), and for cells with
  ``cell.activation_bound`` (Elman) ``"pascanu_rate"`` :math:`= \gamma \lambda_1`, the per-step
  factor of Pascanu et al.'s bound :math:`\|\partial h_T / \partial h_t\| \le
  (\gamma\lambda_1)^{T-t}`.
* for cells with ``cell.gates``: ``"gate/<name>/mean"`` and ``"gate/<name>/saturated"``
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
      config: the experiment config (``model.num_layers``).
    """
    num_layers = config.model.num_layers
    lower = rnn(cell, num_layers - 1) if num_layers > 1 else None

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
        if cell.recurrent_blocks is not None:
            spec = analysis.recurrent_spectrum(cell, top)
            out["spectral_radius"] = jnp.max(jnp.stack([s.spectral_radius for s in spec.values()]))
            out["max_singular_value"] = jnp.max(
                jnp.stack([s.max_singular_value for s in spec.values()])
            )
            if len(spec) > 1:
                for name, s in spec.items():
                    out[f"spectral_radius/{name}"] = s.spectral_radius
                    out[f"max_singular_value/{name}"] = s.max_singular_value
            if cell.activation_bound is not None:
                out["pascanu_rate"] = cell.activation_bound * out["max_singular_value"]
        if analysis.has_gates(cell):
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


__all__ = ["at_distances", "decay_rate", "distances", "probe"]
