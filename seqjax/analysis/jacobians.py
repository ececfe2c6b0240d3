r"""Products of step Jacobians :math:`\partial h_T / \partial h_t` and their singular values.

Backpropagation through time multiplies the step Jacobians (Bengio, Simard & Frasconi 1994;
Pascanu, Mikolov & Bengio 2013, sec. 2.1):

.. math::
    J_s = \frac{\partial h_s}{\partial h_{s-1}}, \qquad
    \frac{\partial h_T}{\partial h_t} = J_T J_{T-1} \cdots J_{t+1}, \qquad
    \frac{\partial h_T}{\partial h_T} = I.

Its singular values say how a perturbation of the state at :math:`t` is stretched by the time it
reaches :math:`T`: all below one and shrinking with :math:`T - t` is a vanishing gradient, a
growing largest one an exploding gradient. Each :math:`J_s` is ``jax.jacfwd`` of ``cell.step``
with respect to the carry, evaluated along the trajectory the inputs drive.

The state is the whole carry flattened into one vector (``jax.flatten_util.ravel_pytree``): ``h``
for Elman and GRU cells (``n = H``), ``[h, c]`` in that order for the LSTM (``n = 2H``). Matrices
are ``(n, n)`` with rows indexing the later state (``J[i, j] = d h_s[i] / d h_{s-1}[j]``). Memory is
``O(batch * T * n^2)``: meant for small hidden sizes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from seqjax.cells.base import Cell, prepared
from seqjax.scan import unroll


class JacobianProducts(NamedTuple):
    """Step Jacobians and their products for a batch of sequences (``n`` = flattened carry size)."""

    steps: jax.Array  # shape=(*batch, T, n, n), J_s = dh_s/dh_{s-1} for s = 1..T (time order)
    products: jax.Array  # shape=(*batch, T+1, n, n), dh_T/dh_{T-k} for distance k = 0..T
    singular_values: jax.Array  # shape=(*batch, T+1, n), of products[..., k, :, :], descending


def _previous_carries(cell, params, xs, carry0):
    """The carries h_0 .. h_{T-1} that steps 1 .. T read, leaf shape ``(*batch, T, ...)``, for
    params already prepared (:func:`seqjax.cells.base.prepared`)."""
    nb = xs.ndim - 2
    cell = cell._replace(prepare=None)  # params are prepared: not again
    _, _, carries = unroll(cell, params, xs, carry0, return_carries=True)
    return jax.tree.map(
        lambda c0, cs: jnp.concatenate([jnp.expand_dims(c0, nb), cs], axis=nb)[
            (slice(None),) * nb + (slice(0, -1),)
        ],
        carry0,
        carries,
    )


def step_jacobians(cell: Cell, params, xs: jax.Array, carry=None) -> jax.Array:
    r"""The step Jacobians :math:`J_s = \partial h_s / \partial h_{s-1}` along the trajectory.

    Args:
      cell: a :class:`seqjax.cells.Cell`.
      params: its parameters.
      xs: inputs ``(*batch, T, input_size)``.
      carry: initial carry (zeros if ``None``).

    Returns:
      ``(*batch, T, n, n)``, entry ``s - 1`` being :math:`J_s`, over the flattened carry.
    """
    if xs.ndim < 2:
        raise ValueError(f"xs.shape={xs.shape}: expected (*batch, T, input_size)")
    batch_shape, T, nb = xs.shape[:-2], xs.shape[-2], xs.ndim - 2
    params = prepared(cell, params)  # once, not in every step's Jacobian
    carry0 = cell.initial_carry(params, batch_shape) if carry is None else carry
    prev = _previous_carries(cell, params, xs, carry0)

    # One example, one step: unbatched carry leaves (...) and input (input_size,).
    def jac_one(c_prev, x):
        flat, unravel = ravel_pytree(c_prev)
        f = lambda v: ravel_pytree(cell.step(params, unravel(v), x)[0])[0]  # noqa: E731
        return jax.jacfwd(f)(flat)

    # Flatten batch and time into one axis, vmap, restore.
    n_ex = T * math.prod(batch_shape)
    flat_leaf = lambda a: a.reshape((n_ex, *a.shape[nb + 1 :]))  # noqa: E731
    jac = jax.vmap(jac_one)(jax.tree.map(flat_leaf, prev), xs.reshape(n_ex, xs.shape[-1]))
    return jac.reshape((*batch_shape, T, *jac.shape[1:]))


def jacobian_products(cell: Cell, params, xs: jax.Array, carry=None) -> JacobianProducts:
    r""":math:`\partial h_T / \partial h_t` for every ``t`` and its singular values.

    Args:
      cell: a :class:`seqjax.cells.Cell`.
      params: its parameters.
      xs: inputs ``(*batch, T, input_size)``.
      carry: initial carry (zeros if ``None``).

    Returns:
      :class:`JacobianProducts`; ``products[..., k, :, :]`` is
      :math:`\partial h_T / \partial h_{T-k} = J_T \cdots J_{T-k+1}` (``k = 0``: the identity,
      ``k = T``: the derivative with respect to the initial carry), and
      ``singular_values[..., k, 0]`` its spectral norm.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.elman(3, activation="identity", recurrent_init="identity:0.5")
      >>> params = cell.init(jax.random.key(0), 2)
      >>> jp = jacobian_products(cell, params, jnp.ones((4, 2)))  # one unbatched sequence
      >>> jp.singular_values[:, 0]  # 0.5 ** k
      Array([1.    , 0.5   , 0.25  , 0.125 , 0.0625], dtype=float32)
    """
    steps = step_jacobians(cell, params, xs, carry)
    nb = xs.ndim - 2
    n = steps.shape[-1]
    eye = jnp.broadcast_to(jnp.eye(n, dtype=steps.dtype), (*steps.shape[:nb], n, n))

    def body(p, j):  # p = dh_T/dh_s; extend by one step back: dh_T/dh_{s-1} = p @ J_s
        p = p @ j
        return p, p

    backwards = jnp.flip(jnp.moveaxis(steps, nb, 0), 0)  # J_T, J_{T-1}, ..., J_1
    _, prods = jax.lax.scan(body, eye, backwards)
    products = jnp.concatenate([jnp.expand_dims(eye, nb), jnp.moveaxis(prods, 0, nb)], axis=nb)
    sv = jnp.linalg.svd(products, compute_uv=False)
    return JacobianProducts(steps=steps, products=products, singular_values=sv)
