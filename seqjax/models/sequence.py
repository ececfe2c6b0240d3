r"""A recurrent sequence model: stacked recurrent layers and a linear readout.

.. math::
    h^{(1..L)}_{1..T} = \mathrm{rnn}(x_{1..T}) \qquad
    \hat y = h^{(L)}_{\ell} W_o + b_o \;\; (\text{readout="last"}) \quad\text{or}\quad
    \hat y_t = h^{(L)}_t W_o + b_o \;\; (\text{readout="every"})

where :math:`\ell` is each sequence's last valid step (``lengths - 1``, or ``T - 1``). The inputs go
straight into the first layer (no input projection): the cell's own input matrix is one. This is
the model of the synthetic long-range problems (adding: Hochreiter & Schmidhuber 1997, sec. 5.4;
Le et al. 2015, sec. 4.1), with ``"last"`` for regression/classification of a whole sequence and
``"every"`` for tagging every step (copy memory).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from seqjax.cells.base import Cell
from seqjax.layers import rnn
from seqjax.models.base import Model

READOUTS = ("last", "every")

#: A sequence model is a :class:`seqjax.models.base.Model`: ``inputs`` are ``xs: (*batch, T, I)``
#: and ``outputs`` are ``(*batch, O)`` for ``readout="last"``, ``(*batch, T, O)`` for ``"every"``;
#: params ``{"rnn": [...], "readout": {"w": (H, O), "b": (O,)}}``.
SequenceModel = Model


def last_valid(ys: jax.Array, lengths: Optional[jax.Array]) -> jax.Array:
    """``ys[..., lengths - 1, :]`` for ``ys: (*batch, T, D)`` (the last step when ``lengths`` is
    ``None``)."""
    if lengths is None:
        return ys[..., -1, :]
    idx = jnp.asarray(lengths) - 1
    idx = jnp.broadcast_to(idx, ys.shape[:-2])[..., None, None]
    return jnp.take_along_axis(ys, idx, axis=-2)[..., 0, :]


def sequence_model(
    cell: Cell,
    input_size: int,
    output_size: int,
    *,
    num_layers: int = 1,
    readout: str = "last",
    dropout_rate: float = 0.0,
    param_dtype=jnp.float32,
) -> Model:
    """A stack of ``num_layers`` recurrent layers of ``cell`` and a linear readout.

    Args:
      cell: the recurrent cell (the same hyper-parameters in every layer).
      input_size: I, the size of each input vector.
      output_size: O, the number of outputs (1 for scalar regression, classes for cross-entropy).
      num_layers: depth of the stack.
      readout: ``"last"`` (one output per sequence) or ``"every"`` (one per step).
      dropout_rate: dropout between layers when ``train=True`` (Zaremba et al. 2014).
      param_dtype: dtype of the readout parameters.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> model = sequence_model(seqjax.cells.lstm(8), input_size=2, output_size=1)
      >>> params = model.init(jax.random.key(0))
      >>> outputs, carry = model.apply(params, jnp.ones((4, 10, 2)))
      >>> outputs.shape
      (4, 1)
    """
    if readout not in READOUTS:
        raise ValueError(f"readout={readout!r}: choose one of {', '.join(READOUTS)}")
    layer = rnn(cell, num_layers, dropout_rate=dropout_rate)
    hidden = layer.output_size
    w_init = jax.nn.initializers.lecun_normal()
    every = readout == "every"

    def init(key):
        k_rnn, k_out = jax.random.split(key)
        return {
            "rnn": layer.init(k_rnn, input_size),
            "readout": {
                "w": w_init(k_out, (hidden, output_size), param_dtype),
                "b": jnp.zeros((output_size,), param_dtype),
            },
        }

    def initial_carry(params, batch_shape=()):
        return layer.initial_carry(params["rnn"], batch_shape)

    def features(params, xs, carry=None, *, lengths=None, key=None, train=False, embed_delta=None):
        del embed_delta  # the inputs are vectors already
        return layer.apply(params["rnn"], xs, carry, lengths=lengths, key=key, train=train)

    def head(params, ys, *, lengths=None, key=None, train=False):
        del key, train  # no randomness after the stack
        if not every:
            ys = last_valid(ys, lengths)
        w, b = params["readout"]["w"], params["readout"]["b"]
        return ys.astype(w.dtype) @ w + b

    def apply(params, xs, carry=None, *, lengths=None, key=None, train=False, embed_delta=None):
        ys, carry = features(params, xs, carry, lengths=lengths, key=key, train=train)
        return head(params, ys, lengths=lengths), carry

    def top(params, xs, *, lengths=None):
        return layer.top(params["rnn"], xs, lengths=lengths)

    return Model(init, initial_carry, features, head, apply, top, input_size, output_size, hidden)


__all__ = ["READOUTS", "SequenceModel", "last_valid", "sequence_model"]
