r"""Per-step gradient norms :math:`\|\partial L / \partial h_t\|` in one backward pass.

The vanishing/exploding-gradient picture of Bengio, Simard & Frasconi (1994) and Pascanu, Mikolov &
Bengio (2013, sec. 2.1) is about how the error signal that reaches the hidden state shrinks or grows
with the distance :math:`T - t` from the loss:

.. math::
    \frac{\partial L}{\partial h_t} = \frac{\partial L}{\partial y_t}
        + \frac{\partial L}{\partial h_{t+1}} \frac{\partial h_{t+1}}{\partial h_t},
    \qquad t = T, T-1, \dots, 0.

Reading it off for every :math:`t` needs no :math:`T` separate backward passes: run the cell with a
zero perturbation :math:`\epsilon_t` added to the state after every step,
:math:`\tilde h_t = h_t + \epsilon_t`, and differentiate the loss once with respect to all
:math:`\epsilon_t`: :math:`\partial L / \partial \epsilon_t = \partial L / \partial h_t` at
:math:`\epsilon = 0`. The perturbed state is what the next step reads, what the step's output
:math:`y_t` is read from (:attr:`seqjax.cells.Cell.output` of the perturbed state and the
step's input: the hidden state for Elman, GRU and LSTM cells, :math:`\operatorname{Re}(h_t C) +
x_t D` for the LRU) and, at :math:`t = T`, the final carry handed to the loss. So the derivative
is the *total* one: through the output at :math:`t` and through every later step. :math:`h_0`
(the initial carry) is included.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from seqjax.cells.base import Cell, prepared, step_output


class GradNorms(NamedTuple):
    """Batch-mean gradient norms, indexed by the distance ``k = T - t`` from the last step.

    ``k = 0`` is the final state :math:`h_T`, ``k = T`` the initial carry :math:`h_0`.
    """

    total: jax.Array  # shape=(T+1,), mean over the batch of ||dL/dcarry_t|| over all carry leaves
    leaves: Any  # the carry's structure, each leaf shape=(T+1,): e.g. LSTMCarry(h=..., c=...)
    loss: jax.Array  # shape=(), mean over the batch of the per-example loss


def perturbed_unroll(cell: Cell, params, xs: jax.Array, carry, eps):
    """Runs ``cell`` over ``xs: (*batch, T, input)`` adding ``eps`` to the state after each step.

    ``eps`` has the carry's structure with a time axis after the batch axes (leaf shape
    ``(*batch, T, ...)``), like ``unroll(..., return_carries=True)``'s carries. The output of each
    step is read from the perturbed state (:func:`seqjax.cells.base.step_output`). Returns
    ``(ys, final_carry)`` as :func:`seqjax.unroll` does; with ``eps = 0`` they equal ``unroll``'s.
    """
    nb = xs.ndim - 2
    tm = lambda a: jnp.moveaxis(a, nb, 0)  # noqa: E731
    params = prepared(cell, params)

    def body(c, scanned):
        x, e = scanned
        p = cell.project(params, x)  # step = recur . project; the output needs p
        c, _ = cell.recur(params, c, p)
        c = jax.tree.map(jnp.add, c, e)
        return c, step_output(cell, params, c, p)

    final, ys = jax.lax.scan(body, carry, (tm(xs), jax.tree.map(tm, eps)))
    return jnp.moveaxis(ys, 0, nb), final


def grad_norms_per_step(
    cell: Cell,
    params,
    xs: jax.Array,
    loss_fn: Callable[[jax.Array, Any], jax.Array],
    carry=None,
) -> GradNorms:
    r""":math:`\|\partial L / \partial h_t\|` for every step, from one backward pass.

    Args:
      cell: a :class:`seqjax.cells.Cell`.
      params: its parameters.
      xs: inputs ``(*batch, T, input_size)``.
      loss_fn: ``(ys, final_carry) -> losses`` with ``ys: (*batch, T, hidden)``; return the loss of
        each example (shape ``batch_shape``), so that each example's gradient is that of its own
        loss and the norms do not depend on the batch size. (It is summed before differentiating;
        a batch mean would divide every norm by the batch size.) Close over a readout's parameters.
      carry: initial carry (zeros if ``None``).

    Returns:
      :class:`GradNorms`. For each carry leaf (for the LSTM: ``h`` and ``c`` separately) the
      Euclidean norm over the feature axis of each example's gradient, averaged over the batch;
      ``total`` is the norm over the whole carry (for the LSTM
      :math:`\sqrt{\|g_h\|^2 + \|g_c\|^2}`), averaged over the batch. A complex state (the
      LRU's) counts as its real and imaginary parts (:math:`|g|^2` per entry). Index ``k`` is
      the distance ``T - t``: ``k = 0`` the last state, ``k = T`` the initial carry.

    Sequences must share one length (no padding): with right padding the distance to each
    sequence's own end would differ from ``T - t``.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.elman(4, activation="identity", recurrent_init="identity")
      >>> params = cell.init(jax.random.key(0), 2)
      >>> xs = jnp.ones((3, 5, 2))
      >>> g = grad_norms_per_step(cell, params, xs, lambda ys, c: ys[:, -1].sum(-1))
      >>> g.total.round(4)  # identity recurrence: the gradient neither vanishes nor explodes
      Array([2., 2., 2., 2., 2., 2.], dtype=float32)
    """
    if xs.ndim < 2:
        raise ValueError(f"xs.shape={xs.shape}: expected (*batch, T, input_size)")
    batch_shape, T, nb = xs.shape[:-2], xs.shape[-2], xs.ndim - 2
    carry0 = cell.initial_carry(params, batch_shape) if carry is None else carry
    eps = jax.tree.map(lambda c: jnp.zeros((*batch_shape, T, *c.shape[nb:]), c.dtype), carry0)

    def total_loss(eps, carry0):
        ys, final = perturbed_unroll(cell, params, xs, carry0, eps)
        losses = loss_fn(ys, final)
        return jnp.sum(losses), jnp.mean(losses)

    (g_eps, g_0), loss = jax.grad(total_loss, argnums=(0, 1), has_aux=True)(eps, carry0)
    # Per leaf: (*batch, T+1, ...) in time order h_0..h_T, then squared norms over features.
    grads = jax.tree.map(
        lambda a, b: jnp.concatenate([jnp.expand_dims(a, nb), b], axis=nb), g_0, g_eps
    )
    sq = jax.tree.map(
        lambda g: jnp.sum(jnp.square(jnp.abs(g)), axis=tuple(range(nb + 1, g.ndim))), grads
    )
    total_sq = sum(jax.tree.leaves(sq))
    by_distance = lambda s: jnp.flip(jnp.mean(s, axis=tuple(range(nb))), 0)  # noqa: E731
    return GradNorms(
        total=by_distance(jnp.sqrt(total_sq)),
        leaves=jax.tree.map(lambda s: by_distance(jnp.sqrt(s)), sq),
        loss=loss,
    )
