"""The `Task` contract: what the training loop needs from a task (lm, classify, synthetic, ...).

A task module exposes ``build(config) -> Task``. The loop never looks inside batches or models:

* ``init(key) -> params``: the model's parameters.
* ``initial_state(params) -> state``: model state carried between training batches (the LM's
  recurrent carry for truncated BPTT); ``()`` for stateless tasks.
* ``loss(params, state, batch, key, train) -> (loss, (state, metrics))``: pure and jittable;
  ``metrics`` is a dict of scalars (averaged over the batch) that the loop logs.
* ``batch(step) -> dict of numpy arrays``: the training batch for global step ``step``, a
  deterministic function of the config's seed and ``step`` alone. So the data iterator's position
  *is* the step, and resuming at step ``n`` replays exactly the batches an uninterrupted run sees.
* ``evaluate(params, split) -> dict[str, float]``: metrics on a held-out split (one jitted
  function per batch whose sums :func:`accumulate` adds up on the host).
* ``eval_splits``: the splits ``evaluate`` accepts, the first one being the validation split.
* ``best_metric`` / ``best_mode``: the validation metric that picks the best checkpoint and whether
  lower (``"min"``) or higher (``"max"``) is better.
* ``metadata``: JSON-serialisable facts saved with every checkpoint (vocabulary, label names, ...).
* ``units``: what a batch counts for throughput: ``"tokens"`` or ``"examples"``, with
  ``units_per_batch`` of them per training batch.
* ``diagnose(params, batch=None) -> dict`` (optional, ``None`` if the task has none): gradient-flow
  diagnostics on a held-out batch (:mod:`seqjax.tasks.diagnostics`): ``"grad_h"``, the
  ``(T+1,)`` array of ``||dL/dh_t||`` by distance ``k = T - t``, and scalars (spectral radius,
  largest singular value, gate saturation). The loop logs them every
  ``train.diagnostics_every`` steps.

How the loop (:mod:`seqjax.train.loop`) uses it: ``loss`` runs inside one jitted, pure
``train_step`` with ``train=True`` and ``key = fold_in(run_key, step)``; evaluation code may call
it with ``key=None, train=False``. Training batch ``step`` is fed to update ``step + 1``, so a
checkpoint at step ``n`` resumes with ``batch(n)``. Checkpoints are ranked by
``evaluate(params, eval_splits[0])[best_metric]``. The config is saved with every checkpoint and
``build(config)`` must rebuild the same task from it (``seqjax eval`` does), so a task must not
depend on anything outside its config but files the config names. Tests wrap a task with
``task._replace(batch=...)`` to inject faults.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, NamedTuple, Optional

import jax
import numpy as np

from seqjax.errors import UserError


class Task(NamedTuple):
    init: Callable[..., Any]
    initial_state: Callable[..., Any]
    loss: Callable[..., tuple]
    batch: Callable[[int], dict]
    evaluate: Callable[..., dict]
    eval_splits: tuple
    best_metric: str
    best_mode: str
    metadata: dict
    units: str = "examples"
    units_per_batch: int = 0
    diagnose: Optional[Callable[..., dict]] = None


def check_split(split: str, splits: tuple) -> None:
    """A :class:`UserError` naming the choices when ``split`` is not one of ``splits``."""
    if split not in splits:
        raise UserError(f"split={split!r}: choose one of {', '.join(splits)}")


def accumulate(step: Callable, batches: Iterable, carry: Any = None) -> tuple[dict, Any]:
    """Sums, on the host in float64, what ``step(carry, batch) -> (carry, sums)`` returns for each
    of ``batches``; returns ``(totals, final carry)``.

    ``sums`` is a dict of arrays (scalars, or e.g. a confusion matrix) that add up over batches;
    the evaluation of every task is one jitted ``step`` and this loop (the carry is the LM's state
    across windows, ``None`` elsewhere).

    Example:
      >>> totals, _ = accumulate(lambda c, b: (c, {"count": len(b), "loss": sum(b)}), [[1, 2], [3]])
      >>> means(totals)
      {'loss': 2.0}
    """
    totals: dict = {}
    for b in batches:
        carry, sums = step(carry, b)
        for k, v in jax.device_get(sums).items():
            totals[k] = totals.get(k, 0.0) + np.asarray(v, np.float64)
    return totals, carry


def means(totals: dict, count: str = "count") -> dict[str, float]:
    """Every scalar total divided by ``totals[count]`` (at least 1), as Python floats."""
    n = max(float(totals.get(count, 0.0)), 1.0)
    return {k: float(v) / n for k, v in totals.items() if k != count and np.ndim(v) == 0}
