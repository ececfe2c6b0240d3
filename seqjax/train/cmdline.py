"""Command-line parsing for ``seqjax train|eval|report``: absl flags, errors as one line.

Each command defines its flags on its own ``absl.flags.FlagValues`` (no global state, so commands
can run in one process, as tests do) and calls :func:`parse`. Everything absl and ml_collections
``config_flags`` reject (an unknown flag or config key, a value of the wrong type, a config file
that does not load, a bad preset) becomes a :class:`UserError` naming the key and what it accepts,
e.g. ``--config.model.hidden_size='big': expected a positive integer (the config has 128)``, read
from the task's schema, not from the text of absl's exception.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import pathlib
import re

from absl import flags
from ml_collections.config_flags import config_flags

from seqjax import schema
from seqjax.errors import UserError
from seqjax.train import config as config_lib
from seqjax.train.config import lookup


def parse(fv: flags.FlagValues, argv: list[str], *, config_flag: str = "config") -> None:
    """Parses ``argv`` (command name first) into ``fv``; ``--help`` prints the flags and exits 0."""
    if any(a in ("-h", "--help", "-help", "--helpfull") for a in argv[1:]):
        print(_usage(fv, argv[0], config_flag))
        raise SystemExit(0)
    try:
        rest = fv(argv)
    except UserError as e:  # raised by the config file's get_config (a bad preset)
        raise UserError(f"--{config_flag}={flag_value(argv, config_flag)}: {e}") from None
    except config_flags.FlagOrderError as e:  # --config.x=... before --config=FILE
        raise UserError(f"{_first_line(e)}: put --{config_flag}=FILE first") from None
    except (flags.Error, AttributeError, KeyError, OSError, TypeError, ValueError) as e:
        raise UserError(_explain(e, fv, argv, config_flag)) from None
    if config_flag in fv and getattr(fv, config_flag) is not None:
        try:  # config_flags reports a file that failed to load only when the config is used
            getattr(fv, config_flag).keys()
        except OSError as e:
            raise UserError(_explain(e, fv, argv, config_flag)) from None
    if len(rest) > 1:
        raise UserError(f"unexpected argument {rest[1]!r}: flags take the form --name=value")


def _usage(fv: flags.FlagValues, command: str, config_flag: str) -> str:
    lines = [f"usage: seqjax {command} [flags]", "", "flags:"]
    for name in fv:
        if name in ("flagfile", "undefok") or "." in name:
            continue
        flag = fv[name]
        default = f" (default: {flag.default!r})" if flag.default is not None else ""
        lines.append(f"  --{name}: {flag.help}{default}")
    if config_flag in fv:
        lines.append(
            f"  --{config_flag}.KEY=VALUE: set one field, e.g. --{config_flag}.model.cell=gru"
        )
    return "\n".join(lines)


def load_config_file(spec: str):
    """``get_config(ARG)`` of ``FILE[:ARG]`` (as ``config_flags`` loads it), for error reports."""
    path, _, arg = spec.partition(":")
    if not pathlib.Path(path).is_file():
        raise UserError(f"--config={spec}: no such file {path!r}")
    module_spec = importlib.util.spec_from_file_location("_seqjax_config", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
        return module.get_config(arg) if arg else module.get_config()
    except UserError as e:
        raise UserError(f"--config={spec}: {e}") from None
    except Exception as e:  # a mistake in the user's config file
        raise UserError(f"--config={spec}: get_config failed: {type(e).__name__}: {e}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().strip("'\"")
    return text.splitlines()[0] if text else type(e).__name__


def flag_value(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
        if a == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _overrides(argv: list[str], name: str) -> dict[str, str]:
    """``{"model.cell": "gru"}`` for ``--config.model.cell=gru`` or ``--config.model.cell gru``."""
    out = {}
    for i, a in enumerate(argv):
        m = re.match(rf"^--?{re.escape(name)}\.([^=]+)(?:=(.*))?$", a)
        if m:
            value = m.group(2)
            if value is None:
                value = argv[i + 1] if i + 1 < len(argv) else ""
            out[m.group(1)] = value
    return out


def _explain(e: BaseException, fv: flags.FlagValues, argv: list[str], name: str) -> str:
    """One line saying what is wrong with ``argv``, given the error absl/config_flags raised."""
    if isinstance(e, flags.UnrecognizedFlagError) and not e.flagname.startswith(f"{name}."):
        own = ", ".join(f"--{f}" for f in fv if not f.startswith(f"{name}."))
        return f"{_first_line(e)} (this command's flags: {own}, --{name}.KEY=VALUE)"
    spec = flag_value(argv, name)
    if spec is None:
        return _first_line(e)
    config = load_config_file(spec)  # raises the precise error when the file or a preset is bad
    overrides = _overrides(argv, name)
    for key in overrides:
        unknown = _unknown_key(config, key)
        if unknown:
            return unknown
    for key, text in overrides.items():
        problem = _bad_value(config, key, text)
        if problem:
            return f"--{name}.{key}={text!r}: {problem}"
    return _first_line(e)


def _bad_value(config, key: str, text: str) -> str | None:
    """What is wrong with ``--config.KEY=TEXT`` for the field ``key`` (which exists), from the
    config and its task's schema, or ``None`` when the text reads as the field's type."""
    parent, _, leaf = key.rpartition(".")
    node = lookup(config, parent) if parent else config
    value = node[leaf]
    if hasattr(value, "keys"):
        return f"{key} is a group, not a value; set one of its fields: {', '.join(sorted(value))}"
    f = config_lib.fields(config.task).get(key) if config.get("task") in _tasks() else None
    kind = f.kind if f is not None else type(value).__name__
    try:
        if kind in ("int", "float"):
            number = int(text) if kind == "int" else float(text)
            del number
        elif kind == "bool" and text.lower() not in ("true", "false", "1", "0", "t", "f"):
            raise ValueError
        elif kind == "ints":
            items = ast.literal_eval(text)
            if not isinstance(items, (tuple, list)) or not all(isinstance(i, int) for i in items):
                raise ValueError
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        expected = schema.describe(f) if f is not None else f"a {kind}"
        return f"expected {expected} (the config has {value!r})"
    return None


def _tasks() -> tuple:
    from seqjax import tasks

    return tasks.names()


LISTED = 12  # keys of a group named in the message before "..."


def _unknown_key(config, key: str) -> str | None:
    """``--config.model.cel: no such key; did you mean model.cell? ...``, a group's keys when
    nothing is close, or ``None`` when ``key`` exists."""
    node, path = config, []
    for part in key.split("."):
        if not hasattr(node, "keys"):
            return f"--config.{key}: no such key; {'.'.join(path)} is a value, not a group"
        if part not in node:
            where = ".".join(path) or "the config"
            choices = sorted(node.keys())
            guess = difflib.get_close_matches(part, choices, n=1)
            if guess:  # the likely typo first; the whole group is one command away
                return (
                    f"--config.{key}: no such key; did you mean {'.'.join([*path, guess[0]])}? "
                    f"(`seqjax config show CONFIG` lists every key)"
                )
            listed = ", ".join(choices[:LISTED]) + (", ..." if len(choices) > LISTED else "")
            return (
                f"--config.{key}: no such key; {where} has {listed} "
                f"(`seqjax config show CONFIG` lists every key)"
            )
        node = node[part]
        path.append(part)
    return None


__all__ = ["flag_value", "load_config_file", "parse"]
