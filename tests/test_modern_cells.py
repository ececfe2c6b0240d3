"""minGRU, minLSTM and LRU: the parallel (associative-scan) form against stepping.

References are independent of the code under test: a Python loop over ``cell.step`` (segment by
segment, in Python, for lengths/resets/reverse), NumPy formulas for one step, and a float64 NumPy
loop for long sequences.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from loop_reference import loop_reference as reference
from loop_reference import make_options as _make_options

import seqjax
from seqjax import scan
from seqjax.cells.lru import lambda_of
from seqjax.cells.mingru import g as g_jax

CELLS = {
    "mingru": lambda h: seqjax.cells.mingru(h),
    "minlstm": lambda h: seqjax.cells.minlstm(h),
    "mingru_linear": lambda h: seqjax.cells.mingru(h, log_space=False),
    "minlstm_linear": lambda h: seqjax.cells.minlstm(h, log_space=False),
    "lru": lambda h: seqjax.cells.lru(h),
    "lru_ring": lambda h: seqjax.cells.lru(h, r_min=0.9, r_max=0.999, max_phase=math.pi / 10),
}

B, T, I, H = 3, 9, 4, 5
F32_TOL = 1e-5
# bfloat16 has an 8-bit significand: one unit in the last place at 1.0 is 2**-7 = 7.8e-3. Both
# forms accumulate in float32 from the same bfloat16 projections, so outputs may differ by the
# rounding of their last bit (and the projection's, where XLA sums a batched matmul in another
# order): allow two units.
BF16_TOL = 2 * 2**-7


def setup(name, dtype=jnp.float32, batch=(B,), steps=T, scale=1.0):
    cell = CELLS[name](H)
    params = jax.tree.map(lambda a: a.astype(dtype), cell.init(jax.random.key(0), I))
    xs = (scale * jax.random.normal(jax.random.key(1), (*batch, steps, I))).astype(dtype)
    return cell, params, xs


def random_carry(cell, params, batch_shape):
    """A non-zero initial carry with both signs (the log-space scan must not take its log)."""
    c = cell.initial_carry(params, batch_shape)
    noise = jax.random.normal(jax.random.key(7), c.shape, jnp.float32)
    if jnp.iscomplexobj(c):
        return c + jax.lax.complex(noise, -noise).astype(c.dtype)
    return c + noise.astype(c.dtype)


def close(a, b, tol=F32_TOL):
    def check(x, y):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype == jnp.bfloat16:
            x, y = x.astype(np.float32), y.astype(np.float32)
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol)

    jax.tree.map(check, a, b)


OPTIONS = {
    "plain": {},
    "lengths": {"lengths": [T, 4, 0]},
    "resets": {"resets": [(0, 3), (4,), ()]},
    "reverse": {"reverse": True},
    "lengths_resets": {"lengths": [T, 6, 2], "resets": [(3, 7), (2, 5, 7), (1, 4)]},
    "all": {"lengths": [T, 6, 2], "resets": [(3, 7), (2, 5, 7), (1, 4)], "reverse": True},
}


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("opts", OPTIONS)
def test_parallel_equals_sequential_and_python_loop(name, opts):
    cell, params, xs = setup(name)
    carry0 = random_carry(cell, params, (B,))
    kw = _make_options(OPTIONS[opts], (B, T))
    par = seqjax.parallel(cell, params, xs, carry0, return_carries=True, **kw)
    seq = seqjax.unroll(cell, params, xs, carry0, return_carries=True, backend="sequential", **kw)
    ref = reference(cell, params, xs, carry0, **kw)
    close(par, ref)
    close(seq, ref)
    if "lengths" in kw:
        for b, L in enumerate(np.asarray(kw["lengths"])):
            assert (par[0][b, L:] == 0).all()


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("opts", ["plain", "all"])
def test_bfloat16_parallel_equals_python_loop(name, opts):
    cell, params, xs = setup(name, jnp.bfloat16)
    carry0 = random_carry(cell, params, (B,))
    kw = _make_options(OPTIONS[opts], (B, T))
    ys, carry = seqjax.parallel(cell, params, xs, carry0, **kw)
    assert ys.dtype == jnp.bfloat16
    assert carry.dtype == (jnp.complex64 if name.startswith("lru") else jnp.float32)
    ys_ref, carry_ref, _ = reference(cell, params, xs, carry0, **kw)
    close(ys, ys_ref, BF16_TOL)
    close(carry, carry_ref, BF16_TOL)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("opts, remat", [("plain", False), ("all", False), ("all", True)])
def test_gradients_agree_between_backends(name, opts, remat):
    cell, params, xs = setup(name)
    carry0 = random_carry(cell, params, (B,))
    kw = _make_options(OPTIONS[opts], (B, T))
    w = jax.random.normal(jax.random.key(3), (B, T, H))

    def loss(params, xs, carry0, backend):
        ys, c = seqjax.unroll(cell, params, xs, carry0, backend=backend, remat=remat, **kw)
        c = jnp.abs(c) if jnp.iscomplexobj(c) else c
        return (ys * w).sum() + (c**2).sum()

    g_par = jax.grad(loss, argnums=(0, 1, 2))(params, xs, carry0, "parallel")
    g_seq = jax.grad(loss, argnums=(0, 1, 2))(params, xs, carry0, "sequential")
    close(g_par, g_seq, 1e-4)
    if "lengths" in kw:  # padded inputs get exactly zero gradient
        assert (g_par[1][2, 2:] == 0).all() and (g_par[1][1, 6:] == 0).all()


def float64_reference(name, params, xs):
    """Float64 NumPy loop of minGRU/minLSTM's update from the same parameters."""
    x = np.asarray(xs, np.float64)[0]
    p = x @ np.asarray(params["w_x"], np.float64) + np.asarray(params["b"], np.float64)
    sp = lambda v: np.logaddexp(0.0, v)  # softplus  # noqa: E731
    if name.startswith("mingru"):
        k, u = np.split(p, 2, axis=-1)
        a, z = np.exp(-sp(k)), np.exp(-sp(-k))
    else:
        kf, ki, u = np.split(p, 3, axis=-1)
        d = sp(-kf) - sp(-ki)  # log i - log f
        a, z = np.exp(-sp(d)), np.exp(-sp(-d))
    gu = np.where(u >= 0, u + 0.5, np.exp(-sp(-u)))
    h, out = np.zeros(u.shape[-1]), np.empty(u.shape)
    for t in range(p.shape[0]):
        h = a[t] * h + z[t] * gu[t]
        out[t] = h
    return out


