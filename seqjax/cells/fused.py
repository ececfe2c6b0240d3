r"""Whole-sequence recurrences whose derivatives cost what cuDNN's do (LSTM, GRU, Elman).

Reverse-mode autodiff of a ``lax.scan`` over :math:`z_t = x_t W_x + b + h_{t-1} W_h` does four
matmuls per step in the backward loop: :math:`\partial h_{t-1} = \partial z_t W_h^\top`,
:math:`\partial x_t = \partial z_t W_x^\top` and the accumulations
:math:`\partial W_h \mathrel{+}= h_{t-1}^\top \partial z_t`,
:math:`\partial W_x \mathrel{+}= x_t^\top \partial z_t`, each re-reading and re-writing a whole
weight-sized accumulator. Only the first is on the sequential path.

:func:`sequence` is a ``jax.custom_jvp`` whose tangent keeps only that one on the sequential path.
With :math:`H_{\mathrm{prev}}` and :math:`X` the ``(T, B, .)`` stacks of previous hidden states
and inputs, the tangent of the pre-activations splits into a part known for all steps at once and
one matmul per step:

.. math::
    \dot z_t = \underbrace{x_t \dot W_x + \dot b + \dot x_t W_x + h_{t-1}\dot W_h}_{\text{all
    steps at once: } X \dot W_x,\ H_{\mathrm{prev}} \dot W_h,\ \dot X W_x}
    + \dot h_{t-1} W_h,

and the step after the matmuls is linear in :math:`(\dot z_t, \dot c_{t-1})` with coefficients
saved by the forward loop (:class:`Form`). The tangent is written with ``lax.scan``, so JAX
transposes it for reverse mode: the backward loop does one matmul per step
(:math:`\partial z_t W_h^\top`) and the weight gradients come out as single large matmuls after
it, :math:`\partial W_h = H_{\mathrm{prev}}^\top \partial Z`, :math:`\partial W_x = X^\top
\partial Z`, :math:`\partial b = \sum_{t,b} \partial Z` (cuDNN's split). Because the rule is a
JVP, every transformation composes: ``grad``, ``jvp``, ``jacfwd``, ``jacrev``, ``linearize``,
``hessian``, ``vmap``, ``jit``.

The steps and their linearisations (coefficients in brackets are saved per step):

LSTM (:math:`i, f, g, o` the gate activations, :math:`c` the new cell, :math:`\tau = \tanh c`):

.. math::
    \dot c = [f]\,\dot c_{t-1} + [f(1-f) c_{t-1}]\,\dot z_f + [i(1-i) g]\,\dot z_i
    + [i(1-g^2)]\,\dot z_g, \qquad \dot h = [o(1-o)\tau]\,\dot z_o + [o(1-\tau^2)]\,\dot c.

GRU (``reset_after``; :math:`a = h_{t-1} W_h + [0, 0, b_{hn}]`, :math:`p = x_t W_x + b`):

.. math::
    \dot h = [(1-n^2)(1-u)]\,(\dot p_n + [r(1-r) a_n](\dot p_r + \dot a_r) + [r]\,\dot a_n)
    + [u(1-u)(h_{t-1} - n)]\,(\dot p_u + \dot a_u) + [u]\,\dot h_{t-1}.

Elman: :math:`\dot h = [\phi'(z)]\,\dot z`.

Precision: the matmuls take their operands in the parameters' dtype and accumulate in float32
(``preferred_element_type``); the gate math, the carry and the saved activations are float32
(or the parameters' dtype where it is wider), and the outputs and the final carry are cast back
to the dtypes they came in. With bfloat16 parameters (``model.compute_dtype=bfloat16``) that is
the usual mixed-precision recipe, and on CPUs with bfloat16 matrix units it is where the time
goes down; casting every operation to bfloat16 instead was 2.5x slower than float32 there.

Padding (``valid`` false) holds the carry and zeroes the output, exactly as
:func:`seqjax.unroll`'s sequential loop does; the tests compare the two (values, gradients and
every transformation) and check the derivatives against finite differences in float64.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero


class Form(NamedTuple):
    """A cell's step after its two matmuls, for :func:`sequence`.

    The cell's parameters hold ``w_x (I, G)``, ``b (G,)`` and ``w_h (H, G)``; a step computes
    ``p = x W_x + b`` and ``a = hidden(carry) W_h (+ recurrent_bias)``, then only elementwise
    work.

    Attributes:
      step: ``(carry, p, a) -> carry``.
      coefs: ``(carry_prev, p, a, carry) -> tuple of arrays``: what the forward loop saves for
        the step's derivative (its activations).
      tangent: ``(coefs, carry_prev, dcarry_prev, dp, da) -> dcarry``, the step's linearisation
        (linear in the tangents ``dcarry_prev, dp, da``), every operation taking a tangent
        operand (work on ``coefs`` or ``carry_prev`` alone would make JAX's partial evaluation
        split it into a loop of its own).
      hidden: ``carry -> h``, the vector that multiplies ``w_h`` and the step's output.
      summed: ``step`` depends on ``p + a`` only (lets the driver add their tangents early).
      recurrent_bias: ``params -> (G,)`` added to ``h W_h``, or ``None``.
      cudnn_lstm: for cells that are cuDNN's LSTM, ``params -> (W_ih (G, I), W_hh (G, H),
        b_ih (G,), b_hh (G,))`` in cuDNN's layout (:mod:`seqjax.cudnn`); carry ``(h, c)``.
    """

    step: Callable
    coefs: Callable
    tangent: Callable
    hidden: Callable
    summed: bool = True
    recurrent_bias: Optional[Callable] = None
    cudnn_lstm: Optional[Callable] = None


# The three cells ---------------------------------------------------------------------------------
# Each tangent applies only operations with a tangent operand: JAX's partial evaluation would move
# any work on the saved activations alone into a loop of its own, which writes its results out.


def _dsigmoid(dx, s):
    """``s (1 - s) dx`` for ``s = sigmoid(x)``, every operation on the tangent."""
    t = dx * s
    return t - t * s


def _dtanh(dx, t):
    """``(1 - t^2) dx`` for ``t = tanh(x)``, every operation on the tangent."""
    return dx - (dx * t) * t


def _lstm_gates(z):
    i, f, g, o = jnp.split(z, 4, axis=-1)
    return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)


def lstm(carry_type: Callable) -> Form:
    """The LSTM of :func:`seqjax.cells.lstm` (gate order ``i, f, g, o``, carry ``(h, c)``)."""

    def step(carry, p, a):
        i, f, g, o = _lstm_gates(p + a)
        c = f * carry.c + i * g
        return carry_type(o * jnp.tanh(c), c)

    def coefs(prev, p, a, carry):
        del prev
        return (*_lstm_gates(p + a), jnp.tanh(carry.c))

    def tangent(k, prev, dprev, dp, da):
        i, f, g, o, tc = k
        dz_i, dz_f, dz_g, dz_o = jnp.split(dp + da, 4, axis=-1)
        di, df, do = _dsigmoid(dz_i, i), _dsigmoid(dz_f, f), _dsigmoid(dz_o, o)
        dc = dprev.c * f + df * prev.c + di * g + _dtanh(dz_g, g) * i
        return carry_type(do * tc + _dtanh(dc, tc) * o, dc)

    def cudnn_lstm(params):
        return params["w_x"].T, params["w_h"].T, params["b"], jnp.zeros_like(params["b"])

    return Form(step, coefs, tangent, hidden=lambda c: c.h, cudnn_lstm=cudnn_lstm)


def _gru_gates(h, p, a):
    p_r, p_u, p_n = jnp.split(p, 3, axis=-1)
    a_r, a_u, a_n = jnp.split(a, 3, axis=-1)
    r = jax.nn.sigmoid(p_r + a_r)
    u = jax.nn.sigmoid(p_u + a_u)
    n = jnp.tanh(p_n + r * a_n)
    return r, u, n, a_n


def _gru_step(h, p, a):
    r, u, n, _ = _gru_gates(h, p, a)
    return n + u * (h - n)  # (1 - u) n + u h


def _gru_coefs(prev, p, a, h):
    del h
    return _gru_gates(prev, p, a)


def _gru_tangent(k, prev, dprev, dp, da):
    r, u, n, a_n = k
    dp_r, dp_u, dp_n = jnp.split(dp, 3, axis=-1)
    da_r, da_u, da_n = jnp.split(da, 3, axis=-1)
    dr, du = _dsigmoid(dp_r + da_r, r), _dsigmoid(dp_u + da_u, u)
    dn = _dtanh(dp_n + dr * a_n + da_n * r, n)
    return dn - dn * u + du * prev - du * n + dprev * u  # (1-u) dn + (h_prev - n) du + u dh_prev


def _gru_recurrent_bias(params):
    b = params["b_hn"]
    return jnp.concatenate([jnp.zeros((2 * b.shape[-1],), b.dtype), b])


GRU = Form(_gru_step, _gru_coefs, _gru_tangent, hidden=lambda h: h, summed=False,
           recurrent_bias=_gru_recurrent_bias)  # fmt: skip
"""The GRU of :func:`seqjax.cells.gru` with ``reset_after=True`` (gate order ``r, z, n``)."""


def elman(activation: Callable) -> Form:
    """The Elman cell ``h = activation(p + a)`` for an elementwise ``activation``."""

    def step(h, p, a):
        del h
        return activation(p + a)

    def coefs(prev, p, a, h):
        del prev, h
        z = p + a
        return (jax.jvp(activation, (z,), (jnp.ones_like(z),))[1],)  # activation'(z)

    def tangent(k, prev, dprev, dp, da):
        del prev, dprev
        return k[0] * (dp + da)

    return Form(step, coefs, tangent, hidden=lambda h: h)


# The driver --------------------------------------------------------------------------------------


def _mask(v, new, old):
    """``new`` where ``v: (B,)`` is true, else ``old``, per leaf."""
    return jax.tree.map(lambda a, b: jnp.where(v[:, None], a, b), new, old)


def _forward(form: Form, hoist: bool, params, carry, xs, valid, save: bool):
    """The forward loop: outputs, final carry and (if ``save``) every step's incoming carry and
    saved activations. The outputs (hidden states, zero on padding) are masked after the loop."""
    w_x, w_h = params["w_x"], params["w_h"]
    acc = _acc(w_h.dtype)
    b = params["b"].astype(acc)
    bias = None if form.recurrent_bias is None else form.recurrent_bias(params).astype(acc)
    inputs = _matmul(xs, w_x) + b if hoist else xs

    def body(c, scanned):
        x, v = scanned
        p = x if hoist else _dot(x, w_x) + b
        a = _dot(form.hidden(c), w_h)
        if bias is not None:
            a = a + bias
        new = form.step(c, p, a)
        if v is not None:  # padding: carry held
            new = _mask(v, new, c)
        h = form.hidden(new)
        return new, ((h, c, form.coefs(c, p, a, new)) if save else h)

    final, out = jax.lax.scan(body, carry, (inputs, valid))
    hs, saved = (out[0], out[1:]) if save else (out, None)
    ys = hs if valid is None else jnp.where(valid[..., None], hs, jnp.zeros_like(hs))
    return ys, final, saved


def _acc(dtype):
    """The dtype of accumulation, gate math and carry: float32, or wider parameters' own."""
    return jnp.dtype(jnp.float32) if jnp.finfo(dtype).bits < 32 else jnp.dtype(dtype)


