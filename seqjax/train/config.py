"""Experiment configs: preset parsing for config files, validation, experiment identity.

Every experiment config (``configs/**.py``, ``get_config(arg=None) -> ConfigDict``) has one
layout: ``seed``, ``task``, ``data.*`` (read by the task), ``model.*`` (``cell``, ``hidden_size``,
``num_layers`` and cell options, see :func:`seqjax.models.build_cell`), ``optim.*`` (see
:mod:`seqjax.train.optim`) and ``train.*`` (``num_steps``, ``batch_size``, ``eval_every``,
``checkpoint_every``, ``keep``, ``log_every``, ``skip_nonfinite`` and optionally
``early_stop_patience``). :func:`validate` checks it
before anything runs, and every mistake names its key, e.g. ``optim.name='adamm': choose one of
sgd, adam, adamw, rmsprop``.

Optional blocks: ``mesh.data`` and ``distributed.*`` (where a run executes, data parallel over
devices and processes: :mod:`seqjax.train.parallel`) and ``model.compute_dtype`` (``"bfloat16"``
for mixed precision: :mod:`seqjax.models.precision`).
"""

from __future__ import annotations

import json
import numbers
from typing import Any, Iterable

import ml_collections

from seqjax.errors import UserError

REQUIRED = (
    "seed",
    "task",
    "data.name",
    "model.cell",
    "model.hidden_size",
    "model.num_layers",
    "optim.name",
    "optim.learning_rate",
    "optim.clip",
    "optim.clip_value",
    "optim.schedule",
    "train.num_steps",
    "train.batch_size",
    "train.eval_every",
    "train.checkpoint_every",
    "train.keep",
    "train.log_every",
    "train.skip_nonfinite",
)

# Fields that control how long and how visibly a run goes, not what it computes: a workdir's
# checkpoints may be resumed with different values (e.g. a larger train.num_steps to extend it).
# ``workdir`` (a config's default --workdir), ``train.report`` and ``sample.*`` (what the train
# command writes after training, see seqjax/train/commands.py) are optional.
RUN_CONTROL = frozenset(
    {
        "workdir",
        "train.report",
        "sample.prompt",
        "sample.length",
        "sample.temperature",
        "sample.top_k",
        "sample.seed",
        "train.num_steps",
        "train.eval_every",
        "train.checkpoint_every",
        "train.keep",
        "train.log_every",
        "train.skip_nonfinite",
        "train.early_stop_patience",
        "train.diagnostics_every",
        # where it runs (seqjax.train.parallel.KEYS): a run may resume on other devices
        "mesh.data",
        "distributed.coordinator_address",
        "distributed.num_processes",
        "distributed.process_id",
    }
)


