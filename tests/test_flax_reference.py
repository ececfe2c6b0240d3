"""An independent reference: Flax linen's own cells, run with ``nn.RNN``, with the weights mapped.

Flax keeps one ``Dense`` per gate (from the installed flax 0.12.8 source):

* ``LSTMCell`` / ``OptimizedLSTMCell``: input denses ``ii, if, ig, io`` without bias, recurrent
  denses ``hi, hf, hg, ho`` with bias; gate order ``i, f, g, o``; carry ``(c, h)``.
* ``GRUCell``: input denses ``ir, iz, in`` with bias, recurrent ``hr, hz`` without and ``hn`` with
  bias (``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``: our ``reset_after=True``).
* ``SimpleCell``: ``i`` with bias, ``h`` without: ``h' = tanh(W_i x + b_i + W_h h)``.

seqjax fuses the gates along the last axis in the same order, so the map is a concatenation; being
linear, it maps Flax's gradients onto ours too.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqjax
from seqjax.cells import LSTMCarry

B, T, I, H = 3, 9, 4, 6
TOL = 1e-5


def _cat(p, names, leaf):
    return jnp.concatenate([p[n][leaf] for n in names], axis=-1)


def lstm_from_flax(p):
    return {
        "w_x": _cat(p, ["ii", "if", "ig", "io"], "kernel"),
        "w_h": _cat(p, ["hi", "hf", "hg", "ho"], "kernel"),
        "b": _cat(p, ["hi", "hf", "hg", "ho"], "bias"),
    }


def gru_from_flax(p):
    return {
        "w_x": _cat(p, ["ir", "iz", "in"], "kernel"),
        "w_h": _cat(p, ["hr", "hz", "hn"], "kernel"),
        "b": _cat(p, ["ir", "iz", "in"], "bias"),
        "b_hn": p["hn"]["bias"],
    }


def elman_from_flax(p):
    return {"w_x": p["i"]["kernel"], "w_h": p["h"]["kernel"], "b": p["i"]["bias"]}


# name: (flax cell, seqjax cell, params map, flax carry -> seqjax carry)
CASES = {
    "lstm": (nn.LSTMCell, seqjax.cells.lstm, lstm_from_flax, lambda c: LSTMCarry(c[1], c[0])),
    "optimized_lstm": (
        nn.OptimizedLSTMCell,
        seqjax.cells.lstm,
        lstm_from_flax,
        lambda c: LSTMCarry(c[1], c[0]),
    ),
    "gru": (nn.GRUCell, lambda h: seqjax.cells.gru(h, reset_after=True), gru_from_flax, None),
    "elman": (nn.SimpleCell, lambda h: seqjax.cells.elman(h, "tanh"), elman_from_flax, None),
}


def setup(name):
    flax_cell, make, to_seqjax, _ = CASES[name]
    model = nn.RNN(flax_cell(H))
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    variables = model.init(jax.random.key(0), xs)
    # Flax initialises biases to zero; random values everywhere make every parameter count.
    leaves, tree = jax.tree.flatten(variables)
    keys = jax.random.split(jax.random.key(2), len(leaves))
    leaves = [0.5 * jax.random.normal(k, a.shape, a.dtype) for k, a in zip(keys, leaves)]
    variables = jax.tree.unflatten(tree, leaves)
    return model, variables, make(H), to_seqjax, xs


def to_seqjax_carry(name, carry):
    convert = CASES[name][3]
    return carry if convert is None else convert(carry)


def valid_mask(lengths):
    return (jnp.arange(T) < lengths[:, None])[..., None]  # (B, T, 1)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_outputs_and_final_carry_match_flax(name, with_lengths, reverse):
    model, variables, cell, to_seqjax, xs = setup(name)
    lengths = jnp.array([T, 5, 1]) if with_lengths else None
    carry_f, ys_f = model.apply(
        variables, xs, seq_lengths=lengths, return_carry=True, reverse=reverse, keep_order=True
    )
    params = to_seqjax(variables["params"]["cell"])
    ys, carry = seqjax.unroll(cell, params, xs, lengths=lengths, reverse=reverse)
    if lengths is not None:
        # Flax leaves whatever the cell computed past a sequence's end; seqjax writes zeros.
        assert (jnp.where(valid_mask(lengths), 0.0, ys) == 0).all()
        ys_f = jnp.where(valid_mask(lengths), ys_f, 0.0)
    np.testing.assert_allclose(ys, ys_f, rtol=TOL, atol=TOL)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL),
        carry,
        to_seqjax_carry(name, carry_f),
    )


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("with_lengths", [False, True])
def test_gradients_match_flax(name, with_lengths):
    """Gradients w.r.t. every weight, the inputs and the initial carry."""
    model, variables, cell, to_seqjax, xs = setup(name)
    lengths = jnp.array([T, 6, 2]) if with_lengths else jnp.full((B,), T)
    mask = valid_mask(lengths)
    w_out = jax.random.normal(jax.random.key(3), (H,))
    zeros, tree = jax.tree.flatten(model.cell.initialize_carry(jax.random.key(4), xs[:, 0].shape))
    keys = jax.random.split(jax.random.key(5), len(zeros))
    flax_carry0 = jax.tree.unflatten(
        tree, [jax.random.normal(k, a.shape) for k, a in zip(keys, zeros)]
    )

    def readout(ys, h_last):
        return jnp.sum(jnp.where(mask, jnp.tanh(ys) * w_out, 0.0)) + jnp.sum(h_last**2)

    def loss_flax(variables, xs, c0):
        carry, ys = model.apply(
            variables, xs, initial_carry=c0, seq_lengths=lengths, return_carry=True
        )
        return readout(ys, to_seqjax_carry(name, carry)[0] if name.endswith("lstm") else carry)

    def loss_seqjax(params, xs, c0):
        ys, carry = seqjax.unroll(cell, params, xs, c0, lengths=lengths)
        return readout(ys, carry.h if name.endswith("lstm") else carry)

    seq_carry0 = to_seqjax_carry(name, flax_carry0)
    params = to_seqjax(variables["params"]["cell"])
    l_f, (g_vars, g_xs_f, g_c0_f) = jax.value_and_grad(loss_flax, (0, 1, 2))(
        variables, xs, flax_carry0
    )
    l_s, (g_params, g_xs, g_c0) = jax.value_and_grad(loss_seqjax, (0, 1, 2))(params, xs, seq_carry0)
    np.testing.assert_allclose(l_s, l_f, rtol=TOL)
    g_mapped = to_seqjax(g_vars["params"]["cell"])
    assert g_mapped.keys() == g_params.keys()
    for k in g_params:
        np.testing.assert_allclose(g_params[k], g_mapped[k], rtol=TOL, atol=TOL, err_msg=k)
    np.testing.assert_allclose(g_xs, g_xs_f, rtol=TOL, atol=TOL)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL),
        g_c0,
        to_seqjax_carry(name, g_c0_f),
    )
    if with_lengths:  # padded inputs get no gradient in either
        assert (g_xs[2, 2:] == 0).all()


def test_parameter_counts_match_flax():
    """The map uses every Flax parameter exactly once (no weight left unmapped)."""
    for name in CASES:
        _, variables, cell, to_seqjax, _ = setup(name)
        n_flax = sum(a.size for a in jax.tree.leaves(variables))
        n_ours = sum(a.size for a in jax.tree.leaves(cell.init(jax.random.key(0), I)))
        n_mapped = sum(a.size for a in jax.tree.leaves(to_seqjax(variables["params"]["cell"])))
        assert n_flax == n_ours == n_mapped, name
