r"""Synthetic long-range problems as a training task, generated on the fly from ``(seed, step)``.

The module is table-driven: ``PROBLEMS`` maps ``config.data.name`` to a batch function
``(rng, batch_size, **options) -> TaskData`` (the generators of :mod:`seqjax.tasks.generators`,
with the config's option names), and ``LOSSES`` maps each ``TaskData.loss`` kind to its loss, the
model's readout and the validation metric that picks the best checkpoint. Adding a problem (copy
memory, temporal order, ...) is one entry in ``PROBLEMS``; its keyword options are filled from
``config.data`` by name.

**The adding problem** (``data.name="adding"``): the form of Le et al. 2015, sec. 4.1 and Arjovsky
et al. 2016, sec. 4.2 (:func:`seqjax.tasks.generators.adding_problem_le`). Each step has two
channels, a value :math:`u_t \sim U[0, 1]` and a marker with exactly two ones, one in each half of
the sequence; the target :math:`y = u_{t_1} + u_{t_2}` is read out after the last step with
squared error. Predicting the constant 1 scores :math:`\mathrm{Var}(y) = 1/6 \approx 0.167`.

Data streams (NumPy ``SeedSequence(config.seed, spawn_key=...)``): training batch ``step`` uses
``spawn_key=(0, step)``, so the data position *is* the step; the held-out ``validation`` and
``test`` sets (``config.data.eval_size`` examples each) use ``(1,)`` and ``(2,)``, streams
disjoint from every training batch.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from seqjax.errors import UserError
from seqjax.models import build_cell, options_for, sequence_model
from seqjax.tasks import generators
from seqjax.tasks.base import Task
from seqjax.tasks.generators import TaskData

# ----------------------------------------------------------------------------- the table


def adding(rng: np.random.Generator, batch_size: int, seq_len: int = 50) -> TaskData:
    """The adding problem of Le et al. 2015 with ``seq_len`` steps.

    Example:
      >>> d = adding(np.random.default_rng(0), 3, seq_len=6)
      >>> d.inputs.shape, d.targets.shape, d.loss
      ((3, 6, 2), (3,), 'mse')
    """
    try:
        return generators.adding_problem_le(rng, batch_size, seq_len)
    except UserError as e:  # "length=1: must be ..." in the config's words
        raise UserError(str(e).replace("length=", "data.seq_len=", 1)) from None


PROBLEMS: dict[str, Callable[..., TaskData]] = {
    "adding": adding,
}

# ----------------------------------------------------------------------------- losses


def mse(outputs: jax.Array, batch: dict) -> tuple:
    """Mean squared error of a scalar prediction ``outputs (B, 1)`` against ``y (B,)``."""
    loss = jnp.mean(jnp.square(outputs[..., 0] - batch["y"]))
    return loss, {"mse": loss}


def xent(logits: jax.Array, batch: dict) -> tuple:
    """Cross-entropy of integer labels ``y`` (``(B,)``, or ``(B, T)`` for every step), averaged
    over the positions where ``batch["mask"]`` (optional) is 1; also the accuracy."""
    labels = batch["y"]
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    mask = batch.get("mask")
    mask = jnp.ones_like(nll) if mask is None else jnp.asarray(mask, nll.dtype)
    denom = jnp.maximum(mask.sum(), 1.0)
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(nll.dtype)
    return (nll * mask).sum() / denom, {"accuracy": (correct * mask).sum() / denom}


class LossKind(NamedTuple):
    fn: Callable[..., tuple]  # (outputs, batch) -> (loss, metrics)
    readout: str  # "last" (one output per sequence) or "every" (one per step)
    best_metric: str  # the validation metric that picks the best checkpoint
    best_mode: str  # "min" or "max"


LOSSES = {  # keyed by TaskData.loss (seqjax.tasks.generators.LOSS_KINDS)
    "mse": LossKind(mse, "last", "mse", "min"),
    "cross_entropy": LossKind(xent, "last", "accuracy", "max"),
    "cross_entropy_per_step": LossKind(xent, "every", "accuracy", "max"),
}

SPLITS = {"validation": (1,), "test": (2,)}  # spawn keys of the held-out sets
_TRAIN = 0


def _rng(seed: int, spawn_key: tuple) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=spawn_key))


def _as_batch(d: TaskData) -> dict:
    batch = {"x": d.inputs, "y": d.targets}
    if d.lengths is not None:
        batch["lengths"] = d.lengths
    return batch


def build(config) -> Task:
    """The synthetic task ``config.data.name`` with a :func:`seqjax.models.sequence_model`."""
    data, model_cfg = config.data, config.model
    if data.name not in PROBLEMS:
        raise UserError(f"data.name={data.name!r}: choose one of {', '.join(PROBLEMS)}")
    generate = PROBLEMS[data.name]
    options = options_for(generate, data, skip=("rng", "batch_size"))
    seed, batch_size, eval_size = config.seed, config.train.batch_size, data.eval_size
    if not isinstance(eval_size, int) or eval_size <= 0:
        raise UserError(f"data.eval_size={eval_size!r}: must be a positive integer")
    sample = generate(_rng(seed, (_TRAIN, 0)), 1, **options)  # bad data options fail here
    if sample.inputs.ndim != 3:
        raise UserError(f"data.name={data.name!r}: give one-hot inputs (B, T, C) to the model")
    kind = LOSSES[sample.loss]
    output_size = 1 if sample.loss == "mse" else sample.num_classes
    model = sequence_model(
        build_cell(model_cfg),
        sample.inputs.shape[-1],
        output_size,
        num_layers=model_cfg.num_layers,
        readout=kind.readout,
        dropout_rate=model_cfg.get("dropout", 0.0),
    )

    def loss(params, state, batch, key, train):
        lengths = batch.get("lengths")
        outputs = model.apply(params, batch["x"], lengths=lengths, key=key, train=train)
        value, metrics = kind.fn(outputs, batch)
        return value, (state, metrics)

    def batch(step: int) -> dict:
        return _as_batch(generate(_rng(seed, (_TRAIN, int(step))), batch_size, **options))

    eval_sets: dict = {}
    eval_loss = jax.jit(lambda params, b: loss(params, (), b, None, False))

    def evaluate(params, split: str = "validation") -> dict:
        if split not in SPLITS:
            raise UserError(f"split={split!r}: choose one of {', '.join(SPLITS)}")
        if split not in eval_sets:
            eval_sets[split] = _as_batch(generate(_rng(seed, SPLITS[split]), eval_size, **options))
        full = eval_sets[split]
        totals: dict = {}
        for start in range(0, eval_size, batch_size):  # chunks of the training batch size
            chunk = {k: v[start : start + batch_size] for k, v in full.items()}
            value, (_, metrics) = eval_loss(params, chunk)
            n = len(chunk["x"])
            for k, v in {"loss": value, **metrics}.items():
                totals[k] = totals.get(k, 0.0) + float(v) * n
        return {k: v / eval_size for k, v in totals.items()}

    return Task(
        init=model.init,
        initial_state=lambda params: (),
        loss=loss,
        batch=batch,
        evaluate=evaluate,
        eval_splits=tuple(SPLITS),
        best_metric=kind.best_metric,
        best_mode=kind.best_mode,
        metadata={
            "task": "synthetic",
            "problem": data.name,
            "options": dict(options),
            "input_size": int(sample.inputs.shape[-1]),
            "output_size": output_size,
            "loss": sample.loss,
            "readout": kind.readout,
        },
        units="examples",
        units_per_batch=batch_size,
    )


__all__ = ["LOSSES", "PROBLEMS", "LossKind", "adding", "build", "mse", "xent"]
