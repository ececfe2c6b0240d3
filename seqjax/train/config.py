"""Experiment configs: one schema per task, defaults, validation, ``config show``, identity.

A task's schema is the union of the blocks of :class:`seqjax.schema.Field` s that the code using
them declares: :data:`FIELDS` here (``seed``, ``task``, ``workdir``, the loop's ``train.*``),
:data:`seqjax.models.common.FIELDS` (``model.cell``, sizes, compute dtype, every cell option),
:data:`seqjax.train.optim.FIELDS`, :data:`seqjax.train.parallel.FIELDS` (``mesh.*``,
``distributed.*``) and the task module's own ``FIELDS`` (its ``data.*``, ``model.*``, ``train.*``
and ``sample.*``). Config files start from :func:`defaults` and set only what differs::

    def get_config(arg=None):
        arg = parse_arg(arg, smoke=False)
        c = defaults("synthetic")
        c.data.seq_len = 200
        return c

so every key exists and every key can be set from the command line (``--config.KEY=VALUE``).
:func:`validate` checks a config against its task's schema before anything loads: unknown keys,
types, allowed values, ranges, then the rules that relate fields. Every mistake is one line that
names the key, the value and what it accepts, e.g. ``optim.name='adamm': must be one of sgd, adam,
adamw, rmsprop``. The group ``sweep`` (``seqjax sweep``) is checked by :mod:`seqjax.train.sweep`.
"""

from __future__ import annotations

import difflib
import importlib
import json
from typing import Any

import ml_collections
from ml_collections import config_dict

from seqjax import schema
from seqjax.errors import UserError

#: Groups a config may hold beside its task's fields, checked elsewhere.
EXTRA_GROUPS = ("sweep",)

#: The fields of every task that the loop reads.
FIELDS: dict[str, schema.Field] = {
    "seed": schema.integer(0, "PRNG seed: initial parameters, training batches, dropout", low=0),
    "workdir": schema.run_control(
        schema.text("", "the default --workdir of seqjax train ('': give --workdir)")
    ),
    "train.num_steps": schema.run_control(schema.integer(1000, "training steps (updates)", low=1)),
    "train.batch_size": schema.integer(32, "examples per step (language models: rows)", low=1),
    "train.eval_every": schema.run_control(
        schema.integer(500, "steps between validation evaluations", low=1)
    ),
    "train.checkpoint_every": schema.run_control(
        schema.integer(500, "steps between checkpoints (and one at the end)", low=1)
    ),
    "train.keep": schema.run_control(
        schema.integer(1, "latest checkpoints kept, besides the best by validation", low=1)
    ),
    "train.log_every": schema.run_control(
        schema.integer(50, "steps between training-metric lines", low=1)
    ),
    "train.skip_nonfinite": schema.run_control(
        schema.flag(False, "skip updates with a non-finite loss or gradient instead of stopping")
    ),
    "train.early_stop_patience": schema.run_control(
        schema.integer(
            0, "stop after this many evaluations without improvement; 0: off", low=0, hint="0: off"
        )
    ),
    "train.diagnostics_every": schema.run_control(
        schema.integer(0, "steps between gradient-flow diagnostics; 0: off", low=0, hint="0: off")
    ),
    "train.report": schema.run_control(
        schema.flag(False, "draw WORKDIR/report.png when training ends")
    ),
}


def _task_module(task: str):
    from seqjax import tasks

    return importlib.import_module(tasks.TASKS[task])


def task_names() -> tuple:
    from seqjax import tasks

    return tasks.names()


def fields(task: str) -> dict[str, schema.Field]:
    """The schema of ``task``: every field, keyed by its dotted name, in display order."""
    from seqjax.models import common
    from seqjax.train import optim, parallel

    module = _task_module(task)
    task_field = {"task": schema.choice(task, task_names(), "the task (seqjax/tasks)")}
    blocks = (task_field, FIELDS, common.FIELDS, module.FIELDS, optim.FIELDS, parallel.FIELDS)
    out: dict[str, schema.Field] = {}
    for block in blocks:
        for key, f in block.items():
            out[key] = f  # a task may narrow a shared field (its own doc or default)
    order = ("seed", "task", "workdir", "data", "model", "optim", "train", "sample", "mesh")
    rank = {g: i for i, g in enumerate(order)}
    return dict(sorted(out.items(), key=lambda kv: rank.get(kv[0].split(".")[0], len(order))))


