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


def _init(doc: str) -> schema.Field:
    return schema.text(None, f"{doc}; None: the cell's own", check=_init_name)._replace(
        optional=True
    )


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
        None,
        ("tanh", "relu", "identity"),
        "Elman (tanh), IndRNN (relu): the activation; None: the cell's own (relu + identity "
        "init: IRNN)",
    )._replace(optional=True),
    "reset_after": schema.flag(True, "GRU: reset gate after the recurrent matmul (cuDNN form)"),
    "log_space": schema.flag(True, "minGRU/minLSTM: the parallel scan runs in log space"),
    "r_min": schema.number(
        0.0, "LRU: smallest eigenvalue modulus at init (Orvieto et al. 2023)", low=0.0, high=1.0
    ),
    "r_max": schema.number(1.0, "LRU: largest eigenvalue modulus at init", low=0.0, high=1.0),
    "max_phase": schema.number(
        2 * math.pi, "LRU: eigenvalue phases at init lie in [0, max_phase]", low=0.0, low_open=True
    ),
    "a_min": schema.number(
        0.9,
        "RG-LRU: a^c at init lies in [a_min, a_max] (De et al. 2024)",
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
    ),
    "a_max": schema.number(
        0.999, "RG-LRU: see a_min", low=0.0, high=1.0, low_open=True, high_open=True
    ),
    "c": schema.number(8.0, "RG-LRU: a_t = a^(c r_t)", low=0.0, low_open=True),
    "a_init": schema.choice(
        "paper", ("paper", "recurrentgemma"), "RG-LRU: a^c uniform (paper) or a^2 (its code)"
    ),
    "max_sqrt_grad": schema.number(
        1000.0, "RG-LRU: bound on the derivative of sqrt(1 - a^2)", low=0.0, low_open=True
    ),
    "state_size": schema.integer(16, "S6: N, the state size per channel", low=1),
    "dt_rank": schema.integer(0, "S6: rank of the Delta projection; 0: ceil(H / 16)", low=0),
    "dt_min": schema.number(0.001, "S6: smallest Delta at init", low=0.0, low_open=True),
    "dt_max": schema.number(0.1, "S6: largest Delta at init", low=0.0, low_open=True),
    "num_heads": schema.integer(1, "mLSTM, sLSTM, DeltaNet: heads (they divide H)", low=1),
    "key_size": schema.integer(
        None, "mLSTM, DeltaNet: d_k per head; None: H / num_heads", low=1, optional=True
    ),
    "chunk_size": schema.integer(
        64, "mLSTM, DeltaNet: steps per chunk of the chunkwise form", low=1
    ),
    "forget_gate": schema.choice(
        "sigmoid", ("sigmoid", "exp"), "xLSTM: forget gate sigmoid(f~) or exp(f~)"
    ),
    "eps": schema.number(1e-6, "mLSTM: added to the normaliser (the authors' code)", low=0.0),
    # Initialisers: each cell family has its paper's own (seqjax.cells.inits); None keeps it.
    "peephole": schema.flag(False, "LSTM: peephole connections (Gers et al. 2002)"),
    "layer_norm": schema.flag(False, "LSTM: layer normalisation inside the cell (Ba et al. 2016)"),
    "proj_size": schema.integer(
        None,
        "LSTM: project the output to P units (LSTMP, Sak et al. 2014); None: off",
        low=1,
        optional=True,
    ),
    "u_init": schema.text(
        "bounded",
        "IndRNN: recurrent weights: bounded | memory (Li et al. 2018, sec. 3.1) | an initialiser",
    ),
    "memory_length": schema.number(
        100.0, "IndRNN: T, the memory length the u range is computed for", low=1.0
    ),
    "gradient_bound": schema.number(
        2.0,
        "IndRNN: gamma, the largest gradient growth over memory_length steps",
        low=1.0,
        low_open=True,
    ),
    "parametrization": schema.choice(
        "expm", ("expm", "cayley"), "expRNN: W = expm(A) or the scaled Cayley map (scoRNN)"
    ),
    "skew_init": schema.choice(
        "cayley", ("cayley", "henaff", "zeros"), "expRNN: init of the skew-symmetric generator A"
    ),
    "num_negative": schema.integer(0, "scoRNN: number of -1 entries of its D", low=0),
    "step_size": schema.number(
        None,
        "AntisymmetricRNN (0.01), Lipschitz RNN (0.03): the discretisation step; None: "
        "the cell's own",
        low=0.0,
        low_open=True,
        optional=True,
    ),
    "diffusion": schema.number(0.01, "AntisymmetricRNN: gamma in W - W^T - gamma I", low=0.0),
    "gated": schema.flag(False, "AntisymmetricRNN: the gated variant (Chang et al. 2019)"),
    "recurrent_std": schema.number(1.0, "AntisymmetricRNN: W ~ N(0, std^2 / H)", low=0.0),
    "dt": schema.number(
        None,
        "coRNN (0.042), LEM (1.0): the (largest) time step; None: the cell's own",
        low=0.0,
        low_open=True,
        optional=True,
    ),
    "stiffness": schema.number(
        2.7, "coRNN: gamma, the oscillators' stiffness", low=0.0, low_open=True
    ),
    "damping": schema.number(
        4.7, "coRNN: epsilon, the oscillators' damping", low=0.0, low_open=True
    ),
    "implicit_damping": schema.flag(True, "coRNN: the paper's IMEX scheme (False: explicit)"),
    "beta": schema.number(
        0.75, "Lipschitz RNN: weight of the skew-symmetric part", low=0.0, high=1.0
    ),
    "gamma_a": schema.number(0.001, "Lipschitz RNN: shift of A"),
    "gamma_w": schema.number(0.001, "Lipschitz RNN: shift of W"),
    "solver": schema.choice("euler", ("euler", "midpoint"), "Lipschitz RNN: the discretisation"),
    "init_std": schema.number(1.0, "Lipschitz RNN: M ~ N(0, (std / H)^2)", low=0.0),
    "kernel_init": _init("initialiser of the input weights"),
    "recurrent_init": _init("initialiser of each recurrent (H, H) gate block"),
    "bias_init": _init("initialiser of the biases (before forget_bias/chrono)"),
}

#: Options whose default differs between cell families: ``None`` in a config keeps each cell's.
PER_CELL = ("kernel_init", "recurrent_init", "bias_init", "activation", "step_size", "dt")

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


def _ordered(low: str, high: str):
    def rule(a, b):
        return (f"model.{low}", f"must be <= model.{high}={b!r}") if a > b else None

    return schema.Rule((f"model.{low}", f"model.{high}"), rule)


def _heads(cell, hidden_size, num_heads):
    uses = cell in cells._FACTORIES and "num_heads" in cell_options(cells._FACTORIES[cell])
    if uses and hidden_size % num_heads:
        return "model.num_heads", f"must divide model.hidden_size={hidden_size} for {cell}"
    return None


RULES = (
    _ordered("r_min", "r_max"),
    _ordered("a_min", "a_max"),
    _ordered("dt_min", "dt_max"),
    schema.Rule(("model.cell", "model.hidden_size", "model.num_heads"), _heads),
)


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
    kwargs = {k: v for k, v in kwargs.items() if not (k in PER_CELL and v is None)}
    return factory(model_cfg["hidden_size"], **kwargs)


__all__ = [
    "CELL_OPTIONS",
    "FIELDS",
    "PER_CELL",
    "RULES",
    "build_cell",
    "cell_options",
    "options_for",
]
