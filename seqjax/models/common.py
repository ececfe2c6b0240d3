"""Building a cell from a model config: the one place that maps config fields to cell options.

A model config is any mapping (an ``ml_collections.ConfigDict`` or a dict) with ``cell`` (a name in
``seqjax.cells.names()``), ``hidden_size`` and any number of cell options (``forget_bias``,
``activation``, ``recurrent_init``, ``kernel_init``, ``chrono_t_max``, ``reset_after``, ...).
Each factory receives exactly the options its signature accepts, so one config can switch between
cells (``--config.model.cell=gru`` ignores ``forget_bias``).

:data:`FIELDS` declares the ``model.*`` fields every task shares: the cell, its size and depth, the
compute dtype and every cell option (:data:`CELL_OPTIONS`), each once, with its default and doc.
A cell option is one entry there and one keyword argument of the factories that use it.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Mapping

from seqjax import cells, schema
from seqjax.cells import Cell, inits
from seqjax.models.precision import COMPUTE_DTYPES

_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _init_name(value: str):
    try:
        inits.get(value)
    except ValueError:
        return (
            f"choose one of {', '.join(inits.NAMES)} (optionally with ':scale', e.g. "
            "'orthogonal:0.5')"
        )
    return None


def _init(default: str, doc: str) -> schema.Field:
    return schema.text(default, doc, check=_init_name)


#: The options of the cell factories, by keyword name (``model.<name>`` in a config). A factory
#: that takes an option gets its value; the default is the factories' own (a test checks).
CELL_OPTIONS: dict[str, schema.Field] = {
    "forget_bias": schema.number(
        1.0, "LSTM: added to the forget-gate bias at init (Jozefowicz et al. 2015)"
    ),
    "chrono_t_max": schema.number(
        None,
        "LSTM: chrono init (Tallec & Ollivier 2018) for dependencies up to this many steps",
        low=2.0,
        low_open=True,
        optional=True,
        hint="None: use forget_bias",
    ),
    "activation": schema.choice(
        "tanh", ("tanh", "relu", "identity"), "Elman: the activation (relu + identity init: IRNN)"
    ),
    "reset_after": schema.flag(True, "GRU: reset gate after the recurrent matmul (cuDNN form)"),
    "log_space": schema.flag(True, "minGRU/minLSTM: the parallel scan runs in log space"),
    "r_min": schema.number(
        0.0, "LRU: smallest eigenvalue modulus at init (Orvieto et al. 2023)", low=0.0, high=1.0
    ),
    "r_max": schema.number(1.0, "LRU: largest eigenvalue modulus at init", low=0.0, high=1.0),
    "max_phase": schema.number(
        2 * math.pi, "LRU: eigenvalue phases at init lie in [0, max_phase]", low=0.0, low_open=True
    ),
    "kernel_init": _init("glorot_uniform", "initialiser of the input weights (seqjax.cells.inits)"),
    "recurrent_init": _init("orthogonal", "initialiser of each recurrent (H, H) gate block"),
    "bias_init": _init("zeros", "initialiser of the biases (before forget_bias/chrono)"),
}

#: The ``model.*`` fields every task has.
FIELDS: dict[str, schema.Field] = {
    "model.cell": schema.choice("lstm", cells.names, "the recurrent cell (seqjax.cells)"),
    "model.hidden_size": schema.integer(128, "H, units per layer (per direction)", low=1),
    "model.num_layers": schema.integer(1, "stacked recurrent layers", low=1),
    "model.compute_dtype": schema.choice(
        "float32",
        COMPUTE_DTYPES,
        "bfloat16: matmuls and recurrence in bf16; parameters, loss and update in float32",
    ),
    **{f"model.{k}": f for k, f in CELL_OPTIONS.items()},
}


def _lru_range(r_min, r_max):
    if r_min > r_max:
        return "model.r_min", f"must be <= model.r_max={r_max!r}"
    return None


RULES = (schema.Rule(("model.r_min", "model.r_max"), _lru_range),)


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


def cell_options(factory: Callable) -> dict[str, Any]:
    """The keyword options of a cell factory with their defaults (``param_dtype`` excluded: the
    config's ``model.compute_dtype`` sets precision)."""
    params = inspect.signature(factory).parameters
    return {
        name: p.default
        for name, p in params.items()
        if p.kind in _KEYWORD and name not in ("hidden_size", "param_dtype")
    }


def build_cell(model_cfg: Mapping) -> Cell:
    """Builds ``model_cfg["cell"]`` with ``model_cfg["hidden_size"]`` units and its options.

    The config is checked against :data:`FIELDS` first (``seqjax.train.config.validate``), so
    here a bad value is a bug of the caller and raises ``ValueError`` from the factory.

    Example:
      >>> cell = build_cell({"cell": "gru", "hidden_size": 8, "forget_bias": 1.0,
      ...                    "reset_after": False})
      >>> cell.name, cell.hidden_size
      ('gru', 8)
    """
    factory = cells._FACTORIES[model_cfg["cell"]]
    kwargs = options_for(factory, model_cfg, skip=("hidden_size", "param_dtype"))
    return factory(model_cfg["hidden_size"], **kwargs)


__all__ = ["CELL_OPTIONS", "FIELDS", "RULES", "build_cell", "cell_options", "options_for"]
