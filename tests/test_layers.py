"""``seqjax.layers.rnn`` against layers composed by hand from ``seqjax.unroll`` and Python loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqjax
from seqjax.layers import dropout, rnn

B, T, I = 3, 8, 4
LENGTHS = jnp.array([T, 5, 2])


def close(a, b, tol=1e-5):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=tol, atol=tol), a, b)


def inputs(size=I, pad_value=None):
    xs = jax.random.normal(jax.random.key(1), (B, T, size))
    if pad_value is not None:  # padding that is not zero, as a tokenizer's pad embedding is not
        xs = jnp.where((jnp.arange(T) < LENGTHS[:, None])[..., None], xs, pad_value)
    return xs


def reverse_by_hand(cell, params, xs, lengths):
    """Each sequence's valid prefix reversed, run forwards on its own, and flipped back."""
    ys = np.zeros((*xs.shape[:-1], cell.hidden_size), np.float32)
    for b, L in enumerate(np.asarray(lengths)):
        y, _ = seqjax.unroll(cell, params, xs[b, :L][::-1])
        ys[b, :L] = np.asarray(y)[::-1]
    return jnp.asarray(ys)


def test_stack_equals_composed_unrolls():
    cells = [seqjax.cells.lstm(5), seqjax.cells.gru(6), seqjax.cells.elman(7)]
    layer = rnn(cells)
    params = layer.init(jax.random.key(0), I)
    xs = inputs()
    ys, carries = layer.apply(params, xs, lengths=LENGTHS)
    h = xs
    for cell, p, c in zip(cells, params, carries):
        h, c_ref = seqjax.unroll(cell, p, h, lengths=LENGTHS)
        close(c, c_ref)
    close(ys, h)
    assert layer.output_size == 7 and ys.shape == (B, T, 7)


def test_stack_passes_initial_carries_and_resets():
    cell = seqjax.cells.lstm(5)
    layer = rnn(cell, num_layers=2)
    params = layer.init(jax.random.key(0), I)
    xs = inputs()
    c0 = jax.tree.map(lambda a: a + 0.5, layer.initial_carry(params, (B,)))
    resets = jnp.zeros((B, T), bool).at[:, 3].set(True)
    ys, _ = layer.apply(params, xs, c0, resets=resets)
    h = xs
    for p, c in zip(params, c0):
        h, _ = seqjax.unroll(cell, p, h, c, resets=resets)
    close(ys, h)


@pytest.mark.parametrize("cell_name", ["lstm", "gru", "elman"])
def test_bidirectional_halves_are_forward_and_reverse_unrolls(cell_name):
    cell = seqjax.cells.get(cell_name, 5)
    layer = rnn(cell, bidirectional=True)
    params = layer.init(jax.random.key(0), I)
    xs = inputs(pad_value=3.0)
    ys, [(c_f, c_b)] = layer.apply(params, xs, lengths=LENGTHS)
    assert ys.shape == (B, T, 10) and layer.output_size == 10
    p = params[0]
    y_f, c_f_ref = seqjax.unroll(cell, p["fwd"], xs, lengths=LENGTHS)
    close(ys[..., :5], y_f)
    close(c_f, c_f_ref)
    close(ys[..., 5:], reverse_by_hand(cell, p["bwd"], xs, LENGTHS))
    # The backward direction's final carry is its carry after reading x_0.
    for b, L in enumerate(np.asarray(LENGTHS)):
        _, c_ref = seqjax.unroll(cell, p["bwd"], xs[b, :L][::-1])
        close(jax.tree.map(lambda a: a[b], c_b), c_ref)


def test_bidirectional_sum_merge():
    cell = seqjax.cells.gru(5)
    layer = rnn(cell, num_layers=2, bidirectional=True, merge="sum")
    params = layer.init(jax.random.key(0), I)
    xs = inputs()
    ys, _ = layer.apply(params, xs, lengths=LENGTHS)
    assert layer.output_size == 5 and ys.shape == (B, T, 5)
    h = xs
    for p in params:
        h = seqjax.unroll(cell, p["fwd"], h, lengths=LENGTHS)[0] + reverse_by_hand(
            cell, p["bwd"], h, LENGTHS
        )
    close(ys, h)


# Dropout -----------------------------------------------------------------------------------------

D = 64


def test_variational_mask_is_shared_across_time():
    x = jnp.ones((16, T, D))
    y = dropout(jax.random.key(0), x, 0.5, variational=True)
    np.testing.assert_array_equal(y, jnp.broadcast_to(y[:, :1], y.shape))
    # ... but differs between sequences and units.
    assert not np.array_equal(y[0, 0], y[1, 0])


