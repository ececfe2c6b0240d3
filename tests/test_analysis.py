"""Gradient-flow diagnostics against independent references: jax.jacrev the slow way, NumPy."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import seqjax
from seqjax import analysis

CELLS = {
    "elman": lambda h: seqjax.cells.elman(h),
    "elman_relu": lambda h: seqjax.cells.elman(h, "relu", recurrent_init="identity"),
    "lstm": lambda h: seqjax.cells.lstm(h),
    "gru": lambda h: seqjax.cells.gru(h),
    "gru_paper": lambda h: seqjax.cells.gru(h, reset_after=False),
}
B, T, I, H = 2, 5, 2, 3


def setup(name, key=0):
    cell = CELLS[name](H)
    params = cell.init(jax.random.key(key), I)
    # Non-zero biases and initial carry so that no term hides behind a zero.
    params = jax.tree.map(lambda a: a + 0.1 * jax.random.normal(jax.random.key(9), a.shape), params)
    xs = jax.random.normal(jax.random.key(key + 1), (B, T, I))
    carry0 = jax.tree.map(lambda a: a + 0.2, cell.initial_carry(params, (B,)))
    return cell, params, xs, carry0


def per_example_loss(ys, carry):
    """Uses every output and the whole final carry, so both gradient paths matter."""
    w = jnp.linspace(0.5, 1.5, ys.shape[-2] * ys.shape[-1]).reshape(ys.shape[-2:])
    out = jnp.sum(jnp.sin(ys * w), axis=(-2, -1))
    return out + sum(jnp.sum(jnp.abs(c) ** 2, axis=-1) for c in jax.tree.leaves(carry))


def output(carry):
    return carry.h if isinstance(carry, seqjax.cells.LSTMCarry) else carry


def slow_grads(cell, params, xs, carry0, t):
    """dL/dh_t for every example by jax.jacrev of the loss as a function of h_t alone: h_t comes
    from a truncated problem (``return_carries``), the outputs before t are constants, and the rest
    of the sequence is re-run from h_t."""
    ys, _, carries = seqjax.unroll(cell, params, xs, carry0, return_carries=True)
    h_t = carry0 if t == 0 else jax.tree.map(lambda a: a[:, t - 1], carries)

    def loss_of_state(c):
        ys_rest, final = seqjax.unroll(cell, params, xs[:, t:], c)
        parts = [ys[:, : t - 1], output(c)[:, None]] if t > 0 else []
        return per_example_loss(jnp.concatenate([*parts, ys_rest], axis=1), final)

    jac = jax.jacrev(loss_of_state)(h_t)  # leaves (B, B, ...): examples do not interact
    for leaf in jax.tree.leaves(jac):
        off = leaf * (1 - jnp.eye(B))[:, :, None]
        np.testing.assert_array_equal(off, 0.0)
    return jax.tree.map(lambda a: a[jnp.arange(B), jnp.arange(B)], jac)  # (B, ...)


@pytest.mark.parametrize("name", CELLS)
def test_grad_norms_match_jacrev_the_slow_way(name):
    cell, params, xs, carry0 = setup(name)
    got = analysis.grad_norms_per_step(cell, params, xs, per_example_loss, carry0)
    assert got.total.shape == (T + 1,)
    for t in range(T + 1):
        g = slow_grads(cell, params, xs, carry0, t)
        leaf_norms = jax.tree.map(lambda a: np.linalg.norm(np.asarray(a), axis=-1), g)
        k = T - t  # distance from the last step
        for got_leaf, ref in zip(jax.tree.leaves(got.leaves), jax.tree.leaves(leaf_norms)):
            np.testing.assert_allclose(got_leaf[k], ref.mean(), rtol=2e-5)
        total = np.sqrt(sum(r**2 for r in jax.tree.leaves(leaf_norms))).mean()
        np.testing.assert_allclose(got.total[k], total, rtol=2e-5)
    np.testing.assert_allclose(
        got.loss, per_example_loss(*seqjax.unroll(cell, params, xs, carry0)).mean(), rtol=1e-6
    )


def lru_read_out(params, h, x):
    """Orvieto et al. 2023's read-out ``y = Re(h C) + x D``, written out here from the params."""
    return h.real @ params["c_re"] - h.imag @ params["c_im"] + x @ params["d"]


