"""``Cell.prepare``: derived matrices computed once per sequence instead of once per step.

Prepared and raw params must give the same outputs and gradients (the reference is the raw
``cell.step`` scanned by hand); the backward pass of ``seqjax.unroll`` must contain no matrix
solve inside the time loop (read off the jaxpr, no timing); and both drivers and the
diagnostics must prepare the params once per call.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend import core as jcore

import seqjax
from seqjax import analysis

B, T, I, H = 2, 7, 3, 6
CASES = {
    "exprnn": ("exprnn", {}),
    "exprnn+cayley": ("exprnn", {"parametrization": "cayley", "num_negative": 2}),
    "antisymmetric": ("antisymmetric", {"step_size": 0.5}),
    "antisymmetric+gated": ("antisymmetric", {"gated": True, "step_size": 0.5}),
    "lipschitz": ("lipschitz", {"step_size": 0.5}),
    "lipschitz+midpoint": ("lipschitz", {"solver": "midpoint", "step_size": 0.5}),
}
SOLVES = ("lu", "triangular_solve", "custom_linear_solve")


def make(case):
    name, kwargs = CASES[case]
    cell = seqjax.cells.get(name, H, **kwargs)
    params = cell.init(jax.random.key(0), I)
    noise = lambda a: 0.3 * jax.random.normal(jax.random.key(5), a.shape, a.dtype)  # noqa: E731
    params = jax.tree.map(lambda a: a + noise(a), params)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    return cell, params, xs


def scan_loss(cell, params, xs):
    """``cell.step`` scanned by hand over time (the reference; ``params`` used as given)."""
    carry = cell.initial_carry(params, (B,))
    final, ys = jax.lax.scan(lambda c, x: cell.step(params, c, x), carry, jnp.swapaxes(xs, 0, 1))
    return jnp.sum(jnp.sin(ys)) + jnp.sum(final**2)


def close(a, b, tol=1e-5):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=tol, atol=tol), a, b)


@pytest.mark.parametrize("case", CASES)
def test_prepared_and_raw_params_agree(case):
    cell, params, xs = make(case)
    assert cell.prepare is not None
    ready = cell.prepare(params)
    assert set(params) < set(ready)  # the derived matrices come as extra keys
    carry = cell.initial_carry(params, (B,))
    close(cell.step(ready, carry, xs[:, 0]), cell.step(params, carry, xs[:, 0]), 1e-6)
    close(cell.recurrent_blocks(ready), cell.recurrent_blocks(params), 1e-6)

    # Value and gradient: unroll (which prepares once) against the step on raw params.
    def unroll_loss(p):
        ys, final = seqjax.unroll(cell, p, xs)
        return jnp.sum(jnp.sin(ys)) + jnp.sum(final**2)

    value, grads = jax.jit(jax.value_and_grad(unroll_loss))(params)
    value_ref, grads_ref = jax.jit(jax.value_and_grad(lambda p: scan_loss(cell, p, xs)))(params)
    close(value, value_ref)
    close(grads, grads_ref)


def _subjaxprs(eqn):
    for value in eqn.params.values():
        for sub in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(sub, jcore.ClosedJaxpr):
                yield sub.jaxpr
            elif isinstance(sub, jcore.Jaxpr):
                yield sub


def primitives_in_time_loops(jaxpr, inside=False, found=None) -> dict:
    """``{primitive: count}`` of the equations inside a ``scan`` over the ``T`` time steps (not
    inside other loops, such as ``expm``'s own squaring loop, that run once)."""
    found = {} if found is None else found
    for eqn in jaxpr.eqns:
        if inside:
            found[eqn.primitive.name] = found.get(eqn.primitive.name, 0) + 1
        loop = eqn.primitive.name == "scan" and eqn.params["length"] == T
        for sub in _subjaxprs(eqn):
            primitives_in_time_loops(sub, inside or loop, found)
    return found


def solves_in_time_loops(fn, *args) -> int:
    found = primitives_in_time_loops(jax.make_jaxpr(fn)(*args).jaxpr)
    return sum(found.get(p, 0) for p in SOLVES)


@pytest.mark.parametrize("case", ["exprnn", "exprnn+cayley"])
def test_backward_pass_solves_for_w_once(case):
    """``expm`` (a Pade approximant: LU solves) and the Cayley solve stay out of the loop of the
    forward and of the backward pass; with ``prepare`` removed, the same check finds them there."""
    cell, params, xs = make(case)

    def unroll_grad(c):
        return jax.grad(lambda p: jnp.sum(seqjax.unroll(c, p, xs)[0] ** 2))

    assert solves_in_time_loops(unroll_grad(cell), params) == 0
    assert solves_in_time_loops(unroll_grad(cell._replace(prepare=None)), params) > 0
    text = str(jax.make_jaxpr(unroll_grad(cell))(params))  # W is still computed, outside
    assert "triangular_solve" in text or "custom_linear_solve" in text


def test_both_drivers_and_the_diagnostics_prepare_once():
    """A cell whose step only accepts prepared params: every entry point must prepare them."""
    base = seqjax.cells.mingru(H)
    calls = []

    def prepare(p):
        calls.append(1)
        return {**p, "ready": jnp.ones(())}

    def need(p):
        assert "ready" in p, "step called on unprepared params"
        return p

    cell = base._replace(
        prepare=prepare,
        step=lambda p, c, x: base.step(need(p), c, x),
        recur=lambda p, c, q: base.recur(need(p), c, q),
        project=lambda p, x: base.project(need(p), x),
        parallel=lambda p, c, x, **kw: base.parallel(need(p), c, x, **kw),
    )
    params = base.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    for run in (
        lambda: seqjax.unroll(cell, params, xs, backend="sequential"),
        lambda: seqjax.unroll(cell, params, xs, backend="sequential", hoist=True),
        lambda: seqjax.unroll(cell, params, xs, backend="parallel", lengths=jnp.array([T, 3])),
        lambda: analysis.grad_norms_per_step(cell, params, xs, lambda ys, _: ys[:, -1].sum(-1)),
        lambda: analysis.step_jacobians(cell, params, xs),
        lambda: analysis.gate_stats(cell, params, xs),
    ):
        calls.clear()
        run()
        assert len(calls) == 1
