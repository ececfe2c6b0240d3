"""Thin Flax wrappers around seqjax cells and sequence layers (linen and NNX).

The wrappers have no logic of their own: parameters come from the wrapped object's own ``init``
and the forward pass is :func:`seqjax.unroll` (for a :class:`~seqjax.cells.Cell`) or
``layer.apply`` (for a :class:`~seqjax.layers.SequenceLayer`), with ``lengths``, ``resets`` and
every other keyword passed straight through. So a model written with these modules computes
exactly what the pure functions compute with the same parameters.

This is the only module of ``seqjax`` that imports Flax; ``seqjax.cells``, ``seqjax.scan`` and
``seqjax.layers`` never do.

Example (linen):
  >>> import jax, jax.numpy as jnp, seqjax
  >>> from seqjax.flax import RNN
  >>> model = RNN(seqjax.cells.lstm(8))
  >>> xs = jnp.ones((2, 5, 3))
  >>> variables = model.init(jax.random.key(0), xs)
  >>> ys, carry = model.apply(variables, xs, lengths=jnp.array([5, 2]))
  >>> ys.shape
  (2, 5, 8)

Example (NNX):
  >>> from flax import nnx
  >>> from seqjax.flax import NNXRNN
  >>> model = NNXRNN(seqjax.layers.rnn(seqjax.cells.gru(8), 2), 3, rngs=nnx.Rngs(0))
  >>> ys, carries = model(xs)
  >>> ys.shape, len(carries)
  ((2, 5, 8), 2)
"""

from __future__ import annotations

from typing import Any, Optional, Union

import flax.linen as nn
import jax
from flax import nnx

from seqjax.cells.base import Cell
from seqjax.layers import SequenceLayer
from seqjax.scan import unroll

Wrapped = Union[Cell, SequenceLayer]


def _checked(wrapped: Wrapped) -> Wrapped:
    if not isinstance(wrapped, (Cell, SequenceLayer)):
        raise TypeError(f"cell={wrapped!r}: expected a seqjax Cell or SequenceLayer")
    return wrapped


def _forward(wrapped: Wrapped, params, xs, carry, *, key, train, **kwargs) -> tuple:
    """``seqjax.unroll`` for a cell, ``layer.apply`` for a sequence layer."""
    if isinstance(wrapped, SequenceLayer):
        return wrapped.apply(params, xs, carry, key=key, train=train, **kwargs)
    return unroll(wrapped, params, xs, carry, **kwargs)


class RNN(nn.Module):
    """Linen module running a seqjax :class:`Cell` or :class:`SequenceLayer` over a sequence.

    Its one parameter, ``"cell"``, is the pytree ``cell.init(key, xs.shape[-1])`` for the key
    linen hands it. ``__call__(xs, carry=None, *, lengths=None, resets=None, train=False,
    **unroll_kwargs)`` returns ``(ys, carry)`` exactly as :func:`seqjax.unroll` /
    ``layer.apply`` do. With ``train=True`` a layer's dropout key is taken from the ``"dropout"``
    rng collection when one is given (``model.apply(v, xs, train=True, rngs={"dropout": key})``).

    Attributes:
      cell: the wrapped cell or sequence layer.
    """

    cell: Wrapped

    @nn.compact
    def __call__(
        self,
        xs: jax.Array,
        carry: Any = None,
        *,
        lengths: Optional[jax.Array] = None,
        resets: Optional[jax.Array] = None,
        train: bool = False,
        **unroll_kwargs,
    ) -> tuple:
        params = self.param("cell", _checked(self.cell).init, xs.shape[-1])
        key = self.make_rng("dropout") if train and self.has_rng("dropout") else None
        return _forward(
            self.cell, params, xs, carry, lengths=lengths, resets=resets, key=key, train=train,
            **unroll_kwargs,
        )  # fmt: skip


def _value(variable):
    return variable[...]


class NNXRNN(nnx.Module):
    """NNX module running a seqjax :class:`Cell` or :class:`SequenceLayer` over a sequence.

    ``self.params`` is ``cell.init(rngs.params(), input_size)`` with every leaf an
    :class:`nnx.Param`, so ``nnx.grad``, ``nnx.Optimizer`` and ``nnx.state`` see the cell's own
    parameter pytree. ``__call__(xs, carry=None, *, lengths=None, resets=None, train=False,
    key=None, **unroll_kwargs)`` returns ``(ys, carry)`` as :func:`seqjax.unroll` /
    ``layer.apply`` do; ``key`` is a layer's dropout key when ``train=True``.

    Args:
      cell: the wrapped cell or sequence layer.
      input_size: the size of the last axis of the inputs.
      rngs: NNX rngs; the ``params`` stream gives the initialisation key.
    """

    def __init__(self, cell: Wrapped, input_size: int, *, rngs: nnx.Rngs):
        self.cell = _checked(cell)
        self.params = nnx.data(jax.tree.map(nnx.Param, cell.init(rngs.params(), input_size)))

    def __call__(
        self,
        xs: jax.Array,
        carry: Any = None,
        *,
        lengths: Optional[jax.Array] = None,
        resets: Optional[jax.Array] = None,
        train: bool = False,
        key: Optional[jax.Array] = None,
        **unroll_kwargs,
    ) -> tuple:
        params = jax.tree.map(_value, self.params, is_leaf=lambda v: isinstance(v, nnx.Variable))
        return _forward(
            self.cell, params, xs, carry, lengths=lengths, resets=resets, key=key, train=train,
            **unroll_kwargs,
        )  # fmt: skip


__all__ = ["NNXRNN", "RNN"]