def as_real(a):
    """A complex array as its real and imaginary parts on a new last axis; real ones as they are."""
    return jnp.stack([a.real, a.imag], axis=-1) if jnp.iscomplexobj(a) else a


def from_real(q, like):
    return jax.lax.complex(q[..., 0], q[..., 1]) if jnp.iscomplexobj(like) else q


# Cells whose output is not their whole carry: {name: (factory, output of a state h_t and x_t)}.
OUTPUTS = {
    "lru": (lambda h: seqjax.cells.lru(h, r_min=0.5, r_max=0.95), lru_read_out),
    "cornn": (lambda h: seqjax.cells.cornn(h, dt=0.3), lambda params, c, x: c.y),
    "lem": (lambda h: seqjax.cells.lem(h), lambda params, c, x: c.y),
}


@pytest.mark.parametrize("name", OUTPUTS)
def test_grad_norms_of_cells_with_an_output_match_jacrev(name):
    """As above, with the output at ``t`` read from ``h_t`` by the paper's formula (not the cell's
    ``output``), and the LRU's complex state differentiated as its real and imaginary parts."""
    factory, out_of = OUTPUTS[name]
    cell = factory(H)
    params = cell.init(jax.random.key(0), I)
    params = jax.tree.map(lambda a: a + 0.1 * jax.random.normal(jax.random.key(9), a.shape), params)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    carry0 = jax.tree.map(lambda a: a + 0.2, cell.initial_carry(params, (B,)))
    got = analysis.grad_norms_per_step(cell, params, xs, per_example_loss, carry0)
    ys, _, carries = seqjax.unroll(cell, params, xs, carry0, return_carries=True)
    for t in range(T + 1):
        h_t = carry0 if t == 0 else jax.tree.map(lambda a: a[:, t - 1], carries)
        parts = jax.tree.map(as_real, h_t)  # jacrev needs real inputs

        def loss_of_state(q, t=t):
            c = jax.tree.map(from_real, q, h_t)
            ys_rest, final = seqjax.unroll(cell, params, xs[:, t:], c)
            before = [ys[:, : t - 1], out_of(params, c, xs[:, t - 1])[:, None]] if t else []
            return per_example_loss(jnp.concatenate([*before, ys_rest], axis=1), final)

        jac = jax.jacrev(loss_of_state)(parts)  # leaves (B, B, ...): examples do not interact
        diag = [np.asarray(a)[np.arange(B), np.arange(B)] for a in jax.tree.leaves(jac)]
        ref = np.sqrt(sum((d**2).reshape(B, -1).sum(-1) for d in diag)).mean()
        np.testing.assert_allclose(got.total[T - t], ref, rtol=2e-5)


@pytest.mark.parametrize("name", ["elman", "lstm", "gru"])
def test_perturbed_unroll_with_zero_perturbation_is_unroll(name):
    cell, params, xs, carry0 = setup(name)
    eps = jax.tree.map(lambda c: jnp.zeros((B, T, *c.shape[1:])), carry0)
    ys, final = analysis.perturbed_unroll(cell, params, xs, carry0, eps)
    ys_ref, final_ref = seqjax.unroll(cell, params, xs, carry0)
    np.testing.assert_allclose(ys, ys_ref, rtol=1e-6, atol=1e-6)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), final, final_ref
    )


def test_grad_norms_jit_and_lstm_leaves():
    cell, params, xs, carry0 = setup("lstm")
    traces = []

    @jax.jit
    def run(p, x):
        traces.append(1)
        return analysis.grad_norms_per_step(cell, p, x, per_example_loss)

    a, b = run(params, xs), run(params, xs + 1.0)
    assert len(traces) == 1 and isinstance(a.leaves, seqjax.cells.LSTMCarry)
    eager = analysis.grad_norms_per_step(cell, params, xs, per_example_loss)
    np.testing.assert_allclose(a.total, eager.total, rtol=1e-5)
    assert (a.leaves.h > 0).all() and (a.leaves.c > 0).all()
    assert (a.total >= np.maximum(a.leaves.h, a.leaves.c) * (1 - 1e-6)).all()
    assert not np.allclose(a.total, b.total)


