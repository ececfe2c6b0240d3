r"""cuDNN's LSTM (``jax.experimental.rnn``): its flat weight layout and its kernels.

cuDNN's LSTM (NVIDIA cuDNN ``cudnnRNNForward``, mode ``CUDNN_LSTM``) runs a stack of layers over
a whole sequence in one fused kernel per direction:

.. math::
    [i, f, g, o] = x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}, \quad
    c_t = \sigma(f) c_{t-1} + \sigma(i)\tanh(g), \quad h_t = \sigma(o)\tanh(c_t).

Each layer is given as ``(W_ih (4H, I), W_hh (4H, H), b_ih (4H,), b_hh (4H,))``, gate order
``i, f, g, o``; a cell that computes this LSTM says how its parameters map to it (for
:func:`seqjax.cells.lstm`, ``cell.fused.cudnn_lstm``). The flat vector holds, for layers
``0..L-1``, ``W_ih`` and ``W_hh`` (row-major), then for the same layers ``b_ih`` and ``b_hh``
(:func:`pack`; the layout that ``jax.experimental.rnn.unpack_lstm_weights`` reads).

Kernels of :func:`lstm`: ``"cudnn"`` (NVIDIA GPUs only) and ``"reference"``
(``jax.experimental.rnn.lstm_ref``, pure JAX, any platform), which reads the flat layout with
JAX's own unpacking, so the tests check :func:`pack` against it on CPU. Choosing between kernels
and other backends is :func:`seqjax.unroll`'s job (``backend="cudnn"``); this module is a leaf
(it imports no other seqjax module). Both kernels are ``jax.custom_vjp`` functions or plain
loops: neither is chosen by ``backend="auto"``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp

KERNELS = ("cudnn", "reference")


def available() -> bool:
    """Whether cuDNN can run here: the default JAX backend is an NVIDIA GPU."""
    try:
        return jax.default_backend() == "gpu" and jax.devices()[0].platform in ("gpu", "cuda")
    except RuntimeError:
        return False


def pack(layers: Sequence[tuple]) -> jax.Array:
    """The flat cuDNN weight vector of a unidirectional stack of ``(W_ih, W_hh, b_ih, b_hh)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jax.experimental import rnn
      >>> H, I = 4, 3
      >>> layer = lambda i: (jnp.ones((4 * H, i)), jnp.ones((4 * H, H)), jnp.ones(4 * H),
      ...                    jnp.zeros(4 * H))
      >>> pack([layer(I), layer(H)]).shape[0] == rnn.get_num_params_in_lstm(I, H, 2, False)
      True
    """
    if not layers:
        raise ValueError("layers: give at least one LSTM layer")
    weights = [w.ravel() for w_ih, w_hh, _, _ in layers for w in (w_ih, w_hh)]
    biases = [b for _, _, b_ih, b_hh in layers for b in (b_ih, b_hh)]
    return jnp.concatenate(weights + biases)


def unpack(weights: jax.Array, input_size: int, hidden_size: int, num_layers: int) -> list:
    """The ``(W_ih, W_hh, b_ih, b_hh)`` of each layer from a flat cuDNN vector (JAX's reader)."""
    from jax.experimental import rnn

    w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(
        weights, input_size, hidden_size, num_layers, False
    )
    return [(w_ih[i], w_hh[i], b_ih[i], b_hh[i]) for i in range(num_layers)]


def lstm(
    layers: Sequence[tuple],
    xs: jax.Array,
    h0: jax.Array,
    c0: jax.Array,
    lengths: Optional[jax.Array] = None,
    *,
    kernel: str = "cudnn",
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Runs a unidirectional LSTM stack over batch-major ``xs (B, T, I)``.

    Args:
      layers: each layer's ``(W_ih (4H, I or H), W_hh (4H, H), b_ih (4H,), b_hh (4H,))``.
      xs: inputs ``(B, T, I)``.
      h0, c0: initial carries ``(L, B, H)``.
      lengths: ``(B,)`` valid lengths (right padding); outputs past them are zero and the final
        carries are those after each sequence's last valid step.
      kernel: ``"cudnn"`` or ``"reference"`` (:data:`KERNELS`).

    Returns:
      ``(ys (B, T, H), h (L, B, H), c (L, B, H))``.
    """
    from jax.experimental import rnn

    if kernel not in KERNELS:
        raise ValueError(f"kernel={kernel!r}: choose one of {', '.join(KERNELS)}")
    B, T, input_size = xs.shape
    H, L = layers[0][1].shape[1], len(layers)
    for i, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers):
        want = ((4 * H, input_size if i == 0 else H), (4 * H, H), (4 * H,), (4 * H,))
        got = tuple(a.shape for a in (w_ih, w_hh, b_ih, b_hh))
        if got != want:
            raise ValueError(f"layers[{i}]: shapes {got}, expected {want}")
    seq_lengths = jnp.full((B,), T, jnp.int32) if lengths is None else jnp.asarray(lengths, "int32")
    weights = pack(layers)
    if kernel == "cudnn":
        return rnn.lstm(xs, h0, c0, weights, seq_lengths, input_size, H, L, 0.0, False)
    w = rnn.unpack_lstm_weights(weights, input_size, H, L, False)
    return rnn.lstm_ref(xs, h0, c0, *w, seq_lengths, input_size, H, L, 0.0, False)


__all__ = ["KERNELS", "available", "lstm", "pack", "unpack"]
