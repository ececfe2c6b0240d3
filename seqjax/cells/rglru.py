r"""Real-Gated Linear Recurrent Unit (De et al. 2024, "Griffin", sec. 2.4).

A diagonal linear recurrence whose decay is chosen per step by a recurrence gate, with the input
scaled so that the state keeps unit scale:

.. math::
    r_t &= \sigma(x_t W_a + b_a), \qquad i_t = \sigma(x_t W_x + b_x), \qquad
        u_t = x_t W_u + b_u \\
    a_t &= a^{c\, r_t}, \qquad a = \sigma(\Lambda), \quad c = 8 \\
    h_t &= a_t \odot h_{t-1} + \sqrt{1 - a_t^2} \odot (i_t \odot u_t), \qquad y_t = h_t

computed in log space, :math:`\log a_t = c\, r_t \log\sigma(\Lambda)`, and
:math:`1 - a_t^2 = -\operatorname{expm1}(2 \log a_t)` (no cancellation as :math:`a_t \to 1`).
Griffin feeds the RG-LRU a linear (and convolved) projection of its block's input; here ``W_u``
is that projection and the gates read the cell's input :math:`x_t`, so with ``input_size = H``,
:math:`W_u = I`, :math:`b_u = 0` the cell is the paper's layer (its block-diagonal gate matrices
are the dense ``W_a, W_x`` with zeros off the blocks).

Initialisation (sec. 2.4): :math:`\Lambda` such that :math:`a^c` is uniform in
``[a_min, a_max] = [0.9, 0.999]``, i.e. :math:`a \in [0.9, 0.999]^{1/c}` (``a_init="paper"``).
recurrentgemma's code instead draws :math:`a` itself on that ring, :math:`a^2` uniform in
:math:`[r_{\min}^2, r_{\max}^2]` (``a_init="recurrentgemma"``). Kernels ``lecun_normal``, biases 0.

The gradient of :math:`\sqrt{\cdot}` is bounded by ``max_sqrt_grad`` (1000, as recurrentgemma does
so that :math:`a_t \to 1` gives no infinite or NaN gradient); values are exact.

Parameters: ``w_x (input, 3H)``, ``b (3H,)`` with blocks in the order ``r, i, u`` (``W_a, W_x,
W_u``), ``lam (H,)`` (:math:`\Lambda`). The carry ``h (*batch, H)`` and all gate arithmetic are
float32 whatever the parameter dtype; outputs are cast back to the projected inputs' dtype.
``parallel`` solves the whole sequence with :func:`seqjax.cells.linear_scan.linear_scan`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from seqjax.cells import inits
from seqjax.cells.base import Cell, check_size, make_step
from seqjax.cells.linear_scan import linear_scan
from seqjax.cells.mingru import ACC, finish, float32_carry

A_INITS = ("paper", "recurrentgemma")


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def sqrt_bounded_grad(z: jax.Array, max_grad: float) -> jax.Array:
    """``sqrt(z)`` whose derivative is capped at ``max_grad`` (reached for ``z <= 1/(4 max^2)``)."""
    return jnp.sqrt(z)


@sqrt_bounded_grad.defjvp
def _sqrt_bounded_grad_jvp(max_grad, primals, tangents):
    (z,), (dz,) = primals, tangents
    floor = jnp.asarray(1.0 / (4.0 * max_grad**2), z.dtype)
    return jnp.sqrt(z), dz * (0.5 / jnp.sqrt(jnp.maximum(z, floor)))


def lambda_init(key, n: int, c: float, a_min: float, a_max: float, a_init: str) -> jax.Array:
    """:math:`\\Lambda = \\operatorname{logit}(a)`, float32: ``a^c ~ U[a_min, a_max]`` ("paper")
    or ``a^2 ~ U[a_min^2, a_max^2]`` ("recurrentgemma")."""
    u = jax.random.uniform(key, (n,), ACC)
    if a_init == "paper":
        log_a = jnp.log(a_min + u * (a_max - a_min)) / c
    else:
        log_a = 0.5 * jnp.log(a_min**2 + u * (a_max**2 - a_min**2))
    return log_a - jnp.log(-jnp.expm1(log_a))  # log a - log(1 - a)


def rglru(
    hidden_size: int,
    *,
    c: float = 8.0,
    a_min: float = 0.9,
    a_max: float = 0.999,
    a_init: str = "paper",
    kernel_init: inits.InitSpec = "lecun_normal",
    bias_init: inits.InitSpec = "zeros",
    max_sqrt_grad: float = 1000.0,
    param_dtype=jnp.float32,
) -> Cell:
    """RG-LRU cell (De et al. 2024, sec. 2.4) with a sequential and a parallel form.

    Args:
      hidden_size: H, the size of the state and the output.
      c: the constant :math:`c` of :math:`a_t = a^{c r_t}` (8 in the paper).
      a_min, a_max: the range of :math:`a^c` at initialisation (0.9, 0.999 in the paper);
        ``0 < a_min <= a_max < 1``.
      a_init: ``"paper"`` (:math:`a^c` uniform) or ``"recurrentgemma"`` (:math:`a^2` uniform).
      kernel_init, bias_init: initialisers of ``w_x`` and ``b`` by name (:mod:`seqjax.cells.inits`).
      max_sqrt_grad: bound on the derivative of :math:`\\sqrt{1 - a_t^2}`.
      param_dtype: dtype of the parameters (the carry is float32 regardless).

    Returns:
      A :class:`Cell` with ``parallel``, ``gates`` (``recurrence`` :math:`r_t`, ``input``
      :math:`i_t`).

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.rglru(8)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> xs = jax.random.normal(jax.random.key(1), (2, 5, 3))
      >>> ys, h = seqjax.parallel(cell, params, xs)
      >>> ys_seq, h_seq = seqjax.unroll(cell, params, xs, backend="sequential")
      >>> bool(jnp.allclose(ys, ys_seq, atol=1e-6)), ys.shape
      (True, (2, 5, 8))

    References:
      De et al. 2024, "Griffin: Mixing Gated Linear Recurrences with Local Attention for Efficient
      Language Models", sec. 2.4 (eqs. 1-4).
    """
    check_size("hidden_size", hidden_size)
    if not 0.0 < a_min <= a_max < 1.0:
        raise ValueError(f"a_min={a_min!r}, a_max={a_max!r}: need 0 < a_min <= a_max < 1")
    if a_init not in A_INITS:
        raise ValueError(f"a_init={a_init!r}: choose one of {', '.join(A_INITS)}")
    if not c > 0:
        raise ValueError(f"c={c!r}: must be positive (the paper uses 8)")
    H = hidden_size
    k_init, b_init = inits.get(kernel_init), inits.get(bias_init)

    def init(key, input_size: int):
        check_size("input_size", input_size)
        kx, kb, kl = jax.random.split(key, 3)
        return {
            "w_x": k_init(kx, (input_size, 3 * H), param_dtype),
            "b": b_init(kb, (3 * H,), param_dtype),
            "lam": lambda_init(kl, H, c, a_min, a_max, a_init).astype(param_dtype),
        }

    def project(params, x):
        return x.astype(params["w_x"].dtype) @ params["w_x"] + params["b"]

    def coefficients(params, p):
        """``(a_t, sqrt(1 - a_t^2) i_t u_t, r_t, i_t)`` from projected inputs, float32."""
        k_r, k_i, u = jnp.split(p.astype(ACC), 3, axis=-1)
        r, i = jax.nn.sigmoid(k_r), jax.nn.sigmoid(k_i)
        log_a = c * r * jax.nn.log_sigmoid(params["lam"].astype(ACC))
        norm = sqrt_bounded_grad(-jnp.expm1(2.0 * log_a), max_sqrt_grad)
        return jnp.exp(log_a), norm * (i * u), r, i

    def recur(params, h, p):
        a, b, _, _ = coefficients(params, p)
        h = a * h + b
        return h, h.astype(p.dtype)

    def parallel(params, carry, xs, *, resets=None, return_carries=False, valid=None):
        p = project(params, xs)
        a, b, _, _ = coefficients(params, p)  # valid false: r = 0, so a = 1 and b = 0
        hs = linear_scan(a, b, carry.astype(ACC), resets=resets, valid=valid)
        return finish(hs, carry, p.dtype, return_carries)

    def gates(params, carry, p):
        del carry
        _, _, r, i = coefficients(params, p)
        return {"recurrence": r, "input": i}

    return Cell(
        init=init,
        initial_carry=float32_carry(H),
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="rglru",
        parallel=parallel,
        gates=gates,
    )
