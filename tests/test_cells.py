"""Every cell through one table of checks, against a Python loop over ``step``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import seqjax
from seqjax.cells import inits

CELLS = {
    "elman_tanh": lambda h: seqjax.cells.elman(h),
    "elman_relu_irnn": lambda h: seqjax.cells.elman(h, "relu", recurrent_init="identity"),
    "lstm": lambda h: seqjax.cells.lstm(h),
    "lstm_chrono": lambda h: seqjax.cells.lstm(h, chrono_t_max=50),
    "gru": lambda h: seqjax.cells.gru(h),
    "gru_paper": lambda h: seqjax.cells.gru(h, reset_after=False),
}

B, T, I, H = 3, 7, 4, 5


def setup(name, dtype=jnp.float32):
    cell = CELLS[name](H)
    params = jax.tree.map(lambda a: a.astype(dtype), cell.init(jax.random.key(0), I))
    xs = jax.random.normal(jax.random.key(1), (B, T, I)).astype(dtype)
    return cell, params, xs


def loop(cell, params, xs, carry=None):
    """The independent reference: a Python loop over ``step``, one time step at a time."""
    carry = cell.initial_carry(params, xs.shape[:-2]) if carry is None else carry
    ys = []
    for t in range(xs.shape[-2]):
        carry, y = cell.step(params, carry, xs[..., t, :])
        ys.append(y)
    return jnp.stack(ys, -2), carry


def close(a, b, tol=1e-5):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=tol, atol=tol), a, b)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("hoist", [False, True])
def test_unroll_equals_python_loop(name, hoist):
    cell, params, xs = setup(name)
    ys, carry = seqjax.unroll(cell, params, xs, hoist=hoist)
    ys_ref, carry_ref = loop(cell, params, xs)
    close(ys, ys_ref)
    close(carry, carry_ref)


@pytest.mark.parametrize("name", CELLS)
def test_step_is_recur_of_project(name):
    cell, params, xs = setup(name)
    c = jax.tree.map(lambda a: a + 0.3, cell.initial_carry(params, (B,)))
    close(cell.step(params, c, xs[:, 0]), cell.recur(params, c, cell.project(params, xs[:, 0])))


@pytest.mark.parametrize("name", CELLS)
def test_shape_polymorphic_unbatched_and_vmap(name):
    cell, params, xs = setup(name)
    ys, carry = seqjax.unroll(cell, params, xs)
    ys0, carry0 = seqjax.unroll(cell, params, xs[0])  # no batch axis at all
    close(ys0, ys[0])
    ysv, _ = jax.vmap(lambda x: seqjax.unroll(cell, params, x))(xs)
    close(ysv, ys)
    ys2, _ = seqjax.unroll(cell, params, xs.reshape(1, B, T, I))  # two batch axes
    close(ys2[0], ys)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("hoist", [False, True])
def test_lengths_equal_truncated_sequences(name, hoist):
    cell, params, xs = setup(name)
    lengths = jnp.array([T, 3, 1])
    ys, carry = seqjax.unroll(cell, params, xs, lengths=lengths, hoist=hoist)
    for b, L in enumerate(np.asarray(lengths)):
        ys_ref, c_ref = loop(cell, params, xs[b, :L])
        close(ys[b, :L], ys_ref)
        assert (ys[b, L:] == 0).all()
        close(jax.tree.map(lambda a: a[b], carry), c_ref)


@pytest.mark.parametrize("name", CELLS)
def test_padded_inputs_get_zero_gradient(name):
    cell, params, xs = setup(name)
    lengths = jnp.array([T, 3, 1])
    g = jax.grad(lambda x: seqjax.unroll(cell, params, x, lengths=lengths)[0].sum())(xs)
    assert (g[1, 3:] == 0).all() and (g[2, 1:] == 0).all()
    assert (g[0] != 0).any()


@pytest.mark.parametrize("name", CELLS)
def test_reverse_within_lengths(name):
    cell, params, xs = setup(name)
    lengths = jnp.array([T, 4, 2])
    ys, carry = seqjax.unroll(cell, params, xs, lengths=lengths, reverse=True)
    for b, L in enumerate(np.asarray(lengths)):
        ys_ref, c_ref = loop(cell, params, xs[b, :L][::-1])
        close(ys[b, :L], ys_ref[::-1])
        assert (ys[b, L:] == 0).all()
        close(jax.tree.map(lambda a: a[b], carry), c_ref)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("reverse", [False, True])
def test_resets_equal_separate_segments(name, reverse):
    cell, params, xs = setup(name)
    starts = [0, 3, 5]  # segments [0,3) [3,5) [5,7)
    resets = jnp.zeros((B, T), bool).at[:, jnp.array(starts[1:])].set(True)
    ys, _ = seqjax.unroll(cell, params, xs, resets=resets, reverse=reverse)
    for a, b in zip(starts, starts[1:] + [T]):
        seg = xs[:, a:b][:, ::-1] if reverse else xs[:, a:b]
        ys_ref, _ = loop(cell, params, seg)
        close(ys[:, a:b], ys_ref[:, ::-1] if reverse else ys_ref)


@pytest.mark.parametrize("name", CELLS)
def test_return_carries_and_remat(name):
    cell, params, xs = setup(name)
    ys, carry, carries = seqjax.unroll(cell, params, xs, return_carries=True)
    ref = []
    c = cell.initial_carry(params, (B,))
    for t in range(T):
        c, _ = cell.step(params, c, xs[:, t])
        ref.append(c)
    close(carries, jax.tree.map(lambda *a: jnp.stack(a, 1), *ref))
    loss = lambda p, remat: seqjax.unroll(cell, p, xs, remat=remat)[0].sum()
    close(jax.grad(loss)(params, True), jax.grad(loss)(params, False))


@pytest.mark.parametrize("name", CELLS)
def test_gradients_match_finite_differences(name):
    with jax.enable_x64(True):
        cell, params, xs = setup(name, jnp.float64)
        f = lambda p, x: jnp.sum(seqjax.unroll(cell, p, x[:, :3])[0] ** 2)
        check_grads(f, (params, xs), order=1, modes=["rev"], atol=1e-5, rtol=1e-5)
        # Forward mode through the whole sequence needs the scan (the LSTM's default on CPU, the
        # fused backward, is a custom_vjp: tests/test_fused.py).
        f = lambda p, x: jnp.sum(seqjax.unroll(cell, p, x[:, :3], backend="sequential")[0] ** 2)
        check_grads(f, (params, xs), order=1, modes=["fwd"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", CELLS)
def test_jit_does_not_recompile(name):
    cell, params, xs = setup(name)
    traces = []

    @jax.jit
    def run(p, x):
        traces.append(1)
        return seqjax.unroll(cell, p, x)[0]

    run(params, xs)
    run(params, xs + 1.0)
    assert len(traces) == 1


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float64])
def test_dtypes(name, dtype):
    if dtype == jnp.float64:
        with jax.enable_x64(True):
            _check_dtype(name, dtype)
    else:
        _check_dtype(name, dtype)


def _check_dtype(name, dtype):
    cell, params, xs = setup(name, dtype)
    ys, carry = seqjax.unroll(cell, params, xs)
    assert ys.dtype == dtype
    assert all(a.dtype == dtype for a in jax.tree.leaves(carry))
    cell32, p32, x32 = setup(name)
    tol = 5e-2 if dtype == jnp.bfloat16 else 1e-5
    close(ys.astype(jnp.float32), seqjax.unroll(cell32, p32, x32)[0], tol)


# Initialisers ------------------------------------------------------------------------------------


def test_orthogonal_recurrent_blocks():
    p = seqjax.cells.lstm(32).init(jax.random.key(0), 3)
    for g in range(4):
        w = np.asarray(p["w_h"][:, g * 32 : (g + 1) * 32], np.float64)
        np.testing.assert_allclose(w @ w.T, np.eye(32), atol=1e-5)


@pytest.mark.parametrize("rho", [0.5, 0.9, 1.2])
def test_spectral_radius_init_hits_target(rho):
    w = inits.get(f"spectral:{rho}")(jax.random.key(3), (64, 64))
    got = np.max(np.abs(np.linalg.eigvals(np.asarray(w, np.float64))))
    assert abs(got - rho) < 1e-3


def test_identity_and_uniform():
    np.testing.assert_array_equal(inits.get("identity")(None, (4, 4)), np.eye(4))
    w = np.asarray(inits.get("uniform")(jax.random.key(0), (2000, 100)))
    k = 1 / np.sqrt(100)
    assert w.min() >= -k and w.max() <= k and w.max() > 0.95 * k and abs(w.mean()) < 1e-3


def test_forget_bias_lands_on_forget_gate_only():
    p = seqjax.cells.lstm(6, forget_bias=1.0).init(jax.random.key(0), 2)
    np.testing.assert_array_equal(p["b"], np.r_[np.zeros(6), np.ones(6), np.zeros(12)])


def test_chrono_bias():
    p = seqjax.cells.lstm(500, chrono_t_max=100).init(jax.random.key(0), 2)
    b_i, b_f, b_g, b_o = np.split(np.asarray(p["b"]), 4)
    assert np.all(b_f >= 0) and np.all(b_f <= np.log(99) + 1e-6) and b_f.max() > np.log(80)
    np.testing.assert_allclose(b_i, -b_f)
    assert not b_g.any() and not b_o.any()


def test_bad_hyperparameters_name_the_value():
    with pytest.raises(ValueError, match="hidden_size=0"):
        seqjax.cells.lstm(0)
    with pytest.raises(ValueError, match="activation='sigmoid'"):
        seqjax.cells.elman(4, activation="sigmoid")
    with pytest.raises(ValueError, match="cell='lsmt': choose one of"):
        seqjax.cells.get("lsmt", 4)
    with pytest.raises(ValueError, match="initialiser 'ortho'"):
        seqjax.cells.gru(4, recurrent_init="ortho")


def test_recurrent_matrix_formula_by_hand():
    """The LSTM equations recomputed in NumPy for one step."""
    cell = seqjax.cells.lstm(3)
    p = jax.tree.map(np.asarray, cell.init(jax.random.key(5), 2))
    x = np.array([[0.3, -1.2]], np.float32)
    h0 = np.array([[0.1, -0.2, 0.3]], np.float32)
    c0 = np.array([[0.5, 0.0, -0.5]], np.float32)
    sig = lambda v: 1 / (1 + np.exp(-v))
    z = x @ p["w_x"] + h0 @ p["w_h"] + p["b"]
    i, f, g, o = np.split(z, 4, -1)
    c = sig(f) * c0 + sig(i) * np.tanh(g)
    h = sig(o) * np.tanh(c)
    (h_j, c_j), y = cell.step(p, seqjax.cells.LSTMCarry(jnp.asarray(h0), jnp.asarray(c0)), x)
    close((h_j, c_j, y), (h, c, h))


@pytest.mark.parametrize("name", ["lstm", "gru", "elman"])
def test_bfloat16_params_initialise_directly(name):
    """The orthogonal init needs a QR that LAPACK lacks in bfloat16: drawn in float32, then cast."""
    cell = getattr(seqjax.cells, name)(8, param_dtype=jnp.bfloat16)
    params = cell.init(jax.random.key(0), 3)
    assert all(a.dtype == jnp.bfloat16 for a in jax.tree.leaves(params))
    ref = getattr(seqjax.cells, name)(8).init(jax.random.key(0), 3)
    close(jax.tree.map(lambda a: a.astype(jnp.float32), params), ref, 1e-2)
