"""The sequence classifier: padding never matters, pooling agrees with NumPy on the unrolled
outputs, attention ignores padding, gradients are finite, and jit compiles once."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqjax
from seqjax.cells.base import Cell
from seqjax.models import classifier
from seqjax.models.classifier import (
    POOLINGS,
    attention_weights,
    init_embedding_from,
    sequence_classifier,
)

V, C, E, H, B, T = 13, 3, 4, 5, 4, 7
LENGTHS = jnp.array([7, 4, 1, 5])
CASES = [(p, bi) for p in POOLINGS for bi in (False, True)]
IDS = [f"{p}-{'bi' if bi else 'uni'}" for p, bi in CASES]


def build(pooling, bidirectional, **kw):
    model = sequence_classifier(
        seqjax.cells.gru(H),
        V,
        C,
        embed_size=E,
        num_layers=2,
        bidirectional=bidirectional,
        pooling=pooling,
        mlp_hidden=(6,),
        **kw,
    )
    params = model.init(jax.random.key(0))
    # Non-zero biases, so that a padded step that leaked through could not hide behind a zero.
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    params = tree.unflatten(
        [a + 0.1 * jax.random.normal(k, a.shape, a.dtype) for a, k in zip(leaves, keys)]
    )
    return model, params


def tokens_of(key, T=T):
    return jax.random.randint(jax.random.key(key), (B, T), 0, V)


@pytest.mark.parametrize("pooling,bidirectional", CASES, ids=IDS)
def test_padding_is_irrelevant(pooling, bidirectional):
    model, params = build(pooling, bidirectional)
    # jitted: one compilation per shape instead of many eager op dispatches
    apply = jax.jit(lambda p, t, n: model.apply(p, t, lengths=n)[0])
    tokens = tokens_of(2)
    logits = apply(params, tokens, LENGTHS)
    # Change every padded token and append more (random) padding: the logits must not move.
    noise = tokens_of(3, T + 5)
    valid = jnp.arange(T + 5) < LENGTHS[:, None]
    padded = jnp.where(valid, jnp.pad(tokens, ((0, 0), (0, 5))), noise)
    np.testing.assert_allclose(apply(params, padded, LENGTHS), logits, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pooling,bidirectional", [("last", True), ("attention", False)])
def test_a_row_alone_without_lengths_matches_its_row_in_the_batch(pooling, bidirectional):
    model, params = build(pooling, bidirectional)
    tokens = tokens_of(2)
    logits, _ = model.apply(params, tokens, lengths=LENGTHS)
    for b in (1, 2):  # lengths 4 and 1
        alone, _ = model.apply(params, tokens[b : b + 1, : int(LENGTHS[b])])  # lengths=None
        np.testing.assert_allclose(alone[0], logits[b], rtol=1e-5, atol=1e-5)


def numpy_pool(pooling, ys, lengths, H_last, bidirectional, attn=None):
    """Pooling over the valid prefix of each row, one row at a time."""
    out = []
    for y, n in zip(np.asarray(ys), np.asarray(lengths)):
        v = y[:n]
        if pooling == "last":
            out.append(np.concatenate([v[-1, :H_last], v[0, H_last:]]) if bidirectional else v[-1])
        elif pooling == "mean":
            out.append(v.mean(0))
        elif pooling == "max":
            out.append(v.max(0))
        else:
            s = np.tanh(v @ attn["w"] + attn["b"]) @ attn["query"]
            a = np.exp(s - s.max())
            out.append((a / a.sum()) @ v)
    return np.stack(out)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_pooling_equals_numpy_over_valid_steps(bidirectional):
    # The encoder does not depend on the pooling: unroll once, pool every way.
    model, params = build("attention", bidirectional)
    ys, _ = model.features(params, tokens_of(4), lengths=LENGTHS)
    assert ys.shape == (B, T, model.feature_size)
    attn = jax.tree.map(np.asarray, params["attention"])
    for pooling in POOLINGS:
        pool = functools.partial(
            classifier.pool, pooling, bidirectional=bidirectional, forward_size=H
        )
        ref = numpy_pool(pooling, ys, LENGTHS, H, bidirectional, attn)
        np.testing.assert_allclose(pool(params, ys, LENGTHS), ref, rtol=1e-5, atol=1e-6)
        if pooling != "last":
            # Even non-zero garbage at the padded steps must not enter the pool.
            garbage = jnp.where((jnp.arange(T) < LENGTHS[:, None])[..., None], ys, 100.0)
            np.testing.assert_allclose(pool(params, garbage, LENGTHS), ref, rtol=1e-5, atol=1e-6)


def test_attention_weights_are_zero_at_padding():
    model, params = build("attention", True)
    ys, _ = model.features(params, tokens_of(5), lengths=LENGTHS)
    w = attention_weights(params["attention"], ys + 1.0, LENGTHS)  # padded outputs non-zero
    valid = np.arange(T) < np.asarray(LENGTHS)[:, None]
    assert (np.asarray(w)[~valid] == 0).all()
    assert (np.asarray(w)[valid] > 0).all()
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_gradients_are_finite_and_padding_gets_none(pooling):
    model, params = build(pooling, True, dropout=0.2, word_dropout=0.1)
    tokens, labels = tokens_of(6), jnp.array([0, 1, 2, 1])

    def loss(p):
        logits, _ = model.apply(p, tokens, lengths=LENGTHS, key=jax.random.key(7), train=True)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], -1))

    g = jax.jit(jax.grad(loss))(params)
    assert all(np.isfinite(a).all() for a in jax.tree.leaves(g))
    assert all(np.abs(a).max() > 0 for a in jax.tree.leaves(g))
    # Only word types that occur at valid positions receive embedding gradient.
    used = np.unique(np.asarray(tokens)[np.arange(T) < np.asarray(LENGTHS)[:, None]])
    unused = np.setdiff1d(np.arange(V), used)
    assert (np.asarray(g["embed"])[unused] == 0).all()


def test_jit_does_not_recompile_for_the_same_shapes():
    model, params = build("attention", True, dropout=0.2)
    traces = []

    def f(params, tokens, lengths, key):
        traces.append(1)  # runs only while tracing
        return model.apply(params, tokens, lengths=lengths, key=key, train=True)[0]

    jf = jax.jit(f)
    a = jf(params, tokens_of(8), LENGTHS, jax.random.key(0))
    b = jf(params, tokens_of(9), LENGTHS[::-1], jax.random.key(1))
    assert len(traces) == 1 and a.shape == b.shape == (B, C)


def test_dropout_off_in_eval_on_in_training():
    model, params = build("mean", False, dropout=0.3, word_dropout=0.3)
    plain, _ = build("mean", False)
    tokens = tokens_of(10)
    evaluated, _ = model.apply(params, tokens, lengths=LENGTHS, key=jax.random.key(0))
    np.testing.assert_array_equal(evaluated, plain.apply(params, tokens, lengths=LENGTHS)[0])
    trained, _ = model.apply(params, tokens, lengths=LENGTHS, key=jax.random.key(0), train=True)
    assert not np.allclose(trained, evaluated)
    with pytest.raises(ValueError, match="key"):
        model.apply(params, tokens, lengths=LENGTHS, train=True)


def identity_cell(size):
    """A cell whose output is its input, so ``encode`` shows the (word-dropped) embeddings."""
    recur = lambda params, carry, p: (p, p)
    return Cell(
        init=lambda key, input_size: {"w": jnp.zeros(())},
        initial_carry=lambda params, batch_shape=(): jnp.zeros((*batch_shape, size)),
        step=lambda params, carry, x: recur(params, carry, x),
        project=lambda params, x: x,
        recur=recur,
        hidden_size=size,
        name="identity",
    )


@pytest.mark.parametrize("unk_id", [None, 0])
def test_word_dropout(unk_id):
    rate = 0.4
    model = sequence_classifier(
        identity_cell(E), V, C, embed_size=E, word_dropout=rate, unk_id=unk_id
    )
    params = model.init(jax.random.key(0))
    tokens = jax.random.randint(jax.random.key(1), (200, 30), 1, V)  # no <unk> in the input
    ys = np.asarray(model.features(params, tokens, key=jax.random.key(2), train=True)[0])
    emb = np.asarray(params["embed"])
    kept = (ys == emb[tokens]).all(-1)  # kept words pass unscaled
    replacement = np.zeros(E) if unk_id is None else emb[unk_id]
    dropped = (ys == replacement).all(-1)
    assert (kept ^ dropped).all()  # every token is one or the other
    assert abs(dropped.mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / dropped.size)
    assert (dropped[:, 1:] != dropped[:, :1]).any()  # drawn per token, not per sequence


def test_init_embedding_from_pretrained_vectors():
    model, params = build("last", False)
    rng = np.random.default_rng(0)
    vectors, present = rng.normal(size=(V, E)).astype(np.float32), rng.random(V) < 0.5
    new = init_embedding_from(params, vectors, present)
    np.testing.assert_array_equal(np.asarray(new["embed"])[present], vectors[present])
    np.testing.assert_array_equal(new["embed"][~present], params["embed"][~present])
    assert new["rnn"] is params["rnn"]
    # The same from row ids with only those rows' vectors.
    ids = np.flatnonzero(present)
    np.testing.assert_array_equal(
        init_embedding_from(params, vectors[ids], ids)["embed"], new["embed"]
    )
    with pytest.raises(ValueError, match="vectors.shape"):
        init_embedding_from(params, vectors[:, :2], present)
    with pytest.raises(ValueError, match="ids"):
        init_embedding_from(params, vectors[:1], np.array([V]))


def test_bad_arguments_raise():
    cell = seqjax.cells.gru(H)
    with pytest.raises(ValueError, match="pooling"):
        sequence_classifier(cell, V, C, embed_size=E, pooling="sum")
    with pytest.raises(ValueError, match="unk_id"):
        sequence_classifier(cell, V, C, embed_size=E, unk_id=V)
    for bad in (0.0, -0.1, float("inf"), True):
        with pytest.raises(ValueError, match="init_scale"):
            sequence_classifier(cell, V, C, embed_size=E, init_scale=bad)


@pytest.mark.parametrize("scale", [0.1, 1.0])
def test_init_scale_draws_the_embedding_uniform_in_plus_minus_scale(scale):
    model = sequence_classifier(seqjax.cells.gru(H), 4000, C, embed_size=64, init_scale=scale)
    embed = np.asarray(model.init(jax.random.key(0))["embed"])
    # U(-s, s): bounded by s, mean 0, standard deviation s / sqrt(3) (256,000 draws).
    assert np.abs(embed).max() <= scale and np.abs(embed).max() > 0.999 * scale
    np.testing.assert_allclose(embed.std(), scale / np.sqrt(3), rtol=0.01)
    assert abs(embed.mean()) < 0.01 * scale


@pytest.mark.parametrize("pooling", ["mean", "max", "attention"])
def test_bfloat16_params_run_under_strict_promotion(pooling):
    model, params = build(pooling, False, dropout=0.1, word_dropout=0.1)
    params = jax.tree.map(lambda a: a.astype(jnp.bfloat16), params)
    apply = jax.jit(lambda p, t, n, k: model.apply(p, t, lengths=n, key=k, train=True)[0])
    logits = apply(params, tokens_of(1), LENGTHS, jax.random.key(2))
    assert logits.dtype == jnp.bfloat16 and np.isfinite(np.asarray(logits, np.float32)).all()


def test_encoder_dropout_drops_the_top_outputs_before_pooling():
    rate = 0.4
    # Identity cell, one step, mean pooling and an identity head: the logits are the dropped
    # top-layer outputs themselves.
    model = sequence_classifier(
        identity_cell(E), V, E, embed_size=E, pooling="mean", encoder_dropout=rate
    )
    params = model.init(jax.random.key(0))
    params["out"] = {"w": jnp.eye(E), "b": jnp.zeros(E)}
    tokens = jax.random.randint(jax.random.key(1), (2000, 1), 1, V)
    ys = np.asarray(params["embed"])[np.asarray(tokens)[:, 0]]
    np.testing.assert_allclose(model.apply(params, tokens)[0], ys, rtol=1e-6)  # eval: untouched
    out = np.asarray(model.apply(params, tokens, key=jax.random.key(2), train=True)[0])
    dropped = out == 0.0
    np.testing.assert_allclose(out[~dropped], ys[~dropped] / (1 - rate), rtol=1e-5)
    assert abs(dropped.mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / dropped.size)
    # Off (0), the other dropout masks are exactly those drawn without the option.
    with_option, _ = build("attention", True, dropout=0.3, word_dropout=0.2, encoder_dropout=0.0)
    without, params = build("attention", True, dropout=0.3, word_dropout=0.2)
    tokens, key = tokens_of(3), jax.random.key(4)
    np.testing.assert_array_equal(
        with_option.apply(params, tokens, lengths=LENGTHS, key=key, train=True)[0],
        without.apply(params, tokens, lengths=LENGTHS, key=key, train=True)[0],
    )
    with pytest.raises(ValueError, match="encoder_dropout"):
        build("mean", False, encoder_dropout=1.0)


@pytest.mark.parametrize("variational", [False, True])
def test_variational_dropout_keeps_one_embedding_mask_per_sentence(variational):
    rate = 0.5
    model = sequence_classifier(
        identity_cell(E), V, E, embed_size=E, dropout=rate, variational=variational
    )
    params = model.init(jax.random.key(0))
    tokens = jax.random.randint(jax.random.key(1), (64, 9), 1, V)
    ys = np.asarray(model.features(params, tokens, key=jax.random.key(2), train=True)[0])
    embedded = np.asarray(params["embed"])[np.asarray(tokens)]  # no zeros: U(-0.1, 0.1) draws
    dropped = ys == 0.0
    np.testing.assert_allclose(ys[~dropped], embedded[~dropped] / (1 - rate), rtol=1e-6)
    # Variational: a feature is dropped at every step of a sentence or at none.
    same_over_time = (dropped == dropped[:, :1]).all()
    assert same_over_time == variational
    assert abs(dropped.mean() - rate) < 0.1
