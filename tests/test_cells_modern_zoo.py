"""The modern gated recurrences of the cell zoo: RG-LRU, S6, mLSTM, sLSTM, DeltaNet, Gated DeltaNet.

Each cell is checked against things independent of its code:

* a Python loop over ``cell.step``, one sequence and one segment at a time (lengths, resets and
  reverse written out by hand), which the parallel/chunkwise form and ``unroll`` must match;
* the maintained reference implementations with weights mapped across, where they import on CPU
  (recurrentgemma's JAX ``RGLRU``; xlstm's PyTorch mLSTM backends and vanilla sLSTM; the naive
  PyTorch recurrences of fla-core), outputs and gradients to 1e-5; those tests skip without them;
* NumPy float64 loops transcribing the papers' equations (S6's algorithm 2; mLSTM and sLSTM
  without the stabiliser, which float64 can afford);
* a behavioural check from each paper.
"""

import functools
import importlib.util
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from loop_reference import loop_reference
from loop_reference import make_options as _make_options

import seqjax

B, T, I, H = 3, 9, 4, 6
F32_TOL = 1e-5

# Small heads and chunks of 4, so that T = 9 spans three chunks (the last one padded).
CELLS = {
    "rglru": lambda: seqjax.cells.rglru(H),
    "s6": lambda: seqjax.cells.s6(H, state_size=3),
    "deltanet": lambda: seqjax.cells.deltanet(H, num_heads=2, chunk_size=4),
    "gated_deltanet": lambda: seqjax.cells.gated_deltanet(H, num_heads=2, chunk_size=4),
    "mlstm": lambda: seqjax.cells.mlstm(H, num_heads=2, chunk_size=4),
    "mlstm_exp": lambda: seqjax.cells.mlstm(H, forget_gate="exp", key_size=2, chunk_size=4),
    "slstm": lambda: seqjax.cells.slstm(H, num_heads=2, recurrent_init="uniform"),
}
PARALLEL = [name for name in CELLS if name != "slstm"]


def normal(seed, shape, scale=1.0):
    """Gaussian test data from NumPy (each new ``jax.random`` shape compiles on first use)."""
    return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def perturb(params, key=2, scale=0.3, noise=None):
    """Non-zero values everywhere (some initialisers give zeros, which would hide bugs); the noise
    from ``jax.random`` unless ``noise(i, shape)`` gives it."""
    leaves, tree = jax.tree.flatten(params)
    if noise is None:
        keys = jax.random.split(jax.random.key(key), len(leaves))
        noise = lambda i, shape: jax.random.normal(keys[i], shape, jnp.float32)  # noqa: E731
    noisy = [a + (scale * noise(i, a.shape)).astype(a.dtype) for i, a in enumerate(leaves)]
    return jax.tree.unflatten(tree, noisy)


def setup(name, dtype=jnp.float32, steps=T, batch=(B,)):
    cell = CELLS[name]()
    params = perturb(cell.init(jax.random.key(0), I), noise=lambda i, shape: normal((2, i), shape))
    params = jax.tree.map(lambda a: a.astype(dtype), params)
    xs = normal(1, (*batch, steps, I)).astype(dtype)
    return cell, params, xs


def random_carry(cell, params, batch_shape, key=7):
    """A non-zero initial carry (the state that resets return to as well)."""
    c = cell.initial_carry(params, batch_shape)
    leaves, tree = jax.tree.flatten(c)
    noisy = [a + normal((key, i), a.shape, 0.5).astype(a.dtype) for i, a in enumerate(leaves)]
    return jax.tree.unflatten(tree, noisy)


def close(a, b, tol=F32_TOL):
    def check(x, y):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol)

    jax.tree.map(check, a, b)


OPTIONS = {
    "plain": {},
    "reverse": {"reverse": True},
    "lengths_resets": {"lengths": [T, 5, 0], "resets": [(0, 3), (4, 5), ()]},
    "all": {"lengths": [T, 6, 2], "resets": [(3, 7), (1, 2, 5), (1, 4)], "reverse": True},
}


def jitted(driver, cell, reverse=False, **static):
    """``driver(cell, params, xs, carry, lengths=, resets=, reverse=)`` under one ``jax.jit``."""

    @jax.jit
    def run(params, xs, carry, lengths=None, resets=None):
        return driver(
            cell, params, xs, carry, lengths=lengths, resets=resets, reverse=reverse, **static
        )

    return lambda params, xs, carry, **kw: run(params, xs, carry, **kw)


