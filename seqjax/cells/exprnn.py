r"""Orthogonal RNNs: expRNN (Lezcano-Casado & Martínez-Rubio 2019, "Cheap Orthogonal Constraints in
Neural Networks: A Simple Parametrization of the Orthogonal and Unitary Group", ICML) and, as an
option, scoRNN (Helfrich, Willmott & Ye 2018, "Orthogonal Recurrent Neural Networks with Scaled
Cayley Transform", ICML).

.. math::
    h_t = \operatorname{modReLU}(h_{t-1} W + x_t T), \qquad
    \operatorname{modReLU}(z) = \operatorname{sign}(z) \odot \operatorname{relu}(|z| + b)

with the recurrent matrix an orthogonal function of a skew-symmetric
:math:`A = \operatorname{triu}(a, 1) - \operatorname{triu}(a, 1)^\top`:

* ``parametrization="expm"`` (expRNN): :math:`W = \exp(A)`, onto the special orthogonal group;
* ``parametrization="cayley"`` (scoRNN): :math:`W = (I + A)^{-1}(I - A) D` with the fixed
  diagonal :math:`D` of ``num_negative`` entries :math:`-1` (the last ones) and the rest
  :math:`+1`, the scaling that lets the Cayley transform reach matrices with eigenvalue -1.

Both are computed from ``a`` (once per sequence, see Cost below), so :math:`W^\top W = I`
holds to rounding whatever an optimiser does to ``a``. modReLU (Arjovsky, Shah & Bengio 2016,
sec. 4.3) has :math:`|f'| \le 1`, so with an orthogonal :math:`W` no step can make a gradient grow.

Initialisation of ``a`` (``skew_init``), each :math:`A` block-diagonal with :math:`2 \times 2`
blocks :math:`\begin{pmatrix} 0 & s \\ -s & 0 \end{pmatrix}`:

* ``"cayley"``: :math:`s = -\sqrt{(1 - \cos\theta)/(1 + \cos\theta)}`, :math:`\theta \sim
  U(0, \pi/2)`, so that :math:`W`'s eigenvalues are :math:`e^{\pm i\theta}` (Helfrich et al.
  2018's initialisation, also used for expRNN by Lezcano-Casado & Martínez-Rubio 2019);
* ``"henaff"``: :math:`s \sim U(-\pi, \pi)` (Henaff, Szlam & LeCun 2016; expRNN's experiments);
* ``"zeros"``: :math:`A = 0`, :math:`W = D`.

The input kernel :math:`T` is He-normal (:math:`N(0, 2/\text{input})`) and the modReLU bias
:math:`U(-0.01, 0.01)`, as in the expRNN authors' code. Parameters: ``a (H, H)`` (only its strict
upper triangle is used), ``w_x (input, H)`` (:math:`T`), ``b (H,)``.

Capabilities: ``recurrent_blocks`` ``{"h": W}``, ``activation_bound`` 1 (modReLU) and
``prepare``, which adds ``W`` to the params under the key ``"W"``.

Cost: on raw params ``recur`` evaluates :math:`W(a)` in every step; XLA hoists that out of the
forward loop, but the backward pass then differentiates it at every step (an ``O(H^3)``
matrix-function derivative per step). :func:`seqjax.unroll` and the diagnostics call
``prepare`` once per sequence, so ``W`` is computed and differentiated once.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from seqjax.cells import inits
from seqjax.cells.base import Cell, check_size, derived, make_step, zeros_carry

PARAMETRIZATIONS = ("expm", "cayley")
RECURRENT_INITS = ("cayley", "henaff", "zeros")
he_normal = jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal")


def skew(a: jax.Array) -> jax.Array:
    """``triu(a, 1) - triu(a, 1)^T``: the skew-symmetric matrix of ``a``'s strict upper triangle."""
    u = jnp.triu(a, 1)
    return u - u.T


def modrelu(z: jax.Array, b: jax.Array) -> jax.Array:
    """``sign(z) * relu(|z| + b)`` (Arjovsky et al. 2016, sec. 4.3; real case)."""
    return jnp.sign(z) * jax.nn.relu(jnp.abs(z) + b)


