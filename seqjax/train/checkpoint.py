"""Checkpoints with orbax-checkpoint's ``CheckpointManager`` in ``WORKDIR/checkpoints``.

Each checkpoint ``WORKDIR/checkpoints/<step>/`` holds two items:

* ``state``: ``{"train": TrainState(step, params, opt_state, model_state), "rng": key data}``;
* ``meta`` (JSON): the config, the task's metadata, the step, the data position (= the step),
  the validation metrics and the seqjax version, so that ``seqjax eval --workdir`` needs nothing
  else.

Kept: the ``keep`` latest checkpoints plus the best one by the task's validation metric (orbax
``LatestN`` or ``BestN`` preservation). Orbax writes each checkpoint into a temporary directory
(``<step>.orbax-checkpoint-tmp-*``) and renames it when complete, and lists only complete ones,
so a save interrupted by a crash is never loaded (tests check this); the next ``seqjax train`` on
the workdir removes such leftovers with a note (:func:`remove_incomplete`).

A damaged checkpoint (a file truncated or overwritten after it was written) is skipped with a
:class:`CheckpointWarning` naming its step, and the next older one is used
(:func:`restore_newest`); the damaged one is never deleted. Training moves it aside to
``<step>.damaged`` (so that step can be saved again), readers leave it where it is.

``tests/test_crash_safety.py`` kills runs in the middle of saves; it slows orbax's commit from
outside (``tests/helpers/slow_commit.py``), the library has no test hook.
"""

from __future__ import annotations

import gc
import logging
import pathlib
import shutil
import sys
import threading
import time
import warnings
from typing import Any, Callable, Optional

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as cm

from seqjax.errors import UserError

ITEMS = ("state", "meta")


class CheckpointWarning(UserWarning):
    """A checkpoint could not be read and an older one is used instead."""


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


class _Held(logging.Filter):
    """Holds back the log records of a save (orbax reports failures of its writer threads on the
    absl logger, and asyncio unretrieved task errors): re-emitted when the save succeeds or fails
    for a reason that is not the disk's, dropped when a full disk becomes one clear line.

    A failed save leaves orbax's writer threads running for a while (they log their own failure
    after ``save`` has raised): on the way out of a failed save those started during it are joined
    (for at most ``JOIN_S`` seconds) so that what they log is held too."""

    LOGGERS = ("absl", "asyncio", "concurrent.futures")
    JOIN_S = 10.0

    def __init__(self):
        super().__init__()
        self.records: list = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False

    def __enter__(self):
        _drop_closed_loop_errors()
        self.before = set(threading.enumerate())
        for name in self.LOGGERS:
            logging.getLogger(name).addFilter(self)
        return self

    def __exit__(self, kind, *exc):
        if kind is not None:
            deadline = time.monotonic() + self.JOIN_S
            for thread in set(threading.enumerate()) - self.before:
                if thread is not threading.current_thread():
                    thread.join(max(0.0, deadline - time.monotonic()))
        gc.collect()  # failed writer tasks report when collected: into the filter
        for name in self.LOGGERS:
            logging.getLogger(name).removeFilter(self)
        return False

    def release(self) -> None:
        for record in self.records:
            logging.getLogger(record.name).handle(record)
        self.records = []


def _closed_loop_error(kind, value, tb) -> bool:
    """``RuntimeError('Event loop is closed')`` raised inside asyncio itself, outside the main
    thread: tensorstore calling back into the event loop of a save that orbax has already closed
    after it failed."""
    if kind is not RuntimeError or str(value) != "Event loop is closed" or tb is None:
        return False
    if threading.current_thread() is threading.main_thread():
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return pathlib.Path(tb.tb_frame.f_code.co_filename).parent.name == "asyncio"


def _drop_closed_loop_errors() -> None:
    """Installed by the first save. When a save fails, tensorstore's writes still in flight
    complete into the event loop that orbax has closed and report a traceback each (through
    ``sys.unraisablehook``) at random moments, before and after the save raises. They carry
    nothing (the save's own error is raised): drop exactly those, pass everything else on."""
    if getattr(sys.unraisablehook, "seqjax_drops_closed_loop", False):
        return
    previous = sys.unraisablehook

    def hook(unraisable):
        if not _closed_loop_error(
            unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback
        ):
            previous(unraisable)

    hook.seqjax_drops_closed_loop = True
    sys.unraisablehook = hook


