"""A reference for every driver: a Python loop over ``cell.step``, one sequence and one segment
at a time, with ``lengths``, ``resets`` and ``reverse`` written out by hand (shared by the cell
test files; carries may be any pytree)."""

import jax
import jax.numpy as jnp
import numpy as np


def take(tree, b):
    return jax.tree.map(lambda a: a[b], tree)


def stack(trees):
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def loop_reference(cell, params, xs, carry0, lengths=None, resets=None, reverse=False):
    """Python loop over ``cell.step``, one sequence and one segment at a time: ``(ys, carry,
    carries)`` with zeros past each length and carries past the end holding the last one."""
    step = jax.jit(cell.step)  # one compilation instead of every op's on first use
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
                c, ys[t] = step(params, c, xs[b, t])
                carries[t] = c
        carries = [c if k is None else k for k in carries]
        ys_all.append(jnp.stack(ys))
        finals.append(c)
        carries_all.append(stack(carries))
    return jnp.stack(ys_all), stack(finals), stack(carries_all)


def make_options(spec, shape):
    """``unroll`` keywords from a spec ``{"lengths": [...], "resets": [[t, ...] per sequence],
    "reverse": bool}`` for inputs of ``shape = (batch, steps)``."""
    kw = {}
    if "lengths" in spec:
        kw["lengths"] = jnp.array(spec["lengths"])
    if "resets" in spec:
        r = np.zeros(shape, bool)
        for b, ts in enumerate(spec["resets"]):
            r[b, list(ts)] = True  # some fall past the sequence's end: they must change nothing
        kw["resets"] = jnp.array(r)
    if spec.get("reverse"):
        kw["reverse"] = True
    return kw