@functools.cache
def long_cell(name):
    """One hidden-4 cell per family and one jitted ``value_and_grad`` of its parallel form, shared
    by both input scales: compiling the T = 16384 scan is what these tests spend their time on."""
    cell = seqjax.cells.lru(4, r_min=0.9, r_max=1.0) if name == "lru" else CELLS[name](4)

    def loss(p, x):
        ys, _ = seqjax.parallel(cell, p, x)
        return ys.mean(), ys

    jitted = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))

    def value_and_grads(params, xs):
        (_, ys), grads = jitted(params, xs)
        return ys, grads

    return cell, value_and_grads


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mingru", "minlstm", "mingru_linear"])
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_min_cells_long_and_extreme(name, scale):
    """T = 16384 with gates of ordinary size and of magnitude 1e3: finite values and gradients,
    and within 1e-4 of a float64 loop (Heinsen's cumsum form misses this by 2e-3 and by 100%)."""
    cell, value_and_grads = long_cell(name)
    params = cell.init(jax.random.key(0), I)
    xs = scale * jax.random.normal(jax.random.key(1), (1, 16384, I))
    ys, grads = value_and_grads(params, xs)
    ref = float64_reference(name, params, xs)
    assert np.isfinite(np.asarray(ys)).all()
    np.testing.assert_allclose(np.asarray(ys[0]), ref, rtol=1e-4, atol=1e-6 * np.abs(ref).max())
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(grads))


@pytest.mark.slow
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_lru_long_sequence(scale):
    cell, value_and_grads = long_cell("lru")
    params = cell.init(jax.random.key(0), I)
    xs = scale * jax.random.normal(jax.random.key(1), (1, 16384, I))
    ys, grads = value_and_grads(params, xs)
    ys_seq, _ = jax.jit(lambda x: seqjax.unroll(cell, params, x, backend="sequential"))(xs)
    assert np.isfinite(np.asarray(ys)).all()
    scale_y = float(jnp.abs(ys_seq).max())
    np.testing.assert_allclose(ys, ys_seq, rtol=1e-3, atol=1e-4 * scale_y)
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(grads))


