"""The training state and the pure training step.

``train_step(state, batch, key) -> (state, metrics)`` is pure: the loop jits it once, donating
the old state's buffers, and calls it with the training key of the run; the step's randomness
(dropout, ...) is ``jax.random.fold_in(key, state.step)``, so it depends on the step alone and a
resumed run draws exactly the numbers an uninterrupted one does.

Metrics (scalars): the task's own metrics, ``loss``, ``grad_norm`` (global L2 norm of the
gradients before clipping), ``clipped`` (clipping changed them: its mean over steps is the clip
rate), ``update_norm`` (global norm of the applied update), ``learning_rate``, ``nonfinite`` (the
loss or gradients were not finite, so no update was applied) and ``skipped`` (such steps so far).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from seqjax.tasks.base import Task
from seqjax.train import optim


class TrainState(NamedTuple):
    step: jax.Array  # shape=(), int32: updates taken so far = position in the data stream
    params: Any  # the model's parameters
    opt_state: Any  # the optimizer's state (optim.build)
    model_state: Any  # state carried between batches (task.initial_state), () if none


def init_state(task: Task, tx: optax.GradientTransformation, key: jax.Array) -> TrainState:
    """The state before the first step: fresh parameters from ``key``."""
    params = task.init(key)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        model_state=task.initial_state(params),
    )


def eval_params(state: TrainState) -> Any:
    """The parameters that evaluation, checkpoint selection and inference use: the optimizer's
    running average with ``optim.ema_decay > 0`` (:func:`seqjax.train.optim.averaged`), else
    ``state.params``."""
    return optim.averaged(state.opt_state, state.params)


def make_train_step(
    task: Task, tx: optax.GradientTransformation, mesh: Optional[Mesh] = None
) -> Callable:
    """``train_step(state, batch, key) -> (state, metrics)``, jitted, donating ``state``.

    With a data-parallel ``mesh`` (:mod:`seqjax.train.parallel`) the step is the same function; the
    new state and the metrics are pinned replicated on the mesh and the batch comes sharded."""

    def train_step(state: TrainState, batch: dict, key: jax.Array):
        step_key = jax.random.fold_in(key, state.step)

        def loss_fn(params):
            return task.loss(params, state.model_state, batch, step_key, True)

        (loss, (model_state, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params
        )
        # A non-finite loss poisons the gradients too, so `apply_if_finite` sees one signal.
        loss_ok = jnp.isfinite(loss)
        grads = jax.tree.map(lambda g: jnp.where(loss_ok, g, jnp.full_like(g, jnp.nan)), grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        info = optim.stats(opt_state)
        # A skipped step keeps the model state it started from (the parameters stay unchanged by
        # apply_if_finite, which gives zero updates).
        model_state = jax.tree.map(
            lambda new, old: jnp.where(info["nonfinite"], old, new), model_state, state.model_state
        )
        metrics = {
            **metrics,
            "loss": loss,
            "grad_norm": optax.tree.norm(grads),
            "update_norm": optax.tree.norm(updates),
            **info,
        }
        new_state = TrainState(state.step + 1, params, opt_state, model_state)
        return new_state, metrics

    if mesh is None:
        return jax.jit(train_step, donate_argnums=0)
    everywhere = NamedSharding(mesh, PartitionSpec())
    return jax.jit(train_step, donate_argnums=0, out_shardings=(everywhere, everywhere))


__all__ = ["TrainState", "eval_params", "init_state", "make_train_step"]
