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

import inspect
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import schema
from seqjax.models import build_cell, losses, options_for, sequence_model
from seqjax.models.precision import with_compute_dtype
from seqjax.tasks import diagnostics as diagnostics_lib
from seqjax.tasks import generators
from seqjax.tasks.base import Task, accumulate, check_split, means
from seqjax.tasks.generators import TaskData

# ----------------------------------------------------------------------------- the table


def adding(rng: np.random.Generator, batch_size: int, seq_len: int = 50) -> TaskData:
    """The adding problem of Le et al. 2015 with ``seq_len`` steps.

    Example:
      >>> d = adding(np.random.default_rng(0), 3, seq_len=6)
      >>> d.inputs.shape, d.targets.shape, d.loss
      ((3, 6, 2), (3,), 'mse')
    """
    return generators.adding_problem_le(rng, batch_size, seq_len)


def adding_hs(
    rng: np.random.Generator, batch_size: int, seq_len: int = 100, variable_length: bool = False
) -> TaskData:
    """The adding problem of Hochreiter & Schmidhuber 1997, sec. 5.4 (values in [-1, 1], target
    ``0.5 + (X1 + X2) / 4``, solved when ``|error| < 0.04``: the ``solved`` metric).

    Example:
      >>> d = adding_hs(np.random.default_rng(0), 3, seq_len=12)
      >>> d.inputs.shape, d.loss
      ((3, 12, 2), 'mse')
    """
    return generators.adding_problem(rng, batch_size, seq_len, variable_length=variable_length)


def copy(rng: np.random.Generator, batch_size: int, seq_len: int = 100) -> TaskData:
    """Copy memory (Arjovsky et al. 2016, sec. 4.1) with delay ``seq_len``, one-hot inputs
    ``(B, T + 20, 10)``; per-step cross-entropy, memoryless baseline ``10 ln 8 / (T + 20)``.

    Example:
      >>> d = copy(np.random.default_rng(0), 2, seq_len=5)
      >>> d.inputs.shape, d.targets.shape, d.loss
      ((2, 25, 10), (2, 25), 'cross_entropy_per_step')
    """
    return generators.copy_memory(rng, batch_size, seq_len, one_hot=True)


def temporal_order(
    rng: np.random.Generator,
    batch_size: int,
    seq_len: int = 100,
    variable_length: bool = False,
    form: str = "hochreiter",
) -> TaskData:
    """The temporal-order problem (Hochreiter & Schmidhuber 1997, sec. 5.6; Pascanu et al. 2013,
    sec. 4.1): 4 classes read out at the last step.

    Example:
      >>> d = temporal_order(np.random.default_rng(0), 2, seq_len=20)
      >>> d.inputs.shape, d.num_classes
      ((2, 20, 8), 4)
    """
    return generators.temporal_order(
        rng, batch_size, seq_len, variable_length=variable_length, form=form
    )


# Sequential 8x8 digits: a fixed data set. Its 1500 training images are split once into
# DIGITS_VALIDATION held-out images and the rest for training; "test" is the generator's 297.
DIGITS_VALIDATION = 300


def digits(
    rng: np.random.Generator,
    batch_size: int,
    split: str = "train",
    permute: bool = False,
    permutation_seed: int = 0,
) -> TaskData:
    """Sequential (or permuted) 8x8 digits, one pixel per step (Le et al. 2015, sec. 4.2, at
    MNIST's place; :func:`seqjax.tasks.generators.sequential_digits`).

    ``split="train"`` draws ``batch_size`` images uniformly with replacement from the 1200
    training images; ``"validation"`` (300 images carved from the generator's training split)
    and ``"test"`` (297) return the whole split, whatever ``batch_size``.

    Example:
      >>> d = digits(np.random.default_rng(0), 4)
      >>> d.inputs.shape, d.num_classes
      ((4, 64, 1), 10)
      >>> len(digits(None, 1, split="validation").targets)
      300
    """
    source = "test" if split == "test" else "train"
    d = generators.sequential_digits(source, permute=permute, permutation_seed=permutation_seed)
    if split == "test":
        return d
    n_val = DIGITS_VALIDATION
    idx = (
        np.arange(n_val)
        if split == "validation"
        else n_val + rng.integers(0, len(d.targets) - n_val, size=batch_size)
    )
    return d._replace(inputs=d.inputs[idx], targets=d.targets[idx])


