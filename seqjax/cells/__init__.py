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
# Long-memory cells of the vanishing-gradient literature (issue 19).
from seqjax.cells.antisymmetric import antisymmetric
from seqjax.cells.cornn import CoRNNCarry, cornn
from seqjax.cells.exprnn import exprnn
from seqjax.cells.indrnn import indrnn
from seqjax.cells.lem import LEMCarry, lem
from seqjax.cells.lipschitz import lipschitz
from seqjax.cells.mgu import mgu

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
    # Long-memory cells of the vanishing-gradient literature (issue 19).
    "indrnn": indrnn,
    "mgu": mgu,
    "exprnn": exprnn,
    "antisymmetric": antisymmetric,
    "cornn": cornn,
    "lipschitz": lipschitz,
    "lem": lem,
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
    # Long-memory cells of the vanishing-gradient literature (issue 19).
    "CoRNNCarry",
    "LEMCarry",
    "antisymmetric",
    "cornn",
    "exprnn",
    "indrnn",
    "lem",
    "lipschitz",
    "mgu",
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
