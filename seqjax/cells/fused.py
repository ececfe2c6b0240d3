r"""The LSTM recurrence over a whole sequence with a hand-written backward pass (as cuDNN does).

Reverse-mode autodiff of a ``lax.scan`` over :math:`z_t = p_t + h_{t-1} W_h` does two matmuls
per step in the backward loop: :math:`\partial h_{t-1} = \partial z_t W_h^\top` and the
accumulation :math:`\partial W_h \mathrel{+}= h_{t-1}^\top \partial z_t`. Only the first is on
the sequential path. :func:`lstm_recurrence` keeps the gate activations of the forward loop, runs
a backward loop with one matmul per step that emits every :math:`\partial z_t`, and forms

.. math::
    \partial W_h = \textstyle\sum_t h_{t-1}^\top \partial z_t = H_{\mathrm{prev}}^\top\,\partial Z

as one ``(H, T B) @ (T B, 4H)`` matmul after the loop. The input projection
:math:`p_t = x_t W_x + b` is computed for all steps before the loop (:func:`seqjax.unroll` with
``backend="fused"``), so its gradients are single large matmuls too (JAX's own autodiff).

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
and check the backward pass against ``jax.test_util.check_grads`` in float64.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp


def _gates(z):
    i, f, g, o = jnp.split(z, 4, axis=-1)
    return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)


def _forward(w_h, ps, h0, c0, valid):
    """The forward loop; returns the outputs, the final carry and what the backward needs."""

    def body(carry, scanned):
        h, c = carry
        p, v = scanned
        i, f, g, o = _gates(p + h @ w_h)
        c_new = f * c + i * g
        tc = jnp.tanh(c_new)
        h_new = o * tc
        v = v[:, None]
        y = jnp.where(v, h_new, jnp.zeros_like(h_new))
        h_out, c_out = jnp.where(v, h_new, h), jnp.where(v, c_new, c)
        return (h_out, c_out), (y, jnp.concatenate([i, f, g, o], -1), tc, h, c)

    (h, c), (ys, acts, tcs, h_prev, c_prev) = jax.lax.scan(body, (h0, c0), (ps, valid))
    return ys, (h, c), (acts, tcs, h_prev, c_prev)


@jax.custom_vjp
def _recurrence(w_h, ps, h0, c0, valid):
    ys, (h, c), _ = _forward(w_h, ps, h0, c0, valid)
    return ys, h, c


def _recurrence_fwd(w_h, ps, h0, c0, valid):
    ys, (h, c), saved = _forward(w_h, ps, h0, c0, valid)
    return (ys, h, c), (w_h, valid, saved)


def _recurrence_bwd(res, cotangents):
    w_h, valid, (acts, tcs, h_prev, c_prev) = res
    dys, dh_T, dc_T = cotangents
    w_h_t = w_h.T

    def body(carry, scanned):
        dh, dc = carry  # gradients of the carry after this step
        dy, act, tc, c_in, v = scanned
        i, f, g, o = jnp.split(act, 4, axis=-1)
        v = v[:, None]
        zero = jnp.zeros_like(dh)
        dh_new = jnp.where(v, dh + dy, zero)  # into this step's h (output and carry)
        dc_new = jnp.where(v, dc, zero) + dh_new * o * (1 - tc * tc)
        dz = jnp.concatenate(
            [
                dc_new * g * i * (1 - i),
                dc_new * c_in * f * (1 - f),
                dc_new * i * (1 - g * g),
                dh_new * tc * o * (1 - o),
            ],
            -1,
        )
        dh_prev = jnp.where(v, zero, dh) + dz @ w_h_t
        dc_prev = jnp.where(v, zero, dc) + dc_new * f
        return (dh_prev, dc_prev), dz

    (dh0, dc0), dz = jax.lax.scan(body, (dh_T, dc_T), (dys, acts, tcs, c_prev, valid), reverse=True)
    T, B, H = h_prev.shape
    dw_h = h_prev.reshape(T * B, H).T @ dz.reshape(T * B, 4 * H)
    return dw_h, dz, dh0, dc0, None


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def lstm_recurrence(w_h, ps, h0, c0, valid: Optional[jax.Array] = None):
    """Runs the LSTM recurrence over projected inputs, with the one-matmul-per-step backward.

    Args:
      w_h: ``(H, 4H)`` recurrent weights (gate order i, f, g, o).
      ps: ``(T, B, 4H)`` time-major projected inputs :math:`x_t W_x + b`.
      h0, c0: ``(B, H)`` initial carry.
      valid: ``(T, B)`` booleans, false on padding (carry held, output zero); ``None``: all valid.

    Returns:
      ``(ys, h, c)``: outputs ``(T, B, H)`` and the final carry.
    """
    if valid is None:
        valid = jnp.ones(ps.shape[:2], bool)
    return _recurrence(w_h, ps, h0, c0, valid)