def digits_permuted(
    rng: np.random.Generator, batch_size: int, split: str = "train", permutation_seed: int = 0
) -> TaskData:
    """:func:`digits` with the pixels in a fixed random order (permuted MNIST's analogue)."""
    return digits(rng, batch_size, split, permute=True, permutation_seed=permutation_seed)


PROBLEMS: dict[str, Callable[..., TaskData]] = {
    "adding": adding,
    "adding_hs": adding_hs,
    "copy": copy,
    "temporal_order": temporal_order,
    "digits": digits,
    "digits_permuted": digits_permuted,
}


def solved(outputs: jax.Array, batch: dict) -> dict:
    """Fraction of sequences with ``|prediction - target| < 0.04`` (Hochreiter & Schmidhuber
    1997, sec. 5.4)."""
    err = jnp.abs(outputs[..., 0] - batch["y"])
    return {"solved": jnp.mean((err < generators.ADDING_SOLVED_TOLERANCE).astype(err.dtype))}


# Extra jitted metrics of a problem, ``(outputs, batch) -> dict``, added to its loss's metrics.
METRICS: dict[str, Callable[..., dict]] = {"adding_hs": solved}

# Constants reported beside the validation metrics: what a model without memory scores.
BASELINES: dict[str, Callable[..., dict]] = {
    "adding": lambda seq_len=50: {"baseline": generators.ADDING_LE_BASELINE_MSE},
    "copy": lambda seq_len=100: {"baseline": generators.copy_memory_baseline(seq_len)},
}

# ----------------------------------------------------------------------------- losses


def mse(outputs: jax.Array, batch: dict) -> tuple:
    """Mean squared error of a scalar prediction ``outputs (B, 1)`` against ``y (B,)``, in
    float32 whatever the model's dtype."""
    loss = losses.squared_error(outputs, batch["y"])
    return loss, {"mse": loss}


def xent(logits: jax.Array, batch: dict) -> tuple:
    """Cross-entropy of integer labels ``y`` (``(B,)``, or ``(B, T)`` for every step), averaged
    over the positions where ``batch["mask"]`` (optional) is 1; also the accuracy."""
    mask = batch.get("mask")
    loss = losses.cross_entropy(logits, batch["y"], mask)
    return loss, {"accuracy": losses.accuracy(logits, batch["y"], mask)}


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
SPLITS_ORDER = tuple(SPLITS)
_TRAIN = 0

# ----------------------------------------------------------------------------- config

#: The shortest ``data.seq_len`` each generator accepts (seqjax.tasks.generators; a test checks).
MIN_SEQ_LEN = {"adding": 2, "adding_hs": 4, "copy": 1, "temporal_order": 10}

#: The fields of this task besides those every task has (seqjax.train.config).
FIELDS: dict[str, schema.Field] = {
    "data.name": schema.choice("adding", lambda: tuple(PROBLEMS), "the problem (PROBLEMS)"),
    "data.seq_len": schema.integer(50, "T, steps per sequence (digits: always 64 pixels)", low=1),
    "data.eval_size": schema.integer(
        2000, "examples in each held-out split (digits: its fixed splits)", low=0
    ),
    "data.variable_length": schema.flag(
        False, "adding_hs, temporal_order: lengths uniform in [T, T + T // 10]"
    ),
    "data.form": schema.choice(
        "hochreiter", ("hochreiter", "pascanu"), "temporal_order: the paper's form or Pascanu's"
    ),
    "data.permutation_seed": schema.integer(
        0, "digits_permuted: seed of the fixed pixel order", low=0
    ),
    "model.dropout": schema.number(
        0.0, "dropout between layers while training", low=0.0, high=1.0, high_open=True
    ),
}


def _seq_len(name, seq_len):
    low = MIN_SEQ_LEN.get(name, 1)
    if seq_len < low:
        return "data.seq_len", f"must be >= {low} for data.name={name!r}"
    return None


def _eval_size(name, eval_size):
    if not _splits_of(PROBLEMS[name]) and eval_size < 1:
        return "data.eval_size", f"must be >= 1 for data.name={name!r}"
    return None


def _fixed_lengths(name, form, variable_length):
    if name == "temporal_order" and form == "pascanu" and variable_length:
        return "data.variable_length", "the 'pascanu' form has fixed lengths; set it False"
    return None


RULES = (
    schema.Rule(("data.name", "data.seq_len"), _seq_len),
    schema.Rule(("data.name", "data.eval_size"), _eval_size),
    schema.Rule(("data.name", "data.form", "data.variable_length"), _fixed_lengths),
)

