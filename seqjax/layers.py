"""Sequence layers built from cells: stacked, bidirectional, dropout between layers, residuals.

A :class:`SequenceLayer` is, like a cell, a NamedTuple of pure functions::

    layer = seqjax.layers.rnn(seqjax.cells.lstm(128), num_layers=2, bidirectional=True)
    params = layer.init(key, input_size)
    ys, carries = layer.apply(params, xs, lengths=lengths, key=key, train=True)

Each layer runs over the whole sequence before the next one starts, so each layer's input
projection is one large matmul over all steps.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp

from seqjax.cells.base import Cell
from seqjax.scan import unroll, valid_mask


class SequenceLayer(NamedTuple):
    """A sequence-to-sequence layer.

    Attributes:
      init: ``(key, input_size) -> params``, a list with one entry per layer; a bidirectional
        layer's entry is ``{"fwd": ..., "bwd": ...}``.
      initial_carry: ``(params, batch_shape) -> carries`` (one per layer; per direction a tuple).
      apply: ``(params, xs, carries=None, *, lengths=None, resets=None, key=None, train=False,
        **unroll_kwargs) -> (ys, carries)`` with ``xs: (*batch, T, input_size)``.
      output_size: the size of the last axis of ``ys``.
      top: ``(params, xs, *, lengths=None) -> (cell, top_params, top_xs)``: the top layer's cell,
        its parameters and its inputs (every lower layer applied, no dropout), for gradient-flow
        diagnostics of the top recurrence; ``None`` when the layers are bidirectional.
    """

    init: Callable[..., Any]
    initial_carry: Callable[..., Any]
    apply: Callable[..., tuple]
    output_size: int
    top: Optional[Callable[..., tuple]] = None


def dropout(key: jax.Array, x: jax.Array, rate: float, *, variational: bool = False) -> jax.Array:
    """Inverted dropout on ``x: (*batch, T, D)``.

    With ``variational=True`` one mask is drawn per sequence and reused at every time step (Gal &
    Ghahramani 2016, sec. 4); otherwise a fresh mask is drawn for every step (Zaremba et al. 2014).
    """
    if rate <= 0.0:
        return x
    shape = (*x.shape[:-2], 1, x.shape[-1]) if variational else x.shape
    keep = jax.random.bernoulli(key, 1.0 - rate, shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def rnn(
    cells: Union[Cell, Sequence[Cell]],
    num_layers: int = 1,
    *,
    bidirectional: bool = False,
    merge: str = "concat",
    dropout_rate: float = 0.0,
    variational: bool = False,
    residual: bool = False,
) -> SequenceLayer:
    """A stack of recurrent layers.

    Args:
      cells: one cell (repeated ``num_layers`` times) or a sequence of cells, one per layer.
      num_layers: number of layers when ``cells`` is a single cell.
      bidirectional: run each layer forwards and backwards (each sequence reversed within its own
        length) and merge the two outputs.
      merge: ``"concat"`` (output size 2H) or ``"sum"`` (H).
      dropout_rate: dropout on the outputs of every layer but the last, when ``train=True``.
      variational: one dropout mask per sequence for all steps (Gal & Ghahramani 2016).
      residual: add each layer's input to its output where the sizes match (Wu et al. 2016);
        outputs past ``lengths`` stay zero.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> layer = seqjax.layers.rnn(seqjax.cells.gru(8), num_layers=2, bidirectional=True)
      >>> params = layer.init(jax.random.key(0), 3)
      >>> ys, _ = layer.apply(params, jnp.ones((4, 7, 3)), lengths=jnp.array([7, 5, 3, 1]))
      >>> ys.shape
      (4, 7, 16)
    """
    cells = [cells] * num_layers if isinstance(cells, Cell) else list(cells)
    if not cells:
        raise ValueError("num_layers=0: a layer stack needs at least one cell")
    if merge not in ("concat", "sum"):
        raise ValueError(f"merge={merge!r}: choose one of concat, sum")
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate={dropout_rate!r}: must be in [0, 1)")

    def out_size(cell):
        return 2 * cell.hidden_size if bidirectional and merge == "concat" else cell.hidden_size

    def init(key, input_size: int):
        params = []
        for cell, k in zip(cells, jax.random.split(key, len(cells))):
            if bidirectional:
                kf, kb = jax.random.split(k)
                params.append({"fwd": cell.init(kf, input_size), "bwd": cell.init(kb, input_size)})
            else:
                params.append(cell.init(k, input_size))
            input_size = out_size(cell)
        return params

    def initial_carry(params, batch_shape=()):
        if bidirectional:
            return [
                (c.initial_carry(p["fwd"], batch_shape), c.initial_carry(p["bwd"], batch_shape))
                for c, p in zip(cells, params)
            ]
        return [c.initial_carry(p, batch_shape) for c, p in zip(cells, params)]

    def apply(
        params,
        xs,
        carries=None,
        *,
        lengths=None,
        resets=None,
        key=None,
        train=False,
        **unroll_kwargs,
    ):
        if carries is None:
            carries = [None] * len(cells)
        if train and dropout_rate > 0.0 and key is None:
            raise ValueError("dropout_rate > 0 with train=True needs a PRNG key")
        keys = jax.random.split(key, len(cells)) if key is not None else [None] * len(cells)
        new_carries = []
        for i, (cell, p, c) in enumerate(zip(cells, params, carries)):
            kw = dict(lengths=lengths, resets=resets, **unroll_kwargs)
            if bidirectional:
                c_f, c_b = c if c is not None else (None, None)
                y_f, c_f = unroll(cell, p["fwd"], xs, c_f, **kw)
                y_b, c_b = unroll(cell, p["bwd"], xs, c_b, reverse=True, **kw)
                ys = jnp.concatenate([y_f, y_b], -1) if merge == "concat" else y_f + y_b
                new_carries.append((c_f, c_b))
            else:
                ys, c = unroll(cell, p, xs, c, **kw)
                new_carries.append(c)
            if residual and ys.shape[-1] == xs.shape[-1]:
                skip = xs.astype(ys.dtype)
                if lengths is not None:  # padding stays zero: the skip adds nothing past the end
                    valid = valid_mask(lengths, xs.shape[:-2], xs.shape[-2])
                    skip = jnp.where(valid[..., None], skip, jnp.zeros_like(skip))
                ys = ys + skip
            if train and dropout_rate > 0.0 and i < len(cells) - 1:
                ys = dropout(keys[i], ys, dropout_rate, variational=variational)
            xs = ys
        return xs, new_carries

    def top(params, xs, *, lengths=None):
        lower = rnn(cells[:-1], merge=merge, residual=residual) if len(cells) > 1 else None
        if lower is not None:
            xs, _ = lower.apply(params[:-1], xs, lengths=lengths)
        return cells[-1], params[-1], xs

    return SequenceLayer(
        init, initial_carry, apply, out_size(cells[-1]), None if bidirectional else top
    )


__all__ = ["SequenceLayer", "dropout", "rnn"]
