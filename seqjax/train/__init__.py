"""Training: the side effects live here (jit, data iteration, checkpoints, metric files, progress).

* :mod:`seqjax.train.config`: preset parsing for config files, validation, experiment identity.
* :mod:`seqjax.train.optim`: the optimizer built from ``config.optim`` as one ``optax.chain``.
* :mod:`seqjax.train.step`: :class:`TrainState` and the pure, jitted ``train_step``.
* :mod:`seqjax.train.checkpoint`: orbax ``CheckpointManager`` (latest K + best, atomic saves).
* :mod:`seqjax.train.metrics`: ``metrics.jsonl``, TensorBoard files, progress bar / log lines.
* :mod:`seqjax.train.loop`: ``train_and_evaluate(config, workdir)`` and ``evaluate_checkpoint``.
* :mod:`seqjax.train.report`: loss/metric curves to PNG.
* :mod:`seqjax.train.commands`: the ``seqjax train | eval | report`` command lines, and
  :mod:`seqjax.train.cmdline`: their flag parsing, every mistake as one line.
"""
