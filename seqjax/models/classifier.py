r"""A recurrent sequence classifier: embedding, (bi)directional recurrent stack, pooling, MLP head.

.. math::
    x_t = E[w_t], \qquad h_{1..\ell} = \mathrm{rnn}(x_{1..\ell}), \qquad
    s = \mathrm{pool}(h_{1..\ell}), \qquad \mathrm{logits} = \mathrm{MLP}(s)

where :math:`\ell` is each sequence's length: tokens past it (right padding) never reach the
logits, whatever they are. Pooling over the valid steps only:

* ``"last"``: :math:`h_\ell`. Bidirectional: the forward direction's output at step :math:`\ell`
  concatenated with the backward direction's output at step 1, each of which has read the whole
  sentence (the usual BiLSTM sentence encoding).
* ``"mean"``: :math:`\frac{1}{\ell}\sum_{t \le \ell} h_t`; ``"max"``: elementwise max over
  :math:`t \le \ell`.
* ``"attention"``: a learned query (Yang et al. 2016, "Hierarchical attention networks for document
  classification", sec. 2.2): :math:`u_t = \tanh(h_t W_a + b_a)`,
  :math:`\alpha_t = \mathrm{softmax}_{t \le \ell}(u_t^\top q)`, :math:`s = \sum_t \alpha_t h_t`.

Regularisation: dropout on the embedding output, between layers, and before every dense layer of
the head (the pooled vector included); optionally (``encoder_dropout``) also on the top layer's
outputs before pooling, as Flax's ``examples/sst2`` does before its attention. Word dropout
replaces each token by ``<unk>`` (``unk_id``) or, without ``unk_id``, zeroes its embedding,
with probability ``word_dropout`` and without rescaling: a dropped word should look like a
missing or unknown word, not like a louder one (Iyyer et al. 2015, sec. 3.1, drop words from the
average; Bowman et al. 2016 replace them by ``<unk>``).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from seqjax.cells.base import Cell
from seqjax.layers import dropout as dropout_fn
from seqjax.layers import rnn
from seqjax.models.base import Model
from seqjax.models.lm import check_rate, stack_of
from seqjax.models.sequence import last_valid
from seqjax.scan import valid_mask

POOLINGS = ("last", "mean", "max", "attention")
ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh, "gelu": jax.nn.gelu}


#: A sequence classifier is a :class:`seqjax.models.base.Model`: ``inputs`` are tokens
#: ``(*batch, T)`` with ``lengths (*batch,)`` (``None``: all ``T`` valid), ``features`` the top
#: layer's outputs ``(*batch, T, D)`` (zero past each length), ``readout`` the pooling over valid
#: steps and the MLP head, ``outputs`` logits ``(*batch, C)``. Params: ``{"embed": (V, D_e),
#: "rnn": [...], "mlp": [{"w", "b"}, ...], "out": {"w": (D, C), "b": (C,)}}`` and, for attention
#: pooling, ``"attention": {"w": (D, A), "b": (A,), "query": (A,)}``.
SequenceClassifier = Model


def attention_weights(attn_params, ys: jax.Array, lengths: Optional[jax.Array]) -> jax.Array:
    """Yang et al. 2016 (sec. 2.2) attention weights ``(*batch, T)``: exactly 0 past each length
    and summing to 1 over the valid steps."""
    u = jnp.tanh(ys.astype(attn_params["w"].dtype) @ attn_params["w"] + attn_params["b"])
    scores = (u @ attn_params["query"]).astype(jnp.float32)  # softmax in float32
    mask = valid_mask(lengths, ys.shape[:-2], ys.shape[-2])
    # The most negative finite float rather than -inf: exp underflows to exactly 0 and an all-padded
    # row (length 0) gives zeros instead of NaN.
    scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
    return jax.nn.softmax(scores, axis=-1) * mask.astype(jnp.float32)


def pool(
    pooling: str,
    params,
    ys: jax.Array,
    lengths: Optional[jax.Array] = None,
    *,
    bidirectional: bool = False,
    forward_size: Optional[int] = None,
) -> jax.Array:
    """Pools ``ys: (*batch, T, D)`` over each sequence's valid steps (see the module docstring).

    Args:
      pooling: ``"last"``, ``"mean"``, ``"max"`` or ``"attention"`` (which reads
        ``params["attention"]``).
      params: the classifier's parameters.
      ys: the top layer's outputs.
      lengths: ``(*batch,)`` valid lengths (``None``: all ``T``).
      bidirectional: ``ys`` is the forward outputs (first ``forward_size`` features) concatenated
        with the backward ones; ``"last"`` then takes the backward summary at step 0.
      forward_size: the forward direction's size (the top cell's hidden size).
    """
    if pooling == "last":
        if not bidirectional:
            return last_valid(ys, lengths)
        # The backward direction read the sentence from its end to step 0: its summary of the
        # whole sentence sits at step 0, the forward one's at the last valid step.
        fwd, bwd = ys[..., :forward_size], ys[..., forward_size:]
        return jnp.concatenate([last_valid(fwd, lengths), bwd[..., 0, :]], axis=-1)
    mask = valid_mask(lengths, ys.shape[:-2], ys.shape[-2])[..., None]  # (*batch, T, 1)
    count = jnp.sum(mask, axis=-2).astype(ys.dtype)  # (*batch, 1)
    if pooling == "mean":
        # The driver already zeroes outputs past each length; the mask keeps this correct for
        # any ``ys`` handed in.
        total = jnp.sum(jnp.where(mask, ys, jnp.zeros_like(ys)), axis=-2)
        return total / jnp.maximum(count, jnp.ones_like(count))
    if pooling == "max":
        lowest = jnp.finfo(ys.dtype).min
        peak = jnp.max(jnp.where(mask, ys, lowest), axis=-2)
        return jnp.where(count > 0, peak, jnp.zeros_like(peak))
    weights = attention_weights(params["attention"], ys, lengths)
    return jnp.einsum("...t,...td->...d", weights.astype(ys.dtype), ys)


def sequence_classifier(
    cell_or_cells: Union[Cell, Sequence[Cell]],
    vocab_size: int,
    num_classes: int,
    *,
    embed_size: int,
    num_layers: Optional[int] = None,
    bidirectional: bool = False,
    pooling: str = "last",
    attention_size: Optional[int] = None,
    mlp_hidden: Sequence[int] = (),
    mlp_activation: str = "relu",
    dropout: float = 0.0,
    variational: bool = False,
    word_dropout: float = 0.0,
    unk_id: Optional[int] = None,
    encoder_dropout: float = 0.0,
    init_scale: float = 0.1,
    param_dtype=jnp.float32,
) -> Model:
    """Builds a recurrent sequence classifier from any cell(s).

    Args:
      cell_or_cells: one cell (repeated ``num_layers`` times) or one cell per layer.
      vocab_size: V.
      num_classes: C, the number of logits.
      embed_size: D_e, the size of the word vectors.
      num_layers: depth of the stack when one cell is given (default 1).
      bidirectional: each layer runs forwards and backwards (within each sequence's length) and
        concatenates the two outputs.
      pooling: ``"last"``, ``"mean"``, ``"max"`` or ``"attention"`` (see the module docstring).
        Sequences must have ``length >= 1``; a length-0 row pools to zeros.
      attention_size: A, the size of the attention's hidden layer (default: D).
      mlp_hidden: sizes of the head's hidden layers; ``()`` is a linear classifier on the pooled
        vector.
      mlp_activation: ``"relu"``, ``"tanh"`` or ``"gelu"`` for the hidden layers.
      dropout: rate on the embedding output, between layers and before each dense layer.
      variational: one dropout mask per sequence for the per-step dropouts (Gal & Ghahramani 2016).
      word_dropout: probability of dropping each token when training (see the module docstring).
      unk_id: the ``<unk>`` id that dropped tokens become; ``None`` zeroes their embeddings.
      encoder_dropout: rate on the top layer's outputs ``(*batch, T, D)`` before pooling (a fresh
        mask per step and unit); 0 leaves them as they are.
      init_scale: the embedding starts ``U(-s, s)``; load pretrained vectors with
        :func:`init_embedding_from`.
      param_dtype: dtype of the embedding, attention and head parameters.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> from seqjax.models.classifier import sequence_classifier
      >>> model = sequence_classifier(seqjax.cells.lstm(8), 30, 2, embed_size=6,
      ...                             bidirectional=True, pooling="attention", mlp_hidden=(16,))
      >>> params = model.init(jax.random.key(0))
      >>> tokens, lengths = jnp.ones((3, 7), jnp.int32), jnp.array([7, 4, 1])
      >>> logits, _ = model.apply(params, tokens, lengths=lengths)
      >>> logits.shape
      (3, 2)
    """
    cells = stack_of(cell_or_cells, num_layers)
    if pooling not in POOLINGS:
        raise ValueError(f"pooling={pooling!r}: choose one of {', '.join(POOLINGS)}")
    if mlp_activation not in ACTIVATIONS:
        raise ValueError(
            f"mlp_activation={mlp_activation!r}: choose one of {', '.join(ACTIVATIONS)}"
        )
    dropout = check_rate("dropout", dropout)
    word_dropout = check_rate("word_dropout", word_dropout)
    encoder_dropout = check_rate("encoder_dropout", encoder_dropout)
    if isinstance(init_scale, bool) or not (
        isinstance(init_scale, (int, float)) and 0 < init_scale < float("inf")
    ):
        raise ValueError(f"init_scale={init_scale!r}: must be a positive number, e.g. 0.1")
    if unk_id is not None and not 0 <= unk_id < vocab_size:
        raise ValueError(f"unk_id={unk_id!r}: must be a token id in [0, {vocab_size})")
    layer = rnn(cells, bidirectional=bidirectional, dropout_rate=dropout, variational=variational)
    D = layer.output_size
    H_last = cells[-1].hidden_size
    A = attention_size or D
    act = ACTIVATIONS[mlp_activation]
    dense_init = jax.nn.initializers.lecun_normal()
    sizes = [D, *mlp_hidden, num_classes]

    def init(key):
        k_embed, k_rnn, k_attn, k_q, k_head = jax.random.split(key, 5)
        head_keys = jax.random.split(k_head, len(sizes) - 1)
        dense = [
            {"w": dense_init(k, (m, n), param_dtype), "b": jnp.zeros((n,), param_dtype)}
            for k, m, n in zip(head_keys, sizes[:-1], sizes[1:])
        ]
        params = {
            "embed": jax.random.uniform(
                k_embed, (vocab_size, embed_size), param_dtype, -init_scale, init_scale
            ),
            "rnn": layer.init(k_rnn, embed_size),
            "mlp": dense[:-1],
            "out": dense[-1],
        }
        if pooling == "attention":
            params["attention"] = {
                "w": dense_init(k_attn, (D, A), param_dtype),
                "b": jnp.zeros((A,), param_dtype),
                "query": jax.random.normal(k_q, (A,), param_dtype) * A**-0.5,
            }
        return params

    def features(
        params, tokens, carry=None, *, lengths=None, key=None, train=False, embed_delta=None
    ):
        tokens = jnp.asarray(tokens)
        drop = train and (dropout > 0.0 or word_dropout > 0.0)
        if drop and key is None:
            raise ValueError("train=True with dropout needs a PRNG key: apply(..., key=key)")
        k_word, k_in, k_rnn = jax.random.split(key, 3) if drop else (None,) * 3
        dropped = None
        if drop and word_dropout > 0.0:
            dropped = jax.random.bernoulli(k_word, word_dropout, tokens.shape)
            if unk_id is not None:
                tokens = jnp.where(dropped, unk_id, tokens)
        xs = params["embed"][tokens]  # (*batch, T, D_e)
        if dropped is not None and unk_id is None:
            xs = jnp.where(dropped[..., None], jnp.zeros_like(xs), xs)
        if embed_delta is not None:  # a perturbation of the word vectors (adversarial training)
            xs = xs + embed_delta.astype(xs.dtype)
        if drop and dropout > 0.0:
            xs = dropout_fn(k_in, xs, dropout, variational=variational)
        return layer.apply(params["rnn"], xs, carry, lengths=lengths, key=k_rnn, train=drop)

    def readout(params, ys, *, lengths=None, key=None, train=False):
        drop = train and (dropout > 0.0 or encoder_dropout > 0.0)
        if drop and key is None:
            raise ValueError("train=True with dropout needs a PRNG key: apply(..., key=key)")
        if drop and encoder_dropout > 0.0:  # its own stream: the other masks stay as without it
            ys = dropout_fn(jax.random.fold_in(key, 1), ys, encoder_dropout)
        s = pool(pooling, params, ys, lengths, bidirectional=bidirectional, forward_size=H_last)
        head_keys = jax.random.split(key, len(sizes) - 1) if drop else [None] * len(sizes)
        for i, dense in enumerate([*params["mlp"], params["out"]]):
            if drop and dropout > 0.0:
                s = dropout_fn(head_keys[i], s, dropout)  # a fresh mask per unit
            s = s.astype(dense["w"].dtype) @ dense["w"] + dense["b"]
            if i < len(params["mlp"]):
                s = act(s)
        return s

    def apply(params, tokens, carry=None, *, lengths=None, key=None, train=False, embed_delta=None):
        drop = train and (dropout > 0.0 or word_dropout > 0.0 or encoder_dropout > 0.0)
        if drop and key is None:
            raise ValueError("train=True with dropout needs a PRNG key: apply(..., key=key)")
        k_enc, k_head = jax.random.split(key) if drop else (None, None)
        ys, carry = features(
            params, tokens, carry, lengths=lengths, key=k_enc, train=train, embed_delta=embed_delta
        )
        return readout(params, ys, lengths=lengths, key=k_head, train=train), carry

    def initial_carry(params, batch_shape=()):
        return layer.initial_carry(params["rnn"], batch_shape)

    def top(params, tokens, *, lengths=None):
        return layer.top(params["rnn"], params["embed"][jnp.asarray(tokens)], lengths=lengths)

    return Model(
        init,
        initial_carry,
        features,
        readout,
        apply,
        None if bidirectional else top,
        vocab_size,
        num_classes,
        D,
    )


def init_embedding_from(params, vectors, rows_present):
    """Returns ``params`` with pretrained word vectors copied into ``params["embed"]``.

    Rows not present (words the pretrained file lacks) keep their random initialisation. Reading
    a GloVe/word2vec file is I/O and belongs in ``seqjax.data``; this takes the array. To keep the
    vectors fixed, mask the embedding out of the optimizer (``optax.masked``).

    Args:
      params: a model's parameters with an ``"embed"`` matrix ``(V, D_e)``.
      vectors: ``(V, D_e)`` array-like (with ``rows_present`` a boolean ``(V,)`` mask), or
        ``(N, D_e)`` (with ``rows_present`` ``N`` integer row ids).
      rows_present: which vocabulary rows ``vectors`` provides (boolean mask or integer ids).

    Example:
      >>> import jax.numpy as jnp, numpy as np
      >>> params = {"embed": jnp.zeros((4, 2))}
      >>> new = init_embedding_from(params, np.ones((4, 2)), np.array([True, False, True, False]))
      >>> new["embed"][:, 0].tolist()
      [1.0, 0.0, 1.0, 0.0]
    """
    embed = params["embed"]
    V, D = embed.shape
    vectors, rows = np.asarray(vectors), np.asarray(rows_present)
    if rows.dtype == bool:
        if rows.shape != (V,) or vectors.shape != (V, D):
            raise ValueError(
                f"vectors.shape={vectors.shape}, rows_present.shape={rows.shape}: with a boolean "
                f"mask both must cover the vocabulary, ({V}, {D}) and ({V},)"
            )
        rows = np.flatnonzero(rows)
        vectors = vectors[rows]
    elif vectors.shape != (len(rows), D) or rows.ndim != 1:
        raise ValueError(
            f"vectors.shape={vectors.shape}, rows_present.shape={rows.shape}: with row ids, "
            f"vectors must be (len(rows_present), {D})"
        )
    if rows.size and (rows.min() < 0 or rows.max() >= V):
        raise ValueError(f"rows_present: ids must be in [0, {V})")
    return {**params, "embed": embed.at[rows].set(jnp.asarray(vectors, embed.dtype))}


__all__ = [
    "POOLINGS",
    "pool",
    "SequenceClassifier",
    "attention_weights",
    "init_embedding_from",
    "sequence_classifier",
]
