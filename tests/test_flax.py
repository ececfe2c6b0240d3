"""The Flax wrappers compute what the pure functions compute, with the cell's own parameters."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import seqjax
from seqjax.flax import NNXRNN, RNN

B, T, I, H = 3, 6, 4, 5

WRAPPED = {
    "lstm": lambda: seqjax.cells.lstm(H),
    "gru": lambda: seqjax.cells.gru(H),
    "elman": lambda: seqjax.cells.elman(H),
    "stacked_bidir": lambda: seqjax.layers.rnn(seqjax.cells.gru(H), 2, bidirectional=True),
}
LENGTHS = jnp.array([T, 4, 1])


def close(a, b, tol=1e-6):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=tol, atol=tol), a, b)


def direct(wrapped, params, xs, **kw):
    """The reference: the pure functions, called directly."""
    if isinstance(wrapped, seqjax.layers.SequenceLayer):
        return wrapped.apply(params, xs, **kw)
    return seqjax.unroll(wrapped, params, xs, **kw)


def values(model):
    """The plain-array params pytree of an ``NNXRNN``."""
    is_var = lambda v: isinstance(v, nnx.Variable)
    return jax.tree.map(lambda v: v[...], model.params, is_leaf=is_var)


def recording(wrapped, keys):
    """The same cell/layer, but its ``init`` records the key it was handed."""
    return wrapped._replace(init=lambda k, n: (keys.append(k), wrapped.init(k, n))[1])


class LinenModel(nn.Module):
    """A small linen model: Dense -> seqjax RNN -> Dense."""

    rnn: object

    @nn.compact
    def __call__(self, xs, lengths=None):
        feats = nn.Dense(I, name="embed")(xs)
        ys, carry = RNN(self.rnn, name="rnn")(feats, lengths=lengths)
        return nn.Dense(2, name="head")(ys), feats, ys, carry


class NNXModel(nnx.Module):
    def __init__(self, rnn, *, rngs):
        self.embed = nnx.Linear(I, I, rngs=rngs)
        self.rnn = NNXRNN(rnn, I, rngs=rngs)
        out = rnn.output_size if isinstance(rnn, seqjax.layers.SequenceLayer) else rnn.hidden_size
        self.head = nnx.Linear(out, 2, rngs=rngs)

    def __call__(self, xs, lengths=None):
        feats = self.embed(xs)
        ys, carry = self.rnn(feats, lengths=lengths)
        return self.head(ys), feats, ys, carry


def _xs():
    return jax.random.normal(jax.random.key(1), (B, T, I))


@pytest.mark.parametrize("name", WRAPPED)
def test_linen_matches_direct_call_and_cell_init(name):
    keys = []
    wrapped = recording(WRAPPED[name](), keys)
    model = LinenModel(wrapped)
    xs = _xs()
    variables = model.init(jax.random.key(0), xs)
    params = variables["params"]["rnn"]["cell"]
    assert len(keys) == 1
    close(params, WRAPPED[name]().init(keys[0], I), 0)  # exactly the cell's own init
    _, feats, ys, carry = model.apply(variables, xs, lengths=LENGTHS)
    ys_ref, carry_ref = direct(wrapped, params, feats, lengths=LENGTHS)
    close(ys, ys_ref)
    close(carry, carry_ref)


@pytest.mark.parametrize("name", WRAPPED)
def test_nnx_matches_direct_call_and_cell_init(name):
    keys = []
    wrapped = recording(WRAPPED[name](), keys)
    model = NNXModel(wrapped, rngs=nnx.Rngs(0))
    params = values(model.rnn)
    assert len(keys) == 1
    close(params, WRAPPED[name]().init(keys[0], I), 0)
    xs = _xs()
    _, feats, ys, carry = model(xs, lengths=LENGTHS)
    ys_ref, carry_ref = direct(wrapped, params, feats, lengths=LENGTHS)
    close(ys, ys_ref)
    close(carry, carry_ref)


@pytest.mark.parametrize("name", ["lstm", "stacked_bidir"])
def test_linen_grads_under_jit_equal_direct_grads(name):
    wrapped = WRAPPED[name]()
    model = RNN(wrapped)
    xs = _xs()
    variables = model.init(jax.random.key(0), xs)

    @jax.jit
    def grads(v, x):
        return jax.grad(lambda v: (model.apply(v, x, lengths=LENGTHS)[0] ** 2).sum())(v)

    g = grads(variables, xs)["params"]["cell"]
    p = variables["params"]["cell"]
    g_ref = jax.grad(lambda p: (direct(wrapped, p, xs, lengths=LENGTHS)[0] ** 2).sum())(p)
    close(g, g_ref, 1e-5)
    assert all(bool(jnp.any(leaf != 0)) for leaf in jax.tree.leaves(g))


@pytest.mark.parametrize("name", ["gru", "stacked_bidir"])
def test_nnx_grads_under_jit_equal_direct_grads(name):
    wrapped = WRAPPED[name]()
    model = NNXRNN(wrapped, I, rngs=nnx.Rngs(0))
    xs = _xs()

    @nnx.jit
    def grads(m, x):
        return nnx.grad(lambda m: (m(x, lengths=LENGTHS)[0] ** 2).sum())(m)

    g = nnx.to_pure_dict(grads(model, xs)["params"])  # list indices become int keys, same order
    p = values(model)
    g_ref = jax.grad(lambda p: (direct(wrapped, p, xs, lengths=LENGTHS)[0] ** 2).sum())(p)
    close(jax.tree.leaves(g), jax.tree.leaves(g_ref), 1e-5)
    assert len(jax.tree.leaves(g)) == len(jax.tree.leaves(p))
    # The same through plain jax.jit + jax.grad on the split state.
    graphdef, state = nnx.split(model)
    g2 = jax.jit(jax.grad(lambda s: (nnx.merge(graphdef, s)(xs, lengths=LENGTHS)[0] ** 2).sum()))(
        state
    )
    close(jax.tree.leaves(g2), jax.tree.leaves(g_ref), 1e-5)


def test_resets_and_unroll_kwargs_pass_through():
    cell = seqjax.cells.lstm(H)
    xs = _xs()
    resets = jnp.zeros((B, T), bool).at[:, 3].set(True)
    model = RNN(cell)
    v = model.init(jax.random.key(0), xs)
    p = v["params"]["cell"]
    got = model.apply(v, xs, resets=resets, reverse=True, return_carries=True)
    close(got, seqjax.unroll(cell, p, xs, resets=resets, reverse=True, return_carries=True))
    nmodel = NNXRNN(cell, I, rngs=nnx.Rngs(0))
    p = values(nmodel)
    close(nmodel(xs, resets=resets), seqjax.unroll(cell, p, xs, resets=resets))


def test_dropout_key_passes_through():
    layer = seqjax.layers.rnn(seqjax.cells.gru(H), 2, dropout_rate=0.5)
    xs = _xs()
    model = RNN(layer)
    v = model.init(jax.random.key(0), xs)
    p = v["params"]["cell"]
    k = jax.random.key(7)
    got, _ = model.apply(v, xs, train=True, rngs={"dropout": k})
    # linen derives the key it hands out from ``k``; recover it the same way linen does.
    key = nn.apply(lambda m: m.make_rng("dropout"), model)(v, rngs={"dropout": k})
    close(got, layer.apply(p, xs, key=key, train=True)[0])
    assert not np.allclose(got, layer.apply(p, xs)[0])
    with pytest.raises(ValueError, match="needs a PRNG key"):
        model.apply(v, xs, train=True)
    nmodel = NNXRNN(layer, I, rngs=nnx.Rngs(0))
    pn = values(nmodel)
    close(nmodel(xs, train=True, key=k)[0], layer.apply(pn, xs, key=k, train=True)[0])


def test_not_a_cell_is_a_type_error():
    with pytest.raises(TypeError, match="expected a seqjax Cell"):
        NNXRNN(nn.LSTMCell(4), I, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="expected a seqjax Cell"):
        RNN(nn.LSTMCell(4)).init(jax.random.key(0), _xs())
