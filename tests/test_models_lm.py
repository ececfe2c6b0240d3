"""The language model against independent references: NumPy recurrences, a Python loop over
``cell.step``, NumPy log-softmax, and models whose logits the test controls."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqjax
from seqjax.cells.base import Cell
from seqjax.models.lm import language_model, sample
from seqjax.models.losses import cross_entropy as nll

V, E, H, B, T = 11, 4, 4, 3, 6


def tokens_of(key, shape=(B, T)):
    return jax.random.randint(jax.random.key(key), shape, 0, V)


def perturbed(params, scale=0.1):
    """Non-zero biases everywhere, so that no term of the reference hides behind a zero."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(99), len(leaves))
    return tree.unflatten(
        [a + scale * jax.random.normal(k, a.shape, a.dtype) for a, k in zip(leaves, keys)]
    )


def identity_cell(size):
    """A cell whose output is its input: the model's dropout masks become visible in its output."""

    def recur(params, carry, p):
        del params, carry
        return p, p

    return Cell(
        init=lambda key, input_size: {"w": jnp.zeros(())},
        initial_carry=lambda params, batch_shape=(): jnp.zeros((*batch_shape, size)),
        step=lambda params, carry, x: recur(params, carry, x),
        project=lambda params, x: x,
        recur=recur,
        hidden_size=size,
        name="identity",
    )


def test_forward_equals_numpy_elman_stack():
    model = language_model(seqjax.cells.elman(H), V, embed_size=E, num_layers=2)
    params = perturbed(model.init(jax.random.key(0)))
    tokens = tokens_of(1)
    logits, carry = model.apply(params, tokens)

    # Independent reference: embedding lookup, then h = tanh(x W_x + h W_h + b) layer by layer.
    p = jax.tree.map(np.asarray, params)
    xs = p["embed"][np.asarray(tokens)]
    finals = []
    for layer in p["rnn"]:
        h, ys = np.zeros((B, H), np.float32), []
        for t in range(T):
            h = np.tanh(xs[:, t] @ layer["w_x"] + h @ layer["w_h"] + layer["b"])
            ys.append(h)
        xs = np.stack(ys, 1)
        finals.append(h)
    ref = xs @ p["out"]["w"] + p["out"]["b"]
    np.testing.assert_allclose(logits, ref, rtol=1e-5, atol=1e-5)
    for c, r in zip(carry, finals):
        np.testing.assert_allclose(c, r, rtol=1e-5, atol=1e-5)


def test_forward_equals_python_loop_over_lstm_steps_tied():
    cells = [seqjax.cells.lstm(6), seqjax.cells.lstm(E)]  # different sizes per layer
    model = language_model(cells, V, embed_size=E, tie_embeddings=True)
    params = perturbed(model.init(jax.random.key(0)))
    tokens = tokens_of(2)
    logits, _ = model.apply(params, tokens)

    xs = params["embed"][tokens]
    for cell, p in zip(cells, params["rnn"]):
        c, ys = cell.initial_carry(p, (B,)), []
        for t in range(T):
            c, y = cell.step(p, c, xs[:, t])
            ys.append(y)
        xs = jnp.stack(ys, 1)
    ref = xs @ params["embed"].T + params["out"]["b"]
    np.testing.assert_allclose(logits, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", [seqjax.cells.lstm(H), seqjax.cells.gru(H)], ids=["lstm", "gru"])
def test_carry_across_windows_equals_one_long_pass(cell):
    model = language_model(cell, V, embed_size=E, num_layers=2, dropout=0.5)
    params = model.init(jax.random.key(0))
    tokens = tokens_of(3, (B, 2 * T))
    full, carry_full = model.apply(params, tokens)
    first, carry = model.apply(params, tokens[:, :T])
    second, carry = model.apply(params, tokens[:, T:], jax.lax.stop_gradient(carry))
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), full, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), carry, carry_full)


def test_tied_embeddings_share_one_matrix_and_collect_both_gradients():
    tied = language_model(seqjax.cells.gru(E), V, embed_size=E, tie_embeddings=True)
    untied = language_model(seqjax.cells.gru(E), V, embed_size=E)
    params = perturbed(tied.init(jax.random.key(0)))
    assert "w" not in params["out"]
    # The same model untied, with the output matrix a separate copy of E^T.
    params_u = {**params, "out": {**params["out"], "w": params["embed"].T}}
    tokens, targets = tokens_of(4), tokens_of(5)

    loss = lambda model: lambda p: nll(model.apply(p, tokens)[0], targets)
    np.testing.assert_allclose(loss(tied)(params), loss(untied)(params_u), rtol=1e-6)
    g = jax.grad(loss(tied))(params)
    g_u = jax.grad(loss(untied))(params_u)
    # d/dE of the tied loss = the input path's gradient + the output path's gradient (transposed).
    np.testing.assert_allclose(g["embed"], g_u["embed"] + g_u["out"]["w"].T, rtol=1e-5, atol=1e-7)
    assert np.abs(g_u["embed"]).max() > 0 and np.abs(g_u["out"]["w"]).max() > 0