def block_diagonal_skew(key: jax.Array, n: int, init: str) -> jax.Array:
    """``(n, n)`` float32 skew matrix with ``2 x 2`` blocks ``[[0, s], [-s, 0]]`` (``n // 2`` of
    them; an odd last unit gets none), ``s`` drawn by ``init`` (see the module docstring)."""
    m = n // 2
    if init == "cayley":
        theta = jax.random.uniform(key, (m,), jnp.float32, 0.0, math.pi / 2)
        s = -jnp.sqrt((1.0 - jnp.cos(theta)) / (1.0 + jnp.cos(theta)))
    elif init == "henaff":
        s = jax.random.uniform(key, (m,), jnp.float32, -math.pi, math.pi)
    else:
        s = jnp.zeros((m,), jnp.float32)
    superdiag = jnp.zeros((max(n - 1, 0),), jnp.float32).at[::2].set(s)
    upper = jnp.diag(superdiag, 1)
    return upper - upper.T


def exprnn(
    hidden_size: int,
    *,
    parametrization: str = "expm",
    skew_init: str = "cayley",
    num_negative: int = 0,
    kernel_init: inits.InitSpec = he_normal,
    param_dtype=jnp.float32,
) -> Cell:
    """Orthogonal RNN cell: expRNN (``parametrization="expm"``) or scoRNN (``"cayley"``).

    Args:
      hidden_size: H.
      parametrization: ``"expm"`` (expRNN) or ``"cayley"`` (scoRNN).
      skew_init: ``"cayley"``, ``"henaff"`` or ``"zeros"`` (see the module docstring).
      num_negative: rho, the number of -1 entries of scoRNN's scaling matrix ``D`` (a
        hyper-parameter of Helfrich et al. 2018); only with ``"cayley"``.
      kernel_init: initialiser of the input kernel (He normal, the authors' choice).
      param_dtype: dtype of the parameters. ``W`` is computed in at least float32 and cast to it.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.exprnn(8)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> w = cell.recurrent_blocks(params)["h"]
      >>> bool(jnp.allclose(w.T @ w, jnp.eye(8), atol=1e-5))
      True
      >>> carry, y = cell.step(params, cell.initial_carry(params, (2,)), jnp.ones((2, 3)))
      >>> y.shape
      (2, 8)
    """
    check_size("hidden_size", hidden_size)
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(
            f"parametrization={parametrization!r}: choose one of {', '.join(PARAMETRIZATIONS)}"
        )
    if skew_init not in RECURRENT_INITS:
        raise ValueError(f"skew_init={skew_init!r}: choose one of {', '.join(RECURRENT_INITS)}")
    if not isinstance(num_negative, int) or not 0 <= num_negative <= hidden_size:
        raise ValueError(f"num_negative={num_negative!r}: must be an integer in [0, hidden_size]")
    if num_negative and parametrization != "cayley":
        raise ValueError(
            f"num_negative={num_negative}: only the Cayley parametrisation (scoRNN) has a scaling "
            "matrix D; set parametrization='cayley' or num_negative=0"
        )
    H = hidden_size
    k_init = inits.get(kernel_init)
    d = jnp.concatenate([jnp.ones((H - num_negative,)), -jnp.ones((num_negative,))])

    def init(key, input_size: int):
        check_size("input_size", input_size)
        ka, kx, kb = jax.random.split(key, 3)
        return {
            "a": jnp.triu(block_diagonal_skew(ka, H, skew_init), 1).astype(param_dtype),
            "w_x": k_init(kx, (input_size, H), param_dtype),
            "b": jax.random.uniform(kb, (H,), jnp.float32, -0.01, 0.01).astype(param_dtype),
        }

    def orthogonal(params) -> jax.Array:
        """``W(a)``: ``expm(A)`` or ``(I + A)^-1 (I - A) D``."""
        a = params["a"]
        dtype = jnp.float64 if a.dtype == jnp.float64 else jnp.float32  # at least float32
        A = skew(a.astype(dtype))
        if parametrization == "expm":
            W = jax.scipy.linalg.expm(A)
        else:
            eye = jnp.eye(H, dtype=dtype)
            W = jnp.linalg.solve(eye + A, eye - A) * d.astype(dtype)  # (I + A)^-1 (I - A) D
        return W.astype(a.dtype)

    def recurrent_matrix(params) -> jax.Array:
        return derived(params, "W", orthogonal)

    def prepare(params):
        return {**params, "W": orthogonal(params)}

    def project(params, x):
        return x.astype(params["w_x"].dtype) @ params["w_x"]

    def recur(params, h, p):
        h = modrelu(h @ recurrent_matrix(params) + p, params["b"])
        return h, h

    return Cell(
        init=init,
        initial_carry=zeros_carry(H, "b"),
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="exprnn",
        recurrent_blocks=lambda params: {"h": recurrent_matrix(params)},
        activation_bound=1.0,
        prepare=prepare,
    )