def sigmoid(v):
    return np.exp(-np.logaddexp(0.0, -v))


def g_np(v):
    return np.where(v >= 0, v + 0.5, sigmoid(v))


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_one_step_by_hand(name):
    """Feng et al. 2024, sec. 3.1.3 and 3.2.4, written out in NumPy."""
    cell, params, xs = setup(name)
    x = np.asarray(xs[:, 0], np.float64)
    h = np.asarray(random_carry(cell, params, (B,)), np.float64)
    w, b = np.asarray(params["w_x"], np.float64), np.asarray(params["b"], np.float64)
    if name == "mingru":
        z = sigmoid(x @ w[:, :H] + b[:H])
        h_tilde = g_np(x @ w[:, H:] + b[H:])
        expected = (1 - z) * h + z * h_tilde
    else:
        f = sigmoid(x @ w[:, :H] + b[:H])
        i = sigmoid(x @ w[:, H : 2 * H] + b[H : 2 * H])
        h_tilde = g_np(x @ w[:, 2 * H :] + b[2 * H :])
        expected = f / (f + i) * h + i / (f + i) * h_tilde
    carry, y = cell.step(params, jnp.asarray(h, jnp.float32), xs[:, 0])
    close(carry, expected)
    close(y, expected)
    assert params["w_x"].shape == (I, (2 if name == "mingru" else 3) * H)


def test_g_activation():
    v = jnp.array([-1e3, -2.0, 0.0, 3.0, 1e3])
    close(g_jax(v), g_np(np.asarray(v, np.float64)))
    assert (g_jax(v) >= 0).all()


def test_lru_one_step_by_hand():
    """Orvieto et al. 2023, sec. 3: complex diagonal update and real read-out, in NumPy."""
    cell, params, xs = setup("lru_ring")
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    lam = np.exp(-np.exp(p["nu_log"]) + 1j * np.exp(p["theta_log"]))
    gamma = np.exp(p["gamma_log"])
    h = np.asarray(random_carry(cell, params, (B,)), np.complex128)
    x = np.asarray(xs[:, 0], np.float64)
    h_new = lam * h + gamma * (x @ (p["b_re"] + 1j * p["b_im"]))
    y = (h_new @ (p["c_re"] + 1j * p["c_im"])).real + x @ p["d"]
    carry, out = cell.step(params, jnp.asarray(h, jnp.complex64), xs[:, 0])
    close(carry, h_new)
    close(out, y)


@pytest.mark.parametrize(
    "r_min, r_max, max_phase", [(0.0, 1.0, 2 * math.pi), (0.9, 0.999, math.pi / 10), (0.5, 0.5, 1)]
)
def test_lru_ring_init(r_min, r_max, max_phase):
    cell = seqjax.cells.lru(4096, r_min=r_min, r_max=r_max, max_phase=max_phase)
    params = cell.init(jax.random.key(0), 3)
    assert all(np.isfinite(np.asarray(v)).all() for v in params.values())
    mod = np.abs(np.asarray(lambda_of(params), np.complex128))
    assert mod.min() >= r_min - 1e-6 and mod.max() <= r_max + 1e-6
    phase = np.exp(np.asarray(params["theta_log"], np.float64))
    assert phase.min() >= 0 and phase.max() <= max_phase * (1 + 1e-6)
    # Uniform on the ring: |lambda|^2 uniform in [r_min^2, r_max^2] (Lemma 3.2), phase uniform.
    np.testing.assert_allclose(np.mean(mod**2), (r_min**2 + r_max**2) / 2, atol=0.02)
    np.testing.assert_allclose(np.mean(phase), max_phase / 2, atol=0.03 * max_phase)
    gamma = np.exp(np.asarray(params["gamma_log"], np.float64))
    np.testing.assert_allclose(gamma, np.sqrt(1 - mod**2), rtol=1e-3, atol=1e-6)
    shapes = {k: v.shape for k, v in params.items()}
    assert shapes == {
        **{k: (4096,) for k in ("nu_log", "theta_log", "gamma_log")},
        **{k: (3, 4096) for k in ("b_re", "b_im", "d")},
        **{k: (4096, 4096) for k in ("c_re", "c_im")},
    }


@pytest.mark.parametrize("kw", [{"r_min": 0.5, "r_max": 0.4}, {"r_max": 1.5}, {"max_phase": 0}])
def test_lru_rejects_bad_ring(kw):
    with pytest.raises(ValueError, match="r_m|max_phase"):
        seqjax.cells.lru(4, **kw)


