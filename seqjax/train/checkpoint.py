"""Checkpoints with orbax-checkpoint's ``CheckpointManager`` in ``WORKDIR/checkpoints``.

Each checkpoint ``WORKDIR/checkpoints/<step>/`` holds two items:

* ``state``: ``{"train": TrainState(step, params, opt_state, model_state), "rng": key data}``;
* ``meta`` (JSON): the config, the task's metadata, the step, the data position (= the step),
  the validation metrics and the seqjax version, so that ``seqjax eval --workdir`` needs nothing
  else.

Kept: the ``keep`` latest checkpoints plus the best one by the task's validation metric (orbax
``LatestN`` or ``BestN`` preservation). Orbax writes each checkpoint into a temporary directory
(``<step>.orbax-checkpoint-tmp-*``) and renames it when complete, and lists only complete ones,
so a save interrupted by a crash is never loaded (tests check this); leftover temporary directories
are left in place (``cleanup_tmp_directories=False``).
"""

from __future__ import annotations

import pathlib
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

from seqjax.errors import UserError

ITEMS = ("state", "meta")


def manager(
    directory: pathlib.Path,
    *,
    keep: int = 1,
    best_metric: Optional[str] = None,
    best_mode: str = "min",
    create: bool = True,
) -> ocp.CheckpointManager:
    """A manager that keeps the ``keep`` latest checkpoints plus the best by ``best_metric``.

    With ``create=False`` the directory must exist (readers: ``seqjax eval``); only ``save``
    deletes checkpoints that the policy no longer keeps, so a reader never removes anything."""
    best_fn = (lambda m: m[best_metric]) if best_metric else None
    policies = [cm.LatestN(keep)]
    if best_fn is not None:
        policies.append(
            cm.BestN(
                get_metric_fn=best_fn,
                reverse=(best_mode == "min"),  # BestN keeps the end of the sorted list
                n=1,
                keep_checkpoints_without_metrics=False,
            )
        )
    options = ocp.CheckpointManagerOptions(
        best_fn=best_fn,
        best_mode=best_mode,
        preservation_policy=cm.AnyPreservationPolicy(policies),
        enable_async_checkpointing=False,  # a checkpoint is complete when save() returns
        create=create,
    )
    return ocp.CheckpointManager(
        pathlib.Path(directory).absolute(), options=options, item_names=ITEMS
    )


def save(
    mngr: ocp.CheckpointManager, step: int, state: Any, rng: jax.Array, meta: dict, metrics: dict
) -> None:
    """Writes checkpoint ``step`` (``metrics``: the validation metrics that rank it)."""
    mngr.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave({"train": state, "rng": rng}),
            meta=ocp.args.JsonSave(meta),
        ),
        metrics=metrics,
        force=True,
    )


def read_meta(mngr: ocp.CheckpointManager, step: int) -> dict:
    """The JSON ``meta`` item of checkpoint ``step``."""
    return mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta


def _target(x) -> jax.ShapeDtypeStruct:
    """Restore ``x``'s shape and dtype into its own sharding, or onto the default device when it
    has none (a checkpoint written on a data-parallel mesh read back on one device)."""
    x = ocp.utils.to_shape_dtype_struct(x)
    if getattr(x, "sharding", None) is None:
        one = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        x = jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=one)
    return x


def restore(mngr: ocp.CheckpointManager, step: int, state: Any, rng: jax.Array) -> tuple:
    """Restores ``(state, rng)`` of checkpoint ``step`` into the structure of ``state``/``rng``
    (concrete or ``jax.ShapeDtypeStruct`` leaves)."""
    target = jax.tree.map(_target, {"train": state, "rng": rng})
    try:
        restored = mngr.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))
        ).state
    except (ValueError, KeyError, FileNotFoundError) as e:
        where = pathlib.Path(mngr.directory) / str(step)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"{where}: cannot restore this checkpoint into the model of its own config ({first}); "
            "it is damaged or was written by another seqjax version: use a new --workdir"
        ) from None
    return restored["train"], restored["rng"]


__all__ = ["ITEMS", "manager", "read_meta", "restore", "save"]