def test_identity_linear_elman_neither_vanishes_nor_explodes():
    """h_t = x_t W_x + h_{t-1}: dh_T/dh_t = I, so a loss on h_T has the same gradient at every t.
    With any other recurrent matrix (here 0.9 I) the check fails."""
    v = jnp.array([1.0, -2.0, 2.0])  # ||v|| = 3
    xs = jax.random.normal(jax.random.key(0), (4, 30, I))
    for scale, expect in [(1.0, 3.0 * np.ones(31)), (0.9, 3.0 * 0.9 ** np.arange(31))]:
        cell = seqjax.cells.elman(H, "identity", recurrent_init=f"identity:{scale}")
        params = cell.init(jax.random.key(1), I)
        g = analysis.grad_norms_per_step(cell, params, xs, lambda ys, c: ys[:, -1] @ v)
        np.testing.assert_allclose(g.total, expect, rtol=1e-5)
        jp = analysis.jacobian_products(cell, params, xs)
        sv = np.asarray(jp.singular_values)  # (4, 31, H)
        np.testing.assert_allclose(sv, np.broadcast_to(expect[:, None] / 3.0, sv.shape), rtol=1e-5)
    assert (sv[:, 1:, 0] < 1).all()  # the 0.9 case really does vanish


@pytest.mark.parametrize("name", ["elman", "lstm", "gru", "gru_paper"])
def test_jacobian_products_match_jacrev(name):
    cell, params, xs, carry0 = setup(name)
    jp = analysis.jacobian_products(cell, params, xs, carry0)
    n = sum(a.shape[-1] for a in jax.tree.leaves(carry0))
    assert jp.products.shape == (B, T + 1, n, n) and jp.singular_values.shape == (B, T + 1, n)
    _, _, carries = seqjax.unroll(cell, params, xs, carry0, return_carries=True)
    for b in range(B):
        c0 = jax.tree.map(lambda a: a[b], carry0)
        for t in range(T + 1):
            c_t = c0 if t == 0 else jax.tree.map(lambda a: a[b, t - 1], carries)
            flat, unravel = ravel_pytree(c_t)
            final = lambda v: ravel_pytree(seqjax.unroll(cell, params, xs[b, t:], unravel(v))[1])[0]
            ref = jax.jacrev(final)(flat)
            np.testing.assert_allclose(jp.products[b, T - t], ref, rtol=1e-4, atol=1e-6)
            ref_sv = np.linalg.svd(np.asarray(ref, np.float64), compute_uv=False)
            np.testing.assert_allclose(jp.singular_values[b, T - t], ref_sv, rtol=1e-4, atol=1e-6)
            if t > 0:  # the single step t: J_t = dh_t/dh_{t-1}
                c_prev = c0 if t == 1 else jax.tree.map(lambda a: a[b, t - 2], carries)
                flat_p, unravel_p = ravel_pytree(c_prev)
                step = lambda v: ravel_pytree(cell.step(params, unravel_p(v), xs[b, t - 1])[0])[0]
                np.testing.assert_allclose(
                    jp.steps[b, t - 1], jax.jacrev(step)(flat_p), rtol=1e-5, atol=1e-6
                )


def test_jacobian_products_unbatched_and_jit():
    cell, params, xs, _ = setup("gru")
    batched = analysis.jacobian_products(cell, params, xs)
    single = jax.jit(lambda p, x: analysis.jacobian_products(cell, p, x))(params, xs[1])
    np.testing.assert_allclose(single.products, batched.products[1], rtol=1e-5, atol=1e-6)


# Spectra and the Pascanu et al. 2013 condition ---------------------------------------------------


def test_spectral_radius_and_norm_against_numpy():
    w = jax.random.normal(jax.random.key(0), (6, 6))  # non-symmetric: complex eigenvalues
    w64 = np.asarray(w, np.float64)
    ref_rho = np.max(np.abs(np.linalg.eigvals(w64)))
    np.testing.assert_allclose(analysis.spectral_radius(w), ref_rho, rtol=1e-5)
    np.testing.assert_allclose(analysis.max_singular_value(w), np.linalg.norm(w64, 2), rtol=1e-5)
    assert analysis.spectral_radius(w) <= analysis.max_singular_value(w)
    rho_jit = jax.jit(analysis.spectral_radius)(w)
    np.testing.assert_allclose(rho_jit, ref_rho, rtol=1e-5)