class _LateWriteErrors(logging.Filter):
    """Drops asyncio's "exception was never retrieved" records whose exception is an ``OSError``:
    after a save failed for the disk's reason, writes of that save still in flight fail the same
    way and are collected at any later moment (down to interpreter exit), after the one line that
    already said what happened. Every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "was never retrieved" not in str(record.msg) or not record.exc_info:
            return True
        exc, seen = record.exc_info[1], set()
        while exc is not None and id(exc) not in seen:  # the error and what it was raised from
            if isinstance(exc, OSError):
                return False
            seen.add(id(exc))
            exc = exc.__cause__ or exc.__context__
        return True


def quiet_late_write_errors() -> None:
    """Called once a failed save became one clear line (a full, read-only or vanished disk)."""
    log = logging.getLogger("asyncio")
    if not any(isinstance(f, _LateWriteErrors) for f in log.filters):
        log.addFilter(_LateWriteErrors())


def save(
    mngr: ocp.CheckpointManager, step: int, state: Any, rng: jax.Array, meta: dict, metrics: dict
) -> None:
    """Writes checkpoint ``step`` (``metrics``: the validation metrics that rank it).

    When it fails, the exception carries the log records orbax wrote meanwhile as ``held_logs``
    (a :class:`_Held`): the caller re-emits them with ``release()`` or drops them."""
    with _Held() as held:
        try:
            mngr.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave({"train": state, "rng": rng}),
                    meta=ocp.args.JsonSave(meta),
                ),
                metrics=metrics,
                force=True,
            )
        except Exception as e:
            e.held_logs = held
            raise
    held.release()


def remove_incomplete(directory, *, quiet_failures: bool = False, retry_s: float = 0.0) -> list:
    """Deletes the temporary directories of saves that never completed (``<step>.orbax-checkpoint-
    tmp*``: a process killed in the middle of a save, or a full disk); returns their names. They
    are never a checkpoint: orbax only lists what it renamed into place.

    ``retry_s``: after a failed save, writes still in flight can add files while a directory is
    being deleted (its deletion then fails): try again for up to this many seconds."""
    directory = pathlib.Path(directory)
    removed: list = []
    deadline = time.monotonic() + retry_s
    while directory.is_dir():
        left = sorted(directory.glob("*.orbax-checkpoint-tmp*"))
        for path in left:
            try:
                shutil.rmtree(path)
            except OSError:
                if not quiet_failures and time.monotonic() >= deadline:
                    raise
                continue
            if path.name not in removed:
                removed.append(path.name)
        if not any(p.exists() for p in left) or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    return removed


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


def restore_newest(
    mngr: ocp.CheckpointManager,
    state: Any,
    rng: jax.Array,
    *,
    check: Optional[Callable[[dict], None]] = None,
    first: Optional[int] = None,
) -> Optional[tuple]:
    """Restores the newest readable checkpoint: ``(step, meta, state, rng, damaged_steps)``, or
    ``None`` when the directory holds no complete checkpoint.

    Tries ``first`` (default: the latest step), then every older step, newest first. A checkpoint
    whose files cannot be read is skipped with a :class:`CheckpointWarning` naming its step;
    ``check(meta)`` may raise :class:`UserError` (a checkpoint of another experiment), which stops
    the search. Raises :class:`UserError` when every checkpoint is damaged."""
    steps = sorted(mngr.all_steps(), reverse=True)
    if not steps:
        return None
    if first is not None and first in steps:
        steps = [first] + [s for s in steps if s != first]
    damaged, reasons = [], []
    for step in steps:
        try:
            meta = read_meta(mngr, step)
        except Exception as e:  # any unreadable file means a damaged checkpoint
            reason = _first_line(e)
        else:
            if check is not None:
                check(meta)
            try:
                restored_state, restored_rng = restore(mngr, step, state, rng)
                return step, meta, restored_state, restored_rng, damaged
            except Exception as e:  # likewise damaged
                reason = _first_line(e)
        damaged.append(step)
        reasons.append(reason)
        warnings.warn(
            f"{pathlib.Path(mngr.directory) / str(step)}: checkpoint of step {step} is damaged "
            f"({reason}); trying the next older one",
            CheckpointWarning,
            stacklevel=2,
        )
    raise UserError(
        f"{mngr.directory}: every checkpoint is damaged (steps {', '.join(map(str, damaged))}; "
        f"{reasons[0]}); use a new --workdir"
    )


def open_workdir(workdir, which: str = "best", *, train_hint: str = "--config FILE") -> tuple:
    """``(checkpoint directory, meta, step)`` for ``seqjax eval/sample/predict --workdir``.

    ``meta`` comes from the newest checkpoint whose metadata reads (older ones are tried when the
    newest is damaged; :func:`restore_newest` warns when the parameters are restored). ``step`` is
    the step to restore first: the best checkpoint for ``which="best"``, else the latest.
    A workdir without a readable checkpoint is a :class:`UserError` that says how to train one.
    """
    if which not in ("best", "latest"):
        raise UserError(f"--checkpoint={which!r}: choose one of best, latest")
    ckpt_dir = pathlib.Path(workdir) / "checkpoints"
    train_first = f"train first with seqjax train {train_hint} --workdir {workdir}"
    if not ckpt_dir.is_dir():
        raise UserError(
            f"--workdir={workdir}: has no checkpoints ({ckpt_dir} is missing); {train_first}"
        )
    mngr = manager(ckpt_dir, create=False)
    try:
        meta = latest = None
        for latest in sorted(mngr.all_steps(), reverse=True):
            try:
                meta = read_meta(mngr, latest)
                break
            except Exception:  # damaged: restore_newest warns when it reaches it
                continue
        if meta is None:
            raise UserError(
                f"--workdir={workdir}: {ckpt_dir} holds no complete readable checkpoint; "
                + train_first
            )
    finally:
        mngr.close()
    step = latest
    if which == "best":
        ranked = manager(
            ckpt_dir, best_metric=meta["best_metric"], best_mode=meta["best_mode"], create=False
        )
        try:
            step = ranked.best_step() or latest
        finally:
            ranked.close()
    return ckpt_dir, meta, int(step)


def move_aside(mngr: ocp.CheckpointManager, steps) -> None:
    """Renames damaged checkpoints ``<step>`` to ``<step>.damaged[-N]`` (kept, never deleted),
    so that training can write those steps again."""
    directory = pathlib.Path(mngr.directory)
    for step in steps:
        src = directory / str(step)
        dst, n = directory / f"{step}.damaged", 1
        while dst.exists():
            dst, n = directory / f"{step}.damaged-{n}", n + 1
        src.rename(dst)
    if steps:
        mngr.reload()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:200]


__all__ = [
    "open_workdir",
    "ITEMS",
    "CheckpointWarning",
    "manager",
    "move_aside",
    "read_meta",
    "remove_incomplete",
    "restore",
    "restore_newest",
    "save",
]