def parse_arg(arg: str | None, **spec) -> ml_collections.ConfigDict:
    """Parses a config file's presets, big_vision style (``configs/x.py:smoke,cell=gru``).

    ``spec`` gives each preset's default; its type decides how a value is read. A bool preset may
    be given by its name alone.

    Example:
      >>> p = parse_arg("smoke,seq_len=100", smoke=False, cell="lstm", seq_len=50)
      >>> p.smoke, p.cell, p.seq_len
      (True, 'lstm', 100)
    """
    result = dict(spec)
    choices = ", ".join(
        k if isinstance(v, bool) else f"{k}=<{type(v).__name__}>" for k, v in spec.items()
    )
    for item in (arg or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, eq, text = item.partition("=")
        if name not in spec:
            raise UserError(f"preset {item!r}: choose from {choices}")
        default = spec[name]
        if not eq:
            if not isinstance(default, bool):
                raise UserError(f"preset {name!r}: give a value, {name}=<{type(default).__name__}>")
            result[name] = True
            continue
        result[name] = _read(name, text, type(default))
    return ml_collections.ConfigDict(result)


def _read(name: str, text: str, kind: type) -> Any:
    if kind is bool:
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
        raise UserError(f"preset {name}={text!r}: expected true or false")
    try:
        return kind(text)
    except ValueError:
        raise UserError(f"preset {name}={text!r}: expected {kind.__name__}") from None


def lookup(config, key: str) -> Any:
    """``config["a.b.c"]`` by a dotted key; ``KeyError`` naming the key when absent."""
    node = config
    for part in key.split("."):
        if not hasattr(node, "keys") or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def _get(config, key: str, default: Any = None) -> Any:
    try:
        return lookup(config, key)
    except KeyError:
        return default


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _positive_int(config, key: str) -> None:
    v = lookup(config, key)
    if not _is_int(v) or v <= 0:
        raise UserError(f"{key}={v!r}: must be a positive integer")


def _choice(config, key: str, allowed: Iterable[str]) -> None:
    v = lookup(config, key)
    allowed = tuple(allowed)
    if v not in allowed:
        raise UserError(f"{key}={v!r}: choose one of {', '.join(allowed)}")


def _non_negative_int(config, key: str, hint: str = "") -> None:
    """An optional field (absent reads 0) that must be an int >= 0."""
    v = _get(config, key, 0)
    if not _is_int(v) or v < 0:
        raise UserError(f"{key}={v!r}: must be a non-negative integer{hint}")


def _number(config, key: str, low: float, high: float, *, low_open=False, high_open=True) -> None:
    v = _get(config, key)
    if v is None:
        return
    ok = (
        _is_number(v)
        and (v > low if low_open else v >= low)
        and (v < high if high_open else v <= high)
    )
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise UserError(f"{key}={v!r}: must be a number in {lo}{low}, {high}{hi}")


def validate(config) -> None:
    """Checks the layout and the values of an experiment config; raises :class:`UserError`."""
    from seqjax import cells, tasks
    from seqjax.train import optim, parallel

    missing = [k for k in REQUIRED if _get(config, k, _MISSING) is _MISSING]
    if missing:
        raise UserError(
            f"config lacks {', '.join(missing)}: every experiment config has the layout of "
            "configs/synthetic/adding.py (see seqjax/train/config.py)"
        )
    seed = config.seed
    if not _is_int(seed) or seed < 0:
        raise UserError(f"seed={seed!r}: must be a non-negative integer")
    _choice(config, "task", tasks.names())
    _choice(config, "model.cell", cells.names())
    for key in (
        "model.hidden_size",
        "model.num_layers",
        "train.num_steps",
        "train.batch_size",
        "train.eval_every",
        "train.checkpoint_every",
        "train.keep",
        "train.log_every",
    ):
        _positive_int(config, key)
    _number(config, "model.dropout", 0.0, 1.0)
    _number(config, "train.label_smoothing", 0.0, 1.0)  # optional: classification targets
    _number(config, "train.adversarial_eps", 0.0, float("inf"))  # optional: classification
    _non_negative_int(config, "train.adversarial_start", " (a step)")
    _non_negative_int(config, "train.early_stop_patience", " (0: off)")
    _non_negative_int(config, "train.diagnostics_every", " (0: off)")
    if _get(config, "model.compute_dtype") is not None:
        from seqjax.models.precision import COMPUTE_DTYPES

        _choice(config, "model.compute_dtype", COMPUTE_DTYPES)
    if not isinstance(config.train.skip_nonfinite, bool):
        raise UserError(f"train.skip_nonfinite={config.train.skip_nonfinite!r}: must be True/False")

    _choice(config, "optim.name", optim.OPTIMIZERS)
    _choice(config, "optim.clip", optim.CLIPS)
    _choice(config, "optim.schedule", optim.SCHEDULES)
    _number(config, "optim.learning_rate", 0.0, float("inf"), low_open=True)
    if config.optim.clip != "none":
        _number(config, "optim.clip_value", 0.0, float("inf"), low_open=True)
    _number(config, "optim.momentum", 0.0, 1.0)
    _number(config, "optim.weight_decay", 0.0, float("inf"))
    _number(config, "optim.ema_decay", 0.0, 1.0)  # optional: weight averaging
    _non_negative_int(config, "optim.warmup_steps")
    _non_negative_int(config, "optim.decay_start")
    if config.optim.schedule == "step":
        for key in ("optim.decay_every", "optim.decay_factor"):
            if _get(config, key) is None:
                raise UserError(f"optim.schedule='step' needs {key}")
        _positive_int(config, "optim.decay_every")
        _number(config, "optim.decay_factor", 0.0, 1.0, low_open=True, high_open=False)
    parallel.check_config(config)
    nesterov = _get(config, "optim.nesterov", False)
    if not isinstance(nesterov, bool):
        raise UserError(f"optim.nesterov={nesterov!r}: must be True/False")


_MISSING = object()


def to_dict(config) -> dict:
    """The config as plain JSON types (what a checkpoint stores)."""
    if isinstance(config, dict):
        return json.loads(json.dumps(config))
    return json.loads(config.to_json())


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}``."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# Fields added after runs had been saved without them: absent reads as this value, so a config
# that sets the default still resumes those runs.
ADDED_DEFAULTS = {
    "optim.ema_decay": 0.0,
    "model.encoder_dropout": 0.0,
    "model.mlp_activation": "relu",
    "train.label_smoothing": 0.0,
    "model.init_scale": 0.1,
    "model.variational": False,
    "train.adversarial_eps": 0.0,
    "train.adversarial_start": 0,
}


def experiment_diff(saved: dict, current: dict) -> list[str]:
    """The fields (outside :data:`RUN_CONTROL`) in which two configs differ, as
    ``"key: saved -> current"`` strings; empty when they describe the same experiment.

    Example:
      >>> experiment_diff({"optim": {"name": "sgd"}}, {"optim": {"name": "sgd", "ema_decay": 0.0}})
      []
    """
    a, b = flatten(to_dict(saved)), flatten(to_dict(current))
    a, b = ({**ADDED_DEFAULTS, **a}, {**ADDED_DEFAULTS, **b})
    diffs = []
    for key in sorted(set(a) | set(b)):
        if key in RUN_CONTROL or a.get(key, _ABSENT) == b.get(key, _ABSENT):
            continue
        diffs.append(f"{key}: {_show(a.get(key, _ABSENT))} there, {_show(b.get(key, _ABSENT))} now")
    return diffs


_ABSENT = "<absent>"


def _show(v) -> str:
    return v if v is _ABSENT else repr(v)


__all__ = [
    "REQUIRED",
    "RUN_CONTROL",
    "experiment_diff",
    "flatten",
    "lookup",
    "parse_arg",
    "to_dict",
    "validate",
]
