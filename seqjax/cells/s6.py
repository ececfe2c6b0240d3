r"""Selective state-space recurrence S6 of Mamba (Gu & Dao 2023, sec. 3.2, algorithm 2).

Each of the H channels carries an N-dimensional state; the step size :math:`\Delta_t` and the
matrices :math:`B_t, C_t` depend on the input (the selection mechanism), :math:`A` is diagonal:

.. math::
    u_t &= x_t W_u, \qquad B_t = x_t W_B, \qquad C_t = x_t W_C \qquad (B_t, C_t \in \mathbb{R}^N) \\
    \Delta_t &= \operatorname{softplus}(x_t W_\delta W_\Delta + b_\Delta) \in \mathbb{R}^H
        \qquad (W_\delta W_\Delta \text{ of rank } R) \\
    h_t &= \exp(\Delta_t A) \odot h_{t-1} + (\Delta_t \odot u_t)\, B_t^\top
        \qquad (h_t \in \mathbb{R}^{H \times N},\ A = -\exp(A_{\log})) \\
    y_t &= h_t C_t + D \odot u_t

:math:`\bar A = \exp(\Delta A)` is the zero-order hold of sec. 2 (eq. 4) and :math:`\bar B = \Delta
B` its first-order simplification, as in the authors' ``selective_scan_ref``. The Mamba block
computes :math:`\Delta, B, C` from its SSM input :math:`u` (after a projection, a convolution and
SiLU, which belong to the block); here they are linear in the cell's input :math:`x_t` (with
``input_size = H`` and :math:`W_u = I` the recurrence is exactly the paper's).

Initialisation (sec. 3.6 and the authors' code): S4D-real :math:`A_{hn} = -(n + 1)`;
:math:`D = 1`; :math:`\Delta` at init log-uniform in ``[dt_min, dt_max] = [0.001, 0.1]`` (floored
at 1e-4) through :math:`b_\Delta = \operatorname{softplus}^{-1}(\Delta)`; :math:`W_\Delta \sim
U(\pm R^{-1/2})`; the other kernels ``lecun_normal``. The selection acts as a gate: with
``N = 1`` and :math:`A = -1` the state decays by :math:`e^{-\Delta_t} = 1 - g_t`,
:math:`g_t = \sigma(x_t W_\delta W_\Delta + b_\Delta)` (sec. 3.5.1, Theorem 1, where the
zero-order hold of :math:`B` also scales the input by :math:`g_t`); ``gates`` reports
:math:`1 - e^{-\Delta_t}` as ``"selection"``.

Parameters: ``w_x (input, H + R + 2N)`` with blocks ``u, delta, B, C`` (``W_u, W_delta, W_B,
W_C``), ``w_dt (R, H)``, ``b_dt (H,)``, ``a_log (H, N)``, ``d (H,)``. The carry ``(*batch, H, N)``
is float32; ``parallel`` runs :func:`seqjax.cells.linear_scan.linear_scan` over the ``H * N``
diagonal.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from seqjax.cells import inits
from seqjax.cells.base import Cell, check_size, make_step
from seqjax.cells.linear_scan import linear_scan

ACC = jnp.float32


def s4d_real(hidden_size: int, state_size: int) -> jax.Array:
    """``A_log`` of the S4D-real initialisation, :math:`A_{hn} = -(n + 1)` (Gu et al. 2022)."""
    n = jnp.arange(1, state_size + 1, dtype=ACC)
    return jnp.log(jnp.broadcast_to(n, (hidden_size, state_size)))


def dt_bias_init(key, n: int, dt_min: float, dt_max: float, floor: float = 1e-4) -> jax.Array:
    """:math:`b_\\Delta = \\operatorname{softplus}^{-1}(\\Delta)`, :math:`\\Delta` log-uniform in
    ``[dt_min, dt_max]`` and at least ``floor`` (Mamba's ``dt_proj`` bias)."""
    log_dt = jax.random.uniform(key, (n,), ACC, math.log(dt_min), math.log(dt_max))
    dt = jnp.maximum(jnp.exp(log_dt), floor)
    return dt + jnp.log(-jnp.expm1(-dt))  # log(exp(dt) - 1)


def s6(
    hidden_size: int,
    *,
    state_size: int = 16,
    dt_rank: int = 0,
    dt_min: float = 0.001,
    dt_max: float = 0.1,
    kernel_init: inits.InitSpec = "lecun_normal",
    param_dtype=jnp.float32,
) -> Cell:
    """S6 cell (Gu & Dao 2023, algorithm 2) with a sequential and a parallel form.

    Args:
      hidden_size: H, the number of channels (the output size).
      state_size: N, the state size per channel (16 in the paper).
      dt_rank: R, the rank of the :math:`\\Delta` projection; 0 is ``ceil(H / 16)``
        (the authors' default).
      dt_min, dt_max: the range of :math:`\\Delta` at initialisation.
      kernel_init: initialiser of ``w_x`` by name (:mod:`seqjax.cells.inits`).
      param_dtype: dtype of the parameters (the carry is float32 regardless).

    Returns:
      A :class:`Cell` with ``parallel`` and ``gates`` (``selection``, :math:`1 - e^{-\\Delta_t}`).

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.s6(8, state_size=4)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> cell.initial_carry(params, (2,)).shape
      (2, 8, 4)
      >>> xs = jax.random.normal(jax.random.key(1), (2, 5, 3))
      >>> ys, h = seqjax.parallel(cell, params, xs)
      >>> ys_seq, h_seq = seqjax.unroll(cell, params, xs, backend="sequential")
      >>> bool(jnp.allclose(ys, ys_seq, atol=1e-5)), ys.shape
      (True, (2, 5, 8))

    References:
      Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces", sec. 3.2
      (algorithm 2), sec. 3.5.1 (Theorem 1), sec. 3.6 (initialisation).
    """
    check_size("hidden_size", hidden_size)
    check_size("state_size", state_size)
    H, N = hidden_size, state_size
    R = dt_rank or math.ceil(H / 16)
    check_size("dt_rank", R)
    if not 0 < dt_min <= dt_max:
        raise ValueError(f"dt_min={dt_min!r}, dt_max={dt_max!r}: need 0 < dt_min <= dt_max")
    k_init = inits.get(kernel_init)

    def init(key, input_size: int):
        check_size("input_size", input_size)
        kx, kw, kb = jax.random.split(key, 3)
        bound = R**-0.5
        params = {
            "w_x": k_init(kx, (input_size, H + R + 2 * N), ACC),
            "w_dt": jax.random.uniform(kw, (R, H), ACC, -bound, bound),
            "b_dt": dt_bias_init(kb, H, dt_min, dt_max),
            "a_log": s4d_real(H, N),
            "d": jnp.ones((H,), ACC),
        }
        return jax.tree.map(lambda a: a.astype(param_dtype), params)

    def initial_carry(params, batch_shape=()):
        del params
        return jnp.zeros((*tuple(batch_shape), H, N), ACC)

    def project(params, x):
        """``(u, delta, B, C)``: everything of the step that does not read the state."""
        z = x.astype(params["w_x"].dtype) @ params["w_x"]
        u, low, b, c = jnp.split(z, [H, H + R, H + R + N], axis=-1)
        delta = jax.nn.softplus((low @ params["w_dt"] + params["b_dt"]).astype(ACC))
        return u, delta, b, c

    def discretise(params, p):
        """``(exp(Delta A), Delta u B^T)``, each ``(..., H, N)``, float32."""
        u, delta, b, _ = p
        a = -jnp.exp(params["a_log"].astype(ACC))
        decay = jnp.exp(delta[..., :, None] * a)
        drive = (delta * u.astype(ACC))[..., :, None] * b.astype(ACC)[..., None, :]
        return decay, drive

    def read_out(params, h, p):
        u, _, _, c = p
        y = jnp.einsum("...hn,...n->...h", h, c.astype(ACC))
        return (y + params["d"].astype(ACC) * u.astype(ACC)).astype(u.dtype)

    def recur(params, h, p):
        decay, drive = discretise(params, p)
        h = decay * h + drive
        return h, read_out(params, h, p)

    def parallel(params, carry, xs, *, resets=None, return_carries=False, valid=None):
        p = project(params, xs)
        decay, drive = discretise(params, p)  # valid false: Delta = 0, so decay 1 and drive 0
        flat = lambda a: a.reshape(a.shape[:-2] + (H * N,))  # noqa: E731
        h0 = flat(carry.astype(ACC))
        hs = linear_scan(flat(decay), flat(drive), h0, resets=resets, valid=valid)
        hs = hs.reshape(hs.shape[:-1] + (H, N))
        ys = read_out(params, hs, p)
        final = hs[..., -1, :, :] if hs.shape[-3] else carry
        return (ys, final, hs) if return_carries else (ys, final)

    def gates(params, carry, p):
        del params, carry
        return {"selection": -jnp.expm1(-p[1])}  # 1 - exp(-Delta_t)

    return Cell(
        init=init,
        initial_carry=initial_carry,
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="s6",
        parallel=parallel,
        gates=gates,
        output=read_out,
    )
