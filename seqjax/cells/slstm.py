r"""Scalar LSTM with exponential gating, the sLSTM of xLSTM (Beck et al. 2024, sec. 2.2).

An LSTM whose input (and optionally forget) gate is exponential, with a normaliser state and a
stabiliser, and recurrent matrices that are block-diagonal over heads (sec. 2.2, "memory mixing"
within a head only):

.. math::
    [\tilde\imath, \tilde f, \tilde z, \tilde o]_t &= x_t W_x + h_{t-1} R + b \\
    m_t &= \max(\log f_t + m_{t-1}, \tilde\imath_t), \qquad
        \log f_t = \log\sigma(\tilde f_t) \ (\text{or } \tilde f_t,\ \texttt{forget\_gate="exp"}) \\
    i'_t &= e^{\tilde\imath_t - m_t}, \qquad f'_t = e^{\log f_t + m_{t-1} - m_t} \\
    c_t &= f'_t c_{t-1} + i'_t \tanh(\tilde z_t), \qquad n_t = f'_t n_{t-1} + i'_t \\
    h_t &= \sigma(\tilde o_t) \odot c_t / n_t

(eqs. 8-17: the stabilised gates give the same :math:`h_t` as :math:`i_t = e^{\tilde\imath_t}`,
:math:`f_t`, without overflow). Where :math:`n_{t-1} = 0` (the zero initial state, where
:math:`c_{t-1} = 0` too) the stabiliser starts at :math:`m_t = \tilde\imath_t`, as the authors'
code does, so :math:`n_t \ge 1` from the first step on and :math:`c_t / n_t` never divides by 0.
The recurrence is nonlinear in :math:`h_{t-1}`: the cell has no parallel form.

Initialisation (the authors' code): ``w_x`` ``lecun_normal``; each head's recurrent blocks by
``recurrent_init`` (``"zeros"``, the authors' default, or any name of :mod:`seqjax.cells.inits`);
``b_f`` linearly spaced in ``[3, 6]`` over each head's units, the other biases 0.

Parameters: ``w_x (input, 4H)``, ``b (4H,)`` with blocks ``i, f, z, o`` (the authors' order),
``r (4, heads, d, d)`` (``d = H / heads``; :math:`R` per gate is block-diagonal with these
blocks). The carry :class:`SLSTMCarry` is float32; outputs are cast to the parameters' dtype.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from seqjax.cells import inits
from seqjax.cells.base import Cell, check_size, make_step
from seqjax.cells.heads import head_sizes
from seqjax.cells.mlstm import FORGET_GATES, log_forget

ACC = jnp.float32
GATES = ("i", "f", "z", "o")


class SLSTMCarry(NamedTuple):
    h: jax.Array  # shape=(*batch, H): the output
    c: jax.Array  # shape=(*batch, H): the cell state (stabilised)
    n: jax.Array  # shape=(*batch, H): the normaliser (stabilised)
    m: jax.Array  # shape=(*batch, H): the stabiliser


def block_diagonal(blocks: jax.Array) -> jax.Array:
    """``(heads, d, d) -> (heads * d, heads * d)`` with the blocks on the diagonal."""
    nh, d, _ = blocks.shape
    eye = jnp.eye(nh, dtype=blocks.dtype)
    return jnp.einsum("gh,gij->gihj", eye, blocks).reshape(nh * d, nh * d)


def slstm(
    hidden_size: int,
    *,
    num_heads: int = 1,
    forget_gate: str = "sigmoid",
    kernel_init: inits.InitSpec = "lecun_normal",
    recurrent_init: inits.InitSpec = "zeros",
    param_dtype=jnp.float32,
) -> Cell:
    """sLSTM cell (Beck et al. 2024, sec. 2.2), sequential only.

    Args:
      hidden_size: H.
      num_heads: diagonal blocks of the recurrent matrices (each ``H / heads`` square); must
        divide H. 1 is a dense recurrence.
      forget_gate: ``"sigmoid"`` or ``"exp"``, the paper's two choices.
      kernel_init: initialiser of ``w_x`` by name (:mod:`seqjax.cells.inits`).
      recurrent_init: initialiser of each ``(d, d)`` recurrent block by name; ``"zeros"`` is the
        authors' default.
      param_dtype: dtype of the parameters (the carry is float32 regardless).

    Returns:
      A :class:`Cell` with ``gates`` (the stabilised ``input`` and ``forget`` gates, ``output``)
      and ``recurrent_blocks`` (``i, f, z, o``, each ``(H, H)`` block-diagonal).

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.slstm(8, num_heads=2, recurrent_init="uniform")
      >>> params = cell.init(jax.random.key(0), 3)
      >>> params["r"].shape
      (4, 2, 4, 4)
      >>> ys, carry = seqjax.unroll(cell, params, jnp.ones((2, 5, 3)))
      >>> ys.shape, bool((carry.n >= 1).all())
      ((2, 5, 8), True)

    References:
      Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory", sec. 2.2 (eqs. 8-17).
    """
    check_size("hidden_size", hidden_size)
    if forget_gate not in FORGET_GATES:
        raise ValueError(f"forget_gate={forget_gate!r}: choose one of {', '.join(FORGET_GATES)}")
    H, nh = hidden_size, num_heads
    _, d = head_sizes(H, nh, None)
    k_init, r_init = inits.get(kernel_init), inits.get(recurrent_init)

    def init(key, input_size: int):
        check_size("input_size", input_size)
        kx, kr = jax.random.split(key)
        keys = jax.random.split(kr, 4 * nh)
        r = jnp.stack([r_init(k, (d, d), ACC) for k in keys]).reshape(4, nh, d, d)
        b_f = jnp.tile(jnp.linspace(3.0, 6.0, d, dtype=ACC), nh)
        b = jnp.zeros((4 * H,), ACC).at[H : 2 * H].set(b_f)
        params = {"w_x": k_init(kx, (input_size, 4 * H), ACC), "b": b, "r": r}
        return jax.tree.map(lambda a: a.astype(param_dtype), params)

    def initial_carry(params, batch_shape=()):
        del params
        zeros = jnp.zeros((*tuple(batch_shape), H), ACC)
        return SLSTMCarry(zeros, zeros, zeros, zeros)

    def project(params, x):
        return x.astype(params["w_x"].dtype) @ params["w_x"] + params["b"]

    def pre_activations(params, carry, p):
        """``(i~, f~, z~, o~)``, float32, each ``(..., H)``."""
        h = carry.h.reshape(carry.h.shape[:-1] + (nh, d))
        rh = jnp.einsum("...hj,ghjk->...ghk", h, params["r"].astype(ACC))
        rh = rh.reshape(rh.shape[:-3] + (4 * H,))
        return jnp.split(p.astype(ACC) + rh, 4, axis=-1)

    def stabilised(carry, i_pre, f_pre):
        log_f = log_forget(f_pre, forget_gate)
        empty = carry.n == 0  # nothing accumulated yet: the forget gate multiplies zeros
        m = jnp.where(empty, i_pre, jnp.maximum(log_f + carry.m, i_pre))
        # At an empty state exp(log_f + m_prev - m) can overflow (inf * 0 = NaN); there it is 0,
        # with a safe exponent in the branch not taken so that its gradient stays finite.
        log_f_scaled = jnp.where(empty, 0.0, log_f + carry.m - m)
        return jnp.exp(i_pre - m), jnp.where(empty, 0.0, jnp.exp(log_f_scaled)), m

    def recur(params, carry, p):
        i_pre, f_pre, z_pre, o_pre = pre_activations(params, carry, p)
        i, f, m = stabilised(carry, i_pre, f_pre)
        c = f * carry.c + i * jnp.tanh(z_pre)
        n = f * carry.n + i
        h = jax.nn.sigmoid(o_pre) * c / n
        return SLSTMCarry(h, c, n, m), h.astype(p.dtype)

    def gates(params, carry, p):
        i_pre, f_pre, _, o_pre = pre_activations(params, carry, p)
        i, f, _ = stabilised(carry, i_pre, f_pre)
        return {"input": i, "forget": f, "output": jax.nn.sigmoid(o_pre)}

    def recurrent_blocks(params):
        return {g: block_diagonal(params["r"][j]) for j, g in enumerate(GATES)}

    return Cell(
        init=init,
        initial_carry=initial_carry,
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="slstm",
        output=lambda params, carry, p: carry.h.astype(p.dtype),
        gates=gates,
        recurrent_blocks=recurrent_blocks,
    )
