r"""A stacked LSTM through cuDNN (``jax.experimental.rnn``), with seqjax's LSTM parameters.

cuDNN's LSTM (NVIDIA cuDNN ``cudnnRNNForward``, mode ``CUDNN_LSTM``) runs a whole stack of layers
over a whole sequence in one fused kernel per direction. It computes the same cell as
:func:`seqjax.cells.lstm` (Hochreiter & Schmidhuber 1997 with a forget gate, Gers et al. 2000):

.. math::
    [i, f, g, o] = x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}, \quad
    c_t = \sigma(f) c_{t-1} + \sigma(i)\tanh(g), \quad h_t = \sigma(o)\tanh(c_t)

with the same gate order ``i, f, g, o``, so the mapping is a transpose: ``W_ih = w_x.T`` (4H, I),
``W_hh = w_h.T`` (4H, H), ``b_ih = b`` and ``b_hh = 0``. The flat weight vector of
``jax.experimental.rnn.lstm`` holds, for layers ``0..L-1``, ``W_ih`` and ``W_hh`` (row-major),
then for the same layers ``b_ih`` and ``b_hh`` (:func:`pack_lstm`; the layout of
``jax.experimental.rnn._get_params_shapes_in_lstm``).

Backends of :func:`lstm_stack`: ``"cudnn"`` (NVIDIA GPU only; elsewhere a :class:`UserError`),
``"scan"`` (:func:`seqjax.unroll` per layer, anywhere), ``"reference"`` (JAX's pure-JAX
``lstm_ref``, which the tests use to check the weight mapping on CPU) and ``"auto"`` (cuDNN on a
GPU, else scan).

Not measured here: this project's machines had no GPU; ``experiments/bench/gpu.py`` is the
prepared timing script.
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp

from seqjax.cells.lstm import LSTMCarry
from seqjax.errors import UserError

BACKENDS = ("auto", "cudnn", "scan", "reference")


def available() -> bool:
    """Whether cuDNN can run here: the default JAX backend is an NVIDIA GPU."""
    try:
        return jax.default_backend() == "gpu" and jax.devices()[0].platform in ("gpu", "cuda")
    except RuntimeError:
        return False


def pack_lstm(layers: Sequence[dict]) -> jax.Array:
    """The flat cuDNN weight vector of a unidirectional stack of seqjax LSTM layers.

    Example:
      >>> import seqjax
      >>> cell = seqjax.cells.lstm(4)
      >>> layers = [cell.init(jax.random.key(0), 3), cell.init(jax.random.key(1), 4)]
      >>> from jax.experimental import rnn
      >>> pack_lstm(layers).shape[0] == rnn.get_num_params_in_lstm(3, 4, 2, False)
      True
    """
    weights, biases = [], []
    for p in layers:
        weights += [p["w_x"].T.ravel(), p["w_h"].T.ravel()]
        biases += [p["b"], jnp.zeros_like(p["b"])]
    return jnp.concatenate(weights + biases)


def unpack_lstm(weights: jax.Array, input_size: int, hidden_size: int, num_layers: int) -> list:
    """seqjax LSTM parameters of each layer from a flat cuDNN vector (``b = b_ih + b_hh``)."""
    from jax.experimental import rnn

    w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(
        weights, input_size, hidden_size, num_layers, False
    )
    return [{"w_x": w_ih[i].T, "w_h": w_hh[i].T, "b": b_ih[i] + b_hh[i]} for i in range(num_layers)]


def _sizes(layers: Sequence[dict]) -> tuple[int, int]:
    if not layers:
        raise ValueError("layers: give at least one LSTM layer's parameters")
    input_size, four_h = layers[0]["w_x"].shape
    H = four_h // 4
    for i, p in enumerate(layers):
        want = {"w_x": (input_size if i == 0 else H, 4 * H), "w_h": (H, 4 * H), "b": (4 * H,)}
        got = {k: tuple(p[k].shape) for k in want}
        if got != want:
            raise ValueError(f"layers[{i}]: shapes {got}, expected {want} (seqjax.cells.lstm)")
    return input_size, H


def lstm_stack(
    layers: Sequence[dict],
    xs: jax.Array,
    *,
    lengths: Optional[jax.Array] = None,
    carries: Optional[Sequence[LSTMCarry]] = None,
    backend: str = "auto",
) -> tuple[jax.Array, list]:
    """Runs a unidirectional stack of LSTM layers (seqjax parameters) over ``xs (B, T, I)``.

    Args:
      layers: each layer's ``seqjax.cells.lstm`` parameters, first layer first.
      xs: batch-major inputs ``(B, T, I)``.
      lengths: ``(B,)`` valid lengths (right padding); outputs past them are zero and the final
        carries are those after each sequence's last valid step, as in :func:`seqjax.unroll`.
      carries: initial ``LSTMCarry(h, c)`` of each layer, ``(B, H)`` each; zeros if ``None``.
      backend: one of :data:`BACKENDS`.

    Returns:
      ``(ys (B, T, H), [LSTMCarry per layer])``.
    """
    if backend not in BACKENDS:
        raise UserError(f"backend={backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "cudnn" if available() else "scan"
    if backend == "cudnn" and not available():
        raise UserError(
            f"backend='cudnn': needs an NVIDIA GPU with jax[cuda], but JAX runs on "
            f"{jax.default_backend()}; use backend='scan' (or 'auto', which picks cuDNN only "
            "on a GPU)"
        )
    input_size, H = _sizes(layers)
    B, T = xs.shape[0], xs.shape[1]
    L = len(layers)
    dtype = layers[0]["w_h"].dtype
    if carries is None:
        zeros = jnp.zeros((B, H), dtype)
        carries = [LSTMCarry(zeros, zeros)] * L
    if backend == "scan":
        from seqjax.cells import lstm
        from seqjax.scan import unroll

        cell = lstm(H)
        ys, finals = xs, []
        for p, c0 in zip(layers, carries):
            ys, c = unroll(cell, p, ys, LSTMCarry(*c0), lengths=lengths)
            finals.append(c)
        return ys, finals

    from jax.experimental import rnn

    seq_lengths = (
        jnp.full((B,), T, jnp.int32) if lengths is None else jnp.asarray(lengths, jnp.int32)
    )
    h0 = jnp.stack([c.h for c in carries])
    c0 = jnp.stack([c.c for c in carries])
    weights = pack_lstm(layers)
    if backend == "cudnn":
        ys, hn, cn = rnn.lstm(xs, h0, c0, weights, seq_lengths, input_size, H, L, 0.0, False)
    else:  # reference
        w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, input_size, H, L, False)
        ys, hn, cn = rnn.lstm_ref(
            xs, h0, c0, w_ih, w_hh, b_ih, b_hh, seq_lengths, input_size, H, L, 0.0, False
        )
    return ys, [LSTMCarry(hn[i], cn[i]) for i in range(L)]


__all__ = ["BACKENDS", "available", "lstm_stack", "pack_lstm", "unpack_lstm"]
