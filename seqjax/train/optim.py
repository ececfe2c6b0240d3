r"""The optimizer, built from ``config.optim`` in one place as one ``optax.chain``.

.. code-block:: text

    apply_if_finite(                       # non-finite gradients: no update, counted
      chain(flag_clipping(clip),           # none | global_norm | value | adaptive
            add_decayed_weights(wd),       # coupled L2 (sgd, adam, rmsprop; adamw decouples)
            inject_hyperparams(opt)(learning_rate=schedule),
            average_params(ema_decay)))    # only with optim.ema_decay > 0

Clipping (``optim.clip`` with threshold ``optim.clip_value``):

* ``global_norm``: :math:`g \leftarrow g \cdot \min(1, c / \lVert g \rVert_2)` over all
  parameters at once (Pascanu et al. 2013, sec. 3.2; ``optax.clip_by_global_norm``).
* ``value``: each element clipped to :math:`[-c, c]` (Mikolov 2012; ``optax.clip``).
* ``adaptive``: unit-wise :math:`g_i \leftarrow g_i \cdot \min(1, c \max(\lVert w_i \rVert,
  \epsilon) / \lVert g_i \rVert)` (Brock et al. 2021, sec. 4; ``optax.adaptive_grad_clip``).

Optimizers (``optim.name``): ``sgd`` (with ``optim.momentum`` and ``optim.nesterov``; Sutskever
et al. 2013), ``adam`` (Kingma & Ba 2015), ``adamw`` (decoupled ``optim.weight_decay``, Loshchilov
& Hutter 2019), ``rmsprop`` (Tieleman & Hinton 2012, with momentum). For the others
``optim.weight_decay`` adds :math:`\lambda w` to the gradient (L2, as PyTorch's ``weight_decay``).

Schedules (``optim.schedule``), each after ``optim.warmup_steps`` steps of linear warmup from 0:

* ``constant``: :math:`\eta`.
* ``cosine``: :math:`\eta \cdot \tfrac12 (1 + \cos(\pi s / S))` with :math:`S` = ``num_steps -
  warmup_steps`` (Loshchilov & Hutter 2017, without restarts).
* ``step``: :math:`\eta \cdot f^{\lfloor (s - s_0) / n \rfloor}` for :math:`s > s_0`, with
  :math:`f` = ``optim.decay_factor``, :math:`n` = ``optim.decay_every`` and :math:`s_0` =
  ``optim.decay_start`` (Zaremba et al. 2014, sec. 4: "after 4 epochs, halve every epoch"), where
  ``s`` counts steps after warmup.

Weight averaging (``optim.ema_decay`` = :math:`\beta`, 0 or absent: off): the optimizer state
also keeps an exponential moving average of the parameters after each applied update,
:math:`\bar w_n = \beta_n \bar w_{n-1} + (1 - \beta_n) w_n` with
:math:`\beta_n = \min(\beta, (1 + n) / (10 + n))` (Polyak & Juditsky 1992's averaging in the
exponential form of TensorFlow's ``ExponentialMovingAverage(num_updates=n)``, whose ramp keeps the
early average from clinging to the initial weights). The ramp stays below :math:`\beta` until
:math:`n = (10\beta - 1)/(1 - \beta)` (8,990 steps for 0.999): in shorter runs :math:`\beta`
does not matter, and :math:`1 - \beta_n = 9/(10 + n)` weights step :math:`k` about as
:math:`(k/n)^8`, an average centred about :math:`n/10` steps back. Training is unchanged;
evaluation, checkpoint selection, ``seqjax eval``/``predict``/``sample`` use :math:`\bar w`
(:func:`averaged`).

The schedule counts applied updates (steps skipped by ``apply_if_finite`` do not advance it).
:func:`stats` reads the learning rate used, whether clipping fired and the non-finite counters
back out of the optimizer state, for the metrics.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

from seqjax import schema

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
CLIPS = ("none", "global_norm", "value", "adaptive")
SCHEDULES = ("constant", "cosine", "step")

#: The ``optim.*`` fields (:mod:`seqjax.schema`), the same for every task.
FIELDS: dict[str, schema.Field] = {
    "optim.name": schema.choice("adam", OPTIMIZERS, "sgd | adam | adamw | rmsprop"),
    "optim.learning_rate": schema.number(1e-3, "peak learning rate", low=0.0, low_open=True),
    "optim.clip": schema.choice(
        "global_norm", CLIPS, "gradient clipping: none | global_norm | value | adaptive"
    ),
    "optim.clip_value": schema.number(
        1.0,
        "threshold of the clipping (global norm, value, or unit-wise ratio)",
        low=0.0,
        low_open=True,
    ),
    "optim.momentum": schema.number(0.0, "sgd/rmsprop momentum (0: none)", low=0.0, high=1.0),
    "optim.nesterov": schema.flag(False, "Nesterov momentum (adam: NAdam)"),
    "optim.weight_decay": schema.number(0.0, "L2 penalty (adamw: decoupled)", low=0.0),
    "optim.schedule": schema.choice(
        "constant", SCHEDULES, "learning-rate schedule after warmup: constant | cosine | step"
    ),
    "optim.warmup_steps": schema.integer(0, "linear warmup from 0 before the schedule", low=0),
    "optim.ema_decay": schema.number(
        0.0,
        "> 0: evaluate an exponential moving average of the weights",
        low=0.0,
        high=1.0,
        high_open=True,
    ),
    "optim.decay_factor": schema.number(
        0.5,
        "step schedule: multiply the learning rate by this ...",
        low=0.0,
        high=1.0,
        low_open=True,
    ),
    "optim.decay_every": schema.integer(1000, "... every this many steps ...", low=1),
    "optim.decay_start": schema.integer(0, "... after this many steps", low=0),
}
# apply_if_finite applies a non-finite update after this many in a row; never, in practice.
_MAX_CONSECUTIVE_NONFINITE = 2**30


def with_defaults(optim_cfg: Mapping) -> dict:
    """``optim_cfg`` (a mapping of ``optim.*`` field names) completed with the defaults of
    :data:`FIELDS`, so a partial dict works as well as a whole config block."""
    out = {key.split(".", 1)[1]: f.default for key, f in FIELDS.items()}
    out.update({k: optim_cfg[k] for k in optim_cfg})
    return out


class AverageState(NamedTuple):
    count: jax.Array  # shape=(), int32: updates averaged so far
    average: Any  # the running average of the parameters (float32 or wider)


def average_params(decay: float) -> optax.GradientTransformation:
    """Keeps an exponential moving average of the parameters in the optimizer state (see the
    module docstring); the updates pass through unchanged. It must come last in a chain, so that
    ``params + updates`` are the new parameters.

    Example:
      >>> import jax.numpy as jnp
      >>> tx = average_params(0.5)
      >>> p = jnp.zeros(1)
      >>> state = tx.init(p)
      >>> u, state = tx.update(jnp.ones(1), state, p)  # beta_0 = min(0.5, 1/10) = 0.1
      >>> round(float(state.average[0]), 6)
      0.9
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"optim.ema_decay={decay!r}: must be in [0, 1)")

    def widen(x):
        return x.astype(jnp.promote_types(x.dtype, jnp.float32))

    def init(params):
        # A copy, never the parameters' own buffers: the training step donates the whole state.
        start = jax.tree.map(lambda p: jnp.array(p, dtype=widen(p).dtype, copy=True), params)
        return AverageState(jnp.zeros((), jnp.int32), start)

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("average_params needs the parameters: tx.update(g, state, params)")
        n = state.count.astype(jnp.float32)
        beta = jnp.minimum(jnp.float32(decay), (1.0 + n) / (10.0 + n))
        new_params = jax.tree.map(widen, optax.apply_updates(params, updates))
        # incremental_update(x, y, s) = s * x + (1 - s) * y: beta on the old average, 1 - beta on
        # the new weights (this order computes exactly beta * avg + (1 - beta) * w in float32)
        average = optax.incremental_update(state.average, new_params, beta)
        return updates, AverageState(state.count + 1, average)

    return optax.GradientTransformation(init, update)