@pytest.mark.parametrize(
    "name", [n if n != "mlstm_exp" else pytest.param(n, marks=pytest.mark.slow) for n in CELLS]
)
def test_backends_outputs_and_gradients_with_every_option(name):
    """The fast form of the two tests below, one compilation per backend: with lengths, resets
    and reverse at once, outputs and final carries (and the sequential backend's every-step
    carries) equal the Python loop, the gradients of the two backends agree, and padded steps
    have zero outputs and padded inputs exactly zero gradient."""
    cell, params, xs = setup(name)
    carry0 = random_carry(cell, params, (B,))
    kw = _make_options(OPTIONS["all"], (B, T))
    ref = loop_reference(cell, params, xs, carry0, **kw)
    w = normal(3, (B, T, H))

    @functools.partial(jax.jit, static_argnums=3)
    def run(params, xs, carry0, backend):
        def loss(params, xs, carry0):
            every = backend == "sequential"  # parallel: the path that holds padded steps
            out = seqjax.unroll(
                cell, params, xs, carry0, backend=backend, return_carries=every, **kw
            )
            value = (out[0] * w).sum() + sum((a**2).sum() for a in jax.tree.leaves(out[1]))
            return value, out

        return jax.grad(loss, argnums=(0, 1, 2), has_aux=True)(params, xs, carry0)

    grads = {}
    for backend in ["sequential", "parallel"] if cell.parallel else ["sequential"]:
        grads[backend], out = run(params, xs, carry0, backend)
        close(out, ref[: len(out)])
        assert (out[0][2, 2:] == 0).all() and (out[0][1, 6:] == 0).all()
        assert (grads[backend][1][2, 2:] == 0).all() and (grads[backend][1][1, 6:] == 0).all()
    if cell.parallel:
        close(grads["parallel"], grads["sequential"], 1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("opts", OPTIONS)
def test_backends_equal_python_loop(name, opts):
    cell, params, xs = setup(name)
    carry0 = random_carry(cell, params, (B,))
    kw = _make_options(OPTIONS[opts], (B, T))
    ref = loop_reference(cell, params, xs, carry0, **kw)
    reverse = kw.pop("reverse", False)
    seq = jitted(seqjax.unroll, cell, reverse, return_carries=True, backend="sequential")
    close(seq(params, xs, carry0, **kw), ref)
    if cell.parallel is not None:
        par = jitted(seqjax.parallel, cell, reverse, return_carries=True)(params, xs, carry0, **kw)
        close(par, ref)
        if "lengths" in kw:
            for b, n in enumerate(np.asarray(kw["lengths"])):
                assert (par[0][b, n:] == 0).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", PARALLEL)
@pytest.mark.parametrize("opts, remat", [("all", True)])
def test_gradients_agree_between_backends(name, opts, remat):
    cell, params, xs = setup(name)
    carry0 = random_carry(cell, params, (B,))
    kw = _make_options(OPTIONS[opts], (B, T))
    w = normal(3, (B, T, H))

    @functools.partial(jax.jit, static_argnums=3)
    def grads(params, xs, carry0, backend):
        def loss(params, xs, carry0):
            ys, c = seqjax.unroll(cell, params, xs, carry0, backend=backend, remat=remat, **kw)
            return (ys * w).sum() + sum((a**2).sum() for a in jax.tree.leaves(c))

        return jax.grad(loss, argnums=(0, 1, 2))(params, xs, carry0)

    g_par = grads(params, xs, carry0, "parallel")
    close(g_par, grads(params, xs, carry0, "sequential"), 1e-4)
    if "lengths" in kw:  # padded inputs get exactly zero gradient
        assert (g_par[1][2, 2:] == 0).all() and (g_par[1][1, 6:] == 0).all()


def intermediate_shapes(fn, *args) -> list:
    """The shapes of every value in ``jax.make_jaxpr(fn)(*args)``, inside loops included."""
    from jax.extend import core as jcore

    shapes = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            shapes.extend(v.aval.shape for v in eqn.outvars if hasattr(v.aval, "shape"))
            for value in eqn.params.values():
                for sub in value if isinstance(value, (tuple, list)) else (value,):
                    if isinstance(sub, jcore.ClosedJaxpr):
                        walk(sub.jaxpr)
                    elif isinstance(sub, jcore.Jaxpr):
                        walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return shapes


@pytest.mark.parametrize("name", ["deltanet", "mlstm"])
def test_parallel_with_lengths_keeps_no_state_per_step(name):
    """With ``lengths`` the matrix-state cells hold their state on padded steps (``valid``), so
    no value as large as every step's state, ``(B, heads, T, d_k, d_v)``, is formed, forward or
    backward (the chunkwise backward keeps each chunk's entering state: T / chunk_size of them);
    asking for every step's carry (what the driver did before) forms one: the check can fail."""
    d_k, d_v = 3, 2  # distinct sizes, so that (..., d_k, d_v) values are states
    cell = seqjax.cells.get(name, 2 * d_v, num_heads=2, key_size=d_k, chunk_size=4)
    params = cell.init(jax.random.key(0), I)
    xs = normal(1, (B, T, I))
    lengths = jnp.array([T, 5, 0])

    def loss(p, **kw):
        out = seqjax.parallel(cell, p, xs, lengths=lengths, **kw)
        return out[0].sum() + sum(jnp.sum(c) for c in jax.tree.leaves(out[1:]))

    def stacks(fn):
        every_step = B * 2 * T * d_k * d_v
        shapes = intermediate_shapes(fn, params)
        return [s for s in shapes if s[-2:] == (d_k, d_v) and math.prod(s) >= every_step]

    assert stacks(jax.grad(loss)) == []
    assert stacks(jax.grad(functools.partial(loss, return_carries=True)))


def test_parallel_without_valid_gathers_the_last_carry():
    """A cell whose ``parallel`` takes no ``valid`` still gets the same results (the driver picks
    each sequence's last valid carry from all of them)."""
    cell, params, xs = setup("s6")
    full = cell.parallel
    old = cell._replace(
        parallel=lambda p, c, x, *, resets=None, return_carries=False: full(
            p, c, x, resets=resets, return_carries=return_carries
        )
    )
    carry0 = random_carry(cell, params, (B,))
    kw = _make_options(OPTIONS["all"], (B, T))
    reverse = kw.pop("reverse")
    ref = loop_reference(cell, params, xs, carry0, reverse=reverse, **kw)
    for return_carries in (False, True):
        run = jitted(seqjax.parallel, old, reverse, return_carries=return_carries)
        out = run(params, xs, carry0, **kw)
        close(out, ref[: len(out)])


# ---------------------------------------------------------------------------------------------
# Independent references: maintained implementations with weights mapped across.


def load_reference(package, relative_path):
    """A module of an installed package loaded from its file alone (its ``__init__`` may import
    GPU-only code such as triton); skips the test when the package or PyTorch is missing."""
    pytest.importorskip("torch", reason="the PyTorch reference implementations need torch")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"reference package {package!r} is not installed (pip install it to run this)")
    path = pathlib.Path(spec.submodule_search_locations[0], relative_path)
    module_spec = importlib.util.spec_from_file_location(f"_ref_{package}_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except ImportError as e:
        pytest.skip(f"{package}/{relative_path} does not import here: {e}")
    return module


def torch_tree(tree):
    import torch

    return jax.tree.map(lambda a: torch.tensor(np.asarray(a), requires_grad=True), tree)


def torch_grads(tree):
    return jax.tree.map(lambda a: a.grad.numpy(), tree)


def jax_value_and_grads(cell, params, xs, carry, w):
    """Outputs, final carry and the gradients of ``sum(w * ys)`` w.r.t. params, inputs, carry."""

    def loss(params, xs, carry):
        ys, c = seqjax.unroll(cell, params, xs, carry, backend="sequential")
        return (w * ys).sum(), (ys, c)

    grad, (ys, c) = jax.grad(loss, argnums=(0, 1, 2), has_aux=True)(params, xs, carry)
    return ys, c, grad


def test_rglru_matches_recurrentgemma():
    """recurrentgemma's JAX ``RGLRU`` layer (De et al.'s code): with ``input_size = H``, W_u = I
    and its block-diagonal gate matrices placed on our dense ones, outputs and gradients agree."""
    layers = pytest.importorskip("recurrentgemma.jax.layers", reason="pip install recurrentgemma")
    nh, width = 2, 8
    layer = layers.RGLRU(width=width, num_heads=nh)
    x = normal(1, (B, T, width))
    pos = jnp.broadcast_to(jnp.arange(1, T + 1), (B, T))  # no position 0: no document reset
    theirs = layer.init(jax.random.key(0), x, pos)["params"]
    theirs = perturb(theirs)
    h0 = normal(5, (B, width))
    w = normal(6, (B, T, width))
    cell = seqjax.cells.rglru(width)

    def dense(blocks):  # (heads, i, j) -> block-diagonal (heads * i, heads * j)
        return jax.scipy.linalg.block_diag(*blocks)

    def ours_from(theirs):
        return {
            "w_x": jnp.concatenate(
                [dense(theirs["a_gate"]["w"]), dense(theirs["input_gate"]["w"]), jnp.eye(width)], 1
            ),
            "b": jnp.concatenate(
                [theirs["a_gate"]["b"].ravel(), theirs["input_gate"]["b"].ravel(), jnp.zeros(width)]
            ),
            "lam": -theirs["a_param"],  # theirs: a = exp(-softplus(a_param)) = sigmoid(-a_param)
        }

    def loss_theirs(theirs, x, h0):
        y, last = layer.apply({"params": theirs}, x, pos, h0)
        return (w * y).sum(), (y, last)

    def loss_ours(theirs, x, h0):
        ys, c = seqjax.parallel(cell, ours_from(theirs), x, h0)
        return (w * ys).sum(), (ys, c)

    g_ref, out_ref = jax.jit(jax.grad(loss_theirs, (0, 1, 2), has_aux=True))(theirs, x, h0)
    g, out = jax.jit(jax.grad(loss_ours, (0, 1, 2), has_aux=True))(theirs, x, h0)
    close(out, out_ref)
    close(g, g_ref)
    ys_seq, _ = seqjax.unroll(cell, ours_from(theirs), x, h0, backend="sequential")
    close(ys_seq, out_ref[0])


def deltanet_projections(params, xs, nh, d_k, d_v, gated):
    """q, k, v, beta, log alpha from the parameters, in NumPy, following the documented layout
    (blocks q | k | v | beta | alpha of ``w_x``), batch-major ``(B, T, heads, d)``."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    z = np.asarray(xs, np.float64) @ p["w_x"]
    sizes = [nh * d_k, nh * d_k, nh * d_v, nh] + ([nh] if gated else [])
    parts = np.split(z, np.cumsum(sizes)[:-1], axis=-1)
    heads = lambda u, d: u.reshape(u.shape[:-1] + (nh, d))  # noqa: E731
    norm = lambda u: u / np.sqrt((u**2).sum(-1, keepdims=True) + 1e-6)  # noqa: E731
    q, k, v = norm(heads(parts[0], d_k)), norm(heads(parts[1], d_k)), heads(parts[2], d_v)
    beta = 1 / (1 + np.exp(-(parts[3] + p["b_beta"])))
    if gated:
        softplus = np.logaddexp(0, parts[4] + p["dt_bias"])
        log_alpha = -np.exp(p["a_log"]) * softplus
    else:
        log_alpha = np.zeros_like(beta)
    return q, k, v, beta, log_alpha


@pytest.mark.parametrize("gated", [False, True])
def test_deltanet_matches_fla_naive_recurrence(gated):
    """fla-core's naive PyTorch recurrences (``delta_rule_recurrence``,
    ``naive_recurrent_gated_delta_rule``) from the same q, k, v, beta, alpha and initial state:
    outputs, final state and the gradients w.r.t. all of them."""
    torch = pytest.importorskip("torch", reason="the reference implementation runs on PyTorch")

    name = "gated_deltanet" if gated else "deltanet"
    path = "ops/gated_delta_rule/naive.py" if gated else "ops/delta_rule/naive.py"
    naive = load_reference("fla", path)
    cell, params, xs = setup(name)
    nh, d_k, d_v = 2, 3, 3
    S0 = random_carry(cell, params, (B,))
    w = normal(6, (B, T, H))
    ys, S, grads = jax_value_and_grads(cell, params, xs, S0, w)

    q, k, v, beta, log_alpha = deltanet_projections(params, xs, nh, d_k, d_v, gated)
    t = torch_tree({"q": q, "k": k, "v": v, "beta": beta, "g": log_alpha, "S0": S0})
    t = jax.tree.map(lambda a: a.float().detach().requires_grad_(True), t)
    bthd = lambda a: a.transpose(1, 2)  # (B, T, heads, ...) -> (B, heads, T, ...)  # noqa: E731
    if gated:
        o, S_ref = naive.naive_recurrent_gated_delta_rule(
            t["q"],
            t["k"],
            t["v"],
            t["beta"],
            t["g"],
            scale=1.0,
            initial_state=t["S0"],
            output_final_state=True,
        )
    else:  # this one scales q by d_k ** -0.5 itself: undo it
        o, S_ref = naive.delta_rule_recurrence(
            bthd(t["q"]) * math.sqrt(d_k),
            bthd(t["k"]),
            bthd(t["v"]),
            bthd(t["beta"]),
            initial_state=t["S0"],
        )
        o = bthd(o)
    o = o.reshape(B, T, H)
    (torch.tensor(np.asarray(w)) * o).sum().backward()
    close(ys, o.detach().numpy())
    close(S, S_ref.detach().numpy())
    close(grads[2], t["S0"].grad.numpy())  # d/d(initial state)

    # d/d(q, k, v, beta, alpha): the same loss as a function of the projections, through
    # cell.recur (the chunkwise form's gradients equal the step's: test_gradients_agree...).
    def from_projections(q, k, v, beta, log_alpha, S0):
        p = (q, k, v, beta, log_alpha)
        _, ys = jax.lax.scan(
            lambda S, p: cell.recur(params, S, p),
            S0,
            jax.tree.map(lambda a: jnp.moveaxis(a, 1, 0), p),
        )
        return (w * jnp.moveaxis(ys, 0, 1)).sum()

    args = [jnp.asarray(a, jnp.float32) for a in (q, k, v, beta, log_alpha)] + [S0]
    g = jax.grad(from_projections, argnums=range(6))(*args)
    for mine, key in zip(g, ["q", "k", "v", "beta", "g"] if gated else ["q", "k", "v", "beta"]):
        close(mine, t[key].grad.numpy())


def test_mlstm_matches_xlstm_backends():
    """xlstm's ``recurrent_step_stabilized_simple`` (a loop from our random initial state) and
    ``parallel_stabilized_simple`` (from the zero state): outputs, the stabilised carry
    ``(C', n', m)`` and the gradients w.r.t. parameters, inputs and initial state."""
    torch = pytest.importorskip("torch", reason="the reference implementation runs on PyTorch")

    backends = load_reference("xlstm", "blocks/mlstm/backends.py")
    nh, d = 2, 3
    cell, params, xs = setup("mlstm")
    carry0 = random_carry(cell, params, (B,))
    w = normal(6, (B, T, H))
    ys, carry, grads = jax_value_and_grads(cell, params, xs, carry0, w)

    tp, tx, tc = torch_tree(params), torch_tree(xs), torch_tree(carry0)
    z = tx @ tp["w_x"] + tp["b"]  # blocks q | k | v | o | i | f (k unscaled: theirs scales it)
    q, k, v, o, i, f = torch.split(z, [nh * d] * 4 + [nh, nh], dim=-1)
    heads = lambda u: u.reshape(B, T, nh, -1).transpose(1, 2)  # noqa: E731
    q, k, v, i, f = map(heads, (q, k, v, i, f))
    c, n, m = tc.c, tc.n[..., None], tc.m[..., None, None]
    hs = []
    for t in range(T):
        at = lambda a: a[:, :, t : t + 1].clone()  # noqa: E731
        h, (c, n, m) = backends.recurrent_step_stabilized_simple(
            c, n, m, at(q), at(k), at(v), at(i), at(f), eps=1e-6
        )
        hs.append(h.reshape(B, H))
    y = torch.sigmoid(o) * torch.stack(hs, 1)
    (torch.tensor(np.asarray(w)) * y).sum().backward()
    close(ys, y.detach().numpy())
    ref_carry = (c.detach().numpy(), n[..., 0].detach().numpy(), m[..., 0, 0].detach().numpy())
    close(carry, seqjax.cells.MLSTMCarry(*ref_carry))
    close(grads, (torch_grads(tp), tx.grad.numpy(), torch_grads(tc)))

    with torch.no_grad():
        h_par = backends.parallel_stabilized_simple(q, k, v, i, f, eps=1e-6)
        y_par = torch.sigmoid(o) * h_par.transpose(1, 2).reshape(B, T, H)
    close(seqjax.parallel(cell, params, xs)[0], y_par.numpy())


@pytest.mark.parametrize("zero_start", [pytest.param(True, marks=pytest.mark.slow), False])
def test_slstm_matches_xlstm_vanilla(zero_start):
    """xlstm's vanilla (PyTorch) ``slstm_forward`` with our block-diagonal recurrent blocks
    mapped onto its ``R (heads, 4 d, d)``: outputs, carries and gradients, from the zero state
    (where both start the stabiliser at the input gate) and from a random one."""
    torch = pytest.importorskip("torch", reason="the reference implementation runs on PyTorch")

    load_reference("xlstm", "blocks/slstm/src/vanilla/slstm.py")  # skips without torch/xlstm
    vanilla = pytest.importorskip("xlstm.blocks.slstm.src.vanilla", reason="xlstm's sLSTM")
    nh, d = 2, 3
    cell, params, xs = setup("slstm")
    carry0 = cell.initial_carry(params, (B,)) if zero_start else random_carry(cell, params, (B,))
    if not zero_start:
        carry0 = carry0._replace(n=jnp.abs(carry0.n) + 0.5)
    w = normal(6, (B, T, H))
    ys, carry, grads = jax_value_and_grads(cell, params, xs, carry0, w)

    tp, tx, tc = torch_tree(params), torch_tree(xs), torch_tree(carry0)
    wx = (tx @ tp["w_x"]).transpose(0, 1)  # (T, B, 4H), gate blocks i | f | z | o
    R = tp["r"].permute(1, 0, 3, 2).reshape(nh, 4 * d, d)  # theirs: R[h][g*d + j, i] = r[g,h,i,j]
    states = torch.stack([tc.h, tc.c, tc.n, tc.m])
    pointwise = vanilla.slstm_pointwise_function_registry["slstm"]
    states_all, last, _ = vanilla.slstm_forward(wx, states, R, tp["b"], pointwise)
    y = states_all[0, 1:].transpose(0, 1)
    (torch.tensor(np.asarray(w)) * y).sum().backward()
    close(ys, y.detach().numpy())
    close(carry, seqjax.cells.SLSTMCarry(*last.detach().numpy()))
    close(
        grads, (torch_grads(tp), tx.grad.numpy(), torch_grads(tc) if not zero_start else grads[2])
    )


# ---------------------------------------------------------------------------------------------
# NumPy float64 transcriptions of the papers' equations, written apart from the cells.


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def test_s6_matches_numpy_algorithm_2():
    """Gu & Dao 2023, algorithm 2 with the authors' discretisation (exp(Delta A), Delta B u),
    from the documented parameter layout. (mamba-ssm's ``selective_scan_ref`` is pure PyTorch,
    but the package builds CUDA kernels on install and imports them at import time.)"""
    cell, params, xs = setup("s6")
    N, R = 3, 1
    h0 = random_carry(cell, params, (B,))
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    z = np.asarray(xs, np.float64) @ p["w_x"]
    u, low, Bt, Ct = np.split(z, [H, H + R, H + R + N], axis=-1)
    delta = np.logaddexp(0, low @ p["w_dt"] + p["b_dt"])
    A = -np.exp(p["a_log"])
    h, ys = np.asarray(h0, np.float64), np.zeros((B, T, H))
    for t in range(T):
        h = (
            np.exp(delta[:, t, :, None] * A) * h
            + (delta[:, t] * u[:, t])[..., None] * Bt[:, t, None]
        )
        ys[:, t] = np.einsum("bhn,bn->bh", h, Ct[:, t]) + p["d"] * u[:, t]
    for backend in ("parallel", "sequential"):
        ys_cell, h_cell = seqjax.unroll(cell, params, xs, h0, backend=backend)
        close(ys_cell, ys)
        close(h_cell, h)
    assert params["a_log"].shape == (H, N) and params["w_dt"].shape == (R, H)


def mlstm_unstabilised(params, xs, nh, d):
    """The paper's mLSTM (eqs. 19-27) in float64 without the stabiliser, from the zero state."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    z = np.asarray(xs, np.float64) @ p["w_x"] + p["b"]
    q, k, v, o, i, f = np.split(z, np.cumsum([nh * d] * 4 + [nh]), axis=-1)
    hd = lambda a: a.reshape(a.shape[:-1] + (nh, d))  # noqa: E731
    q, k, v, o = hd(q), hd(k) / math.sqrt(d), hd(v), sigmoid(o)
    C, n = np.zeros((xs.shape[0], nh, d, d)), np.zeros((xs.shape[0], nh, d))
    ys = np.zeros(xs.shape[:2] + (nh * d,))
    for t in range(xs.shape[1]):
        ft, it = sigmoid(f[:, t])[..., None], np.exp(i[:, t])[..., None]
        C = ft[..., None] * C + it[..., None] * k[:, t, :, :, None] * v[:, t, :, None, :]
        n = ft * n + it * k[:, t]
        den = np.maximum(np.abs((n * q[:, t]).sum(-1)), 1.0)[..., None]
        ys[:, t] = o[:, t] * (np.einsum("bhkv,bhk->bhv", C, q[:, t]) / den).reshape(-1, nh * d)
    return ys


