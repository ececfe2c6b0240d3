r"""Linear recurrent unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long
Sequences").

A complex diagonal linear recurrence with a real read-out:

.. math::
    \lambda &= \exp(-\exp(\nu) + i \exp(\theta)) \qquad \text{(sec. 3.3, stable exponential
        parametrisation: } |\lambda| < 1 \text{ for every } \nu) \\
    h_t &= \lambda \odot h_{t-1} + \gamma \odot (x_t B), \qquad
        \gamma = \exp(\gamma_{\log}) \text{ initialised to } \sqrt{1 - |\lambda|^2}
        \text{ (sec. 3.4)} \\
    y_t &= \operatorname{Re}(h_t C) + x_t D

Initialisation (sec. 3.2, Lemma 3.2, and App. A): :math:`\lambda` uniform on the ring
:math:`r_{\min} \le |\lambda| \le r_{\max}` with phase uniform in :math:`[0, \text{max\_phase}]`:
:math:`\nu = \log(-\tfrac12 \log(u_1 (r_{\max}^2 - r_{\min}^2) + r_{\min}^2))`,
:math:`\theta = \log(\text{max\_phase} \cdot u_2)`; ``B`` with real and imaginary parts
:math:`N(0, 1/(2 \cdot \text{input}))`, ``C`` with parts :math:`N(0, 1/H)`.

Parameters: ``nu_log, theta_log, gamma_log (H,)``, ``b_re, b_im (input, H)``, ``c_re, c_im
(H, H)``, ``d (input, H)``. The state size equals ``hidden_size``. The paper's skip term ``D`` is
a diagonal (its layers map H to H); here inputs and outputs may differ in size, so ``D`` is a
dense ``(input, H)`` matrix drawn :math:`N(0, 1/\text{input})`, the same output scale as the
paper's :math:`N(0, 1)` diagonal.

The carry ``h`` is complex64 and the recurrence and read-out run in float32 whatever the
parameter dtype (as recurrentgemma accumulates its scan); outputs are cast back to the projected
inputs' dtype. ``project`` returns ``(gamma * x B, x D)``; ``recur`` is the elementwise update and
the read-out; ``parallel`` runs :func:`seqjax.cells.linear_scan.linear_scan`.

Capabilities: ``output`` (the read-out :math:`\operatorname{Re}(h_t C) + x_t D` of a state);
no gates and no dense recurrent matrix (the recurrence is the diagonal :math:`\lambda`), so
``gates`` and ``recurrent_blocks`` are ``None``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from seqjax.cells.base import Cell, check_size, make_step
from seqjax.cells.linear_scan import linear_scan

ACC = jnp.float32
CARRY = jnp.complex64


def lambda_of(params) -> jax.Array:
    """The diagonal :math:`\\lambda = \\exp(-\\exp(\\nu) + i \\exp(\\theta))`, complex64."""
    nu = jnp.exp(params["nu_log"].astype(ACC))
    theta = jnp.exp(params["theta_log"].astype(ACC))
    return jnp.exp(jax.lax.complex(-nu, theta))


def ring_init(key: jax.Array, n: int, r_min: float, r_max: float, max_phase: float):
    """``(nu_log, theta_log, gamma_log)``, float32, for :math:`\\lambda` uniform on a ring.

    :math:`|\\lambda|^2` is drawn uniform in :math:`[r_{\\min}^2, r_{\\max}^2]` (uniform in area,
    Orvieto et al. 2023, Lemma 3.2) and kept strictly inside ``(0, 1)`` so that every log is
    finite even for ``r_min = 0`` or ``r_max = 1``.
    """
    k1, k2 = jax.random.split(key)
    u1 = jax.random.uniform(k1, (n,), ACC)
    u2 = 1.0 - jax.random.uniform(k2, (n,), ACC)  # (0, 1]: theta_log finite
    r2 = u1 * (r_max**2 - r_min**2) + r_min**2
    tiny, eps = jnp.finfo(ACC).tiny, jnp.finfo(ACC).epsneg
    r2 = jnp.clip(r2, max(r_min**2, float(tiny)), min(r_max**2, 1.0 - float(eps)))
    nu_log = jnp.log(-0.5 * jnp.log(r2))
    theta_log = jnp.log(max_phase * u2)
    # gamma = sqrt(1 - |lambda|^2) = sqrt(-expm1(-2 exp(nu))): no cancellation near |lambda| = 1.
    gamma_log = 0.5 * jnp.log(-jnp.expm1(-2.0 * jnp.exp(nu_log)))
    return nu_log, theta_log, gamma_log


def lru(
    hidden_size: int,
    r_min: float = 0.0,
    r_max: float = 1.0,
    max_phase: float = 2 * math.pi,
    *,
    param_dtype=jnp.float32,
) -> Cell:
    """LRU cell (Orvieto et al. 2023) with a sequential and a parallel form.

    Args:
      hidden_size: H, the size of the complex state and of the real output.
      r_min, r_max: the ring :math:`r_{\\min} \\le |\\lambda| \\le r_{\\max}` at initialisation
        (sec. 3.2; the paper uses 0.9 and 0.999 on long-range tasks). ``0 <= r_min <= r_max <= 1``.
      max_phase: phases :math:`\\arg\\lambda` drawn in ``[0, max_phase]`` (sec. 3.2; the paper
        uses ``pi / 10`` on some tasks).
      param_dtype: dtype of the parameters (the carry is complex64 regardless).

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.lru(8, r_min=0.9, r_max=0.999)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> carry = cell.initial_carry(params, (2,))
      >>> carry.dtype
      dtype('complex64')
      >>> ys, h = cell.parallel(params, carry, jnp.ones((2, 5, 3)))
      >>> ys.shape, ys.dtype
      ((2, 5, 8), dtype('float32'))
    """
    check_size("hidden_size", hidden_size)
    if not 0.0 <= r_min <= r_max <= 1.0:
        raise ValueError(f"r_min={r_min!r}, r_max={r_max!r}: need 0 <= r_min <= r_max <= 1")
    if not max_phase > 0:
        raise ValueError(f"max_phase={max_phase!r}: must be positive (the paper uses up to 2*pi)")
    H = hidden_size

    def init(key, input_size: int):
        check_size("input_size", input_size)
        k_ring, kb_re, kb_im, kc_re, kc_im, kd = jax.random.split(key, 6)
        nu_log, theta_log, gamma_log = ring_init(k_ring, H, r_min, r_max, max_phase)
        normal = lambda k, shape, var: jax.random.normal(k, shape, ACC) * math.sqrt(var)  # noqa: E731
        params = {
            "nu_log": nu_log,
            "theta_log": theta_log,
            "gamma_log": gamma_log,
            "b_re": normal(kb_re, (input_size, H), 1.0 / (2 * input_size)),
            "b_im": normal(kb_im, (input_size, H), 1.0 / (2 * input_size)),
            "c_re": normal(kc_re, (H, H), 1.0 / H),
            "c_im": normal(kc_im, (H, H), 1.0 / H),
            "d": normal(kd, (input_size, H), 1.0 / input_size),
        }
        return jax.tree.map(lambda a: a.astype(param_dtype), params)

    def initial_carry(params, batch_shape=()):
        del params
        return jnp.zeros((*tuple(batch_shape), H), CARRY)

    def project(params, x):
        x = x.astype(params["b_re"].dtype)
        gamma = jnp.exp(params["gamma_log"].astype(ACC))
        bu = jax.lax.complex(
            (x @ params["b_re"]).astype(ACC) * gamma, (x @ params["b_im"]).astype(ACC) * gamma
        )
        return bu, x @ params["d"]

    def read_out(params, h, du):
        y = h.real @ params["c_re"].astype(ACC) - h.imag @ params["c_im"].astype(ACC)
        return (y + du.astype(ACC)).astype(du.dtype)

    def recur(params, h, p):
        bu, du = p
        h = lambda_of(params) * h + bu
        return h, read_out(params, h, du)

    def parallel(params, carry, xs, *, resets=None, return_carries=False, valid=None):
        bu, du = project(params, xs)
        a = jnp.broadcast_to(lambda_of(params), bu.shape)
        hs = linear_scan(a, bu, carry.astype(CARRY), resets=resets, valid=valid)
        ys = read_out(params, hs, du)
        final = hs[..., -1, :] if hs.shape[-2] else carry
        return (ys, final, hs) if return_carries else (ys, final)

    return Cell(
        init=init,
        initial_carry=initial_carry,
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="lru",
        parallel=parallel,
        output=lambda params, h, p: read_out(params, h, p[1]),
    )
