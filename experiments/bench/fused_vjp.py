r"""seqjax's previous fused LSTM (a ``jax.custom_vjp``): to measure what the custom_jvp costs.

The LSTM over a whole sequence with a hand-written backward pass (as cuDNN does).

Reverse-mode autodiff of a ``lax.scan`` over :math:`z_t = x_t W_x + b + h_{t-1} W_h` does four
matmuls per step in the backward loop: :math:`\partial h_{t-1} = \partial z_t W_h^\top`,
:math:`\partial x_t = \partial z_t W_x^\top` and the accumulations
:math:`\partial W_h \mathrel{+}= h_{t-1}^\top \partial z_t`,
:math:`\partial W_x \mathrel{+}= x_t^\top \partial z_t`, each re-reading and re-writing a whole
weight-sized accumulator. Only the first is on the sequential path. :func:`lstm_sequence` keeps
the gate activations of the forward loop, runs a backward loop that emits every
:math:`\partial z_t`, and forms the weight gradients after the loop as single large matmuls:

.. math::
    \partial W_h = H_{\mathrm{prev}}^\top\,\partial Z, \qquad
    \partial W_x = X^\top\,\partial Z, \qquad \partial b = \textstyle\sum_{t,b} \partial Z,

with :math:`H_{\mathrm{prev}}, X, \partial Z` the ``(T B, .)`` stacks. With ``hoist=True`` the
input projection runs before the loop for all steps and :math:`\partial X = \partial Z W_x^\top`
after it (one matmul per step remains in each loop); with ``hoist=False`` both stay in the loops
(two per step), which keeps each step's data in cache.

Backward of one step, with :math:`i, f, g, o` the gate activations, :math:`c` the new cell and
:math:`\partial h, \partial c` the incoming gradients of the carry (plus the output's):

.. math::
    \partial o &= \partial h \tanh c, \quad
    \partial c \mathrel{+}= \partial h\, o\, (1 - \tanh^2 c), \\
    \partial i &= \partial c\, g, \quad \partial g = \partial c\, i, \quad
    \partial f = \partial c\, c_{t-1}, \quad \partial c_{t-1} = \partial c\, f, \\
    \partial z &= [\partial i\, i(1-i),\ \partial f\, f(1-f),\ \partial g\,(1-g^2),\
    \partial o\, o(1-o)], \quad \partial h_{t-1} = \partial z\, W_h^\top.

Padding (``valid`` false) holds the carry and zeroes the output, exactly as
:func:`seqjax.unroll`'s sequential loop does; the tests compare the two (values and gradients)
and check the backward pass against finite differences in float64.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp


def _gates(z):
    i, f, g, o = jnp.split(z, 4, axis=-1)
    return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)


def _forward(w_x, w_h, b, xs, h0, c0, valid, hoist, save=True):
    """The forward loop; returns the outputs, the final carry and (if ``save``) what the
    backward needs."""
    inputs = xs @ w_x + b if hoist else xs

    def body(carry, scanned):
        h, c = carry
        x, v = scanned
        p = x if hoist else x @ w_x + b
        i, f, g, o = _gates(p + h @ w_h)
        c_new = f * c + i * g
        tc = jnp.tanh(c_new)
        h_new = o * tc
        if v is None:  # no padding
            y, h_out, c_out = h_new, h_new, c_new
        else:
            v = v[:, None]
            y = jnp.where(v, h_new, jnp.zeros_like(h_new))
            h_out, c_out = jnp.where(v, h_new, h), jnp.where(v, c_new, c)
        if not save:  # not differentiated: keep nothing for a backward pass
            return (h_out, c_out), y
        return (h_out, c_out), (y, jnp.concatenate([i, f, g, o], -1), tc, h, c)

    (h, c), out = jax.lax.scan(body, (h0, c0), (inputs, valid))
    if not save:
        return out, (h, c), None
    ys, acts, tcs, h_prev, c_prev = out
    return ys, (h, c), (acts, tcs, h_prev, c_prev)


@functools.partial(jax.custom_vjp, nondiff_argnums=(7,))
def _sequence(w_x, w_h, b, xs, h0, c0, valid, hoist):
    ys, (h, c), _ = _forward(w_x, w_h, b, xs, h0, c0, valid, hoist, save=False)
    return ys, h, c


def _sequence_fwd(w_x, w_h, b, xs, h0, c0, valid, hoist):
    ys, (h, c), saved = _forward(w_x, w_h, b, xs, h0, c0, valid, hoist)
    return (ys, h, c), (w_x, w_h, xs, valid, saved)


def _sequence_bwd(hoist, res, cotangents):
    w_x, w_h, xs, valid, (acts, tcs, h_prev, c_prev) = res
    dys, dh_T, dc_T = cotangents
    w_h_t, w_x_t = w_h.T, w_x.T

    def body(carry, scanned):
        dh, dc = carry  # gradients of the carry after this step
        dy, act, tc, c_in, v = scanned
        i, f, g, o = jnp.split(act, 4, axis=-1)
        if v is None:  # no padding: every step's carry is its own
            dh_new, dc_new = dh + dy, dc
        else:
            v = v[:, None]
            zero = jnp.zeros_like(dh)
            dh_new = jnp.where(v, dh + dy, zero)  # into this step's h (output and carry)
            dc_new = jnp.where(v, dc, zero)
        dc_new = dc_new + dh_new * o * (1 - tc * tc)
        dz = jnp.concatenate(
            [
                dc_new * g * i * (1 - i),
                dc_new * c_in * f * (1 - f),
                dc_new * i * (1 - g * g),
                dh_new * tc * o * (1 - o),
            ],
            -1,
        )
        dh_prev, dc_prev = dz @ w_h_t, dc_new * f
        if v is not None:  # past the end the carry was held: its gradient passes through
            dh_prev = dh_prev + jnp.where(v, zero, dh)
            dc_prev = dc_prev + jnp.where(v, zero, dc)
        return (dh_prev, dc_prev), (dz if hoist else (dz, dz @ w_x_t))

    (dh0, dc0), out = jax.lax.scan(
        body, (dh_T, dc_T), (dys, acts, tcs, c_prev, valid), reverse=True
    )
    dz, dxs = (out, None) if hoist else out
    T, B, H = h_prev.shape
    dz_flat = dz.reshape(T * B, 4 * H)
    dw_h = h_prev.reshape(T * B, H).T @ dz_flat
    dw_x = xs.reshape(T * B, xs.shape[-1]).T @ dz_flat
    db = dz_flat.sum(0)
    if hoist:
        dxs = dz @ w_x_t
    return dw_x, dw_h, db, dxs, dh0, dc0, None


_sequence.defvjp(_sequence_fwd, _sequence_bwd)


def lstm_sequence(params, xs, h0, c0, valid: Optional[jax.Array] = None, *, hoist: bool = False):
    """Runs the LSTM over a time-major sequence, with the hand-written backward pass.

    Args:
      params: ``seqjax.cells.lstm`` parameters ``w_x (I, 4H)``, ``w_h (H, 4H)``, ``b (4H,)``.
      xs: ``(T, B, I)`` time-major inputs.
      h0, c0: ``(B, H)`` initial carry.
      valid: ``(T, B)`` booleans, false on padding (carry held, output zero); ``None``: all valid.
      hoist: compute the input projection for all steps before the loop (and its input gradient
        after the backward loop) instead of step by step.

    Returns:
      ``(ys, h, c)``: outputs ``(T, B, H)`` and the final carry.
    """
    xs = xs.astype(params["w_x"].dtype)
    return _sequence(params["w_x"], params["w_h"], params["b"], xs, h0, c0, valid, bool(hoist))
