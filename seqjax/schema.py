"""Config fields declared once: type, default, allowed values and a one-line doc.

Every experiment config is a tree of fields (``seed``, ``data.seq_len``, ``optim.clip``, ...).
Each module that reads a field declares it beside the code that uses it, as a :class:`Field` in a
plain dict keyed by the dotted name (a *block*)::

    FIELDS = {
        "optim.clip": choice("global_norm", ("none", "global_norm", "value", "adaptive"),
                             "gradient clipping (Pascanu et al. 2013)"),
        "optim.clip_value": number(1.0, "threshold of the clipping", low=0.0, low_open=True),
    }

:mod:`seqjax.train.config` joins the blocks of a task into its schema, builds the default config
from it (``ml_collections``), validates configs against it and prints it (``seqjax config
show``). This module is pure Python: the core (cells, models, tasks) declares fields without
importing any config library.

A field's ``check`` reads the field's value and returns what is wrong with it (one phrase) or
``None``; :func:`problem` does the same for type, choices and range. Checks that relate several
fields are :class:`Rule` s: ``(keys, fn)`` where ``fn(*values)`` returns ``(key, phrase)`` or
``None``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, NamedTuple, Optional

KINDS = ("int", "float", "str", "bool", "ints", "any")


class Field(NamedTuple):
    """One config field.

    Attributes:
      default: the value a config has unless it sets another.
      doc: one line saying what the field does.
      kind: ``"int"``, ``"float"``, ``"str"``, ``"bool"``, ``"ints"`` (a tuple of ints) or
        ``"any"`` (checked by ``check`` alone).
      choices: the allowed values (strings), or ``()`` for any; a function returning them for a
        registry that can grow (``seqjax.cells.names``).
      low, high: the allowed range of a number (``None``: unbounded on that side).
      low_open, high_open: whether the bounds themselves are excluded.
      optional: ``None`` is allowed (the default may be ``None``: "not set").
      check: ``value -> phrase or None``, for what the above cannot say.
      hint: what to set instead, appended to the error (e.g. ``"0: off"``).
      run_control: the field says how long or how visibly a run goes, or where it runs, not
        what it computes: a run's checkpoints resume under another value (``train.num_steps``).
    """

    default: Any
    doc: str
    kind: str
    choices: Any = ()
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    check: Optional[Callable[[Any], Optional[str]]] = None
    hint: str = ""
    run_control: bool = False


def run_control(f: Field) -> Field:
    """``f``, marked as run control (see :class:`Field`)."""
    return f._replace(run_control=True)


class Rule(NamedTuple):
    """A check across fields: ``fn(*values of keys)`` returns ``(key, phrase)`` or ``None``."""

    keys: tuple
    fn: Callable[..., Optional[tuple]]


def integer(default, doc, *, low=None, high=None, optional=False, hint="") -> Field:
    return Field(default, doc, "int", low=low, high=high, optional=optional, hint=hint)


def number(
    default, doc, *, low=None, high=None, low_open=False, high_open=False, optional=False, hint=""
) -> Field:
    return Field(
        default, doc, "float", (), low, high, low_open, high_open, optional=optional, hint=hint
    )


def text(default, doc, *, check=None, hint="") -> Field:
    return Field(default, doc, "str", check=check, hint=hint)


def choice(default, choices, doc, *, hint="") -> Field:
    return Field(default, doc, "str", choices if callable(choices) else tuple(choices), hint=hint)


def choices_of(f: Field) -> tuple:
    """The allowed values of ``f`` now."""
    return tuple(f.choices()) if callable(f.choices) else f.choices


def flag(default, doc) -> Field:
    return Field(bool(default), doc, "bool")


def ints(default, doc, *, low=None) -> Field:
    return Field(tuple(default), doc, "ints", low=low)


def anything(default, doc, *, check=None) -> Field:
    return Field(default, doc, "any", check=check)


def is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def describe(f: Field) -> str:
    """What ``f`` accepts, in words: ``"an int >= 1"``, ``"one of a, b"``, ..."""
    if f.choices:
        return "one of " + ", ".join(map(str, choices_of(f))) + (", or None" if f.optional else "")
    if f.kind == "int" and f.high is None and f.low in (0, 1):
        return ("a positive integer" if f.low == 1 else "a non-negative integer") + (
            ", or None" if f.optional else ""
        )
    what = {
        "int": "an integer",
        "float": "a number",
        "str": "a string",
        "bool": "True or False",
        "ints": "a tuple of integers",
        "any": "a value",
    }[f.kind]
    if f.kind in ("int", "float", "ints") and (f.low is not None or f.high is not None):
        if f.low is not None and f.high is not None:
            lo, hi = "(" if f.low_open else "[", ")" if f.high_open else "]"
            what += f" in {lo}{_num(f.low)}, {_num(f.high)}{hi}"
        elif f.low is not None:
            what += f" {'>' if f.low_open else '>='} {_num(f.low)}"
        else:
            what += f" {'<' if f.high_open else '<='} {_num(f.high)}"
        if f.kind == "ints":
            what = what.replace("a tuple of integers", "a tuple of integers, each")
    if f.optional:
        what += ", or None"
    return what


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _in_range(f: Field, v) -> bool:
    if f.low is not None and (v <= f.low if f.low_open else v < f.low):
        return False
    if f.high is not None and (v >= f.high if f.high_open else v > f.high):
        return False
    return True


def problem(f: Field, value) -> Optional[str]:
    """What is wrong with ``value`` for field ``f`` (``"must be an integer >= 1"``), or ``None``.

    Example:
      >>> problem(integer(1, "steps", low=1), 0)
      'must be a positive integer'
      >>> problem(integer(5, "size", low=2), 1)
      'must be an integer >= 2'
      >>> problem(choice("adam", ("sgd", "adam"), "optimizer"), "adamm") is None
      False
    """
    if value is None:
        if f.optional:
            return None
        return f"choose {describe(f)}" if f.choices else f"must be {describe(f)}"
    ok = True
    if f.kind == "int":
        ok = is_int(value) and _in_range(f, value)
    elif f.kind == "float":
        ok = is_number(value) and math.isfinite(value) and _in_range(f, value)
    elif f.kind == "str":
        ok = isinstance(value, str) and (not f.choices or value in choices_of(f))
    elif f.kind == "bool":
        ok = isinstance(value, bool)
    elif f.kind == "ints":
        ok = isinstance(value, (tuple, list)) and all(is_int(v) and _in_range(f, v) for v in value)
    if not ok:
        return f"choose {describe(f)}" if f.choices else f"must be {describe(f)}"
    if f.check is not None:
        return f.check(value)
    return None


__all__ = [
    "KINDS",
    "Field",
    "Rule",
    "anything",
    "choice",
    "choices_of",
    "describe",
    "flag",
    "integer",
    "ints",
    "is_int",
    "is_number",
    "number",
    "problem",
    "run_control",
    "text",
]