def test_fresh_masks_differ_across_time_and_keys():
    x = jnp.ones((16, T, D))
    y = dropout(jax.random.key(0), x, 0.5)
    assert not np.array_equal(y[:, 0], y[:, 1])
    assert not np.array_equal(y, dropout(jax.random.key(1), x, 0.5))
    np.testing.assert_array_equal(y, dropout(jax.random.key(0), x, 0.5))  # same key, same mask


@pytest.mark.parametrize("variational", [False, True])
def test_inverted_scaling_keeps_the_mean(variational):
    rate = 0.3
    x = jnp.ones((256, T, D))
    y = np.asarray(dropout(jax.random.key(0), x, rate, variational=variational))
    assert set(np.unique(y)) == {0.0, np.float32(1 / (1 - rate))}
    dropped = (y == 0).mean()
    # 256*64 (variational) independent draws: standard error ~0.004.
    assert abs(dropped - rate) < 0.02
    assert abs(y.mean() - 1.0) < 0.03


def test_train_false_is_identity_and_train_true_drops_between_layers():
    cell = seqjax.cells.gru(6)
    layer = rnn(cell, num_layers=2, dropout_rate=0.5)
    plain = rnn(cell, num_layers=2)
    params = layer.init(jax.random.key(0), I)
    xs = inputs()
    key = jax.random.key(9)
    ref, _ = plain.apply(params, xs)
    close(layer.apply(params, xs, key=key, train=False)[0], ref, 0)
    close(layer.apply(params, xs)[0], ref, 0)
    train = layer.apply(params, xs, key=key, train=True)[0]
    assert not np.allclose(train, ref)
    close(layer.apply(params, xs, key=key, train=True)[0], train, 0)  # deterministic in the key
    # Never after the last layer: a one-layer stack is unchanged by dropout.
    one = rnn(cell, dropout_rate=0.5)
    close(one.apply(params[:1], xs, key=key, train=True)[0], plain.apply(params[:1], xs)[0], 0)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        layer.apply(params, xs, train=True)


@pytest.mark.parametrize("variational", [False, True])
def test_dropout_between_layers_by_hand(variational):
    """Layer 2 is the identity map, so its output is layer 1's output times the dropout mask."""
    first = seqjax.cells.gru(D)
    identity = seqjax.cells.elman(
        D, "identity", kernel_init="identity", recurrent_init="zeros", bias_init="zeros"
    )
    rate = 0.5
    layer = rnn([first, identity], dropout_rate=rate, variational=variational)
    params = layer.init(jax.random.key(0), I)
    xs = inputs()
    ys, _ = layer.apply(params, xs, key=jax.random.key(3), train=True)
    h1, _ = seqjax.unroll(first, params[0], xs)
    mask = np.asarray(ys / h1)
    np.testing.assert_allclose(np.unique(np.round(mask, 4)), [0.0, 1 / (1 - rate)], atol=1e-4)
    same_over_time = np.allclose(mask, mask[:, :1])
    assert same_over_time == variational


# Residual and padding ----------------------------------------------------------------------------


def test_residual_adds_the_input_where_sizes_match():
    cell = seqjax.cells.lstm(I)
    layer = rnn([cell, cell, seqjax.cells.lstm(3)], residual=True)
    params = layer.init(jax.random.key(0), I)
    xs = inputs()
    ys, _ = layer.apply(params, xs)
    h1 = seqjax.unroll(cell, params[0], xs)[0] + xs
    h2 = seqjax.unroll(cell, params[1], h1)[0] + h1
    h3 = seqjax.unroll(seqjax.cells.lstm(3), params[2], h2)[0]  # 3 != 4: no residual
    close(ys, h3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"bidirectional": True},
        {"bidirectional": True, "merge": "sum"},
        {"residual": True},
        {"residual": True, "bidirectional": True, "merge": "sum"},
        {"dropout_rate": 0.3},
        {"dropout_rate": 0.3, "variational": True, "residual": True},
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "plain",
)
def test_outputs_past_lengths_are_zero_in_every_layer(kwargs):
    cell = seqjax.cells.gru(I)  # hidden == input, so a residual applies in every layer
    params = rnn(cell, num_layers=3, **kwargs).init(jax.random.key(0), I)
    xs = inputs(pad_value=2.0)
    pad = ~(jnp.arange(T) < LENGTHS[:, None])
    for k in (1, 2, 3):  # the output of the first k layers is layer k's output
        layer = rnn(cell, num_layers=k, **kwargs)
        ys, _ = layer.apply(params[:k], xs, lengths=LENGTHS, key=jax.random.key(4), train=True)
        assert (ys[pad] == 0).all(), f"layer {k}"
        assert (ys[~pad] != 0).any()
