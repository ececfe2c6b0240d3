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

from seqjax.errors import UserError
from seqjax.models import build_cell, options_for, sequence_model
from seqjax.models.precision import with_compute_dtype
from seqjax.tasks import diagnostics as diagnostics_lib
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
    return _config_words(generators.adding_problem_le, rng, batch_size, seq_len)


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
    return _config_words(
        generators.adding_problem, rng, batch_size, seq_len, variable_length=variable_length
    )


def copy(rng: np.random.Generator, batch_size: int, seq_len: int = 100) -> TaskData:
    """Copy memory (Arjovsky et al. 2016, sec. 4.1) with delay ``seq_len``, one-hot inputs
    ``(B, T + 20, 10)``; per-step cross-entropy, memoryless baseline ``10 ln 8 / (T + 20)``.

    Example:
      >>> d = copy(np.random.default_rng(0), 2, seq_len=5)
      >>> d.inputs.shape, d.targets.shape, d.loss
      ((2, 25, 10), (2, 25), 'cross_entropy_per_step')
    """
    return _config_words(generators.copy_memory, rng, batch_size, seq_len, one_hot=True)


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
    return _config_words(
        generators.temporal_order,
        rng,
        batch_size,
        seq_len,
        variable_length=variable_length,
        form=form,
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


def _config_words(fn, rng, batch_size, seq_len, **kw) -> TaskData:
    """``fn(rng, batch_size, seq_len, **kw)`` with its errors in the config's words: ``length=1``
    becomes ``data.seq_len=1`` and ``form='x'`` becomes ``data.form='x'``."""
    try:
        return fn(rng, batch_size, seq_len, **kw)
    except UserError as e:
        msg = str(e)
        name = msg.split("=", 1)[0]
        if name == "length":
            msg = "data.seq_len" + msg[len(name) :]
        elif name in kw:
            msg = "data." + msg
        raise UserError(msg) from None


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
    float32 whatever the model's dtype (bfloat16 outputs are upcast first)."""
    pred = outputs[..., 0].astype(jnp.float32)
    loss = jnp.mean(jnp.square(pred - jnp.asarray(batch["y"], jnp.float32)))
    return loss, {"mse": loss}


def xent(logits: jax.Array, batch: dict) -> tuple:
    """Cross-entropy of integer labels ``y`` (``(B,)``, or ``(B, T)`` for every step), averaged
    over the positions where ``batch["mask"]`` (optional) is 1; also the accuracy."""
    labels = batch["y"]
    # By hand, not optax's cross-entropy: importing optax loads absl, and this module stays free
    # of side-effect libraries (tests/test_imports.py, DESIGN.md).
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
SPLITS_ORDER = tuple(SPLITS)
_TRAIN = 0


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
    """The synthetic task ``config.data.name`` with a :func:`seqjax.models.sequence_model`."""
    data, model_cfg = config.data, config.model
    if data.name not in PROBLEMS:
        raise UserError(f"data.name={data.name!r}: choose one of {', '.join(PROBLEMS)}")
    generate = PROBLEMS[data.name]
    options = options_for(generate, data, skip=("rng", "batch_size", "split"))
    has_splits = _splits_of(generate)
    seed, batch_size, eval_size = config.seed, config.train.batch_size, data.eval_size
    if not has_splits and (not isinstance(eval_size, int) or eval_size <= 0):
        raise UserError(f"data.eval_size={eval_size!r}: must be a positive integer")

    def draw(rng, size, split):
        if has_splits:
            return generate(rng, size, split=split, **options)
        return generate(rng, size, **options)

    sample = draw(_rng(seed, (_TRAIN, 0)), 1, "train")  # bad data options fail here
    if sample.inputs.ndim != 3:
        raise UserError(f"data.name={data.name!r}: give one-hot inputs (B, T, C) to the model")
    kind = LOSSES[sample.loss]
    extra = METRICS.get(data.name)
    baseline = (
        BASELINES[data.name](**options_for(BASELINES[data.name], options))
        if data.name in BASELINES
        else {}
    )
    output_size = 1 if sample.loss == "mse" else sample.num_classes
    cell = build_cell(model_cfg)
    model = sequence_model(
        cell,
        sample.inputs.shape[-1],
        output_size,
        num_layers=model_cfg.num_layers,
        readout=kind.readout,
        dropout_rate=model_cfg.get("dropout", 0.0),
    )
    apply = with_compute_dtype(model.apply, model_cfg.get("compute_dtype"))  # float32 outputs

    def loss(params, state, batch, key, train):
        lengths = batch.get("lengths")
        outputs = apply(params, batch["x"], lengths=lengths, key=key, train=train)
        value, metrics = kind.fn(outputs, batch)
        if extra is not None:
            metrics = {**metrics, **extra(outputs, batch)}
        return value, (state, metrics)

    def batch(step: int) -> dict:
        return _as_batch(draw(_rng(seed, (_TRAIN, int(step))), batch_size, "train"))

    eval_sets: dict = {}
    eval_loss = jax.jit(lambda params, b: loss(params, (), b, None, False))

    def eval_set(split: str) -> dict:
        if split not in SPLITS:
            raise UserError(f"split={split!r}: choose one of {', '.join(SPLITS)}")
        if split not in eval_sets:
            eval_sets[split] = _as_batch(draw(_rng(seed, SPLITS[split]), eval_size, split))
        return eval_sets[split]

    def evaluate(params, split: str = "validation") -> dict:
        full = eval_set(split)
        size = len(full["x"])
        totals: dict = {}
        for start in range(0, size, batch_size):  # chunks of the training batch size
            chunk = {k: v[start : start + batch_size] for k, v in full.items()}
            value, (_, metrics) = eval_loss(params, chunk)
            n = len(chunk["x"])
            for k, v in {"loss": value, **metrics}.items():
                totals[k] = totals.get(k, 0.0) + float(v) * n
        return {**{k: v / size for k, v in totals.items()}, **baseline}

    probe = diagnostics_lib.probe(model, cell, kind.fn, config)

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
        diagnose=diagnose,
    )


__all__ = [
    "BASELINES",
    "LOSSES",
    "METRICS",
    "PROBLEMS",
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