def test_recurrent_spectrum_per_gate_block():
    cell = seqjax.cells.lstm(4, recurrent_init="spectral:0.7")
    params = cell.init(jax.random.key(2), 3)
    spec = analysis.recurrent_spectrum(cell, params)
    assert list(spec) == ["i", "f", "g", "o"]
    w = np.asarray(params["w_h"], np.float64)
    for g, name in enumerate(spec):
        block = w[:, 4 * g : 4 * (g + 1)]
        np.testing.assert_allclose(
            spec[name].spectral_radius, np.max(np.abs(np.linalg.eigvals(block))), rtol=1e-5
        )
        sigma = np.linalg.norm(block, 2)
        np.testing.assert_allclose(spec[name].max_singular_value, sigma, rtol=1e-5)
        np.testing.assert_allclose(spec[name].spectral_radius, 0.7, rtol=1e-4)


def test_recurrent_spectrum_of_cells_without_a_matrix_raises():
    cell = seqjax.cells.lru(4)
    with pytest.raises(ValueError, match="cell 'lru' declares no dense recurrent matrix"):
        analysis.recurrent_spectrum(cell, cell.init(jax.random.key(0), 2))


def constructed(singular_values, seed=0):
    """W = U diag(s) V^T with random orthogonal U, V: its singular values are exactly s."""
    rng = np.random.default_rng(seed)
    n = len(singular_values)
    u, _ = np.linalg.qr(rng.normal(size=(n, n)))
    v, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return jnp.asarray(u @ np.diag(singular_values) @ v.T, jnp.float32)


@pytest.mark.parametrize(
    "s_max, activation, holds",
    [(0.95, "tanh", True), (1.05, "tanh", False), (3.9, "sigmoid", True), (4.1, "sigmoid", False),
     (0.99, "relu", True), (1.01, "identity", False), (1.5, 0.5, True)],
)  # fmt: skip
def test_pascanu_condition_on_constructed_matrix(s_max, activation, holds):
    w = constructed([s_max, 0.5 * s_max, 0.1])
    c = analysis.pascanu_vanishing_condition(w, activation)
    gamma = analysis.ACTIVATION_DERIVATIVE_BOUND.get(activation, activation)
    np.testing.assert_allclose(c.max_singular_value, s_max, rtol=1e-5)
    np.testing.assert_allclose(c.bound, 1.0 / gamma)
    assert bool(c.holds) is holds


def test_pascanu_bound_bounds_real_jacobian_products():
    """When the condition holds, ||dh_T/dh_t|| <= (gamma * lambda_1)^(T - t) for a tanh network."""
    lam = 0.95
    cell = seqjax.cells.elman(
        3, "tanh", recurrent_init=lambda k, s, d: constructed([lam, 0.6, 0.2])
    )
    params = cell.init(jax.random.key(0), I)
    assert analysis.pascanu_vanishing_condition(params["w_h"], "tanh").holds
    xs = jax.random.normal(jax.random.key(1), (3, 40, I))
    norms = np.asarray(analysis.jacobian_products(cell, params, xs).singular_values[..., 0])
    k = np.arange(41)
    assert (norms <= lam**k * (1 + 1e-4)).all()
    assert norms[:, -1].max() < 0.2  # and it does vanish: 0.95**40 = 0.13


def test_pascanu_condition_rejects_bad_arguments():
    with pytest.raises(ValueError, match="activation='softsign'"):
        analysis.pascanu_vanishing_condition(jnp.eye(2), "softsign")
    with pytest.raises(ValueError, match=r"w_h.shape=\(2, 6\)"):
        analysis.pascanu_vanishing_condition(jnp.ones((2, 6)))


# Gate statistics -------------------------------------------------------------------------------


def sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def numpy_gates(name, p, xs, h0, c0=None):
    """The LSTM / GRU recursion and its sigmoid gates, written out in NumPy (float64)."""
    p = {k: np.asarray(v, np.float64) for k, v in p.items()}
    xs = np.asarray(xs, np.float64)
    h = np.asarray(h0, np.float64)
    c = None if c0 is None else np.asarray(c0, np.float64)
    gates = {}
    for t in range(xs.shape[1]):
        x = xs[:, t]
        if name == "lstm":
            i, f, g, o = np.split(x @ p["w_x"] + h @ p["w_h"] + p["b"], 4, axis=-1)
            c = sig(f) * c + sig(i) * np.tanh(g)
            h = sig(o) * np.tanh(c)
            step = {"input": sig(i), "forget": sig(f), "output": sig(o)}
        else:
            wxr, wxz, wxn = np.split(p["w_x"], 3, axis=-1)
            whr, whz, whn = np.split(p["w_h"], 3, axis=-1)
            br, bz, bn = np.split(p["b"], 3)
            r = sig(x @ wxr + br + h @ whr)
            z = sig(x @ wxz + bz + h @ whz)
            if "b_hn" in p:  # reset after the recurrent matmul
                n = np.tanh(x @ wxn + bn + r * (h @ whn + p["b_hn"]))
            else:
                n = np.tanh(x @ wxn + bn + (r * h) @ whn)
            h = (1 - z) * n + z * h
            step = {"reset": r, "update": z}
        for k, v in step.items():
            gates.setdefault(k, []).append(v)
    return {k: np.stack(v, axis=1) for k, v in gates.items()}  # (B, T, H)


@pytest.mark.parametrize("name", ["lstm", "gru", "gru_paper"])
def test_gate_stats_against_numpy(name):
    cell, params, xs, carry0 = setup(name)
    params = dict(params, b=params["b"] * 20.0)  # push some gates into saturation
    h0, c0 = (carry0.h, carry0.c) if name == "lstm" else (carry0, None)
    ref = numpy_gates(cell.name, params, xs, h0, c0)
    got = analysis.gate_values(cell, params, xs, carry0)
    expected = {"lstm": {"input", "forget", "output"}, "gru": {"reset", "update"}}[cell.name]
    assert set(got) == set(ref) == expected
    stats = jax.jit(lambda p, x: analysis.gate_stats(cell, p, x, carry0, threshold=0.2))(params, xs)
    some_saturated = False
    for k, g in ref.items():
        np.testing.assert_allclose(got[k], g, rtol=1e-5, atol=1e-6)
        low, high = (g < 0.2).mean(), (g > 0.8).mean()
        np.testing.assert_allclose(stats[k].mean, g.mean(), rtol=1e-5)
        np.testing.assert_allclose(stats[k].low, low)
        np.testing.assert_allclose(stats[k].high, high)
        np.testing.assert_allclose(stats[k].saturated, low + high, rtol=1e-6)
        np.testing.assert_allclose(stats[k].mean_per_step, g.mean(axis=(0, 2)), rtol=1e-5)
        some_saturated |= 0 < low + high < 1
    assert some_saturated


def test_gate_stats_rejects_ungated_cells():
    cell, params, xs, _ = setup("elman")
    with pytest.raises(ValueError, match="cell 'elman' declares no gates"):
        analysis.gate_stats(cell, params, xs)


def log_g_np(u):
    return np.where(u >= 0, u + 0.5, sig(u))


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_input_only_gates_against_numpy(name):
    """minGRU's z_t and minLSTM's normalised f'_t, i'_t (Feng et al. 2024, sec. 3), input-only."""
    cell = getattr(seqjax.cells, name)(H)
    params = cell.init(jax.random.key(0), I)
    noise = jax.random.normal(jax.random.key(4), params["b"].shape)
    params = dict(params, b=params["b"] + 3.0 * noise)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    got = analysis.gate_values(cell, params, xs)
    p = np.asarray(xs, np.float64) @ np.asarray(params["w_x"], np.float64) + np.asarray(
        params["b"], np.float64
    )
    if name == "mingru":
        ref = {"update": sig(p[..., :H])}
    else:
        f, i = sig(p[..., :H]), sig(p[..., H : 2 * H])
        ref = {"forget": f / (f + i), "input": i / (f + i)}
    assert set(got) == set(ref)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-6)


# Capabilities: a new cell gets diagnostics by declaring them --------------------------------------