def test_tying_needs_matching_sizes():
    with pytest.raises(ValueError, match="embed_size"):
        language_model(seqjax.cells.lstm(8), V, embed_size=5, tie_embeddings=True)


def test_dropout_is_off_in_eval_and_needs_a_key_in_training():
    model = language_model(seqjax.cells.lstm(H), V, embed_size=E, dropout=0.5, embed_dropout=0.3)
    params = model.init(jax.random.key(0))
    tokens = tokens_of(6)
    plain = language_model(seqjax.cells.lstm(H), V, embed_size=E).apply(params, tokens)[0]
    evaluated = model.apply(params, tokens, key=jax.random.key(1), train=False)[0]
    np.testing.assert_array_equal(evaluated, plain)
    trained = model.apply(params, tokens, key=jax.random.key(1), train=True)[0]
    assert not np.allclose(trained, plain)
    with pytest.raises(ValueError, match="key"):
        model.apply(params, tokens, train=True)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_dropout_mask_statistics(num_layers):
    """Through identity cells the output is the embedding times every mask on the path: the
    embedding output's, one between each pair of layers, and the readout's."""
    rate, n_masks = 0.3, num_layers + 1
    model = language_model(identity_cell(E), V, embed_size=E, num_layers=num_layers, dropout=rate)
    params = model.init(jax.random.key(0))
    tokens = tokens_of(7, (64, 50))
    hs, _ = model.features(params, tokens, key=jax.random.key(8), train=True)
    emb = params["embed"][tokens]
    kept = np.asarray(hs != 0)
    p_keep = (1 - rate) ** n_masks
    # 12800 Bernoulli(p_keep) draws: 5 standard deviations.
    assert abs(kept.mean() - p_keep) < 5 * np.sqrt(p_keep * (1 - p_keep) / kept.size)
    np.testing.assert_allclose(hs[kept], (emb / (1 - rate) ** n_masks)[kept], rtol=1e-5)
    # A fresh mask per step: the pattern changes along time.
    assert (kept[:, 1:] != kept[:, :1]).any()


def test_variational_masks_are_shared_across_time():
    rate = 0.5
    model = language_model(
        identity_cell(E), V, embed_size=E, num_layers=2, dropout=rate, variational=True
    )
    params = model.init(jax.random.key(0))
    tokens = tokens_of(9, (64, 20))
    hs, _ = model.features(params, tokens, key=jax.random.key(10), train=True)
    kept = np.asarray(hs != 0)
    assert (kept == kept[:, :1]).all()  # the same units dropped at every step of a sequence
    assert 0 < kept.mean() < 1 and (kept[:, 0] != kept[:1, 0]).any()  # but not across sequences
    emb = params["embed"][tokens]
    np.testing.assert_allclose(hs[kept], (emb / (1 - rate) ** 3)[kept], rtol=1e-5)


def test_embedding_dropout_drops_word_types():
    rate, n_seq = 0.25, 200
    model = language_model(identity_cell(E), V, embed_size=E, embed_dropout=rate)
    params = model.init(jax.random.key(0))
    # Each sequence holds every word type twice, in two different orders.
    keys = jax.random.split(jax.random.key(1), n_seq)
    perm = jax.vmap(lambda k: jax.random.permutation(k, V))(keys)
    tokens = jnp.concatenate([jnp.tile(jnp.arange(V), (n_seq, 1)), perm], axis=1)
    hs, _ = model.features(params, tokens, key=jax.random.key(11), train=True)
    kept = np.asarray((hs != 0).all(-1))  # a whole word vector is dropped or kept
    assert ((hs != 0).any(-1) == kept).all()
    first, second = kept[:, :V], np.take_along_axis(kept[:, :V], np.asarray(perm), axis=1)
    np.testing.assert_array_equal(kept[:, V:], second)  # a word's occurrences share their fate
    assert abs(first.mean() - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / first.size)
    emb = params["embed"][tokens]
    np.testing.assert_allclose(hs[kept], (emb / (1 - rate))[kept], rtol=1e-6)


def log_softmax_np(x):
    x = np.asarray(x, np.float64)
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_nll_equals_numpy():
    logits = 5 * jax.random.normal(jax.random.key(0), (B, T, V))
    targets = tokens_of(1)
    lp = np.take_along_axis(log_softmax_np(logits), np.asarray(targets)[..., None], -1)[..., 0]
    np.testing.assert_allclose(nll(logits, targets), -lp.mean(), rtol=1e-6)
    mask = np.arange(T) < np.array([6, 3, 1])[:, None]
    np.testing.assert_allclose(nll(logits, targets, mask), -lp[mask].mean(), rtol=1e-6)
    assert nll(logits, targets, np.zeros((B, T))) == 0


