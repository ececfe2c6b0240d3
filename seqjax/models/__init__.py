"""Models: pure functions built from cells and layers (no I/O, no config files).

Every model is a :class:`seqjax.models.base.Model` (``init``, ``initial_carry``, ``features``,
``readout``, ``apply``, ``top``):

* :func:`build_cell` turns a model config (any mapping) into a :class:`seqjax.cells.Cell`.
* :func:`sequence_model` is a recurrent stack with a linear readout at the last step (regression,
  classification) or at every step (tagging).
* :func:`language_model` (with :func:`sample`) is an embedding, a recurrent stack and a (tied)
  softmax readout over a vocabulary (Zaremba et al. 2014; Press & Wolf 2017).
* :func:`sequence_classifier` is an embedding, a (bidirectional) recurrent stack, pooling over the
  valid steps and an MLP head; :func:`init_embedding_from` loads pretrained word vectors.
* :mod:`seqjax.models.losses`: the masked cross-entropy, accuracy and squared error they share.
"""

from seqjax.models.base import Model
from seqjax.models.classifier import SequenceClassifier, init_embedding_from, sequence_classifier
from seqjax.models.common import build_cell, options_for
from seqjax.models.lm import LanguageModel, language_model, sample
from seqjax.models.losses import accuracy, cross_entropy, cross_entropy_terms, masked_mean
from seqjax.models.sequence import SequenceModel, sequence_model

__all__ = [
    "LanguageModel",
    "Model",
    "SequenceClassifier",
    "SequenceModel",
    "accuracy",
    "build_cell",
    "cross_entropy",
    "cross_entropy_terms",
    "init_embedding_from",
    "language_model",
    "masked_mean",
    "options_for",
    "sample",
    "sequence_classifier",
    "sequence_model",
]