def gated_elman(hidden_size):
    """A cell written here, unknown to seqjax.analysis: h = z * tanh(x W_x + h W_h + b) + (1 - z) h
    with an update gate z = sigmoid(x U_x + h U_h + c). It declares gates and recurrent blocks."""
    from seqjax.cells.base import Cell, make_step, split_blocks, zeros_carry

    Hs = hidden_size

    def init(key, input_size):
        k1, k2 = jax.random.split(key)
        return {
            "w_x": jax.random.normal(k1, (input_size, 2 * Hs)) / np.sqrt(input_size),
            "w_h": jax.random.normal(k2, (Hs, 2 * Hs)) / np.sqrt(Hs),
            "b": jnp.zeros(2 * Hs),
        }

    def project(params, x):
        return x @ params["w_x"] + params["b"]

    def parts(params, h, p):
        a, u = jnp.split(p + h @ params["w_h"], 2, axis=-1)
        return jnp.tanh(a), jax.nn.sigmoid(u)

    def recur(params, h, p):
        cand, z = parts(params, h, p)
        h = z * cand + (1 - z) * h
        return h, h

    return Cell(
        init=init,
        initial_carry=zeros_carry(Hs),
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=Hs,
        name="gated_elman_test_only",
        gates=lambda params, h, p: {"update": parts(params, h, p)[1]},
        recurrent_blocks=lambda params: split_blocks(params["w_h"], ("a", "u")),
    )


def probe_for(cell, params, xs, y):
    """seqjax.tasks.diagnostics.probe on a one-layer model, linear readout of the last step."""
    import types

    from seqjax.tasks import diagnostics

    readout = {"w": jnp.ones((cell.hidden_size, 1)), "b": jnp.zeros(1)}
    model = types.SimpleNamespace(
        top=lambda p, x, lengths=None: (cell, p["rnn"], x),
        readout=lambda p, hs, lengths=None: hs[..., -1, :] @ p["readout"]["w"] + p["readout"]["b"],
    )

    def loss_fn(out, batch):
        return jnp.mean((out[..., 0] - batch["y"]) ** 2), {}

    example_losses = diagnostics.per_example(loss_fn, ("y",))
    probe = diagnostics.probe(model, example_losses, "x")
    return probe({"rnn": params, "readout": readout}, {"x": xs, "y": y})


def test_a_new_cell_gets_gate_and_spectrum_diagnostics_without_edits():
    cell = gated_elman(H)
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    # Gates: the NumPy recursion of the cell's own equations.
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    h, zs = np.zeros((B, H)), []
    for t in range(T):
        a, u = np.split(np.asarray(xs[:, t], np.float64) @ p["w_x"] + p["b"] + h @ p["w_h"], 2, -1)
        z = sig(u)
        h = z * np.tanh(a) + (1 - z) * h
        zs.append(z)
    ref = np.stack(zs, 1)
    np.testing.assert_allclose(analysis.gate_values(cell, params, xs)["update"], ref, rtol=1e-5)
    d = probe_for(cell, params, xs, jnp.zeros(B))
    np.testing.assert_allclose(d["gate/update/mean"], ref.mean(), rtol=1e-5)
    w_u = p["w_h"][:, H:]
    np.testing.assert_allclose(d["max_singular_value/u"], np.linalg.norm(w_u, 2), rtol=1e-5)
    np.testing.assert_allclose(
        d["spectral_radius"],
        max(np.abs(np.linalg.eigvals(w)).max() for w in (p["w_h"][:, :H], w_u)),
        rtol=1e-5,
    )
    assert "pascanu_rate" not in d  # no activation_bound declared


def test_a_cell_without_gates_or_matrix_gets_only_gradient_diagnostics():
    cell = seqjax.cells.indrnn(H)  # element-wise recurrence: no gates, no dense matrix
    params = cell.init(jax.random.key(0), I)
    d = probe_for(cell, params, jax.random.normal(jax.random.key(1), (B, T, I)), jnp.zeros(B))
    assert set(d) == {"grad_h", "loss"}
    assert d["grad_h"].shape == (T + 1,) and np.isfinite(np.asarray(d["grad_h"])).all()


def test_analysis_imports_no_side_effect_libraries():
    code = (
        "import sys, seqjax.analysis, seqjax.tasks.generators; "
        "bad = [m for m in ('absl', 'orbax', 'tqdm', 'datasets', 'ml_collections', 'sklearn') "
        "if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