def _dot(x, w):
    """``x @ w`` with operands in ``w``'s dtype and the result in :func:`_acc` of it."""
    return jnp.dot(x.astype(w.dtype), w, preferred_element_type=_acc(w.dtype))


def _matmul(xs, w):
    """``xs (T, B, K) @ w (K, N)`` as one ``(T B, K)`` matmul (its transpose needs no copy)."""
    return _dot(xs.reshape(-1, xs.shape[-1]), w).reshape(*xs.shape[:-1], w.shape[-1])


def _zero(t) -> bool:
    return t is None or isinstance(t, SymbolicZero)


def _leaves(tree) -> list:
    return jax.tree.leaves(tree, is_leaf=_zero)


def _or_zeros(tangent, primal):
    """``tangent`` with its symbolic zeros made into arrays of zeros shaped like ``primal``."""
    if _zero(tangent):
        return jax.tree.map(jnp.zeros_like, primal)
    return jax.tree.map(
        lambda t, p: jnp.zeros_like(p) if _zero(t) else t, tangent, primal, is_leaf=_zero
    )


def _add(*terms):
    terms = [t for t in terms if t is not None]
    return functools.reduce(jnp.add, terms) if terms else None


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _sequence(form, hoist, params, carry, xs, valid):
    ys, final, _ = _forward(form, hoist, params, carry, xs, valid, save=False)
    return ys, final


