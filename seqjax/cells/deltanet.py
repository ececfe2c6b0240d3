r"""DeltaNet and Gated DeltaNet: a matrix-valued state written by the delta rule.

Per head, the state :math:`S \in \mathbb{R}^{d_k \times d_v}` maps keys to values. Each step
replaces the value stored under key :math:`k_t` by a :math:`\beta_t`-blend of the new value
(Schlag et al. 2021, sec. 4.2; Yang et al. 2024, eq. 1); the gated variant first decays the whole
state by :math:`\alpha_t` (Yang et al. 2025, eq. 10):

.. math::
    q_t &= \frac{x_t W_q}{\lVert x_t W_q \rVert}, \quad
        k_t = \frac{x_t W_k}{\lVert x_t W_k \rVert}, \quad v_t = x_t W_v, \quad
        \beta_t = \sigma(x_t w_\beta + b_\beta) \\
    S_t &= \alpha_t \left(S_{t-1} - \beta_t k_t (k_t^\top S_{t-1})\right) + \beta_t k_t v_t^\top
        = \alpha_t (I - \beta_t k_t k_t^\top) S_{t-1} + \beta_t k_t v_t^\top \\
    y_t &= S_t^\top q_t \qquad \text{(heads concatenated)}

with :math:`\alpha_t = 1` for DeltaNet and, for Gated DeltaNet, Mamba-2's parametrisation
:math:`\log \alpha_t = -\exp(A_{\log}) \operatorname{softplus}(x_t w_\alpha + b_\Delta)`.
Keys and queries are L2-normalised (Yang et al. 2024, sec. 3.3), so with :math:`\beta_t \in (0,
1)` the transition :math:`I - \beta_t k_t k_t^\top` has eigenvalues in ``[1 - beta, 1]`` and the
state stays bounded. (Their layers add short convolutions, SiLU and an output norm around the
recurrence; those belong to a layer, not the cell.)

``parallel`` is the chunkwise form (Yang et al. 2024, sec. 3.2, with the UT transform of their
eq. 11; Yang et al. 2025, sec. 3.3 for the decay). Inside a chunk with entering state
:math:`S_0` and decays :math:`\gamma_t = \prod_{j \le t} \alpha_j`, the writes
:math:`\hat\delta_t = \beta_t(v_t - \gamma_t S_0^\top k_t - \sum_{s<t} \tfrac{\gamma_t}{\gamma_s}
(k_s^\top k_t) \hat\delta_s)` solve one unit lower-triangular system
:math:`(I + A)\hat\Delta = \operatorname{diag}(\beta)(V - \operatorname{diag}(\gamma) K S_0)`,
:math:`A_{ts} = \beta_t \tfrac{\gamma_t}{\gamma_s} k_t^\top k_s` (``s < t``), after which
:math:`S_t = \gamma_t S_0 + \sum_{s \le t} \tfrac{\gamma_t}{\gamma_s} k_s \hat\delta_s^\top` and
:math:`Y = \operatorname{diag}(\gamma) Q S_0 + (QK^\top \odot \Gamma)\hat\Delta` (all ratios
:math:`\gamma_t / \gamma_s \le 1` are formed as ``exp`` of differences of log-decays).

Parameters: ``w_x (input, heads * (2 d_k + d_v) + heads [+ heads])`` with blocks ``q, k, v, beta
[, alpha]``, ``b_beta (heads,)`` and, gated, ``a_log (heads,)``, ``dt_bias (heads,)``. The carry
``S (*batch, heads, d_k, d_v)`` and all arithmetic are float32; outputs are cast to the
parameters' dtype.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from seqjax.cells import chunked, inits
from seqjax.cells.base import Cell, check_size, make_step
from seqjax.cells.heads import head_sizes, per_unit
from seqjax.cells.s6 import dt_bias_init

ACC = jnp.float32


def l2_normalise(a: jax.Array, eps: float = 1e-6) -> jax.Array:
    """``a / sqrt(|a|^2 + eps)`` over the last axis (finite gradient at ``a = 0``)."""
    return a * jax.lax.rsqrt(jnp.sum(a * a, axis=-1, keepdims=True) + eps)


def delta_chunk(h0, nlead: int):
    """The chunk step of :func:`seqjax.cells.chunked.run_chunks` for the (gated) delta rule."""

    def step(S, xs, seg, need_states):
        q, k, v, beta, log_alpha = xs
        beta, log_alpha = beta[..., 0], log_alpha[..., 0]
        L = q.shape[-2]
        G, G_seg = chunked.decay_from_start(log_alpha, seg.start)
        Gamma = chunked.pair_decay(G, seg.same)  # gamma_t / gamma_s on t's segment, s <= t
        gamma = jnp.exp(G_seg)  # decay of t's segment start state up to t
        fs = seg.from_start[..., None]
        kS = jnp.where(fs, k @ S, k @ h0)  # rows k_t^T S_start(t)
        qS = jnp.where(fs, q @ S, q @ h0)
        kk = k @ jnp.swapaxes(k, -1, -2)
        strict = seg.same & ~jnp.eye(L, dtype=bool)
        A = jnp.where(strict, beta[..., :, None] * Gamma * kk, 0.0)
        rhs = beta[..., None] * (v - gamma[..., None] * kS)
        eye = jnp.broadcast_to(jnp.eye(L, dtype=A.dtype), A.shape)
        rhs = jnp.broadcast_to(rhs, A.shape[:-2] + rhs.shape[-2:])
        writes = jax.lax.linalg.triangular_solve(
            eye + A, rhs, left_side=True, lower=True, unit_diagonal=True
        )
        out = gamma[..., None] * qS + (Gamma * (q @ jnp.swapaxes(k, -1, -2))) @ writes
        last = seg.from_start[..., -1][..., None, None]
        S_new = gamma[..., -1, None, None] * jnp.where(last, S, h0) + jnp.einsum(
            "...s,...sk,...sv->...kv", Gamma[..., -1, :], k, writes
        )
        states = None
        if need_states:
            starts = chunked.start_states(seg.from_start, S, h0, nlead)
            states = gamma[..., None, None] * starts + jnp.einsum(
                "...ts,...sk,...sv->...tkv", Gamma, k, writes
            )
        return S_new, out, states

    return step


def _delta_cell(
    name: str,
    hidden_size: int,
    gated: bool,
    num_heads: int,
    key_size: Optional[int],
    chunk_size: int,
    kernel_init: inits.InitSpec,
    param_dtype,
) -> Cell:
    check_size("hidden_size", hidden_size)
    check_size("chunk_size", chunk_size)
    H, nh = hidden_size, num_heads
    d_k, d_v = head_sizes(H, nh, key_size)
    splits = [nh * d_k, 2 * nh * d_k, 2 * nh * d_k + nh * d_v, 2 * nh * d_k + nh * d_v + nh]
    width = splits[-1] + (nh if gated else 0)
    k_init = inits.get(kernel_init)

    def init(key, input_size: int):
        check_size("input_size", input_size)
        kx, ka, kd = jax.random.split(key, 3)
        params = {"w_x": k_init(kx, (input_size, width), ACC), "b_beta": jnp.zeros((nh,), ACC)}
        if gated:  # Mamba-2's A in [1, 16] and dt in [0.001, 0.1] (Yang et al. 2025, sec. 3)
            params["a_log"] = jnp.log(jax.random.uniform(ka, (nh,), ACC, 1.0, 16.0))
            params["dt_bias"] = dt_bias_init(kd, nh, 0.001, 0.1)
        return jax.tree.map(lambda a: a.astype(param_dtype), params)

    def initial_carry(params, batch_shape=()):
        del params
        return jnp.zeros((*tuple(batch_shape), nh, d_k, d_v), ACC)

    def project(params, x):
        """``(q, k, v, beta, log alpha)``, float32: ``(..., heads, d)`` and ``(..., heads)``."""
        z = (x.astype(params["w_x"].dtype) @ params["w_x"]).astype(ACC)
        q, k, v, b, a = jnp.split(z, splits, axis=-1)
        heads = lambda u, d: u.reshape(u.shape[:-1] + (nh, d))  # noqa: E731
        beta = jax.nn.sigmoid(b + params["b_beta"].astype(ACC))
        if gated:
            rate = jnp.exp(params["a_log"].astype(ACC))
            log_alpha = -rate * jax.nn.softplus(a + params["dt_bias"].astype(ACC))
        else:
            log_alpha = jnp.zeros_like(beta)
        q, k = l2_normalise(heads(q, d_k)), l2_normalise(heads(k, d_k))
        return q, k, heads(v, d_v), beta, log_alpha

    def out_dtype(params):
        return params["w_x"].dtype

    def recur(params, S, p):
        _, k, v, beta, log_alpha = p
        S = jnp.exp(log_alpha)[..., None, None] * S
        write = beta[..., None] * (v - jnp.einsum("...kv,...k->...v", S, k))
        S = S + k[..., :, None] * write[..., None, :]
        return S, output(params, S, p)

    def output(params, S, p):
        """``y_t = S_t^T q_t``, heads concatenated."""
        y = jnp.einsum("...kv,...k->...v", S, p[0])
        return y.reshape(y.shape[:-2] + (H,)).astype(out_dtype(params))

    def parallel(params, carry, xs, *, resets=None, return_carries=False, valid=None):
        q, k, v, beta, log_alpha = project(params, xs)
        carry = carry.astype(ACC)
        seqs = (q, k, v, beta[..., None], log_alpha[..., None])
        pads = (0.0, 0.0, 0.0, 0.0, 0.0)  # beta = 0, alpha = 1: padded steps keep the state
        step = delta_chunk(carry, xs.ndim - 1)
        out, final, states = chunked.run_heads(
            step, carry, seqs, pads, resets, chunk_size, return_carries, valid
        )
        ys = out.reshape(out.shape[:-2] + (H,)).astype(out_dtype(params))
        return (ys, final, states) if return_carries else (ys, final)

    def gates(params, carry, p):
        del params, carry
        _, _, _, beta, log_alpha = p
        g = {"beta": per_unit(beta, d_v)}
        if gated:
            g["alpha"] = per_unit(jnp.exp(log_alpha), d_v)
        return g

    return Cell(
        init=init,
        initial_carry=initial_carry,
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name=name,
        parallel=parallel,
        gates=gates,
        output=output,
    )


def deltanet(
    hidden_size: int,
    *,
    num_heads: int = 1,
    key_size: Optional[int] = None,
    chunk_size: int = 64,
    kernel_init: inits.InitSpec = "lecun_normal",
    param_dtype=jnp.float32,
) -> Cell:
    """DeltaNet cell (Schlag et al. 2021; Yang et al. 2024) with its chunkwise-parallel form.

    Args:
      hidden_size: H, the output size: ``num_heads * d_v``.
      num_heads: heads, each with its own ``(d_k, d_v)`` state; must divide H.
      key_size: d_k per head; ``None`` is ``d_v = H / num_heads``.
      chunk_size: steps per chunk of the chunkwise form (64, as the authors' kernels).
      kernel_init: initialiser of ``w_x`` by name (:mod:`seqjax.cells.inits`); ``b_beta = 0``.
      param_dtype: dtype of the parameters (the state is float32 regardless).

    Returns:
      A :class:`Cell` with ``parallel`` (chunkwise) and ``gates`` (``beta``, per head, repeated
      over the head's output units).

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.deltanet(8, num_heads=2, chunk_size=4)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> cell.initial_carry(params, (2,)).shape
      (2, 2, 4, 4)
      >>> xs = jax.random.normal(jax.random.key(1), (2, 10, 3))
      >>> ys, S = seqjax.parallel(cell, params, xs)
      >>> ys_seq, S_seq = seqjax.unroll(cell, params, xs, backend="sequential")
      >>> bool(jnp.allclose(ys, ys_seq, atol=1e-5) and jnp.allclose(S, S_seq, atol=1e-5))
      True

    References:
      Schlag, Irie & Schmidhuber 2021, "Linear Transformers Are Secretly Fast Weight Programmers",
      sec. 4.2. Yang et al. 2024, "Parallelizing Linear Transformers with the Delta Rule over
      Sequence Length", sec. 3 (eq. 1, chunkwise form sec. 3.2, UT transform eq. 11).
    """
    args = (num_heads, key_size, chunk_size, kernel_init, param_dtype)
    return _delta_cell("deltanet", hidden_size, False, *args)


def gated_deltanet(
    hidden_size: int,
    *,
    num_heads: int = 1,
    key_size: Optional[int] = None,
    chunk_size: int = 64,
    kernel_init: inits.InitSpec = "lecun_normal",
    param_dtype=jnp.float32,
) -> Cell:
    """Gated DeltaNet cell (Yang et al. 2025) with its chunkwise-parallel form.

    Args: as :func:`deltanet`; the decay :math:`\\alpha_t` adds ``a_log`` (``log U(1, 16)``) and
      ``dt_bias`` (:math:`\\operatorname{softplus}^{-1}` of ``U_log(0.001, 0.1)``), Mamba-2's init.

    Returns:
      A :class:`Cell` with ``parallel`` (chunkwise) and ``gates`` (``beta``, ``alpha``).

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.gated_deltanet(8, num_heads=2, chunk_size=4)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> xs = jax.random.normal(jax.random.key(1), (2, 10, 3))
      >>> ys, S = seqjax.parallel(cell, params, xs, lengths=jnp.array([10, 7]))
      >>> ys_seq, S_seq = seqjax.unroll(cell, params, xs, lengths=jnp.array([10, 7]))
      >>> bool(jnp.allclose(ys, ys_seq, atol=1e-5) and jnp.allclose(S, S_seq, atol=1e-5))
      True

    References:
      Yang, Kautz & Hatamizadeh 2025, "Gated Delta Networks: Improving Mamba2 with Delta Rule",
      sec. 3 (eq. 10; chunkwise form sec. 3.3).
    """
    args = (num_heads, key_size, chunk_size, kernel_init, param_dtype)
    return _delta_cell("gated_deltanet", hidden_size, True, *args)