@pytest.mark.parametrize("name", CELLS)
def test_step_is_recur_of_project_and_registry(name):
    cell, params, xs = setup(name)
    c = random_carry(cell, params, (B,))
    close(cell.step(params, c, xs[:, 0]), cell.recur(params, c, cell.project(params, xs[:, 0])))
    base = name.split("_")[0]
    assert base in seqjax.cells.names()
    assert seqjax.cells.get(base, H).name == base


@pytest.mark.parametrize("name", CELLS)
def test_jit_vmap_and_batch_shapes(name):
    cell, params, xs = setup(name)
    ys, c = seqjax.parallel(cell, params, xs)
    ys_jit, c_jit = jax.jit(lambda p, x: seqjax.parallel(cell, p, x))(params, xs)
    close((ys_jit, c_jit), (ys, c))
    ys_v, c_v = jax.vmap(lambda x: seqjax.parallel(cell, params, x))(xs)  # unbatched inside
    close((ys_v, c_v), (ys, c))
    ys2, _ = seqjax.parallel(cell, params, xs.reshape(1, B, T, I))  # two batch axes
    close(ys2[0], ys)
    lengths = jnp.array([T, 4, 1])
    f = jax.jit(lambda x, n: seqjax.unroll(cell, params, x, lengths=n, backend="parallel"))
    ys_l = jax.vmap(f)(xs[:, None], lengths[:, None])[0][:, 0]
    close(ys_l, seqjax.parallel(cell, params, xs, lengths=lengths)[0])


@pytest.mark.parametrize("name", ["mingru", "lru"])
def test_padding_is_never_read(name):
    """NaN padding neither reaches the outputs nor the gradients of the parallel form."""
    cell, params, xs = setup(name)
    lengths = jnp.array([T, 4, 1])
    pad = jnp.arange(T)[None, :, None] >= lengths[:, None, None]
    bad = jnp.where(pad, jnp.nan, xs)
    ys, c = seqjax.parallel(cell, params, bad, lengths=lengths)
    close((ys, c), seqjax.parallel(cell, params, xs, lengths=lengths))
    grad = jax.grad(lambda x: seqjax.parallel(cell, params, x, lengths=lengths)[0].sum())(bad)
    assert np.isfinite(np.asarray(grad)).all() and (grad[pad[..., 0]] == 0).all()


@pytest.mark.parametrize("name", ["gru", "mingru"])
def test_reset_flag_past_the_end_keeps_the_carry(name):
    """A reset flag in the padding must not replace the carry returned at the last valid step."""
    cell = seqjax.cells.get(name, H)
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (1, T, I))
    resets = jnp.zeros((1, T), bool).at[0, 5].set(True)
    _, c_ref = seqjax.unroll(cell, params, xs[:, :4], backend="sequential")
    for backend in ["sequential", "parallel"] if cell.parallel else ["sequential"]:
        kw = dict(lengths=jnp.array([4]), resets=resets, backend=backend)
        _, c = seqjax.unroll(cell, params, xs, **kw)
        close(c, c_ref)


def test_backend_choice_and_errors():
    gru, mingru = seqjax.cells.gru(H), seqjax.cells.mingru(H)
    params = gru.init(jax.random.key(0), I)
    xs = jnp.ones((B, T, I))
    with pytest.raises(ValueError, match="'gru' has no parallel form"):
        seqjax.unroll(gru, params, xs, backend="parallel")
    with pytest.raises(ValueError, match="'gru' has no parallel form"):
        seqjax.parallel(gru, params, xs)
    with pytest.raises(ValueError, match="backend='scan'"):
        seqjax.unroll(gru, params, xs, backend="scan")
    close(seqjax.unroll(gru, params, xs), seqjax.unroll(gru, params, xs, backend="sequential"))
    assert scan.auto_backend(gru, 4096, "gpu") == "sequential"
    assert scan.auto_backend(mingru, 100, "an-unknown-platform") == "sequential"
    for platform, rows in scan.AUTO_BACKEND.items():
        assert rows[-1][0] is None, f"{platform}: the last row must cover every length"
        for T_ in (1, 128, 1024, 4096, 16384, 10**6):
            assert scan.auto_backend(mingru, T_, platform) in ("sequential", "parallel")