def _sequence_jvp(form, hoist, primals, tangents):
    params, carry0, xs, valid = primals
    dparams, dcarry0, dxs, _ = tangents
    ys, final, (prev, coefs) = _forward(form, hoist, params, carry0, xs, valid, save=True)
    w_x, w_h = params["w_x"], params["w_h"]

    # The tangent's parts known for all steps at once: one large matmul each.
    dw_x, db, dw_h = (dparams.get(k) for k in ("w_x", "b", "w_h"))
    dp = _add(
        None if _zero(dxs) else _matmul(dxs.astype(w_x.dtype), w_x),
        None if _zero(dw_x) else _matmul(xs, dw_x),
        None if _zero(db) else db.astype(_acc(db.dtype)),
    )
    da = None if _zero(dw_h) else _matmul(form.hidden(prev), dw_h)
    if form.recurrent_bias is not None and not all(map(_zero, _leaves(dparams))):
        dbias = form.recurrent_bias(_or_zeros(dparams, params))  # linear in params
        da = _add(da, dbias.astype(_acc(dbias.dtype)))
    if form.summed:
        dp, da = _add(dp, da), None
    shape = (*xs.shape[:-1], w_h.shape[-1])
    dp, da = (None if t is None else jnp.broadcast_to(t, shape) for t in (dp, da))
    dcarry0 = _or_zeros(dcarry0, carry0)

    def body(dc, scanned):
        k, prev_t, dp_t, da_t, v = scanned
        da_step = _dot(form.hidden(dc), w_h)
        if da_t is not None:
            da_step = da_step + da_t
        if dp_t is None:
            dp_t = jnp.zeros_like(da_step)
        new = form.tangent(k, prev_t, dc, dp_t, da_step)
        if v is not None:
            new = _mask(v, new, dc)
        return new, form.hidden(new)

    dfinal, dhs = jax.lax.scan(body, dcarry0, (coefs, prev, dp, da, valid))
    dys = dhs if valid is None else jnp.where(valid[..., None], dhs, jnp.zeros_like(dhs))
    return (ys, final), (dys, dfinal)


