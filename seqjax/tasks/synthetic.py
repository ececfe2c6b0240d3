r"""Synthetic long-range problems, generated on the fly from ``(seed, step)`` with NumPy.

The module is table-driven: ``PROBLEMS`` maps ``config.data.name`` to a :class:`Problem` (a batch
generator, the input/output sizes, a loss kind from ``LOSSES`` and where the model reads out).
Adding a problem (copy memory, temporal order, sequential digits, ...) is one generator function
and one table entry; the generator's keyword options are filled from ``config.data`` by name.

**The adding problem** (Hochreiter & Schmidhuber 1997, sec. 5.4, in the form of Le et al. 2015,
sec. 4.1 and Arjovsky et al. 2016, sec. 4.2). Each input step has two channels: a value
:math:`u_t \sim U[0, 1]` and a marker :math:`m_t \in \{0, 1\}` with exactly two ones, one at a
uniform position in the first half (:math:`t_1 < \lfloor T/2 \rfloor`) and one in the second half.
The target is :math:`y = u_{t_1} + u_{t_2}`, read out after the last step with squared error.
Predicting the constant 1 scores :math:`\mathrm{Var}(y) = 2 \cdot \tfrac{1}{12} = 1/6 \approx
0.167`, the baseline a model must beat by remembering the marked values across ``T`` steps.

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
from seqjax.tasks.base import Task

# ----------------------------------------------------------------------------- generators


def adding(rng: np.random.Generator, batch_size: int, seq_len: int = 50) -> dict:
    """A batch of the adding problem: ``x (B, T, 2)`` float32 (value, marker), ``y (B, 1)``.

    Example:
      >>> b = adding(np.random.default_rng(0), 3, seq_len=6)
      >>> b["x"].shape, b["y"].shape, b["x"][..., 1].sum(axis=1).tolist()
      ((3, 6, 2), (3, 1), [2.0, 2.0, 2.0])
    """
    if not isinstance(seq_len, int) or seq_len < 2:
        raise UserError(f"data.seq_len={seq_len!r}: must be an integer >= 2 (a marker per half)")
    half = seq_len // 2
    values = rng.uniform(0.0, 1.0, (batch_size, seq_len))
    first = rng.integers(0, half, batch_size)  # one marker in the first half ...
    second = rng.integers(half, seq_len, batch_size)  # ... and one in the second half
    rows = np.arange(batch_size)
    markers = np.zeros((batch_size, seq_len))
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values[rows, first] + values[rows, second])[:, None].astype(np.float32)
    return {"x": x, "y": y}


# ----------------------------------------------------------------------------- losses


def mse(outputs: jax.Array, batch: dict) -> tuple:
    """Mean squared error over the batch (and output units): ``mean((outputs - y)^2)``."""
    err = outputs - batch["y"]
    loss = jnp.mean(jnp.square(err))
    return loss, {"mse": loss}


def xent(logits: jax.Array, batch: dict) -> tuple:
    """Cross-entropy of integer labels ``y`` (``(*batch,)`` or ``(*batch, T)`` for tagging),
    averaged over the positions where ``batch["mask"]`` (optional) is 1; also the accuracy."""
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
    best_metric: str  # the validation metric that picks the best checkpoint
    best_mode: str  # "min" or "max"


LOSSES = {
    "mse": LossKind(mse, "mse", "min"),
    "xent": LossKind(xent, "accuracy", "max"),
}

# ----------------------------------------------------------------------------- the table


class Problem(NamedTuple):
    generate: Callable[..., dict]  # (rng, batch_size, **options) -> {"x": (B, T, I), "y": ...}
    sizes: Callable[..., tuple]  # (**options) -> (input_size, output_size)
    loss: str  # a key of LOSSES
    readout: str  # "last" (one output per sequence) or "every" (one per step)


PROBLEMS: dict[str, Problem] = {
    "adding": Problem(adding, lambda **_: (2, 1), loss="mse", readout="last"),
}

SPLITS = {"validation": (1,), "test": (2,)}  # spawn keys of the held-out sets
_TRAIN = 0


def _rng(seed: int, spawn_key: tuple) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=spawn_key))


def build(config) -> Task:
    """The synthetic task ``config.data.name`` with a :func:`seqjax.models.sequence_model`."""
    data, model_cfg = config.data, config.model
    if data.name not in PROBLEMS:
        raise UserError(f"data.name={data.name!r}: choose one of {', '.join(PROBLEMS)}")
    problem = PROBLEMS[data.name]
    kind = LOSSES[problem.loss]
    options = options_for(problem.generate, data, skip=("rng", "batch_size"))
    seed, batch_size, eval_size = config.seed, config.train.batch_size, data.eval_size
    if not isinstance(eval_size, int) or eval_size <= 0:
        raise UserError(f"data.eval_size={eval_size!r}: must be a positive integer")
    problem.generate(_rng(seed, (_TRAIN, 0)), 1, **options)  # bad data options fail here, early
    input_size, output_size = problem.sizes(**options)
    model = sequence_model(
        build_cell(model_cfg),
        input_size,
        output_size,
        num_layers=model_cfg.num_layers,
        readout=problem.readout,
        dropout_rate=model_cfg.get("dropout", 0.0),
    )

    def loss(params, state, batch, key, train):
        outputs = model.apply(
            params, batch["x"], lengths=batch.get("lengths"), key=key, train=train
        )
        value, metrics = kind.fn(outputs, batch)
        return value, (state, metrics)

    def batch(step: int) -> dict:
        return problem.generate(_rng(seed, (_TRAIN, int(step))), batch_size, **options)

    eval_sets: dict = {}
    eval_loss = jax.jit(lambda params, b: loss(params, (), b, None, False))

    def evaluate(params, split: str = "validation") -> dict:
        if split not in SPLITS:
            raise UserError(f"split={split!r}: choose one of {', '.join(SPLITS)}")
        if split not in eval_sets:
            eval_sets[split] = problem.generate(_rng(seed, SPLITS[split]), eval_size, **options)
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
            "input_size": input_size,
            "output_size": output_size,
            "loss": problem.loss,
            "readout": problem.readout,
        },
        units="examples",
        units_per_batch=batch_size,
    )


__all__ = ["LOSSES", "PROBLEMS", "LossKind", "Problem", "adding", "build", "mse", "xent"]