def ema_decay(optim_cfg: Mapping) -> float:
    """``optim.ema_decay`` (0: off)."""
    return float(with_defaults(optim_cfg)["ema_decay"])


def averaged(opt_state: Any, params: Any) -> Any:
    """The parameters to evaluate: the running average kept by :func:`build` when
    ``optim.ema_decay > 0`` (cast to the dtypes of ``params``), else ``params`` themselves."""
    chain_state = opt_state.inner_state
    for s in chain_state:
        if isinstance(s, AverageState):
            return jax.tree.map(lambda a, p: a.astype(p.dtype), s.average, params)
    return params


class ClipFlagState(NamedTuple):
    clipped: jax.Array  # shape=(), bool: the last update was changed by clipping
    inner: optax.OptState  # the clipping transformation's own state


def flag_clipping(clip: optax.GradientTransformation) -> optax.GradientTransformation:
    """Wraps a clipping transformation so its state records whether the last call changed the
    gradients (the ``clip_rate`` metric); the updates themselves are ``clip``'s, unchanged."""

    def init(params):
        return ClipFlagState(jnp.zeros((), bool), clip.init(params))

    def update(updates, state, params=None):
        new, inner = clip.update(updates, state.inner, params)
        changed = [jnp.any(a != b) for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(updates))]
        clipped = jnp.any(jnp.stack(changed)) if changed else jnp.zeros((), bool)
        return new, ClipFlagState(clipped, inner)

    return optax.GradientTransformation(init, update)


