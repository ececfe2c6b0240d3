"""The model contract: every model is an input side, a recurrent stack and a head.

.. code-block:: text

    inputs --features--> hs (*batch, T, D) --readout--> outputs
              (embedding, recurrent layers)    (last step / every step / pooling, dense layers)

Three models share it: :func:`seqjax.models.sequence_model` (features into a linear readout),
:func:`seqjax.models.language_model` (tokens to next-token logits, state carried across windows)
and :func:`seqjax.models.sequence_classifier` (tokens to class logits). Tasks, diagnostics,
mixed precision (:func:`seqjax.models.precision.with_compute_dtype`) and the Flax wrappers use
only this contract.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional


class Model(NamedTuple):
    """Pure functions of a recurrent model.

    Attributes:
      init: ``key -> params``.
      initial_carry: ``(params, batch_shape) -> carry``, zeros, one entry per recurrent layer.
      features: ``(params, inputs, carry=None, *, lengths=None, key=None, train=False,
        embed_delta=None) -> (hs, carry)``: the top recurrent layer's outputs ``(*batch, T, D)``
        and the final carry. ``embed_delta`` (token models) is added to the looked-up vectors:
        the hook of adversarial training (Miyato et al. 2017).
      readout: ``(params, hs, *, lengths=None, key=None, train=False) -> outputs``.
      apply: ``(params, inputs, carry=None, *, lengths=None, key=None, train=False,
        embed_delta=None) -> (outputs, carry)``, ``readout`` after ``features``.
      top: ``(params, inputs, *, lengths=None) -> (cell, top_params, top_xs)``: the top
        recurrent layer's cell, parameters and inputs (no dropout), for gradient-flow
        diagnostics (:mod:`seqjax.analysis`); ``None`` when the top layer is bidirectional.
      input_size: the size of an input vector, or the vocabulary size of a token model.
      output_size: the size of the last axis of the outputs (1, classes, or the vocabulary).
      feature_size: D.
    """

    init: Callable[..., Any]
    initial_carry: Callable[..., Any]
    features: Callable[..., tuple]
    readout: Callable[..., Any]
    apply: Callable[..., tuple]
    top: Optional[Callable[..., tuple]]
    input_size: int
    output_size: int
    feature_size: int


__all__ = ["Model"]