_sequence.defjvp(_sequence_jvp, symbolic_zeros=True)


def sequence(form: Form, params, carry, xs, valid: Optional[jax.Array] = None, *, hoist=False):
    """Runs a cell's :class:`Form` over a time-major sequence.

    Args:
      form: the cell's :class:`Form` (``cell.fused``).
      params: the cell's parameters (``w_x``, ``b``, ``w_h`` and what ``form`` reads).
      carry: the initial carry, leaves ``(B, H)``.
      xs: ``(T, B, I)`` time-major inputs.
      valid: ``(T, B)`` booleans, false on padding (carry held, output zero); ``None``: all valid.
      hoist: compute the input projection for all steps before the loop instead of step by step.

    Returns:
      ``(ys, carry)``: outputs ``(T, B, H)`` and the final carry.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.gru(4)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> xs = jnp.ones((5, 2, 3))
      >>> ys, h = sequence(cell.fused, params, jnp.zeros((2, 4)), xs)
      >>> ref = seqjax.unroll(cell, params, jnp.swapaxes(xs, 0, 1), backend="sequential")[0]
      >>> bool(jnp.allclose(jnp.swapaxes(ys, 0, 1), ref, atol=1e-6))
      True
    """
    dtype = params["w_x"].dtype
    acc = _acc(dtype)
    carry_acc = jax.tree.map(lambda c: c.astype(acc), carry)
    ys, final = _sequence(form, bool(hoist), params, carry_acc, xs.astype(dtype), valid)
    final = jax.tree.map(lambda f, c: f.astype(c.dtype), final, carry)
    return ys.astype(dtype), final
