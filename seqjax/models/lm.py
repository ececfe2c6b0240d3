r"""A recurrent language model: embedding, stacked recurrent layers, (tied) softmax readout.

.. math::
    x_t &= E[w_t] \qquad (E: V \times D_e) \\
    h^{(l)}_t &= \mathrm{cell}_l(h^{(l)}_{t-1}, h^{(l-1)}_t), \quad h^{(0)}_t = x_t \\
    \mathrm{logits}_t &= h^{(L)}_t W_o + b_o \quad\text{or, tied,}\quad h^{(L)}_t E^\top + b_o \\
    p(w_{t+1} \mid w_{\le t}) &= \mathrm{softmax}(\mathrm{logits}_t)

This is the model of Zaremba, Sutskever & Vinyals 2014 ("Recurrent neural network regularization",
sec. 3): dropout only on the non-recurrent connections (the embedding output, between layers, and
before the readout), so the memory in the recurrence is not corrupted at every step. Options:

* ``variational=True``: one dropout mask per sequence, reused at every step (Gal & Ghahramani 2016,
  "A theoretically grounded application of dropout in RNNs", sec. 4). Only the non-recurrent
  connections are dropped here; dropping the recurrent ones would need a cell wrapper.
* ``embed_dropout``: drop whole word *types* (Gal & Ghahramani 2016, sec. 4.2): in each sequence a
  word type is either dropped at all its occurrences or kept (and scaled by ``1 / (1 - p)``).
* ``tie_embeddings=True``: the readout matrix is the embedding's transpose (Press & Wolf 2017,
  "Using the output embedding to improve language models"; Inan et al. 2017). It needs the last
  layer's output size to equal ``embed_size``; we raise rather than add a hidden projection, so
  a tied model has exactly the parameters its config names.

``apply`` returns unnormalised logits; :func:`seqjax.models.losses.cross_entropy` scores them (in
float32) and :func:`sample` draws from them. The carry is the stack's list of per-layer carries,
so a task can carry state across truncated-BPTT windows (``jax.lax.stop_gradient(carry)`` between
windows).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp

from seqjax.cells.base import Cell
from seqjax.layers import dropout as dropout_fn
from seqjax.layers import rnn
from seqjax.models.base import Model

#: A language model is a :class:`seqjax.models.base.Model`: ``inputs`` are tokens ``(*batch, T)``,
#: ``outputs`` logits ``(*batch, T, V)``, ``input_size == output_size == V``, and the carry (one
#: entry per layer) passes from one window to the next. Params: ``{"embed": (V, D_e), "rnn":
#: [...], "out": {"b": (V,)}}``, and ``"out"["w"]: (H, V)`` unless the embeddings are tied.
LanguageModel = Model


def stack_of(cell_or_cells: Union[Cell, Sequence[Cell]], num_layers: Optional[int]) -> list:
    """One cell per layer: ``cell_or_cells`` repeated ``num_layers`` times (default 1), or the given
    sequence (whose length ``num_layers``, if given, must match)."""
    if isinstance(cell_or_cells, Cell):
        n = 1 if num_layers is None else num_layers
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"num_layers={num_layers!r}: must be a positive integer")
        return [cell_or_cells] * n
    cells = list(cell_or_cells)
    if not cells or not all(isinstance(c, Cell) for c in cells):
        raise ValueError("cell_or_cells: give a Cell or a non-empty sequence of Cells")
    if num_layers is not None and num_layers != len(cells):
        raise ValueError(f"num_layers={num_layers!r}: {len(cells)} cells were given, one per layer")
    return cells


def check_rate(name: str, rate: float) -> float:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name}={rate!r}: must be in [0, 1)")
    return float(rate)


def word_type_dropout(key: jax.Array, tokens: jax.Array, vocab_size: int, rate: float) -> jax.Array:
    """Per-token keep-scales ``(*batch, T)`` for dropping word types (Gal & Ghahramani 2016, 4.2).

    One Bernoulli draw per (sequence, vocabulary row): every occurrence of a word in a sequence
    shares its fate. Kept words are scaled by ``1 / (1 - rate)`` (inverted dropout).
    """
    keep_rows = jax.random.bernoulli(key, 1.0 - rate, (*tokens.shape[:-1], vocab_size))
    keep = jnp.take_along_axis(keep_rows, tokens, axis=-1)
    return keep.astype(jnp.float32) / (1.0 - rate)


def language_model(
    cell_or_cells: Union[Cell, Sequence[Cell]],
    vocab_size: int,
    *,
    embed_size: int,
    num_layers: Optional[int] = None,
    dropout: float = 0.0,
    variational: bool = False,
    embed_dropout: float = 0.0,
    tie_embeddings: bool = False,
    init_scale: float = 0.1,
    param_dtype=jnp.float32,
) -> Model:
    """Builds a recurrent language model (Zaremba et al. 2014) from any cell(s).

    Args:
      cell_or_cells: one cell (repeated ``num_layers`` times) or one cell per layer.
      vocab_size: V.
      embed_size: D_e, the size of the word vectors (the first layer's input size).
      num_layers: depth of the stack when one cell is given (default 1).
      dropout: rate on the embedding output, between layers and before the readout, with a fresh
        mask per step (Zaremba et al. 2014, sec. 3) or one per sequence (``variational``).
      variational: reuse one dropout mask per sequence for all steps (Gal & Ghahramani 2016). A
        "sequence" is one ``apply`` call: each truncated-BPTT window draws a new mask.
      embed_dropout: rate at which whole word types are dropped (Gal & Ghahramani 2016, sec. 4.2).
      tie_embeddings: use ``E^T`` as the readout matrix (Press & Wolf 2017). The last layer's
        output size must equal ``embed_size`` (a ``ValueError`` says so otherwise).
      init_scale: the embedding and the untied readout matrix start ``U(-s, s)`` (Zaremba et al.
        2014 use 0.1 for the small model, 0.05 and 0.04 for the larger ones); the readout bias
        starts at zero. The cells use their own initialisers.
      param_dtype: dtype of the embedding and readout parameters.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> from seqjax.models.lm import language_model
      >>> from seqjax.models.losses import cross_entropy
      >>> model = language_model(seqjax.cells.lstm(16), 50, embed_size=16, num_layers=2,
      ...                        dropout=0.2, tie_embeddings=True)
      >>> params = model.init(jax.random.key(0))
      >>> tokens = jnp.zeros((4, 10), jnp.int32)
      >>> logits, carry = model.apply(params, tokens, key=jax.random.key(1), train=True)
      >>> logits.shape, len(carry)
      ((4, 10, 50), 2)
      >>> logits, carry = model.apply(params, tokens, jax.lax.stop_gradient(carry))  # next window
      >>> float(cross_entropy(logits, tokens)) > 0
      True
    """
    cells = stack_of(cell_or_cells, num_layers)
    dropout = check_rate("dropout", dropout)
    embed_dropout = check_rate("embed_dropout", embed_dropout)
    # Dropout between layers is the layer stack's job; this file adds the embedding-side and
    # readout-side dropout around it.
    layer = rnn(cells, dropout_rate=dropout, variational=variational)
    H = layer.output_size
    if tie_embeddings and H != embed_size:
        raise ValueError(
            f"tie_embeddings=True: the last layer's output size {H} must equal "
            f"embed_size={embed_size}; set embed_size={H} or the last cell's hidden_size to "
            f"{embed_size}"
        )
    uniform = lambda k, shape: jax.random.uniform(k, shape, param_dtype, -init_scale, init_scale)

    def init(key):
        k_embed, k_rnn, k_out = jax.random.split(key, 3)
        out = {"b": jnp.zeros((vocab_size,), param_dtype)}
        if not tie_embeddings:
            out["w"] = uniform(k_out, (H, vocab_size))
        return {
            "embed": uniform(k_embed, (vocab_size, embed_size)),
            "rnn": layer.init(k_rnn, embed_size),
            "out": out,
        }

    def initial_carry(params, batch_shape=()):
        return layer.initial_carry(params["rnn"], batch_shape)

    def features(
        params,
        tokens,
        carry=None,
        *,
        lengths=None,
        key=None,
        train=False,
        embed_delta=None,
        **unroll_kwargs,
    ):
        tokens = jnp.asarray(tokens)
        drop = train and (dropout > 0.0 or embed_dropout > 0.0)
        if drop and key is None:
            raise ValueError("train=True with dropout needs a PRNG key: apply(..., key=key)")
        k_type, k_in, k_rnn, k_out = jax.random.split(key, 4) if drop else (None,) * 4
        xs = params["embed"][tokens]  # (*batch, T, D_e): a gather, not a one-hot matmul
        if embed_delta is not None:
            xs = xs + embed_delta.astype(xs.dtype)
        if drop and embed_dropout > 0.0:
            scale = word_type_dropout(k_type, tokens, vocab_size, embed_dropout)
            xs = xs * scale[..., None].astype(xs.dtype)
        if drop and dropout > 0.0:
            xs = dropout_fn(k_in, xs, dropout, variational=variational)
        hs, carry = layer.apply(
            params["rnn"], xs, carry, lengths=lengths, key=k_rnn, train=drop, **unroll_kwargs
        )
        if drop and dropout > 0.0:
            hs = dropout_fn(k_out, hs, dropout, variational=variational)
        return hs, carry

    def readout(params, hs, *, lengths=None, key=None, train=False):
        del lengths, key, train  # one score vector per step, no randomness
        # Tied: the same matrix maps words to vectors and vectors to word scores (Press & Wolf
        # 2017), so gradients from both uses accumulate in params["embed"].
        w = params["embed"].T if tie_embeddings else params["out"]["w"]
        return hs.astype(w.dtype) @ w + params["out"]["b"]

    def apply(
        params,
        tokens,
        carry=None,
        *,
        lengths=None,
        key=None,
        train=False,
        embed_delta=None,
        **unroll_kwargs,
    ):
        hs, carry = features(
            params,
            tokens,
            carry,
            lengths=lengths,
            key=key,
            train=train,
            embed_delta=embed_delta,
            **unroll_kwargs,
        )
        return readout(params, hs), carry

    def top(params, tokens, *, lengths=None):
        return layer.top(params["rnn"], params["embed"][jnp.asarray(tokens)], lengths=lengths)

    return Model(init, initial_carry, features, readout, apply, top, vocab_size, vocab_size, H)


def _draw(key, logits, temperature, top_k):
    """One token per row of ``logits: (*batch, V)`` at ``temperature`` among the ``top_k`` best."""
    logits = logits.astype(jnp.float32)
    idx = None
    if top_k is not None:
        # Sample among exactly the k best ids: ties at the k-th score cannot let a (k+1)-th in.
        logits, idx = jax.lax.top_k(logits, top_k)
    if isinstance(temperature, (int, float)) and temperature == 0:
        choice = jnp.argmax(logits, axis=-1)  # the limit temperature -> 0: greedy decoding
    else:
        choice = jax.random.categorical(key, logits / temperature, axis=-1)
    if idx is None:
        return choice
    return jnp.take_along_axis(idx, choice[..., None], axis=-1)[..., 0]


def sample(
    params,
    model: Model,
    prompt_tokens: jax.Array,
    length: int,
    key: jax.Array,
    *,
    temperature: float = 1.0,
    top_k: Optional[int] = None,
    carry=None,
) -> jax.Array:
    """Generates ``length`` tokens after ``prompt_tokens``, carrying the recurrent state.

    The prompt runs through the model once (one scan over its steps); then one ``lax.scan`` over
    the generated steps feeds each drawn token back in with the carried state, so generation
    costs one cell step per token. Dropout is off (``train=False``).

    Args:
      params: the model's parameters.
      model: a language model (:func:`language_model`).
      prompt_tokens: ``(*batch, P)`` int, ``P >= 1``.
      length: number of tokens to generate (static under ``jit``).
      key: PRNG key; the same key gives the same tokens.
      temperature: divides the logits; ``0`` (a Python number) means greedy argmax, the limit of
        small temperatures. It may be a traced scalar when it is not 0.
      top_k: if set, sample only among the ``top_k`` most likely tokens (static under ``jit``).
      carry: state to start from (zeros if ``None``), e.g. the state after a previous window.

    Returns:
      ``(*batch, length)`` int32 generated tokens (the prompt not included).

    Example:
      >>> import functools, jax, jax.numpy as jnp, seqjax
      >>> from seqjax.models.lm import language_model, sample
      >>> model = language_model(seqjax.cells.gru(8), 20, embed_size=8)
      >>> params = model.init(jax.random.key(0))
      >>> gen = jax.jit(functools.partial(sample, model=model, length=5, top_k=3))
      >>> gen(params, prompt_tokens=jnp.ones((2, 3), jnp.int32), key=jax.random.key(1)).shape
      (2, 5)
    """
    if top_k is not None and not 1 <= top_k <= model.output_size:
        raise ValueError(f"top_k={top_k!r}: must be in [1, vocab_size={model.output_size}]")
    prompt_tokens = jnp.asarray(prompt_tokens)
    if prompt_tokens.ndim < 1 or prompt_tokens.shape[-1] < 1:
        raise ValueError(f"prompt_tokens.shape={prompt_tokens.shape}: need at least one token")
    logits, carry = model.apply(params, prompt_tokens, carry)

    def body(state, k):
        last, carry = state
        token = _draw(k, last, temperature, top_k).astype(jnp.int32)
        logits, carry = model.apply(params, token[..., None], carry)
        return (logits[..., -1, :], carry), token

    _, tokens = jax.lax.scan(body, (logits[..., -1, :], carry), jax.random.split(key, length))
    return jnp.moveaxis(tokens, 0, -1)  # time-major scan output -> (*batch, length)


__all__ = ["LanguageModel", "language_model", "sample", "stack_of", "word_type_dropout"]