def test_nll_runs_the_log_softmax_in_float32():
    # Large logits of a big vocabulary in bfloat16: the loss must be that of the bfloat16 values
    # computed in float32 (not a bfloat16 log-sum-exp) and finite.
    logits = (30 * jax.random.normal(jax.random.key(0), (2, 5, 1000))).astype(jnp.bfloat16)
    targets = jax.random.randint(jax.random.key(1), (2, 5), 0, 1000)
    out = nll(logits, targets)
    assert out.dtype == jnp.float32
    lp = np.take_along_axis(
        log_softmax_np(np.asarray(logits.astype(jnp.float32))), np.asarray(targets)[..., None], -1
    )
    np.testing.assert_allclose(out, -lp.mean(), rtol=1e-5)


def controlled_model(scores):
    """A model whose logits are ``scores`` at every step: zero readout matrix, bias = scores."""
    model = language_model(seqjax.cells.gru(H), len(scores), embed_size=E)
    params = model.init(jax.random.key(0))
    params["out"] = {"w": jnp.zeros_like(params["out"]["w"]), "b": jnp.asarray(scores, jnp.float32)}
    return model, params


def test_sample_is_deterministic_for_a_key_and_jittable():
    model = language_model(seqjax.cells.lstm(H), V, embed_size=E)
    params = perturbed(model.init(jax.random.key(0)), 1.0)
    prompt = tokens_of(2, (B, 3))
    gen = jax.jit(functools.partial(sample, model=model, length=20))
    a = gen(params, prompt_tokens=prompt, key=jax.random.key(5))
    b = sample(params, model, prompt, 20, jax.random.key(5))
    c = gen(params, prompt_tokens=prompt, key=jax.random.key(6))
    assert a.shape == (B, 20) and a.dtype == jnp.int32
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_sample_never_leaves_the_top_k():
    scores = np.linspace(0.0, 1.0, V)[np.random.default_rng(0).permutation(V)]
    model, params = controlled_model(scores)
    top3 = set(np.argsort(scores)[-3:].tolist())
    out = sample(params, model, jnp.zeros((50, 1), jnp.int32), 40, jax.random.key(1), top_k=3)
    assert set(np.unique(out).tolist()) == top3  # never outside, and all three get drawn
    # A high temperature flattens the distribution but still cannot leave the top k.
    out = sample(
        params,
        model,
        jnp.zeros((50, 1), jnp.int32),
        40,
        jax.random.key(2),
        top_k=3,
        temperature=100.0,
    )
    assert set(np.unique(out).tolist()) == top3


def test_sample_temperature_scales_the_distribution():
    scores = np.log(np.array([0.1, 0.2, 0.7]))
    model, params = controlled_model(scores)
    out = sample(
        params, model, jnp.zeros((400, 1), jnp.int32), 25, jax.random.key(3), temperature=2.0
    )
    expected = np.exp(scores / 2) / np.exp(scores / 2).sum()
    freq = np.bincount(np.asarray(out).ravel(), minlength=3) / out.size  # 10000 draws
    np.testing.assert_allclose(freq, expected, atol=5 * np.sqrt(0.25 / out.size))


def greedy_loop(model, params, prompt, length):
    """Reference greedy decoding: a Python loop, one ``apply`` per token, carrying the state."""
    apply = jax.jit(model.apply)
    logits, carry = apply(params, prompt)
    out = []
    for _ in range(length):
        tok = jnp.argmax(logits[:, -1], -1)
        out.append(tok)
        logits, carry = apply(params, tok[:, None], carry)
    return jnp.stack(out, 1)


def test_low_temperature_and_top_1_approach_greedy_decoding():
    model = language_model(seqjax.cells.lstm(H), V, embed_size=E, num_layers=2)
    params = perturbed(model.init(jax.random.key(0)), 1.0)
    prompt = tokens_of(4, (B, 3))
    ref = greedy_loop(model, params, prompt, 12)
    for kw in [dict(temperature=1e-6), dict(temperature=0), dict(top_k=1)]:
        out = sample(params, model, prompt, 12, jax.random.key(7), **kw)
        np.testing.assert_array_equal(out, ref, err_msg=str(kw))


def test_bad_arguments_raise():
    cell = seqjax.cells.gru(H)
    with pytest.raises(ValueError, match="dropout"):
        language_model(cell, V, embed_size=E, dropout=1.0)
    with pytest.raises(ValueError, match="num_layers"):
        language_model([cell, cell], V, embed_size=E, num_layers=3)
    model = language_model(cell, V, embed_size=E)
    params = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match="top_k"):
        sample(params, model, jnp.zeros((1, 1), jnp.int32), 3, jax.random.key(0), top_k=V + 1)


def test_bfloat16_params_run_under_strict_promotion():
    model = language_model(
        seqjax.cells.lstm(E),
        V,
        embed_size=E,
        dropout=0.3,
        embed_dropout=0.2,
        variational=True,
        tie_embeddings=True,
    )
    params = jax.tree.map(lambda a: a.astype(jnp.bfloat16), model.init(jax.random.key(0)))
    tokens = tokens_of(1)
    logits, carry = model.apply(params, tokens, key=jax.random.key(1), train=True)
    assert logits.dtype == jnp.bfloat16 and carry[0].h.dtype == jnp.bfloat16
    assert nll(logits, tokens).dtype == jnp.float32 and np.isfinite(nll(logits, tokens))
