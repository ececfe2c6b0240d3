r"""Long short-term memory (Hochreiter & Schmidhuber 1997) with a forget gate (Gers et al. 2000).

.. math::
    [i, f, g, o] &= x_t W_x + h_{t-1} W_h + b \\
    c_t &= \sigma(f) \odot c_{t-1} + \sigma(i) \odot \tanh(g) \\
    h_t &= \sigma(o) \odot \tanh(c_t)

All four gates come from one fused ``(input, 4H)`` and one ``(H, 4H)`` matmul, gate order
``i, f, g, o`` along the last axis (PyTorch's and cuDNN's order). Parameters: ``w_x (input, 4H)``,
``w_h (H, 4H)``, ``b (4H,)``. The carry is ``LSTMCarry(h, c)``.

Three variants, each an option that adds its parameters and leaves the others' unchanged (with
all three off the cell is the plain LSTM above, with its fused form):

* ``peephole=True`` (Gers, Schraudolph & Schmidhuber 2002, sec. 2, "peephole connections"): the
  gates see the cell state, the input and forget gates the old one, the output gate the new one,

  .. math::
      i \mathrel{+}= w_{ci} \odot c_{t-1}, \quad f \mathrel{+}= w_{cf} \odot c_{t-1}, \quad
      o \mathrel{+}= w_{co} \odot c_t

  with diagonal weights ``w_ci, w_cf, w_co (H,)``.
* ``layer_norm=True`` (Ba, Kiros & Hinton 2016, sec. 3.1 and the LN-LSTM of their appendix):

  .. math::
      [i, f, g, o] &= \mathrm{LN}(h_{t-1} W_h; \alpha_h, \beta_h)
          + \mathrm{LN}(x_t W_x; \alpha_x, \beta_x) + b \\
      h_t &= \sigma(o) \odot \tanh(\mathrm{LN}(c_t; \alpha_c, \beta_c))

  where :math:`\mathrm{LN}(a; \alpha, \beta) = \alpha \odot (a - \mu) / \sqrt{\sigma^2 + 10^{-5}}
  + \beta` normalises over all ``4H`` pre-activations (``H`` for the cell state). Parameters
  ``alpha_h, beta_h, alpha_x, beta_x (4H,)``, ``alpha_c, beta_c (H,)``, initialised to ones and
  zeros.
* ``proj_size=P`` (LSTMP, Sak, Senior & Beaufays 2014, sec. 2, eq. 7-8): the output is projected,
  :math:`r_t = h_t W_{hr}` with ``w_hr (H, P)``, and the recurrence reads :math:`r_{t-1}`:
  ``w_h`` is ``(P, 4H)``, the carry ``LSTMCarry(h=r (P,), c (H,))`` and the output ``r_t`` (as
  PyTorch's ``nn.LSTM(proj_size=P)``). ``hidden_size`` of the returned cell is ``P``.

Capabilities: ``gates`` ``{"input", "forget", "output"}`` (the sigmoid gates; a forget gate near 1
keeps the memory, Gers et al. 2000) and ``recurrent_blocks`` ``{"i", "f", "g", "o"}``, the
``(H, H)`` blocks of ``w_h`` (with ``proj_size``: ``W_hr`` times each ``(P, H)`` block, the map
from ``h_{t-1}`` through ``r_{t-1}`` to the gate).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from seqjax.cells import fused, inits
from seqjax.cells.base import Cell, check_size, make_step, split_blocks

LN_EPS = 1e-5  # PyTorch's and Flax's LayerNorm default; Ba et al. 2016 give none


class LSTMCarry(NamedTuple):
    h: jax.Array  # shape=(*batch, H) (or (*batch, P) with proj_size), the output / hidden state
    c: jax.Array  # shape=(*batch, H), the memory cell


def layer_normalize(a: jax.Array, alpha: jax.Array, beta: jax.Array) -> jax.Array:
    """``alpha * (a - mean) / sqrt(var + eps) + beta`` over the last axis (Ba et al. 2016)."""
    mu = jnp.mean(a, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(a - mu), axis=-1, keepdims=True)
    return alpha * (a - mu) * jax.lax.rsqrt(var + LN_EPS) + beta


def lstm(
    hidden_size: int,
    forget_bias: float = 1.0,
    *,
    chrono_t_max: Optional[float] = None,
    peephole: bool = False,
    layer_norm: bool = False,
    proj_size: Optional[int] = None,
    kernel_init: inits.InitSpec = "glorot_uniform",
    recurrent_init: inits.InitSpec = "orthogonal",
    bias_init: inits.InitSpec = "zeros",
    param_dtype=jnp.float32,
) -> Cell:
    """LSTM cell with a forget gate, and optionally peepholes, layer normalisation, a projection.

    Args:
      hidden_size: H, the number of memory cells.
      forget_bias: added to the forget gate's bias at init (Gers et al. 2000; Jozefowicz et al.
        2015, sec. 2.3, recommend 1.0 so that the cell remembers by default).
      chrono_t_max: if set, chrono initialisation (Tallec & Ollivier 2018, sec. 3) for dependencies
        up to this many steps: forget bias ``log(U(1, T_max-1))``, input bias its negative. It
        replaces ``forget_bias``.
      peephole: add peephole connections ``w_ci, w_cf, w_co`` (Gers et al. 2002), initialised to
        zero so that the cell starts as the plain LSTM.
      layer_norm: normalise the recurrent and input pre-activations and the cell state (Ba et al.
        2016).
      proj_size: P, project the output to P units and recur on it (LSTMP, Sak et al. 2014);
        ``None`` for none. ``0 < P < H`` in the paper; any positive P is accepted.
      kernel_init, recurrent_init, bias_init: initialisers by name (:mod:`seqjax.cells.inits`);
        the recurrent one is applied to each gate block of ``w_h``, and to ``w_hr``.
      param_dtype: dtype of the parameters.

    Returns:
      A :class:`Cell`; ``fused`` (the hand-written backward pass of :mod:`seqjax.cells.fused`) is
      set only for the plain LSTM (no peephole, layer norm or projection).

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.lstm(16)
      >>> params = cell.init(jax.random.key(0), 4)
      >>> params["w_h"].shape
      (16, 64)
      >>> carry, y = cell.step(params, cell.initial_carry(params, (2,)), jnp.ones((2, 4)))
      >>> carry.c.shape
      (2, 16)
      >>> cell = seqjax.cells.lstm(16, proj_size=8, peephole=True)
      >>> params = cell.init(jax.random.key(0), 4)
      >>> carry, y = cell.step(params, cell.initial_carry(params, (2,)), jnp.ones((2, 4)))
      >>> y.shape, carry.c.shape, cell.hidden_size, cell.fused is None
      ((2, 8), (2, 16), 8, True)
    """
    check_size("hidden_size", hidden_size)
    if proj_size is not None:
        check_size("proj_size", proj_size)
    H = hidden_size
    R = H if proj_size is None else proj_size  # size of what the recurrence reads (h or r)
    plain = not (peephole or layer_norm or proj_size is not None)
    k_init = inits.get(kernel_init)
    r_single = inits.get(recurrent_init)
    r_init = inits.blockwise(r_single, 4)
    b_init = inits.get(bias_init)

    def init(key, input_size: int):
        check_size("input_size", input_size)
        kx, kh, kb, kc = jax.random.split(key, 4)  # as before the options: same plain weights
        b = b_init(kb, (4 * H,), param_dtype)
        if chrono_t_max is not None:
            b_f, b_i = inits.chrono_bias(kc, H, chrono_t_max, param_dtype)
            b = b.at[0:H].set(b_i).at[H : 2 * H].set(b_f)
        else:
            b = b.at[H : 2 * H].add(forget_bias)
        params = {
            "w_x": k_init(kx, (input_size, 4 * H), param_dtype),
            "w_h": r_init(kh, (R, 4 * H), param_dtype),
            "b": b,
        }
        if peephole:
            params.update({k: jnp.zeros((H,), param_dtype) for k in ("w_ci", "w_cf", "w_co")})
        if layer_norm:
            for name, n in (("h", 4 * H), ("x", 4 * H), ("c", H)):
                params[f"alpha_{name}"] = jnp.ones((n,), param_dtype)
                params[f"beta_{name}"] = jnp.zeros((n,), param_dtype)
        if proj_size is not None:
            params["w_hr"] = r_single(jax.random.fold_in(key, 4), (H, R), param_dtype)
        return params

    def initial_carry(params, batch_shape=()):
        dtype = params["w_h"].dtype
        return LSTMCarry(
            jnp.zeros((*tuple(batch_shape), R), dtype), jnp.zeros((*tuple(batch_shape), H), dtype)
        )

    def project(params, x):
        a = x.astype(params["w_x"].dtype) @ params["w_x"]
        if layer_norm:
            a = layer_norm_of(params, a, "x")
        return a + params["b"]

    def layer_norm_of(params, a, name):
        return layer_normalize(a, params[f"alpha_{name}"], params[f"beta_{name}"])

    def preactivations(params, carry, p):
        """``i, f, g, o`` before their nonlinearities; peepholes on ``c_{t-1}`` included."""
        a = carry.h @ params["w_h"]
        if layer_norm:
            a = layer_norm_of(params, a, "h")
        i, f, g, o = jnp.split(p + a, 4, axis=-1)
        if peephole:
            i = i + params["w_ci"] * carry.c
            f = f + params["w_cf"] * carry.c
        return i, f, g, o

    def cell_state(params, carry, p):
        i, f, g, o = preactivations(params, carry, p)
        c = jax.nn.sigmoid(f) * carry.c + jax.nn.sigmoid(i) * jnp.tanh(g)
        if peephole:
            o = o + params["w_co"] * c  # the output gate peeks at the new state
        return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jax.nn.sigmoid(o), c

    def recur(params, carry, p):
        _, _, o, c = cell_state(params, carry, p)
        h = o * jnp.tanh(layer_norm_of(params, c, "c") if layer_norm else c)
        if proj_size is not None:
            h = h @ params["w_hr"]
        return LSTMCarry(h, c), h

    def gates(params, carry, p):
        i, f, o, _ = cell_state(params, carry, p)
        return {"input": i, "forget": f, "output": o}

    def recurrent_blocks(params):
        blocks = split_blocks(params["w_h"], ("i", "f", "g", "o"))
        if proj_size is None:
            return blocks
        return {k: params["w_hr"] @ w for k, w in blocks.items()}

    return Cell(
        init=init,
        initial_carry=initial_carry,
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=R,
        name="lstm",
        fused=fused.lstm(LSTMCarry) if plain else None,
        gates=gates,
        recurrent_blocks=recurrent_blocks,
        output=lambda params, carry, p: carry.h,
    )
