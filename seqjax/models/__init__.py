"""Models: pure ``init``/``apply`` functions built from cells and layers (no I/O, no config files).

* :func:`build_cell` turns a model config (any mapping) into a :class:`seqjax.cells.Cell`.
* :func:`sequence_model` is a recurrent stack with a linear readout at the last step (regression,
  classification) or at every step (tagging).
* :func:`language_model` (with :func:`nll` and :func:`sample`) is an embedding, a recurrent stack
  and a (tied) softmax readout over a vocabulary (Zaremba et al. 2014; Press & Wolf 2017).
* :func:`sequence_classifier` is an embedding, a (bidirectional) recurrent stack, pooling over the
  valid steps and an MLP head; :func:`init_embedding_from` loads pretrained word vectors.
"""

from seqjax.models.classifier import SequenceClassifier, init_embedding_from, sequence_classifier
from seqjax.models.common import build_cell, options_for
from seqjax.models.lm import LanguageModel, language_model, nll, sample
from seqjax.models.sequence import SequenceModel, sequence_model

__all__ = [
    "LanguageModel",
    "SequenceClassifier",
    "SequenceModel",
    "build_cell",
    "init_embedding_from",
    "language_model",
    "nll",
    "options_for",
    "sample",
    "sequence_classifier",
    "sequence_model",
]