def rules(task: str) -> tuple:
    """The cross-field rules of ``task`` (:class:`seqjax.schema.Rule`)."""
    from seqjax.models import common

    return (*common.RULES, *getattr(_task_module(task), "RULES", ()))


def all_keys() -> set[str]:
    """Every key of every task's schema (what ``seqjax config show`` can list)."""
    return {k for t in task_names() for k in fields(t)}


def _value(f: schema.Field):
    if f.default is None:
        kind = {"int": int, "float": float, "str": str, "bool": bool}.get(f.kind, object)
        return config_dict.placeholder(kind)
    return f.default


def defaults(task: str) -> ml_collections.ConfigDict:
    """A config of ``task`` with every field at its default (unlocked; config files edit it)."""
    if task not in task_names():
        raise UserError(f"task={task!r}: choose one of {', '.join(task_names())}")
    root: dict = {}
    for key, f in fields(task).items():
        node = root
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _value(f)
    return ml_collections.ConfigDict(root)


def short_run(config, num_steps: int, batch_size: int, every: int, log_every: int = 2):
    """Sets the ``train.*`` fields of a run that takes seconds (the configs' ``smoke`` presets, as
    big_vision's ``runlocal``): ``num_steps`` steps of ``batch_size``, an evaluation and a
    checkpoint every ``every`` steps. Returns ``config``."""
    t = config.train
    t.num_steps, t.batch_size, t.log_every = num_steps, batch_size, log_every
    t.eval_every = t.checkpoint_every = every
    return config


def lookup(config, key: str) -> Any:
    """``config["a.b.c"]`` by a dotted key; ``KeyError`` naming the key when absent."""
    node = config
    for part in key.split("."):
        if not hasattr(node, "keys") or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


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


def _task_of(config) -> str:
    task = config.get("task") if hasattr(config, "get") else None
    if task not in task_names():
        raise UserError(f"task={task!r}: choose one of {', '.join(task_names())}")
    return task


def _suggest(key: str, known) -> str:
    guess = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.7)
    return f" (did you mean {guess[0]}?)" if guess else ""


def resolve(config) -> ml_collections.ConfigDict:
    """The complete config: :func:`defaults` of its task with every value ``config`` sets.

    ``config`` may be a ConfigDict, a dict, or a checkpoint's saved JSON (written before a field
    existed: the field then reads its default, which is what the code did when it was hidden). A
    key that is not a field of the task raises :class:`UserError` naming it.
    """
    task = _task_of(config)
    schema_fields = fields(task)
    out = defaults(task)
    tree = to_dict(config)
    extra = {g: tree.pop(g) for g in EXTRA_GROUPS if g in tree}
    for key, value in flatten(tree).items():
        if key not in schema_fields:
            if value == {}:  # an empty group
                continue
            raise UserError(
                f"config key {key}: not a field of task {task!r}{_suggest(key, schema_fields)}; "
                "seqjax config show CONFIG lists them all"
            )
        f = schema_fields[key]
        if f.kind == "ints" and isinstance(value, list):
            value = tuple(value)
        parent, _, leaf = key.rpartition(".")
        node = lookup(out, parent) if parent else out
        try:
            node[leaf] = value
        except (TypeError, ValueError):  # a value of the wrong type for the field
            phrase = schema.problem(f, value) or "wrong type"
            raise UserError(_message(key, value, f, phrase)) from None
    for group, value in extra.items():
        out[group] = value
    return out


def _message(key: str, value, f: schema.Field, phrase: str) -> str:
    return f"{key}={value!r}: {phrase}" + (f" ({f.hint})" if f.hint else "")


