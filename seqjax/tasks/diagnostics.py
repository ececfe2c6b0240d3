r"""Gradient-flow diagnostics of a sequence model during training: the task/analysis seam.

:func:`probe` closes over a task's model (the contract of :class:`seqjax.models.base.Model`) and
its per-example loss and returns a jitted ``(params, batch) -> dict`` built on
:mod:`seqjax.analysis`, using only what the top cell declares it can do (its ``recurrent_blocks``,
``activation_bound`` and ``gates``):

* ``"grad_h"``: :math:`\|\partial L / \partial h_t\|` of the top recurrent layer for every distance
  :math:`k = T - t` (:func:`seqjax.analysis.grad_norms_per_step`; Bengio et al. 1994, Pascanu et al.
  2013, sec. 2.1), with :math:`L` each example's own loss, averaged over the batch. The loop logs
  it at a few distances (:func:`at_distances`: ``grad_h/k=0``, ``k=1``, ``k=10``, ``k=T/2``,
  ``k=T``).
* ``"spectral_radius"`` and ``"max_singular_value"`` of the top layer's recurrent matrices (the
  largest over gate blocks; per block as ``"spectral_radius/<block>"`` for gated cells), and for
  an Elman-type cell (one with an ``activation_bound`` :math:`\gamma`) ``"pascanu_rate"``
  :math:`= \gamma \lambda_1`, the per-step factor of Pascanu et al.'s bound
  :math:`\|\partial h_T / \partial h_t\| \le (\gamma\lambda_1)^{T-t}`.
* ``"gate/<name>/mean"`` and ``"gate/<name>/saturated"`` for the cell's gates
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


def per_example(loss_fn: Callable, keys: tuple) -> Callable:
    """``(outputs, batch) -> (B,)``: ``loss_fn(outputs, batch)[0]`` of each example alone, reading
    ``batch[k]`` for the ``keys`` present (the arrays with a leading batch axis)."""

    def losses(outputs, batch):
        parts = {k: batch[k] for k in keys if k in batch}

        def one(o, b):
            value, _ = loss_fn(o[None], jax.tree.map(lambda a: a[None], b))
            return value

        return jax.vmap(one)(outputs, parts)

    return losses


def probe(model, example_losses: Callable, inputs: str) -> Callable[[dict, dict], dict]:
    """A jitted ``(params, batch) -> diagnostics`` for any model of the contract
    (:class:`seqjax.models.base.Model`) whose top layer runs one way (``model.top``).

    Args:
      model: the model; its top recurrent layer is measured.
      example_losses: ``(outputs, batch) -> (B,)``, each example's loss (:func:`per_example`).
      inputs: the batch key of the model's inputs (``"x"``, ``"tokens"``, ``"inputs"``).
    """

    def run(params, batch):
        lengths = batch.get("lengths")
        cell, top, xs = model.top(params, batch[inputs], lengths=lengths)

        def losses(ys, _final):
            return example_losses(model.readout(params, ys, lengths=lengths), batch)

        g = analysis.grad_norms_per_step(cell, top, xs, losses)
        out = {"grad_h": g.total, "loss": g.loss}
        if cell.recurrent_blocks is not None:
            names, blocks = zip(*cell.recurrent_blocks(top).items())
            blocks = jnp.stack(blocks)
            radius = analysis.spectral_radius(blocks)
            sv = analysis.max_singular_value(blocks)
            out["spectral_radius"], out["max_singular_value"] = jnp.max(radius), jnp.max(sv)
            if len(names) > 1:
                for i, name in enumerate(names):
                    out[f"spectral_radius/{name}"] = radius[i]
                    out[f"max_singular_value/{name}"] = sv[i]
            if cell.activation_bound is not None:
                out["pascanu_rate"] = cell.activation_bound * out["max_singular_value"]
        if cell.gates is not None:
            for name, stats in analysis.gate_stats(cell, top, xs).items():
                out[f"gate/{name}/mean"] = stats.mean
                out[f"gate/{name}/saturated"] = stats.saturated
        return out

    return jax.jit(run)


def decay_fit(grad_h, skip: int = 1) -> tuple[float, float]:
    r"""``(C, r)`` of a least-squares fit :math:`\log\|g_k\| \approx \log C + k \log r` over
    ``k >= skip`` (``k = 0`` carries the readout's direct term), up to the first norm that is 0
    or not finite (float32 underflows after a few hundred steps of fast decay); ``(nan, nan)``
    with fewer than two points.

    Example:
      >>> c, r = decay_fit([9.0] + [2.5 * 0.93**k for k in range(1, 40)] + [0.0])
      >>> round(c, 6), round(r, 6)
      (2.5, 0.93)
    """
    g = np.asarray([np.nan if v is None else v for v in grad_h], np.float64)[skip:]
    bad = ~(np.isfinite(g) & (g > 0))
    if bad.any():
        g = g[: int(np.argmax(bad))]
    if len(g) < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(np.arange(skip, skip + len(g)), np.log(g), 1)
    return float(np.exp(intercept)), float(np.exp(slope))


def decay_rate(grad_h, skip: int = 1) -> float:
    r"""The per-step factor :math:`r` of :func:`decay_fit`.

    Example:
      >>> round(decay_rate(3.0 * 0.9 ** np.arange(20)), 6)
      0.9
      >>> round(decay_rate([5.0, 1.0, 0.5, 0.25, 0.0, 0.0]), 6)
      0.5
    """
    return decay_fit(grad_h, skip)[1]


__all__ = ["at_distances", "decay_fit", "decay_rate", "distances", "per_example", "probe"]
