r"""Matrix LSTM, the mLSTM of xLSTM (Beck et al. 2024, sec. 2.3 and appendix A.3).

A matrix memory per head, written with exponential input gates and read by a query:

.. math::
    q_t &= x_t W_q + b_q, \quad k_t = \tfrac{1}{\sqrt{d_k}}(x_t W_k + b_k), \quad
        v_t = x_t W_v + b_v, \quad o_t = \sigma(x_t W_o + b_o) \\
    \tilde\imath_t &= x_t w_i + b_i, \quad \tilde f_t = x_t w_f + b_f, \quad
        \log f_t = \log\sigma(\tilde f_t) \ (\text{or } \tilde f_t,\ \texttt{forget\_gate="exp"}) \\
    C_t &= f_t C_{t-1} + e^{\tilde\imath_t} k_t v_t^\top, \qquad
        n_t = f_t n_{t-1} + e^{\tilde\imath_t} k_t \\
    h_t &= o_t \odot \frac{C_t^\top q_t}{\max(|n_t^\top q_t|, 1)}
        \qquad \text{(heads concatenated)}

(the paper writes :math:`C_t = f_t C_{t-1} + i_t v_t k_t^\top`, :math:`C_t q_t`; here the memory is
stored transposed, ``(d_k, d_v)``). The gates :math:`i, f` are scalars per head.

Stabilisation (eqs. 15-17): the carry holds :math:`C'_t = e^{-m_t} C_t`, :math:`n'_t = e^{-m_t}
n_t` and :math:`m_t = \max(\log f_t + m_{t-1}, \tilde\imath_t)`, with the stabilised gates
:math:`i'_t = e^{\tilde\imath_t - m_t}`, :math:`f'_t = e^{\log f_t + m_{t-1} - m_t}` (both in
``(0, 1]``) and :math:`h_t = o_t \odot C_t'^\top q_t / (\max(|n_t'^\top q_t|, e^{-m_t}) +
\epsilon)`: the same output with no ``exp`` overflow. :math:`\epsilon` (``eps``, 1e-6 as in the
authors' code; 0 is the paper's formula) keeps a zero state finite.

``parallel`` is the chunkwise form (appendix A.3's parallel form applied per chunk, as the authors'
``chunkwise_simple``): with :math:`F_t = \sum_{j \le t} \log f_j` inside the chunk and the
entering state :math:`(C'_0, n'_0, m_0)`, the stabiliser is exactly the recurrent one,
:math:`m_t = \max(m_0 + F_t, \max_{s \le t} \tilde\imath_s + F_t - F_s)`, and
:math:`C'_t = e^{m_0 + F_t - m_t} C'_0 + \sum_{s \le t} e^{\tilde\imath_s + F_t - F_s - m_t} k_s
v_s^\top` (every exponent ``<= 0``), so outputs and carries equal the step's.

Initialisation (the authors' code): the ``i, f`` columns of ``w_x`` zero, ``b_f`` linearly spaced
in ``[3, 6]`` over heads, ``b_i ~ N(0, 0.1^2)``, other kernels ``lecun_normal``, biases 0.

Parameters: ``w_x (input, heads * (2 d_k + d_v) + H + 2 heads)``, ``b`` (same width), blocks
``q, k, v, o, i, f``. The carry :class:`MLSTMCarry` is float32; outputs are cast to the
parameters' dtype.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from seqjax.cells import chunked, inits
from seqjax.cells.base import Cell, check_size, make_step
from seqjax.cells.heads import head_sizes, per_unit

ACC = jnp.float32
FORGET_GATES = ("sigmoid", "exp")


class MLSTMCarry(NamedTuple):
    c: jax.Array  # shape=(*batch, heads, d_k, d_v), float32: the memory C' = exp(-m) C
    n: jax.Array  # shape=(*batch, heads, d_k), float32: the normaliser n' = exp(-m) n
    m: jax.Array  # shape=(*batch, heads), float32: the stabiliser


def log_forget(f_pre: jax.Array, forget_gate: str) -> jax.Array:
    """:math:`\\log f_t`: ``log sigmoid`` of the pre-activation, or the pre-activation (``exp``)."""
    return jax.nn.log_sigmoid(f_pre) if forget_gate == "sigmoid" else f_pre


def mlstm_chunk(h0: MLSTMCarry, nlead: int, eps: float):
    """The chunk step of :func:`seqjax.cells.chunked.run_chunks` for the stabilised mLSTM."""

    def step(state, xs, seg, need_states):
        q, k, v, i_pre, log_f = xs
        i_pre, log_f = i_pre[..., 0], log_f[..., 0]
        F, F_seg = chunked.decay_from_start(log_f, seg.start)
        log_D = i_pre[..., None, :] + F[..., :, None] - F[..., None, :]
        log_D = jnp.where(seg.same, log_D, -jnp.inf)  # log of the weight of step s in C_t
        m_start = jnp.where(seg.from_start, state.m[..., None], h0.m[..., None])
        m = jnp.maximum(m_start + F_seg, jnp.max(log_D, axis=-1))  # the step's m_t exactly
        D = jnp.exp(log_D - m[..., None])
        inter = jnp.exp(m_start + F_seg - m)  # weight of the segment's start state
        fs = seg.from_start[..., None]
        qc = jnp.where(fs, q @ state.c, q @ h0.c)
        dot = lambda n: jnp.einsum("...td,...d->...t", q, n)  # noqa: E731
        qn = jnp.where(seg.from_start, dot(state.n), dot(h0.n))
        S = D * (q @ jnp.swapaxes(k, -1, -2))
        num = inter[..., None] * qc + S @ v
        den = jnp.maximum(jnp.abs(inter * qn + S.sum(-1)), jnp.exp(-m)) + eps
        out = num / den[..., None]

        def carry_at(w, e, start):  # C', n' after the steps whose weights are rows of w
            c = e[..., None, None] * start.c + jnp.einsum("...ts,...sk,...sv->...tkv", w, k, v)
            n = e[..., None] * start.n + w @ k
            return c, n

        starts = chunked.start_states(seg.from_start[..., -1:], state, h0, nlead)
        c_new, n_new = carry_at(D[..., -1:, :], inter[..., -1:], starts)
        new = MLSTMCarry(c_new[..., 0, :, :], n_new[..., 0, :], m[..., -1])
        states = None
        if need_states:
            starts = chunked.start_states(seg.from_start, state, h0, nlead)
            c_all, n_all = carry_at(D, inter, starts)
            states = MLSTMCarry(c_all, n_all, m)
        return new, out, states

    return step


def mlstm(
    hidden_size: int,
    *,
    num_heads: int = 1,
    key_size: Optional[int] = None,
    forget_gate: str = "sigmoid",
    eps: float = 1e-6,
    chunk_size: int = 64,
    kernel_init: inits.InitSpec = "lecun_normal",
    param_dtype=jnp.float32,
) -> Cell:
    """mLSTM cell (Beck et al. 2024, sec. 2.3) with its chunkwise-parallel form.

    Args:
      hidden_size: H, the output size: ``num_heads * d_v``.
      num_heads: heads, each with its own ``(d_k, d_v)`` memory and scalar gates; must divide H.
      key_size: d_k per head (queries and keys); ``None`` is ``d_v = H / num_heads``.
      forget_gate: ``"sigmoid"`` (:math:`f = \\sigma(\\tilde f)`) or ``"exp"``
        (:math:`f = e^{\\tilde f}`), the paper's two choices.
      eps: added to the normaliser's denominator (1e-6, the authors' code; 0: the paper's).
      chunk_size: steps per chunk of the chunkwise form.
      kernel_init: initialiser of the ``q, k, v, o`` columns of ``w_x`` by name.
      param_dtype: dtype of the parameters (the carry is float32 regardless).

    Returns:
      A :class:`Cell` with ``parallel`` (chunkwise) and ``gates`` (the stabilised ``input``
      :math:`i'_t` and ``forget`` :math:`f'_t` per head, repeated over its units, and ``output``).

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.mlstm(8, num_heads=2, chunk_size=4)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> [a.shape for a in cell.initial_carry(params, (2,))]
      [(2, 2, 4, 4), (2, 2, 4), (2, 2)]
      >>> xs = jax.random.normal(jax.random.key(1), (2, 10, 3))
      >>> ys, c = seqjax.parallel(cell, params, xs)
      >>> ys_seq, c_seq = seqjax.unroll(cell, params, xs, backend="sequential")
      >>> bool(jnp.allclose(ys, ys_seq, atol=1e-5) and jnp.allclose(c.m, c_seq.m, atol=1e-5))
      True

    References:
      Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory", sec. 2.3 (eqs. 19-27), appendix
      A.3 (stabilised parallel form).
    """
    check_size("hidden_size", hidden_size)
    check_size("chunk_size", chunk_size)
    if forget_gate not in FORGET_GATES:
        raise ValueError(f"forget_gate={forget_gate!r}: choose one of {', '.join(FORGET_GATES)}")
    if not eps >= 0:
        raise ValueError(f"eps={eps!r}: must be >= 0")
    H, nh = hidden_size, num_heads
    d_k, d_v = head_sizes(H, nh, key_size)
    qk = nh * d_k
    ends = [qk, 2 * qk, 2 * qk + H, 2 * qk + 2 * H, 2 * qk + 2 * H + nh]  # q|k|v|o|i|f
    width = ends[-1] + nh
    k_init = inits.get(kernel_init)

    def init(key, input_size: int):
        check_size("input_size", input_size)
        kx, ki = jax.random.split(key)
        w = k_init(kx, (input_size, width), ACC).at[:, ends[-2] :].set(0.0)
        b_f = jnp.linspace(3.0, 6.0, nh, dtype=ACC)
        b_i = 0.1 * jax.random.normal(ki, (nh,), ACC)
        b = jnp.concatenate([jnp.zeros((ends[-2],), ACC), b_i, b_f])
        return jax.tree.map(lambda a: a.astype(param_dtype), {"w_x": w, "b": b})

    def initial_carry(params, batch_shape=()):
        del params
        batch = tuple(batch_shape)
        return MLSTMCarry(
            jnp.zeros((*batch, nh, d_k, d_v), ACC),
            jnp.zeros((*batch, nh, d_k), ACC),
            jnp.zeros((*batch, nh), ACC),
        )

    def project(params, x):
        """``(q, k, v, o, i~, log f)``, float32, per head ``(..., heads, d)`` or ``(..., heads)``
        (``o``: ``(..., H)``)."""
        z = (x.astype(params["w_x"].dtype) @ params["w_x"] + params["b"]).astype(ACC)
        q, k, v, o, i_pre, f_pre = jnp.split(z, ends, axis=-1)
        heads = lambda u, d: u.reshape(u.shape[:-1] + (nh, d))  # noqa: E731
        k = heads(k, d_k) / math.sqrt(d_k)
        o, log_f = jax.nn.sigmoid(o), log_forget(f_pre, forget_gate)
        return heads(q, d_k), k, heads(v, d_v), o, i_pre, log_f

    def stabilised_gates(carry, p):
        *_, i_pre, log_f = p
        m = jnp.maximum(log_f + carry.m, i_pre)
        return jnp.exp(i_pre - m), jnp.exp(log_f + carry.m - m), m

    def read(params, num, den, o):
        h = num / den[..., None]
        return (o * h.reshape(h.shape[:-2] + (H,))).astype(params["w_x"].dtype)

    def output(params, carry, p):
        """``h_t = o_t * C'^T q_t / (max(|n'^T q_t|, exp(-m_t)) + eps)`` from the new carry."""
        q, o = p[0], p[3]
        num = jnp.einsum("...kv,...k->...v", carry.c, q)
        den = jnp.maximum(jnp.abs(jnp.sum(carry.n * q, axis=-1)), jnp.exp(-carry.m)) + eps
        return read(params, num, den, o)

    def recur(params, carry, p):
        _, k, v, _, _, _ = p
        i, f, m = stabilised_gates(carry, p)
        c = f[..., None, None] * carry.c + i[..., None, None] * k[..., :, None] * v[..., None, :]
        n = f[..., None] * carry.n + i[..., None] * k
        new = MLSTMCarry(c, n, m)
        return new, output(params, new, p)

    def parallel(params, carry, xs, *, resets=None, return_carries=False, valid=None):
        q, k, v, o, i_pre, log_f = project(params, xs)
        carry = jax.tree.map(lambda a: a.astype(ACC), carry)
        seqs = (q, k, v, i_pre[..., None], log_f[..., None])
        pads = (0.0, 0.0, 0.0, -jnp.inf, 0.0)  # i = 0, f = 1: padded steps keep the state
        step = mlstm_chunk(carry, xs.ndim - 1, eps)
        h, final, states = chunked.run_heads(
            step, carry, seqs, pads, resets, chunk_size, return_carries, valid
        )
        ys = (o * h.reshape(h.shape[:-2] + (H,))).astype(params["w_x"].dtype)
        return (ys, final, states) if return_carries else (ys, final)

    def gates(params, carry, p):
        del params
        i, f, _ = stabilised_gates(carry, p)
        return {"input": per_unit(i, d_v), "forget": per_unit(f, d_v), "output": p[3]}

    return Cell(
        init=init,
        initial_carry=initial_carry,
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="mlstm",
        parallel=parallel,
        gates=gates,
        output=output,
    )
