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

import seqjax
from seqjax.cells import chunked

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


def perturb(params, key=2, scale=0.3):
    """Non-zero values everywhere (some initialisers give zeros, which would hide bugs)."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(key), len(leaves))
    noise = [scale * jax.random.normal(k, a.shape, jnp.float32) for k, a in zip(keys, leaves)]
    return jax.tree.unflatten(tree, [a + n.astype(a.dtype) for a, n in zip(leaves, noise)])


def setup(name, dtype=jnp.float32, steps=T, batch=(B,)):
    cell = CELLS[name]()
    params = perturb(cell.init(jax.random.key(0), I))
    params = jax.tree.map(lambda a: a.astype(dtype), params)
    xs = jax.random.normal(jax.random.key(1), (*batch, steps, I)).astype(dtype)
    return cell, params, xs


def random_carry(cell, params, batch_shape, key=7):
    """A non-zero initial carry (the state that resets return to as well)."""
    c = cell.initial_carry(params, batch_shape)
    leaves, tree = jax.tree.flatten(c)
    keys = jax.random.split(jax.random.key(key), len(leaves))
    noisy = [a + 0.5 * jax.random.normal(k, a.shape, a.dtype) for k, a in zip(keys, leaves)]
    return jax.tree.unflatten(tree, noisy)


def close(a, b, tol=F32_TOL):
    def check(x, y):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        np.testing.assert_allclose(x, y, rtol=tol, atol=tol)

    jax.tree.map(check, a, b)


def take(tree, b):
    return jax.tree.map(lambda a: a[b], tree)


def stack(trees):
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def loop_reference(cell, params, xs, carry0, lengths=None, resets=None, reverse=False):
    """Python loop over ``cell.step``, one sequence and one segment at a time: ``(ys, carry,
    carries)`` with zeros past each length and carries past the end holding the last one."""
    ys_all, finals, carries_all = [], [], []
    for b in range(xs.shape[0]):
        L = xs.shape[1] if lengths is None else int(lengths[b])
        r = np.zeros(xs.shape[1], bool) if resets is None else np.asarray(resets[b])
        starts = [0] + [t for t in range(1, L) if r[t]]
        segments = list(zip(starts, starts[1:] + [L])) if L else []
        c0 = take(carry0, b)
        ys = [jnp.zeros((cell.hidden_size,), xs.dtype) for _ in range(xs.shape[1])]
        carries = [None] * xs.shape[1]
        c = c0
        for s, e in segments[::-1] if reverse else segments:
            c = c0
            for t in range(e - 1, s - 1, -1) if reverse else range(s, e):
                c, ys[t] = cell.step(params, c, xs[b, t])
                carries[t] = c
        carries = [c if k is None else k for k in carries]
        ys_all.append(jnp.stack(ys))
        finals.append(c)
        carries_all.append(stack(carries))
    return jnp.stack(ys_all), stack(finals), stack(carries_all)


OPTIONS = {
    "plain": {},
    "lengths": {"lengths": [T, 5, 0]},
    "resets": {"resets": [(0, 3), (4, 5), ()]},
    "reverse": {"reverse": True},
    "all": {"lengths": [T, 6, 2], "resets": [(3, 7), (1, 2, 5), (1, 4)], "reverse": True},
}


def make_options(spec):
    kw = {}
    if "lengths" in spec:
        kw["lengths"] = jnp.array(spec["lengths"])
    if "resets" in spec:
        r = np.zeros((B, T), bool)
        for b, ts in enumerate(spec["resets"]):
            r[b, list(ts)] = True  # some fall past the sequence's end: they must change nothing
        kw["resets"] = jnp.array(r)
    if spec.get("reverse"):
        kw["reverse"] = True
    return kw


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("opts", OPTIONS)
def test_backends_equal_python_loop(name, opts):
    cell, params, xs = setup(name)
    carry0 = random_carry(cell, params, (B,))
    kw = make_options(OPTIONS[opts])
    ref = loop_reference(cell, params, xs, carry0, **kw)
    seq = seqjax.unroll(cell, params, xs, carry0, return_carries=True, backend="sequential", **kw)
    close(seq, ref)
    if cell.parallel is not None:
        par = seqjax.parallel(cell, params, xs, carry0, return_carries=True, **kw)
        close(par, ref)
        two = seqjax.unroll(cell, params, xs, carry0, backend="parallel", **kw)
        close(two, ref[:2])
        if "lengths" in kw:
            for b, n in enumerate(np.asarray(kw["lengths"])):
                assert (par[0][b, n:] == 0).all()


@pytest.mark.parametrize("name", PARALLEL)
@pytest.mark.parametrize("opts, remat", [("plain", False), ("all", False), ("all", True)])
def test_gradients_agree_between_backends(name, opts, remat):
    cell, params, xs = setup(name)
    carry0 = random_carry(cell, params, (B,))
    kw = make_options(OPTIONS[opts])
    w = jax.random.normal(jax.random.key(3), (B, T, H))

    def loss(params, xs, carry0, backend):
        ys, c = seqjax.unroll(cell, params, xs, carry0, backend=backend, remat=remat, **kw)
        return (ys * w).sum() + sum((a**2).sum() for a in jax.tree.leaves(c))

    g_par = jax.grad(loss, argnums=(0, 1, 2))(params, xs, carry0, "parallel")
    g_seq = jax.grad(loss, argnums=(0, 1, 2))(params, xs, carry0, "sequential")
    close(g_par, g_seq, 1e-4)
    if "lengths" in kw:  # padded inputs get exactly zero gradient
        assert (g_par[1][2, 2:] == 0).all() and (g_par[1][1, 6:] == 0).all()
