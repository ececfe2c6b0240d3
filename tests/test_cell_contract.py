"""The `Cell` contract, checked for every registered cell (``seqjax.cells.names()``).

A cell added to the registry later is covered without an edit here; ``KWARGS`` gives a small
constructor entry where a cell needs one (default ``{}``) and ``VARIANTS`` adds option sets that
change the step. References are independent of ``seqjax.unroll``: a Python loop over ``cell.step``
that applies ``lengths``, ``resets`` and ``reverse`` segment by segment; forward mode against
reverse mode (``jvp`` against ``grad``); ``vmap`` against the batched call.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqjax

B, T, I, H = 2, 6, 3, 4

# Constructor kwargs per registered name (default {}); keep them small and fast.
KWARGS: dict = {}
# Extra option sets whose step differs from the default one: id -> (name, kwargs).
VARIANTS = {
    "lstm+peephole+layer_norm+proj": (
        "lstm",
        {"peephole": True, "layer_norm": True, "proj_size": 3},
    ),
    "gru+paper": ("gru", {"reset_after": False}),
    "exprnn+cayley": ("exprnn", {"parametrization": "cayley", "num_negative": 1}),
    "antisymmetric+gated": ("antisymmetric", {"gated": True, "step_size": 0.5}),
    "cornn+explicit": ("cornn", {"implicit_damping": False}),
    "lipschitz+midpoint": ("lipschitz", {"solver": "midpoint", "step_size": 0.5}),
    "indrnn+tanh+memory": ("indrnn", {"activation": "tanh", "u_init": "memory"}),
}
TABLE = {name: (name, KWARGS.get(name, {})) for name in seqjax.cells.names()} | VARIANTS
# The variants run only in the slow suite, but for the cheap output check (base cells: always).
BASE_FAST = [case if case not in VARIANTS else pytest.param(case, marks=pytest.mark.slow)
             for case in TABLE]  # fmt: skip


@functools.cache
def make_float32(case):
    """The cell, float32 params and inputs of a case, made once per test session.

    The params have the structure of ``cell.init``'s (read off ``jax.eval_shape``, which compiles
    nothing) and NumPy values ``N(0, 0.3^2)``: no term hides behind a zero initialisation, and no
    ``jax.random`` call compiles for each new shape (about a second per cell on 2 cores). The
    initialisers themselves are tested in each cell family's own file.
    """
    name, kwargs = TABLE[case]
    cell = seqjax.cells.get(name, H, **kwargs)
    rng = np.random.default_rng(5)
    values = lambda a: jnp.asarray(0.3 * rng.standard_normal(a.shape), a.dtype)  # noqa: E731
    shapes = jax.eval_shape(functools.partial(cell.init, input_size=I), jax.random.key(0))
    params = jax.tree.map(values, shapes)
    xs = jnp.asarray(np.random.default_rng(1).standard_normal((B, T, I)), jnp.float32)
    return cell, params, xs


def make(case, dtype=jnp.float32):
    cell, params, xs = make_float32(case)
    floating = lambda a: jnp.issubdtype(a.dtype, jnp.floating)  # noqa: E731
    params = jax.tree.map(lambda a: a.astype(dtype) if floating(a) else a, params)
    return cell, params, xs.astype(dtype)


def loop_reference(cell, params, xs, lengths, resets, reverse):
    """Per example, per segment, a Python loop over ``cell.step`` (forwards or backwards)."""
    step = jax.jit(cell.step)
    init = cell.initial_carry(params, ())
    ys, finals = [], []
    for b in range(xs.shape[0]):
        L = int(lengths[b])
        starts = [t for t in range(L) if t == 0 or bool(resets[b, t])]
        out = [None] * L
        final = init
        for a, e in zip(starts, starts[1:] + [L]):
            carry = init
            for t in range(e - 1, a - 1, -1) if reverse else range(a, e):
                carry, out[t] = step(params, carry, xs[b, t])
            if (a == 0) == reverse or len(starts) == 1:  # the segment processed last
                final = carry
        zero = jnp.zeros_like(out[0])
        ys.append(jnp.stack(out + [zero] * (xs.shape[1] - L)))
        finals.append(final)
    return jnp.stack(ys), jax.tree.map(lambda *c: jnp.stack(c), *finals)


def close(a, b, tol=1e-5):
    def check(x, y):
        wide = np.complex128 if jnp.iscomplexobj(x) else np.float64
        np.testing.assert_allclose(np.asarray(x).astype(wide), np.asarray(y).astype(wide), tol, tol)

    jax.tree.map(check, a, b)


# reverse=True (within lengths, with resets) also checks the plain forward unroll.
@pytest.mark.parametrize("reverse", [pytest.param(False, marks=pytest.mark.slow), True])
@pytest.mark.parametrize("case", BASE_FAST)
def test_unroll_equals_a_loop_over_step_with_lengths_resets(case, reverse):
    cell, params, xs = make(case)
    lengths = jnp.array([T, 4])
    resets = jnp.zeros((B, T), bool).at[0, 2].set(True).at[1, 3].set(True)
    ys, carry = seqjax.unroll(cell, params, xs, lengths=lengths, resets=resets, reverse=reverse)
    ys_ref, carry_ref = loop_reference(cell, params, xs, lengths, resets, reverse)
    close(ys, ys_ref)
    close(carry, carry_ref)
    plain, _ = seqjax.unroll(cell, params, xs)
    plain_ref, _ = loop_reference(cell, params, xs, jnp.array([T, T]), jnp.zeros((B, T)), False)
    close(plain, plain_ref)


@pytest.mark.parametrize("case", BASE_FAST)
def test_jit_grad_vmap_jvp(case):
    cell, params, xs = make(case)

    def loss(p, x, backend="auto"):
        ys, carry = seqjax.unroll(cell, p, x, backend=backend)
        leaves = [jnp.sum(jnp.abs(c) ** 2) for c in jax.tree.leaves(carry)]
        return jnp.sum(jnp.sin(ys)) + sum(leaves)

    traces = []

    @jax.jit  # every transformation under one jit: one compilation
    def transformed(p, x, v):
        traces.append(1)
        ys, _ = seqjax.unroll(cell, p, x)
        g = jax.grad(loss)(p, x)  # the default backend's reverse mode
        _, tangent = jax.jvp(lambda q: loss(q, x, "sequential"), (p,), (v,))  # forward mode
        ys_v, _ = jax.vmap(lambda x1: seqjax.unroll(cell, p, x1))(x)  # one example at a time
        return ys, g, tangent, ys_v

    rng = np.random.default_rng(3)
    v = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape), a.dtype), params)
    ys, g, tangent, ys_v = transformed(params, xs, v)
    transformed(params, xs + 1.0, v)
    assert len(traces) == 1  # no recompilation for new values
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves(g))
    assert any(np.abs(np.asarray(a)).max() > 0 for a in jax.tree.leaves(g))
    dot = sum(jnp.vdot(a, b).real for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(v)))
    np.testing.assert_allclose(tangent, dot, rtol=1e-4, atol=1e-4)  # <grad, v> == jvp(v)
    close(ys_v, ys)


def run_dtype(case, dtype):
    cell, params, xs = make(case, dtype)
    carry0 = cell.initial_carry(params, (B,))
    ys, carry = seqjax.unroll(cell, params, xs)
    assert ys.dtype == dtype, (ys.dtype, dtype)
    for c, c0 in zip(jax.tree.leaves(carry), jax.tree.leaves(carry0)):
        assert c.dtype == c0.dtype  # the carry keeps its dtype (the param dtype or the cell's own)
        assert bool(jnp.isfinite(c).all())
    assert bool(jnp.isfinite(ys).all())
    return ys


@pytest.mark.parametrize("case", BASE_FAST)
def test_dtypes_float32_bfloat16_float64(case):
    ys32 = run_dtype(case, jnp.float32)
    ys16 = run_dtype(case, jnp.bfloat16)
    close(ys16, ys32, tol=0.1)  # bfloat16 keeps ~3 significant digits; a loose sanity bound
    with jax.enable_x64(True):
        ys64 = run_dtype(case, jnp.float64)
    close(ys64, ys32, tol=1e-4)


@pytest.mark.parametrize("case", TABLE)
def test_output_reads_the_steps_output_off_its_new_carry(case):
    """``Cell.output`` (or, without it, the carry itself) is what ``recur`` emits: the gradient
    diagnostics read each step's output through it."""
    cell, params, xs = make(case)
    params = seqjax.cells.base.prepared(cell, params)
    carry, _ = cell.step(params, cell.initial_carry(params, (B,)), xs[:, 0])
    p = cell.project(params, xs[:, 1])
    new, y = cell.recur(params, carry, p)
    close(seqjax.cells.base.step_output(cell, params, new, p), y, 1e-6)
