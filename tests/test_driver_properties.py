"""Property-based tests of the driver (``seqjax.unroll``) and of bidirectional layers.

Hypothesis draws the cell, the lengths, the reset pattern and the inputs; shapes come from a small
fixed set so that compiled functions are reused across examples. The reference is always a plain
Python loop over ``cell.step`` on each sequence cut to its own length (no scan, no masking).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqjax
from seqjax import cells

B, T, D, H = 3, 6, 3, 4
CELLS = tuple(cells.names())
SETTINGS = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TOL = dict(rtol=2e-5, atol=2e-6)

_CELLS: dict = {}


def cell_and_params(name, seed=0, dtype=jnp.float32):
    key = (name, seed, jnp.dtype(dtype).name)
    if key not in _CELLS:
        cell = cells.get(name, H, param_dtype=dtype)
        _CELLS[key] = (cell, cell.init(jax.random.key(seed), D), jax.jit(cell.step))
    return _CELLS[key]


def loop(name, x, carry=None, seed=0):
    """Reference: ``cell.step`` in a Python loop over one unbatched sequence ``x: (L, D)``."""
    cell, params, step = cell_and_params(name, seed)
    c = cell.initial_carry(params, ()) if carry is None else carry
    ys = []
    for t in range(x.shape[0]):
        c, y = step(params, c, jnp.asarray(x[t]))
        ys.append(np.asarray(y))
    return (np.stack(ys) if ys else np.zeros((0, H), np.float32)), c


def batch_carry(carry, b):
    return jax.tree.map(lambda a: np.asarray(a)[b], carry)


def assert_tree_close(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **TOL)


_UNROLL: dict = {}


def unroll(name, xs, **kw):
    """Jitted ``seqjax.unroll`` keyed by cell and static flags (one compile per combination)."""
    flags = tuple(sorted((k, v) for k, v in kw.items() if isinstance(v, bool)))
    arrays = {k: v for k, v in kw.items() if not isinstance(v, bool)}
    key = (name, flags, tuple(sorted(arrays)), xs.shape)
    if key not in _UNROLL:
        cell, params, _ = cell_and_params(name)
        _UNROLL[key] = jax.jit(lambda p, x, a: seqjax.unroll(cell, p, x, **a, **dict(flags)))
    _, params, _ = cell_and_params(name)
    return _UNROLL[key](params, jnp.asarray(xs), {k: jnp.asarray(v) for k, v in arrays.items()})


inputs = st.integers(0, 2**31 - 1).map(
    lambda s: np.random.default_rng(s).normal(size=(B, T, D)).astype(np.float32)
)
lengths_st = st.lists(st.integers(0, T), min_size=B, max_size=B).map(
    lambda v: np.asarray(v, np.int32)
)
resets_st = st.lists(st.lists(st.booleans(), min_size=T, max_size=T), min_size=B, max_size=B).map(
    lambda v: np.asarray(v, bool)
)


@SETTINGS
@given(name=st.sampled_from(CELLS), xs=inputs, lengths=lengths_st)
def test_lengths_equal_truncation(name, xs, lengths):
    ys, carry = unroll(name, xs, lengths=lengths)
    for b in range(B):
        L = int(lengths[b])
        ref_y, ref_c = loop(name, xs[b, :L])
        np.testing.assert_allclose(np.asarray(ys[b, :L]), ref_y, **TOL)
        assert np.all(np.asarray(ys[b, L:]) == 0)
        assert_tree_close(batch_carry(carry, b), ref_c)


@SETTINGS
@given(name=st.sampled_from(CELLS), xs=inputs, lengths=lengths_st)
def test_reverse_equals_flip_run_flip(name, xs, lengths):
    ys, carry = unroll(name, xs, lengths=lengths, reverse=True)
    for b in range(B):
        L = int(lengths[b])
        ref_y, ref_c = loop(name, xs[b, :L][::-1])
        np.testing.assert_allclose(np.asarray(ys[b, :L]), ref_y[::-1], **TOL)
        assert np.all(np.asarray(ys[b, L:]) == 0)
        assert_tree_close(batch_carry(carry, b), ref_c)


def segments(reset_row, L):
    """``[(start, end), ...]`` of the segments of ``[0, L)`` split before each reset."""
    starts = [0] + [t for t in range(1, L) if reset_row[t]]
    return list(zip(starts, starts[1:] + [L]))


@SETTINGS
@given(name=st.sampled_from(CELLS), xs=inputs, resets=resets_st, lengths=lengths_st)
def test_resets_equal_separate_segments(name, xs, resets, lengths):
    ys, _ = unroll(name, xs, resets=resets, lengths=lengths)
    ys_rev, _ = unroll(name, xs, resets=resets, lengths=lengths, reverse=True)
    for b in range(B):
        L = int(lengths[b])
        for s, e in segments(resets[b], L):
            ref_y, _ = loop(name, xs[b, s:e])
            np.testing.assert_allclose(np.asarray(ys[b, s:e]), ref_y, **TOL)
            # Backwards, each segment runs backwards on its own.
            ref_y, _ = loop(name, xs[b, s:e][::-1])
            np.testing.assert_allclose(np.asarray(ys_rev[b, s:e]), ref_y[::-1], **TOL)


_BIDI: dict = {}


@SETTINGS
@given(name=st.sampled_from(CELLS), xs=inputs, lengths=lengths_st)
def test_bidirectional_halves_equal_each_direction(name, xs, lengths):
    if name not in _BIDI:
        layer = seqjax.layers.rnn(cells.get(name, H), bidirectional=True)
        params = layer.init(jax.random.key(1), D)
        _BIDI[name] = (jax.jit(lambda p, x, n: layer.apply(p, x, lengths=n)), params)
    apply, params = _BIDI[name]
    ys, _ = apply(params, jnp.asarray(xs), jnp.asarray(lengths))
    cell = cells.get(name, H)
    step = jax.jit(cell.step)
    for b in range(B):
        L = int(lengths[b])
        for half, p, x, flip in (
            (0, params[0]["fwd"], xs[b, :L], False),
            (1, params[0]["bwd"], xs[b, :L][::-1], True),
        ):
            c = cell.initial_carry(p, ())
            out = []
            for t in range(L):
                c, y = step(p, c, jnp.asarray(x[t]))
                out.append(np.asarray(y))
            ref = np.stack(out) if out else np.zeros((0, H), np.float32)
            got = np.asarray(ys[b, :L, half * H : (half + 1) * H])
            np.testing.assert_allclose(got, ref[::-1] if flip else ref, **TOL)
        assert np.all(np.asarray(ys[b, L:]) == 0)


@SETTINGS
@given(
    name=st.sampled_from(CELLS),
    xs=inputs,
    lengths=lengths_st,
    reverse=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_invariant_to_extra_padding(name, xs, lengths, reverse, seed):
    garbage = np.random.default_rng(seed).normal(size=(B, 4, D)).astype(np.float32) * 100
    padded = np.concatenate([xs, garbage], axis=1)
    for b in range(B):  # garbage also in the original padding region
        padded[b, lengths[b] : T] = garbage[b, 0]
    ys, carry = unroll(name, xs, lengths=lengths, reverse=reverse)
    ys_p, carry_p = unroll(name, padded, lengths=lengths, reverse=reverse)
    np.testing.assert_allclose(np.asarray(ys_p[:, :T]), np.asarray(ys), **TOL)
    assert np.all(np.asarray(ys_p[:, T:]) == 0)
    assert_tree_close(carry_p, carry)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(name=st.sampled_from(CELLS), xs=inputs, lengths=lengths_st, reverse=st.booleans())
def test_float64_agrees_with_float32(name, xs, lengths, reverse):
    ys32, c32 = unroll(name, xs, lengths=lengths, reverse=reverse)
    with jax.enable_x64(True):
        cell = cells.get(name, H, param_dtype=jnp.float64)
        _, p32, _ = cell_and_params(name)
        p64 = jax.tree.map(lambda a: jnp.asarray(np.asarray(a, np.float64)), p32)
        ys64, c64 = seqjax.unroll(
            cell,
            p64,
            jnp.asarray(xs, jnp.float64),
            lengths=jnp.asarray(lengths),
            reverse=reverse,
        )
        assert ys64.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(ys32), np.asarray(ys64), rtol=1e-4, atol=1e-5)
        for a, b in zip(jax.tree.leaves(c32), jax.tree.leaves(c64), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_cells_cover_the_known_families():
    assert {"elman", "lstm", "gru"} <= set(CELLS)


@pytest.mark.parametrize("name", CELLS)
def test_reference_loop_matches_unbatched_unroll(name):
    """The reference itself: the Python loop equals an unroll of one unpadded sequence."""
    xs = np.random.default_rng(0).normal(size=(T, D)).astype(np.float32)
    cell, params, _ = cell_and_params(name)
    ys, c = seqjax.unroll(cell, params, jnp.asarray(xs))
    ref_y, ref_c = loop(name, xs)
    np.testing.assert_allclose(np.asarray(ys), ref_y, **TOL)
    assert_tree_close(c, ref_c)