def slstm_unstabilised(params, xs, nh, d):
    """The paper's sLSTM (eqs. 8-14) in float64 without the stabiliser, from the zero state."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    Hs = nh * d
    R = [jax.scipy.linalg.block_diag(*p["r"][g]) for g in range(4)]
    R = np.concatenate([np.asarray(r, np.float64) for r in R], axis=1)  # (H, 4H), gates i|f|z|o
    h, c, n = (np.zeros((xs.shape[0], Hs)) for _ in range(3))
    ys = np.zeros(xs.shape[:2] + (Hs,))
    for t in range(xs.shape[1]):
        pre = np.asarray(xs[:, t], np.float64) @ p["w_x"] + h @ R + p["b"]
        i, f, z, o = np.split(pre, 4, axis=-1)
        c = sigmoid(f) * c + np.exp(i) * np.tanh(z)
        n = sigmoid(f) * n + np.exp(i)
        h = sigmoid(o) * c / n
        ys[:, t] = h
    return ys


@pytest.mark.parametrize("name", ["mlstm", "slstm"])
def test_xlstm_stabiliser_is_exact_where_exp_overflows(name):
    """Input-gate pre-activations near 100 (exp overflows float32 past 88.7): the stabilised
    float32 cells stay finite and equal the unstabilised float64 equations (Beck et al. 2024,
    eqs. 15-17: the stabiliser changes nothing but the representation)."""
    nh, d = 2, 3
    if name == "mlstm":
        cell = seqjax.cells.mlstm(H, num_heads=nh, eps=0.0, chunk_size=4)
        params = perturb(cell.init(jax.random.key(0), I))
        params["b"] = params["b"].at[-2 * nh : -nh].add(100.0)  # b_i
        reference = mlstm_unstabilised
    else:
        cell = seqjax.cells.slstm(H, num_heads=nh, recurrent_init="uniform")
        params = perturb(cell.init(jax.random.key(0), I))
        params["b"] = params["b"].at[:H].add(100.0)  # b_i
        reference = slstm_unstabilised
    xs = jax.random.normal(jax.random.key(1), (B, 20, I))  # data whose n q cancels by < 2e-4
    ref = reference(params, xs, nh, d)
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.exp(np.float32(100.0)))
    # mLSTM's h = C q / |n q| once |n q| > 1: float32 cancellation in n q (a sum of terms of both
    # signs) costs up to ~2e-4 relative here, whatever the stabiliser; sLSTM's c / n has none.
    tol = 1e-3 if name == "mlstm" else 1e-5
    backends = ["sequential", "parallel"] if cell.parallel else ["sequential"]
    for backend in backends:
        ys, carry = seqjax.unroll(cell, params, xs, backend=backend)
        assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves(carry))
        np.testing.assert_allclose(np.asarray(ys, np.float64), ref, rtol=tol, atol=tol)


# ---------------------------------------------------------------------------------------------
# Behaviour the papers describe.


@pytest.mark.parametrize(
    "a_init", ["paper", pytest.param("recurrentgemma", marks=pytest.mark.slow)]
)
def test_rglru_init_and_decay_range(a_init):
    """De et al. 2024, sec. 2.4: a^c uniform in [0.9, 0.999] ("paper"; recurrentgemma draws a
    itself with a^2 uniform in [0.81, 0.998]); a_t = a^(c r_t) stays in (0, 1] with finite
    gradients even for gates saturated by inputs of size 1e3."""
    c = 8.0
    cell = seqjax.cells.rglru(4096, a_init=a_init)
    params = cell.init(jax.random.key(0), 3)
    a = np.asarray(jax.nn.sigmoid(params["lam"]), np.float64)
    x = a**c if a_init == "paper" else a**2
    lo, hi = (0.9, 0.999) if a_init == "paper" else (0.81, 0.999**2)
    assert x.min() >= lo - 1e-6 and x.max() <= hi + 1e-6
    np.testing.assert_allclose(x.mean(), (lo + hi) / 2, atol=0.01 * (hi - lo) * 5)
    cell, params, _ = setup("rglru")
    xs = 1e3 * normal(1, (B, T, I))
    log_a = (
        c * jax.nn.sigmoid(cell.project(params, xs)[..., :H]) * jax.nn.log_sigmoid(params["lam"])
    )
    assert (log_a <= 0).all() and (jnp.exp(log_a) > 0).all()
    grads = jax.jit(jax.grad(lambda p: seqjax.parallel(cell, p, xs)[0].sum()))(params)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))


def test_rglru_normalisation_keeps_unit_scale():
    """h_t = a h_{t-1} + sqrt(1 - a^2) x_t keeps E[h^2] = 1 for unit white noise (sec. 2.4),
    where the unnormalised recurrence grows to 1 / (1 - a^2) = 500 at a = 0.999."""
    n, steps = 256, 3000
    cell = seqjax.cells.rglru(n)
    a_t = 0.999  # with r_t = sigmoid(0) = 1/2: a^(c/2) = a_t
    params = {
        "w_x": jnp.zeros((n, 3 * n)).at[:, 2 * n :].set(jnp.eye(n)),
        "b": jnp.zeros(3 * n).at[n : 2 * n].set(30.0),  # i_t = 1
        "lam": jnp.full(n, math.log(a_t) / 4.0 - math.log(-math.expm1(math.log(a_t) / 4.0))),
    }
    xs = normal(0, (1, steps, n))
    ys, _ = jax.jit(lambda p, x: seqjax.unroll(cell, p, x, backend="sequential"))(params, xs)
    np.testing.assert_allclose(float((ys[0, -1] ** 2).mean()), 1.0, atol=0.2)


def test_s6_selection_is_a_sigmoid_gate():
    """Gu & Dao 2023, Theorem 1: with N = 1 and A = -1 the state decays by 1 - g_t with
    g_t = sigmoid(x W_delta W_Delta + b_Delta), the ``selection`` gate."""
    cell = seqjax.cells.s6(H, state_size=1)
    params = perturb(cell.init(jax.random.key(0), I))
    params["a_log"] = jnp.zeros((H, 1))  # A = -1
    x = normal(1, (I,))
    h = normal(2, (H, 1))
    p = cell.project(params, x)
    g = cell.gates(params, h, p)["selection"]
    low = x @ params["w_x"][:, H : H + params["w_dt"].shape[0]]
    close(g, jax.nn.sigmoid(low @ params["w_dt"] + params["b_dt"]))
    decay = jax.jacfwd(lambda h: cell.recur(params, h, p)[0])(h)[:, 0, :, 0]
    close(decay, jnp.diag(1 - g))


@pytest.mark.parametrize("name", ["deltanet", "gated_deltanet"])
def test_delta_rule_overwrites_and_retrieves_exactly(name):
    """Orthonormal keys and beta = 1: the delta rule stores v under k and a second write to the
    same key replaces the value (Schlag et al. 2021, sec. 4.2), where a linear-attention sum
    would return v1 + v2. Gated with alpha = 1 behaves the same."""
    d = 4
    cell = seqjax.cells.get(name, d, key_size=d, chunk_size=2)
    params = cell.init(jax.random.key(0), 2 * d)
    eye, zero = jnp.eye(d), jnp.zeros((d, d))
    w = jnp.concatenate([jnp.concatenate([eye, zero]), jnp.concatenate([eye, zero])], 1)
    w = jnp.concatenate([w, jnp.concatenate([zero, eye]), jnp.zeros((2 * d, 1))], 1)
    params["w_x"] = jnp.concatenate([w, jnp.zeros((2 * d, 1))], 1) if "gated" in name else w
    params["b_beta"] = jnp.full((1,), 30.0)  # beta = 1 in float32
    if "gated" in name:
        params["a_log"] = jnp.full((1,), -30.0)  # alpha = exp(-1e-13 * softplus) = 1
    v = normal(1, (3, d))
    keys = jnp.stack([eye[0], eye[1], eye[0]])
    xs = jnp.concatenate([keys, v], -1)[None]
    for backend in ("parallel", "sequential"):
        ys, S = seqjax.unroll(cell, params, xs, backend=backend)
        np.testing.assert_allclose(S[0, 0, 0], v[2], rtol=1e-5, atol=1e-6)  # e0 now holds v3
        np.testing.assert_allclose(S[0, 0, 1], v[1], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(S[0, 0, 2:], 0.0, atol=1e-6)
        np.testing.assert_allclose(
            ys[0], v, rtol=1e-5, atol=1e-6
        )  # each step reads back what it wrote


# ---------------------------------------------------------------------------------------------
# Long sequences and the rest of the contract.


@pytest.mark.slow
@pytest.mark.parametrize("name", PARALLEL[:5])
def test_long_sequence_parallel_is_finite_and_equals_sequential(name):
    """T = 16384 (hidden 4, one sequence): finite outputs and gradients of the parallel or
    chunkwise form, within 1e-4 of the sequential scan."""
    kw = {"num_heads": 2} if name in ("deltanet", "gated_deltanet", "mlstm") else {}
    cell = seqjax.cells.get(name, 4, **kw)
    params = perturb(cell.init(jax.random.key(0), 2))
    xs = normal(1, (1, 16384, 2))
    loss = lambda p, x: seqjax.parallel(cell, p, x)[0].mean()  # noqa: E731
    grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, xs)
    ys, c = jax.jit(lambda p, x: seqjax.parallel(cell, p, x))(params, xs)
    ys_seq, c_seq = jax.jit(lambda p, x: seqjax.unroll(cell, p, x, backend="sequential"))(
        params, xs
    )
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves((ys, c, grads)))
    scale = float(jnp.abs(ys_seq).max())
    np.testing.assert_allclose(ys, ys_seq, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("name", CELLS)
def test_contract_step_and_capabilities(name):
    cell, params, xs = setup(name)
    c = random_carry(cell, params, (B,))
    x = xs[:, 0]
    close(cell.step(params, c, x), cell.recur(params, c, cell.project(params, x)))
    base = name.split("_exp")[0]
    assert base in seqjax.cells.names() and seqjax.cells.get(base, H).name == base
    gates = cell.gates(params, c, cell.project(params, x))
    for g in gates.values():
        assert g.shape == (B, H) and ((g >= 0) & (g <= 1)).all()
    if cell.recurrent_blocks is not None:
        check_recurrent_blocks(cell, params, c, x)


# Every registered cell runs these in tests/test_cell_contract.py too; here also mlstm_exp.
@pytest.mark.slow
@pytest.mark.parametrize("name", CELLS)
def test_contract_jit_vmap_jvp_dtypes(name):
    cell, params, xs = setup(name)
    c = random_carry(cell, params, (B,))
    x = xs[:, 0]
    close(jax.jit(cell.step)(params, c, x), cell.step(params, c, x))
    close(jax.vmap(cell.step, (None, 0, 0))(params, c, x), cell.step(params, c, x))
    # forward mode agrees with reverse mode: <w, J dx> from jvp equals <J^T w, dx> from vjp
    dx = normal(9, xs.shape)
    w = normal(10, (B, T, H))
    f = lambda x: seqjax.unroll(cell, params, x, c, backend="sequential")[0]  # noqa: E731
    ys, tangent = jax.jvp(f, (xs,), (dx,))
    (cotangent,) = jax.vjp(f, xs)[1](w)
    np.testing.assert_allclose((w * tangent).sum(), (cotangent * dx).sum(), rtol=1e-4)
    # bfloat16 parameters: outputs in bfloat16, the carry float32, close to float32's outputs
    p16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16), params)
    ys16, c16 = seqjax.unroll(cell, p16, xs.astype(jnp.bfloat16))
    ys32, _ = seqjax.unroll(cell, params, xs)
    assert ys16.dtype == jnp.bfloat16
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(c16))
    np.testing.assert_allclose(ys16.astype(jnp.float32), ys32, rtol=0.1, atol=0.1)


def check_recurrent_blocks(cell, params, carry, x):
    """One sLSTM step in NumPy (eqs. 8-17, stabilised) whose pre-activations are ``x W_x + h R +
    b`` with ``R`` the matrices ``recurrent_blocks`` reports: they are what multiplies h_{t-1}."""
    blocks = cell.recurrent_blocks(params)
    assert list(blocks) == ["i", "f", "z", "o"]
    R = np.concatenate([np.asarray(blocks[g], np.float64) for g in blocks], 1)
    h, c, n, m = (np.asarray(a, np.float64) for a in carry)
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    i, f, z, o = np.split(np.asarray(x, np.float64) @ p["w_x"] + h @ R + p["b"], 4, axis=-1)
    log_f = -np.logaddexp(0, -f)
    m_new = np.maximum(log_f + m, i)
    i_s, f_s = np.exp(i - m_new), np.exp(log_f + m - m_new)
    c, n = f_s * c + i_s * np.tanh(z), f_s * n + i_s
    expected = seqjax.cells.SLSTMCarry(sigmoid(o) * c / n, c, n, m_new)
    close(cell.step(params, carry, x)[0], expected)
