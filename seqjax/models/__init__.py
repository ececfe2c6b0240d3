"""Models: pure ``init``/``apply`` functions built from cells and layers (no I/O, no config files).

* :func:`build_cell` turns a model config (any mapping) into a :class:`seqjax.cells.Cell`.
* :func:`sequence_model` is a recurrent stack with a linear readout at the last step (regression,
  classification) or at every step (tagging).
"""

from seqjax.models.common import build_cell, options_for
from seqjax.models.sequence import SequenceModel, sequence_model

__all__ = ["SequenceModel", "build_cell", "options_for", "sequence_model"]
