"""``unroll(..., backend="fused")``: the LSTM recurrence with a hand-written backward pass
(``seqjax.cells.fused``), against a Python loop over ``cell.step``, the ``lax.scan`` backend's
autodiff, and finite differences (``check_grads`` in float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import seqjax

B, T, I, H = 3, 9, 4, 5


@pytest.fixture
def f64():
    with jax.enable_x64(True):
        yield


def setup(dtype=jnp.float32, batch=(B,), **kw):
    cell = seqjax.cells.lstm(H, **kw)
    params = jax.tree.map(lambda a: a.astype(dtype), cell.init(jax.random.key(0), I))
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
        return jnp.sum(jnp.sin(3 * ys)) + jnp.sum(c.h * c.c) + jnp.sum(jnp.cos(c.c))

    return f


def test_forward_equals_python_loop_over_step():
    cell, params, xs, carry = setup()
    ys, c = seqjax.unroll(cell, params, xs, carry, backend="fused")
    ref_c, ref = carry, []
    for t in range(T):
        ref_c, y = cell.step(params, ref_c, xs[:, t])
        ref.append(y)
    np.testing.assert_allclose(ys, jnp.stack(ref, 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.h, ref_c.h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.c, ref_c.c, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("hoist", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_values_and_gradients_equal_the_scan_backend(f64, reverse, with_lengths, hoist):
    cell, params, xs, carry = setup(jnp.float64)
    lengths = jnp.array([T, 4, 0]) if with_lengths else None
    args = (params, xs, carry)
    a = jax.value_and_grad(loss(cell, "sequential", lengths, reverse), argnums=(0, 1, 2))(*args)
    fused = loss(cell, "fused", lengths, reverse, hoist)
    b = jax.value_and_grad(fused, argnums=(0, 1, 2))(*args)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("hoist", [False, True])
def test_gradients_match_finite_differences(f64, hoist):
    cell, params, xs, carry = setup(jnp.float64, batch=(2, 2))
    lengths = jnp.array([[T, 5], [1, 7]])
    f = loss(cell, "fused", lengths, hoist=hoist)
    check_grads(f, (params, xs, carry), order=1, modes=["rev"])


def test_padding_is_irrelevant_and_unbatched_works():
    cell, params, xs, _ = setup()
    lengths = jnp.array([6, 2, 9])
    ys, c = seqjax.unroll(cell, params, xs, lengths=lengths, backend="fused")
    garbage = xs.at[:, 6:].set(1e3)
    ys2, c2 = seqjax.unroll(
        cell, params, garbage.at[1, 2:].set(-7.0), lengths=lengths, backend="fused"
    )
    np.testing.assert_array_equal(ys[:2], ys2[:2])
    np.testing.assert_array_equal(c.h[:2], c2.h[:2])
    assert bool((ys[1, 2:] == 0).all())
    y1, c1 = seqjax.unroll(cell, params, xs[0], backend="fused")
    y0, c0 = seqjax.unroll(cell, params, xs[0], backend="sequential")
    np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-6)


def test_jit_vmap_and_bfloat16():
    cell, params, xs, carry = setup()
    f = jax.jit(jax.grad(loss(cell, "fused")))
    g = jax.grad(loss(cell, "sequential"))
    for x, y in zip(jax.tree.leaves(f(params, xs, carry)), jax.tree.leaves(g(params, xs, carry))):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    run = lambda x: seqjax.unroll(cell, params, x, backend="fused")[0]  # noqa: E731
    np.testing.assert_allclose(jax.vmap(run)(xs), run(xs), rtol=1e-5, atol=1e-6)
    cell, pb, xb, cb = setup(jnp.bfloat16)
    ys, c = seqjax.unroll(cell, pb, xb, cb, backend="fused")
    assert ys.dtype == jnp.bfloat16 and c.c.dtype == jnp.bfloat16
    ref, _ = seqjax.unroll(cell, pb, xb, cb, backend="sequential", hoist=True)
    np.testing.assert_allclose(ys.astype(float), ref.astype(float), atol=2e-2)


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
    cell, params, xs, _ = setup()
    with pytest.raises(ValueError, match=words):
        seqjax.unroll(cell, params, xs, backend="fused", **kw)
    with pytest.raises(ValueError, match="'gru' has no fused form"):
        gru = seqjax.cells.gru(H)
        seqjax.unroll(gru, gru.init(jax.random.key(0), I), xs, backend="fused")


def test_second_order_works_and_pure_forward_mode_needs_the_scan():
    """Forward-over-reverse (Hessian-vector products, ``jax.hessian``) and reverse-over-reverse
    differentiate the hand-written backward like any JAX code; forward mode through the forward
    pass itself has no rule (``jax.custom_vjp``), as documented: use backend="sequential"."""
    cell, params, xs, _ = setup()

    def f(p, backend):
        return jnp.sum(jnp.sin(seqjax.unroll(cell, p, xs, backend=backend)[0]))

    for backend in ("fused", "sequential"):
        hvp = jax.jvp(jax.grad(lambda p: f(p, backend)), (params,), (params,))[1]
        if backend == "fused":
            ref = hvp
        else:
            for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(hvp), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(lambda p: f(p, "fused"), (params,), (params,))
