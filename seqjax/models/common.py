"""Building a cell from a model config: the one place that maps config fields to cell options.

A model config is any mapping (an ``ml_collections.ConfigDict`` or a dict) with ``cell`` (a name in
``seqjax.cells._FACTORIES``), ``hidden_size`` and any number of cell options (``forget_bias``,
``activation``, ``recurrent_init``, ``kernel_init``, ``chrono_t_max``, ``reset_after``, ...).
Each factory receives exactly the options its signature accepts, so a cell family registered in
``_FACTORIES`` becomes a choice without touching this file, and one config can switch between
cells (``--config.model.cell=gru`` ignores ``forget_bias``).
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable, Mapping

import jax

from seqjax import cells
from seqjax.cells import Cell, inits
from seqjax.errors import UserError

_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def options_for(fn: Callable, options: Mapping, *, skip: tuple = ()) -> dict[str, Any]:
    """The entries of ``options`` whose names ``fn`` accepts as keyword arguments.

    Example:
      >>> def f(a, b=1, *, c=2): ...
      >>> options_for(f, {"b": 5, "c": 6, "d": 7}, skip=("a",))
      {'b': 5, 'c': 6}
    """
    params = inspect.signature(fn).parameters
    return {
        name: options[name]
        for name, p in params.items()
        if p.kind in _KEYWORD and name not in skip and name in options
    }


def build_cell(model_cfg: Mapping) -> Cell:
    """Builds ``model_cfg["cell"]`` with ``model_cfg["hidden_size"]`` units and its options.

    Mistakes (an unknown cell, a bad initialiser name, a non-positive size, a bad option value)
    raise :class:`UserError` naming the config key, e.g.
    ``model.cell='lsmt': choose one of elman, lstm, gru``.

    Example:
      >>> cell = build_cell({"cell": "gru", "hidden_size": 8, "forget_bias": 1.0,
      ...                    "reset_after": False})
      >>> cell.name, cell.hidden_size
      ('gru', 8)
    """
    name = model_cfg["cell"]
    factories = cells._FACTORIES
    if name not in factories:
        raise UserError(f"model.cell={name!r}: choose one of {', '.join(factories)}")
    factory = factories[name]
    kwargs = options_for(factory, model_cfg, skip=("hidden_size",))
    for key, value in kwargs.items():
        if key.endswith("_init") and isinstance(value, str):
            try:
                inits.get(value)
            except ValueError:
                raise UserError(
                    f"model.{key}={value!r}: choose one of {', '.join(inits.NAMES)} "
                    "(optionally with ':scale', e.g. 'orthogonal:0.5')"
                ) from None
    try:
        cell = factory(model_cfg["hidden_size"], **kwargs)
        # Some options are only checked when parameters are made (chrono_t_max): trace an init.
        jax.eval_shape(lambda key: cell.init(key, 1), jax.random.key(0))
    except ValueError as e:
        raise _user_error(e, name, kwargs) from None
    return cell


def _user_error(e: ValueError, name: str, kwargs: dict) -> UserError:
    # The factories name the offending argument first ("hidden_size=0: must be ...").
    msg = str(e)
    head = re.match(r"(\w+)=", msg)
    if head and (head.group(1) in kwargs or head.group(1) == "hidden_size"):
        return UserError(f"model.{msg} (model.cell={name!r})")
    return UserError(f"model.cell={name!r}: {msg}")


__all__ = ["build_cell", "options_for"]
