"""Recurrent cells: each a :class:`Cell` of pure functions over a params pytree.

``get(name, hidden_size, **kwargs)`` builds a cell by name; ``NAMES`` lists the names. New cell
families register themselves in ``_FACTORIES``.
"""

from seqjax.cells import inits
from seqjax.cells.base import Cell
from seqjax.cells.elman import elman
from seqjax.cells.gru import gru
from seqjax.cells.lru import lru
from seqjax.cells.lstm import LSTMCarry, lstm
from seqjax.cells.mingru import mingru
from seqjax.cells.minlstm import minlstm

# isort: split
# Modern gated recurrences (issue 19).
from seqjax.cells.deltanet import deltanet, gated_deltanet
from seqjax.cells.mlstm import MLSTMCarry, mlstm
from seqjax.cells.rglru import rglru
from seqjax.cells.s6 import s6
from seqjax.cells.slstm import SLSTMCarry, slstm

_FACTORIES = {
    "elman": elman,
    "lstm": lstm,
    "gru": gru,
    "mingru": mingru,
    "minlstm": minlstm,
    "lru": lru,
    # Modern gated recurrences (issue 19).
    "rglru": rglru,
    "s6": s6,
    "deltanet": deltanet,
    "gated_deltanet": gated_deltanet,
    "mlstm": mlstm,
    "slstm": slstm,
}


def names() -> tuple:
    """The cell names ``get`` accepts."""
    return tuple(_FACTORIES)


def get(name: str, hidden_size: int, **kwargs) -> Cell:
    """Builds the cell called ``name`` (``"lstm"``, ``"gru"``, ...) with ``hidden_size`` units."""
    if name not in _FACTORIES:
        raise ValueError(f"cell={name!r}: choose one of {', '.join(_FACTORIES)}")
    return _FACTORIES[name](hidden_size, **kwargs)


__all__ = [
    "Cell",
    "LSTMCarry",
    "elman",
    "get",
    "gru",
    "inits",
    "lru",
    "lstm",
    "mingru",
    "minlstm",
    "names",
    # Modern gated recurrences (issue 19).
    "MLSTMCarry",
    "SLSTMCarry",
    "deltanet",
    "gated_deltanet",
    "mlstm",
    "rglru",
    "s6",
    "slstm",
]
