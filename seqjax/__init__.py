"""seqjax: recurrent sequence models as pure JAX functions."""

from seqjax import cells, layers
from seqjax.cells import Cell
from seqjax.scan import unroll

__version__ = "0.1.0"

__all__ = ["Cell", "cells", "layers", "unroll"]