def check(config) -> None:
    """Raises :class:`UserError` for the first field of a complete config that breaks its schema
    or a rule."""
    task = _task_of(config)
    for key, f in fields(task).items():
        value = lookup(config, key)
        phrase = schema.problem(f, value)
        if phrase:
            raise UserError(_message(key, value, f, phrase))
    for rule in rules(task):
        found = rule.fn(*[lookup(config, k) for k in rule.keys])
        if found:
            key, phrase = found
            raise UserError(f"{key}={lookup(config, key)!r}: {phrase}")


def validate(config) -> ml_collections.ConfigDict:
    """Resolves and checks ``config`` (see :func:`resolve`, :func:`check`); returns the complete
    config. Raises :class:`UserError` naming the first bad key."""
    resolved = resolve(config)
    check(resolved)
    return resolved


def differences(config) -> dict[str, tuple]:
    """``{key: (value, default)}`` for the fields where a complete config differs from the
    defaults of its task."""
    d = flatten(to_dict(defaults(config.task)))
    c = flatten(to_dict(config))
    return {k: (c[k], d[k]) for k in d if k in c and c[k] != d[k]}


def show(config, *, title: str = "") -> str:
    """The complete config, one field a line with its doc; ``*`` marks values that differ from
    the task's defaults (the default follows in brackets)."""
    config = resolve(config)
    changed = differences(config)
    rows = []
    for key, f in fields(config.task).items():
        value = repr(lookup(config, key))
        mark = "*" if key in changed else " "
        default = f" (default {fields(config.task)[key].default!r})" if key in changed else ""
        rows.append((mark, key, value, f"{f.doc}{default}"))
    width = max(len(k) + len(v) + 3 for _, k, v, _ in rows)
    head = f"# {title}: " if title else "# "
    lines = [head + f"task {config.task}; * = differs from the default ({len(changed)} fields)"]
    group = None
    for mark, key, value, doc in rows:
        top = key.split(".")[0]
        if group is not None and top != group and "." in key:
            lines.append("")
        group = top
        lines.append(f"{mark} {f'{key} = {value}':<{width}}  # {doc}")
    for g in EXTRA_GROUPS:
        if g in config:
            lines += ["", f"  {g} = {json.dumps(to_dict(config)[g])}"]
    return "\n".join(lines)


def run_control_keys(task: str) -> frozenset:
    """Fields a run's checkpoints may be resumed with changed (``Field.run_control``)."""
    return frozenset(k for k, f in fields(task).items() if f.run_control)


def experiment_diff(saved: dict, current) -> list[str]:
    """The fields (outside the run-control ones) in which two configs differ, as
    ``"key: saved there, current now"`` strings; empty when they describe the same experiment.
    A field absent from a saved config reads its default (what the code did before it existed).

    Example:
      >>> base = {"task": "synthetic", "optim": {"name": "sgd"}}
      >>> experiment_diff(base, {**base, "train": {"num_steps": 5}})
      []
      >>> experiment_diff(base, {**base, "optim": {"name": "adam"}})
      ["optim.name: 'sgd' there, 'adam' now"]
    """
    a = flatten(to_dict(resolve(_without_extras(saved))))
    b = flatten(to_dict(resolve(_without_extras(current))))
    skip = run_control_keys(a.get("task", ""))
    return [
        f"{key}: {a.get(key)!r} there, {b.get(key)!r} now"
        for key in sorted(set(a) | set(b))
        if key not in skip and a.get(key) != b.get(key)
    ]


def _without_extras(config) -> dict:
    tree = to_dict(config)
    for g in EXTRA_GROUPS:
        tree.pop(g, None)
    return tree


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


__all__ = [
    "EXTRA_GROUPS",
    "FIELDS",
    "all_keys",
    "check",
    "defaults",
    "differences",
    "experiment_diff",
    "fields",
    "flatten",
    "lookup",
    "parse_arg",
    "resolve",
    "rules",
    "run_control_keys",
    "short_run",
    "show",
    "to_dict",
    "validate",
]
