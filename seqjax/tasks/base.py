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
* ``evaluate(params, split) -> dict[str, float]``: metrics on a held-out split (host loop over
  jitted functions).
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

from typing import Any, Callable, NamedTuple, Optional


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