def standard_promotion(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """Runs ``tx`` under JAX's standard dtype promotion, whatever the caller's setting.

    optax 0.2.8's Adam bias correction computes ``b1 ** count`` (a Python float to an int32
    power), which ``jax_numpy_dtype_promotion="strict"`` rejects; our own code runs strict in
    the tests, optax's runs as optax intends."""

    def init(params):
        with jax.numpy_dtype_promotion("standard"):
            return tx.init(params)

    def update(updates, state, params=None):
        with jax.numpy_dtype_promotion("standard"):
            return tx.update(updates, state, params)

    return optax.GradientTransformation(init, update)


def clipping(optim_cfg: Mapping) -> optax.GradientTransformation:
    """The clipping transformation named by ``optim_cfg["clip"]`` with ``clip_value``."""
    kind, c = optim_cfg["clip"], optim_cfg["clip_value"]
    if kind == "none":
        return optax.identity()
    if kind == "global_norm":
        return optax.clip_by_global_norm(c)
    if kind == "value":
        return optax.clip(c)
    if kind == "adaptive":
        return optax.adaptive_grad_clip(c)
    raise ValueError(f"optim.clip={kind!r}: choose one of {', '.join(CLIPS)}")


def schedule(optim_cfg: Mapping, num_steps: int) -> optax.Schedule:
    """The learning-rate schedule (see the module docstring) over ``num_steps`` steps.

    Example:
      >>> cfg = dict(learning_rate=1.0, schedule="step", warmup_steps=0, decay_factor=0.5,
      ...            decay_every=10, decay_start=0)
      >>> [float(schedule(cfg, 100)(s)) for s in (0, 9, 10, 25)]
      [1.0, 1.0, 0.5, 0.25]
    """
    optim_cfg = with_defaults(optim_cfg)
    lr, kind = optim_cfg["learning_rate"], optim_cfg["schedule"]
    warmup = optim_cfg["warmup_steps"]
    if kind == "constant":
        main = optax.constant_schedule(lr)
    elif kind == "cosine":
        main = optax.cosine_decay_schedule(lr, max(num_steps - warmup, 1))
    elif kind == "step":
        main = optax.exponential_decay(
            lr,
            transition_steps=optim_cfg["decay_every"],
            decay_rate=optim_cfg["decay_factor"],
            transition_begin=optim_cfg["decay_start"],
            staircase=True,
        )
    else:
        raise ValueError(f"optim.schedule={kind!r}: choose one of {', '.join(SCHEDULES)}")
    if warmup <= 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def _optimizer(optim_cfg: Mapping, sched: optax.Schedule) -> optax.GradientTransformation:
    name = optim_cfg["name"]
    momentum = optim_cfg["momentum"] or None
    nesterov = bool(optim_cfg["nesterov"])

    def inject(factory, **options):
        # Only the learning rate becomes a hyper-parameter in the state (the metric); the other
        # arguments stay static Python values (as arrays, b1 ** count would mix float32 and int32).
        static = [p for p in inspect.signature(factory).parameters if p != "learning_rate"]
        return optax.inject_hyperparams(factory, static_args=static)(learning_rate=sched, **options)

    if name == "sgd":
        return inject(optax.sgd, momentum=momentum, nesterov=nesterov and momentum is not None)
    if name == "adam":
        return inject(optax.adam, nesterov=nesterov)
    if name == "adamw":
        return inject(optax.adamw, weight_decay=optim_cfg["weight_decay"], nesterov=nesterov)
    if name == "rmsprop":
        return inject(optax.rmsprop, momentum=momentum, nesterov=nesterov and momentum is not None)
    raise ValueError(f"optim.name={name!r}: choose one of {', '.join(OPTIMIZERS)}")


def build(optim_cfg: Mapping, num_steps: int) -> optax.GradientTransformation:
    """The whole optimizer for a run of ``num_steps`` steps (see the module docstring).

    Example:
      >>> import jax.numpy as jnp
      >>> cfg = dict(name="sgd", learning_rate=0.1, momentum=0.0, nesterov=False,
      ...            weight_decay=0.0, clip="global_norm", clip_value=1.0, schedule="constant")
      >>> tx = build(cfg, num_steps=10)   # g = (3, 4) has norm 5: clipped to norm 1
      >>> params = {"w": jnp.zeros(2)}
      >>> updates, state = tx.update({"w": jnp.array([3.0, 4.0])}, tx.init(params), params)
      >>> [round(u, 6) for u in updates["w"].tolist()], bool(stats(state)["clipped"])
      ([-0.06, -0.08], True)
    """
    optim_cfg = with_defaults(optim_cfg)
    parts = [flag_clipping(clipping(optim_cfg))]
    wd = optim_cfg["weight_decay"]
    if wd and optim_cfg["name"] != "adamw":
        parts.append(optax.add_decayed_weights(wd))
    parts.append(standard_promotion(_optimizer(optim_cfg, schedule(optim_cfg, num_steps))))
    if ema_decay(optim_cfg) > 0:
        parts.append(average_params(ema_decay(optim_cfg)))
    return optax.apply_if_finite(optax.chain(*parts), _MAX_CONSECUTIVE_NONFINITE)


def stats(opt_state: Any) -> dict[str, jax.Array]:
    """Reads back from :func:`build`'s state: ``learning_rate`` (used by the last applied update),
    ``clipped`` (clipping changed the last applied update), ``nonfinite`` (the last gradients were
    not finite, so no update) and ``skipped`` (how many updates were dropped so far)."""
    chain_state = opt_state.inner_state
    # standard_promotion keeps the inner state as it is; the average, if any, comes after it
    inject_state = next(s for s in chain_state if hasattr(s, "hyperparams"))
    return {
        "learning_rate": inject_state.hyperparams["learning_rate"],
        "clipped": chain_state[0].clipped,
        "nonfinite": jnp.logical_not(opt_state.last_finite),
        "skipped": opt_state.total_notfinite,
    }


__all__ = [
    "CLIPS",
    "OPTIMIZERS",
    "SCHEDULES",
    "AverageState",
    "average_params",
    "averaged",
    "build",
    "clipping",
    "ema_decay",
    "flag_clipping",
    "schedule",
    "with_defaults",
]