# ----------------------------------------------------------------------------- the task


def _rng(seed: int, spawn_key: tuple) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=spawn_key))


def _as_batch(d: TaskData) -> dict:
    batch = {"x": d.inputs, "y": d.targets}
    if d.lengths is not None:
        batch["lengths"] = d.lengths
    return batch


def _splits_of(generate) -> bool:
    """Whether ``generate`` draws from a fixed data set with named splits (a ``split`` option)."""
    return "split" in inspect.signature(generate).parameters


def build(config) -> Task:
    """The synthetic task ``config.data.name`` with a :func:`seqjax.models.sequence_model`; the
    config is complete and valid (:func:`seqjax.train.config.validate`)."""
    data, model_cfg = config.data, config.model
    generate = PROBLEMS[data.name]
    options = options_for(generate, data, skip=("rng", "batch_size", "split"))
    has_splits = _splits_of(generate)
    seed, batch_size, eval_size = config.seed, config.train.batch_size, data.eval_size

    def draw(rng, size, split):
        if has_splits:
            return generate(rng, size, split=split, **options)
        return generate(rng, size, **options)

    sample = draw(_rng(seed, (_TRAIN, 0)), 1, "train")
    kind = LOSSES[sample.loss]
    extra = METRICS.get(data.name)
    baseline = (
        BASELINES[data.name](**options_for(BASELINES[data.name], options))
        if data.name in BASELINES
        else {}
    )
    output_size = 1 if sample.loss == "mse" else sample.num_classes
    model = sequence_model(
        build_cell(model_cfg),
        sample.inputs.shape[-1],
        output_size,
        num_layers=model_cfg.num_layers,
        readout=kind.readout,
        dropout_rate=model_cfg.dropout,
    )
    model = with_compute_dtype(model, model_cfg.compute_dtype)  # float32 outputs

    def loss_of(outputs, batch):
        value, metrics = kind.fn(outputs, batch)
        if extra is not None:
            metrics = {**metrics, **extra(outputs, batch)}
        return value, metrics

    def loss(params, state, batch, key, train):
        outputs, _ = model.apply(
            params, batch["x"], lengths=batch.get("lengths"), key=key, train=train
        )
        value, metrics = loss_of(outputs, batch)
        return value, (state, metrics)

    def batch(step: int) -> dict:
        return _as_batch(draw(_rng(seed, (_TRAIN, int(step))), batch_size, "train"))

    eval_sets: dict = {}

    @jax.jit
    def eval_chunk(params, b):
        value, (_, metrics) = loss(params, (), b, None, False)
        n = b["x"].shape[0]
        return {"count": n, **{k: v * n for k, v in {"loss": value, **metrics}.items()}}

    def eval_set(split: str) -> dict:
        if split not in eval_sets:
            eval_sets[split] = _as_batch(draw(_rng(seed, SPLITS[split]), eval_size, split))
        return eval_sets[split]

    def evaluate(params, split: str = "validation") -> dict:
        check_split(split, SPLITS_ORDER)
        full = eval_set(split)
        chunks = (  # chunks of the training batch size
            {k: v[i : i + batch_size] for k, v in full.items()}
            for i in range(0, len(full["x"]), batch_size)
        )
        totals, _ = accumulate(lambda c, b: (c, eval_chunk(params, b)), chunks)
        return {**means(totals), **baseline}

    probe = diagnostics_lib.probe(model, diagnostics_lib.per_example(loss_of, ("y", "mask")), "x")

    def diagnose(params, batch=None) -> dict:
        if batch is None:  # the first training-batch-sized chunk of the validation set
            batch = {k: v[:batch_size] for k, v in eval_set(SPLITS_ORDER[0]).items()}
        return probe(params, batch)

    return Task(
        init=model.init,
        initial_state=lambda params: (),
        loss=loss,
        batch=batch,
        evaluate=evaluate,
        eval_splits=SPLITS_ORDER,
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
            "seq_len": int(sample.inputs.shape[1]),
        },
        units="examples",
        units_per_batch=batch_size,
        diagnose=diagnose if model.top is not None else None,
    )


__all__ = [
    "BASELINES",
    "FIELDS",
    "LOSSES",
    "METRICS",
    "MIN_SEQ_LEN",
    "PROBLEMS",
    "RULES",
    "LossKind",
    "adding",
    "adding_hs",
    "build",
    "copy",
    "digits",
    "digits_permuted",
    "mse",
    "solved",
    "temporal_order",
    "xent",
]
