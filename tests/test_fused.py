"""``unroll(..., backend="fused")`` (``seqjax.cells.fused``) for the LSTM, GRU and Elman cells,
against a Python loop over ``cell.step``, autodiff of the ``lax.scan`` backend, ``jax.jvp`` of
each form's step, and finite differences in float64 (``check_grads``, forward and reverse)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import seqjax
from seqjax.cells import fused

B, T, I, H = 3, 9, 4, 5
CELLS = {
    "lstm": lambda: seqjax.cells.lstm(H),
    "gru": lambda: seqjax.cells.gru(H),
    "elman": lambda: seqjax.cells.elman(H),
    "elman-relu": lambda: seqjax.cells.elman(H, activation="relu"),
}


@pytest.fixture
def f64():
    with jax.enable_x64(True):
        yield


def setup(name, dtype=jnp.float32, batch=(B,)):
    cell = CELLS[name]()
    params = jax.tree.map(lambda a: a.astype(dtype), cell.init(jax.random.key(0), I))
    # non-zero biases (GRU's b_hn too), so that a bias in the wrong place shows
    keys = iter(jax.random.split(jax.random.key(3), len(params)))
    params = {k: v + 0.3 * jax.random.normal(next(keys), v.shape, dtype) for k, v in params.items()}
    xs = jax.random.normal(jax.random.key(1), (*batch, T, I)).astype(dtype)
    carry = jax.tree.map(
        lambda a: 0.5 * jax.random.normal(jax.random.key(2), a.shape, dtype),
        cell.initial_carry(params, batch),
    )
    return cell, params, xs, carry


def loss(cell, backend, lengths=None, reverse=False, hoist=None):
    def f(params, xs, carry):
        ys, c = seqjax.unroll(
            cell, params, xs, carry, lengths=lengths, reverse=reverse, backend=backend, hoist=hoist
        )
        leaves = jax.tree.leaves(c)
        return jnp.sum(jnp.sin(3 * ys)) + sum(jnp.sum(jnp.cos(a) * a) for a in leaves)

    return f


@pytest.mark.parametrize("name", CELLS)
def test_forward_equals_python_loop_over_step(name):
    cell, params, xs, carry = setup(name)
    ys, c = seqjax.unroll(cell, params, xs, carry, backend="fused")
    ref_c, ref = carry, []
    for t in range(T):
        ref_c, y = cell.step(params, ref_c, xs[:, t])
        ref.append(y)
    np.testing.assert_allclose(ys, jnp.stack(ref, 1), rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(c), jax.tree.leaves(ref_c), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", CELLS)
def test_each_tangent_is_the_jvp_of_its_step(name, f64):
    """The hand-derived linearisation (``Form.tangent`` with ``Form.coefs``) against ``jax.jvp``
    of ``Form.step``, at a random point and random tangents."""
    cell, params, _, carry = setup(name, jnp.float64)
    form = cell.fused
    G = params["w_h"].shape[-1]
    k = iter(jax.random.split(jax.random.key(7), 8))
    p, a, dp, da = (jax.random.normal(next(k), (B, G), jnp.float64) for _ in range(4))
    dcarry = jax.tree.map(lambda c: jax.random.normal(next(k), c.shape, c.dtype), carry)
    new, dnew = jax.jvp(form.step, (carry, p, a), (dcarry, dp, da))
    got = form.tangent(form.coefs(carry, p, a, new), carry, dcarry, dp, da)
    for x, want in zip(jax.tree.leaves(got), jax.tree.leaves(dnew), strict=True):
        np.testing.assert_allclose(x, want, rtol=1e-12, atol=1e-12)


OPTIONS = [  # (hoist, reverse, with_lengths)
    (False, False, False),
    (True, False, True),
    (False, True, True),
    (True, True, False),
]


@pytest.mark.parametrize("hoist, reverse, with_lengths", OPTIONS)
@pytest.mark.parametrize("name", CELLS)
def test_values_and_gradients_equal_the_scan_backend(f64, name, hoist, reverse, with_lengths):
    cell, params, xs, carry = setup(name, jnp.float64)
    lengths = jnp.array([T, 4, 0]) if with_lengths else None
    args = (params, xs, carry)
    a = jax.value_and_grad(loss(cell, "sequential", lengths, reverse), argnums=(0, 1, 2))(*args)
    f = loss(cell, "fused", lengths, reverse, hoist)
    b = jax.value_and_grad(f, argnums=(0, 1, 2))(*args)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("name, hoist", [("lstm", False), ("gru", True), ("elman", False)])
def test_derivatives_match_finite_differences(f64, name, hoist):
    """Forward and reverse mode against central differences (second order: the hessian in
    tests/test_transformations.py)."""
    cell, params, xs, carry = setup(name, jnp.float64, batch=(2, 2))
    lengths = jnp.array([[T, 5], [1, 7]])
    f = loss(cell, "fused", lengths, hoist=hoist)
    check_grads(jax.jit(f), (params, xs, carry), order=1, modes=["fwd", "rev"])


@pytest.mark.parametrize("name", ["lstm", "gru", "elman"])
def test_padding_is_irrelevant_and_unbatched_works(name):
    cell, params, xs, _ = setup(name)
    lengths = jnp.array([6, 2, 9])
    ys, c = seqjax.unroll(cell, params, xs, lengths=lengths, backend="fused")
    garbage = xs.at[:, 6:].set(1e3)
    ys2, c2 = seqjax.unroll(
        cell, params, garbage.at[1, 2:].set(-7.0), lengths=lengths, backend="fused"
    )
    np.testing.assert_array_equal(ys[:2], ys2[:2])
    for a, b in zip(jax.tree.leaves(c), jax.tree.leaves(c2), strict=True):
        np.testing.assert_array_equal(a[:2], b[:2])
    assert bool((ys[1, 2:] == 0).all())
    y1, _ = seqjax.unroll(cell, params, xs[0], backend="fused")
    y0, _ = seqjax.unroll(cell, params, xs[0], backend="sequential")
    np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_bfloat16_parameters_compute_gates_and_carry_in_float32(name):
    """bfloat16 matmul operands with float32 accumulation and gate math: closer to the float32
    result than the scan that runs every operation in bfloat16; outputs in the parameters' dtype."""
    cell, p32, xs32, c32 = setup(name)
    cast = lambda t: jax.tree.map(lambda a: a.astype(jnp.bfloat16), t)  # noqa: E731
    pb, xb, cb = cast(p32), cast(xs32), cast(c32)
    ys, c = seqjax.unroll(cell, pb, xb, cb, backend="fused")
    assert ys.dtype == jnp.bfloat16 and all(a.dtype == jnp.bfloat16 for a in jax.tree.leaves(c))
    f32 = lambda t: jax.tree.map(lambda a: a.astype(jnp.float32), t)  # noqa: E731
    exact, _ = seqjax.unroll(cell, f32(pb), f32(xb), f32(cb), backend="sequential")
    scan, _ = seqjax.unroll(cell, pb, xb, cb, backend="sequential")
    err = lambda y: float(jnp.mean(jnp.abs(y.astype(jnp.float32) - exact)))  # noqa: E731
    assert err(ys) < err(scan) and err(ys) < 1e-2
    g = jax.grad(lambda p: jnp.sum(seqjax.unroll(cell, p, xb, backend="fused")[0]))(pb)
    assert all(a.dtype == jnp.bfloat16 and bool(jnp.isfinite(a).all()) for a in g.values())


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(resets=jnp.zeros((B, T), bool)), "resets"),
        (dict(return_carries=True), "return_carries"),
        (dict(remat=True), "remat"),
        (dict(unroll=2, remat=True), "remat, unroll"),
    ],
)
def test_unsupported_options_name_themselves(kw, words):
    cell, params, xs, _ = setup("lstm")
    with pytest.raises(ValueError, match=words):
        seqjax.unroll(cell, params, xs, backend="fused", **kw)


@pytest.mark.parametrize("cell", [seqjax.cells.gru(H, reset_after=False), seqjax.cells.mingru(H)])
def test_cells_without_a_fused_form_say_so(cell):
    params = cell.init(jax.random.key(0), I)
    with pytest.raises(ValueError, match=f"'{cell.name}' has no fused form"):
        seqjax.unroll(cell, params, jnp.ones((B, T, I)), backend="fused")


def test_only_the_lstm_offers_cudnn():
    offers = {n: CELLS[n]().fused.cudnn_lstm is not None for n in CELLS}
    assert offers == {"lstm": True, "gru": False, "elman": False, "elman-relu": False}
    assert isinstance(seqjax.cells.lstm(2).fused, fused.Form)
