"""What ``seqjax.unroll`` runs by default composes with every JAX transformation, for every
registered cell (``seqjax.cells.names()``, so cells added later are covered).

For each cell, every backend that ``backend="auto"`` picks on some platform (``cpu``, ``gpu``,
``tpu``; the choice is a table, so the ones for other platforms run here too) goes through one
table of transformations, each checked against the same transformation of
``backend="sequential"`` (a ``lax.scan`` over ``cell.step`` with plain autodiff);
the plain ``unroll(...)`` call of this platform runs through the same table. The table runs under
one ``jax.jit`` per case (users transform under ``jit``); the finite-difference check runs eagerly.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqjax
from seqjax import scan

B, T, I, H = 2, 4, 3, 3
PLATFORMS = ("cpu", "gpu", "tpu")


def _run(cell, backend):
    def ys_of(params, xs):
        kw = {} if backend is None else {"backend": backend}  # None: the plain default call
        ys, carry = seqjax.unroll(cell, params, xs, **kw)
        return ys + 0.5 * sum(jnp.sum(jnp.real(c)) for c in jax.tree.leaves(carry))  # LRU: complex

    def loss(params, xs):
        return jnp.sum(jnp.sin(ys_of(params, xs)) ** 2)

    return ys_of, loss


# name -> (ys_of, loss, params, xs, tangents) -> a pytree of arrays
TRANSFORMS = {
    "jit": lambda ys, loss, p, x, t: jax.jit(ys)(p, x),
    "grad": lambda ys, loss, p, x, t: jax.grad(loss, argnums=(0, 1))(p, x),
    "jvp": lambda ys, loss, p, x, t: jax.jvp(ys, (p, x), t),
    "jacfwd": lambda ys, loss, p, x, t: jax.jacfwd(ys, argnums=(0, 1))(p, x),
    "linearize": lambda ys, loss, p, x, t: jax.linearize(ys, p, x)[1](*t),
    "hessian": lambda ys, loss, p, x, t: jax.hessian(loss, argnums=1)(p, x),
    # outputs and per-example gradients over a batch of inputs
    "vmap": lambda ys, loss, p, x, t: jax.vmap(lambda x: (ys(p, x), jax.grad(loss)(p, x)))(
        jnp.stack([x, -2 * x])
    ),
}


def _cases():
    """(cell, backend): ``None`` is the plain default call here; then what ``auto`` picks on
    other platforms, where that differs (``"sequential"`` is the reference itself)."""
    cases = []
    for name in seqjax.cells.names():
        cell = seqjax.cells.get(name, H)
        here = scan.resolve_auto(cell, T)
        others = {scan.resolve_auto(cell, T, platform) for platform in PLATFORMS}
        cases += [(name, None)] + [(name, b) for b in sorted(others - {here, "sequential"})]
    return cases


CASES = _cases()


@functools.cache
def _setup(name):
    """The cell, float32 params, inputs and tangents (NumPy values: no ``jax.random`` call to
    compile for each new shape)."""
    cell = seqjax.cells.get(name, H)
    rng = np.random.default_rng(1)
    normal = lambda a: jnp.asarray(rng.standard_normal(a.shape), jnp.float32)  # noqa: E731
    params = jax.tree.map(lambda a: a.astype(jnp.float32), cell.init(jax.random.key(0), I))
    xs = normal(np.empty((B, T, I)))
    tangents = (jax.tree.map(normal, params), normal(xs))
    return cell, params, xs, tangents


@functools.cache
def _transformed(name, backend):
    """Every transformation of the table at once, under one ``jax.jit`` (one compilation per
    case instead of one per transformation and eager op)."""
    cell, params, xs, tangents = _setup(name)
    ys_of, loss = _run(cell, backend)
    every = lambda p, x, t: {k: f(ys_of, loss, p, x, t) for k, f in TRANSFORMS.items()}  # noqa: E731
    return jax.jit(every)(params, xs, tangents)


def test_auto_never_picks_a_path_that_lacks_forward_mode():
    """cuDNN (a ``jax.custom_vjp``) is the one backend without forward mode; ``auto`` must not
    pick it for any cell, platform or set of options."""
    options = [{}, {"hoist": True}, {"unroll": 2}, {"remat": True}, {"resets": True}]
    for name in seqjax.cells.names():
        cell = seqjax.cells.get(name, H)
        for platform in PLATFORMS:
            for kw in options:
                for seq_len in (1, 512, 100_000):
                    picked = scan.resolve_auto(cell, seq_len, platform, **kw)
                    assert picked in ("sequential", "parallel", "fused"), (name, platform, kw)


@pytest.mark.parametrize("name, backend", CASES, ids=str)
def test_transformations_match_the_sequential_scan(name, backend):
    got, want = _transformed(name, backend), _transformed(name, "sequential")
    for transform in TRANSFORMS:
        leaves, ref = jax.tree.leaves(got[transform]), jax.tree.leaves(want[transform])
        assert len(leaves) == len(ref), transform
        for a, b in zip(leaves, ref, strict=True):
            assert bool(jnp.isfinite(a).all()), transform
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=transform)


def test_gradient_of_the_default_matches_finite_differences():
    """One independent check beside the comparison with the scan: a central difference of the
    default path's loss along a random direction."""
    cell, params, xs, (v, _) = _setup("lstm")
    _, loss = _run(cell, None)
    g = jax.grad(loss)(params, xs)
    eps = 1e-3
    shift = lambda s: jax.tree.map(lambda a, d: a + s * eps * d, params, v)  # noqa: E731
    fd = (loss(shift(1.0), xs) - loss(shift(-1.0), xs)) / (2 * eps)
    along = sum(jnp.vdot(g[k], v[k]) for k in g)
    np.testing.assert_allclose(along, fd, rtol=1e-3)
