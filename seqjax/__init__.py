"""seqjax: recurrent sequence models as pure JAX functions.

``seqjax.flax`` (linen and NNX wrappers) is imported on first use, so importing ``seqjax`` does
not import Flax.
"""

import importlib

from seqjax import cells, layers
from seqjax.cells import Cell
from seqjax.scan import parallel, unroll

__version__ = "0.1.0"

_LAZY = ("flax",)


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f"seqjax.{name}")
    raise AttributeError(f"module 'seqjax' has no attribute {name!r}")


__all__ = ["Cell", "cells", "layers", "parallel", "unroll"]
