"""The training loop: ``train_and_evaluate(config, workdir)``, and ``evaluate_checkpoint``.

The loop owns every side effect of a run and talks to the task only through
:class:`seqjax.tasks.base.Task`:

1. validate the config and build the task and optimizer (mistakes end here, before any file is
   written);
2. resume from the latest complete checkpoint in ``WORKDIR/checkpoints`` if there is one (after
   checking it belongs to the same experiment; a damaged one is skipped with a warning, moved to
   ``<step>.damaged`` and the next older one used), else start from fresh parameters;
3. for ``step`` in ``[start, num_steps)``: ``state, metrics = train_step(state, task.batch(step),
   key)``. Batches are a function of ``(seed, step)`` and randomness of ``(key, step)``, so a
   resumed run continues bitwise as if it had never stopped;
4. every ``train.log_every`` steps: fetch the step metrics (one host sync per window, not per
   step), stop on a non-finite step unless ``train.skip_nonfinite``, write means to
   ``metrics.jsonl``/TensorBoard and the progress display;
5. every ``train.eval_every`` and ``train.checkpoint_every`` steps and at the end: evaluate on the
   task's validation split; at checkpoint steps save a checkpoint ranked by that metric. With
   ``optim.ema_decay > 0`` the evaluated parameters are the running average
   (:func:`seqjax.train.optim.averaged`), and the trained ones are evaluated beside them as split
   ``<split>_raw``;
6. early stopping (optional, ``train.early_stop_patience = N > 0``; 0 or absent: off): when the
   task's ``best_metric`` has not improved on its best for ``N`` evaluations in a row, save a
   checkpoint at that step and stop. The best value and the count are saved in every checkpoint's
   metadata (``early_stop``), so a resumed run counts on where it left off, and a run that
   stopped early stays stopped (``nothing to train``) unless the patience is raised. Likewise
   ``train.stop_when`` (:mod:`seqjax.train.conditions`, e.g. ``mse<0.01``): the first evaluation
   at which it holds ends the run, and that step (the time to solve) is saved and returned.
7. every ``train.diagnostics_every`` steps (0 or absent: never) and at the end, if the task has
   ``diagnose``: write gradient-flow diagnostics as split ``"diagnostics"`` (``grad_h/k=...``,
   spectral radius, gate saturation; :mod:`seqjax.tasks.diagnostics`).

Step ``n`` means "after ``n`` updates"; update ``n`` used ``task.batch(n - 1)``.
"""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import signal
import time
from typing import Any, Optional

import jax
import numpy as np

from seqjax import tasks
from seqjax.errors import Interrupted, UserError
from seqjax.tasks import diagnostics
from seqjax.tasks.base import Task
from seqjax.train import baseline, checkpoint, conditions, files, optim, parallel, preempt
from seqjax.train import config as config_lib
from seqjax.train import step as step_lib
from seqjax.train.metrics import MetricWriter, Progress, format_metrics, headline

# Step metrics averaged over a log window; the others are reported as described in _summarize.
_LAST = ("learning_rate", "skipped")


def _summarize(window: list, units: str, units_per_batch: int, seconds: float, steps: int) -> dict:
    """Means over the window's applied steps; ``clip_rate`` = fraction of those clipped,
    ``nonfinite`` = count of non-finite steps, ``learning_rate``/``skipped`` = last values."""
    applied = [m for m in window if not m["nonfinite"]] or window
    out = {}
    for k in window[-1]:
        if k in _LAST:
            out[k] = float(window[-1][k])
        elif k == "clipped":
            out["clip_rate"] = float(np.mean([m[k] for m in applied]))
        elif k == "nonfinite":
            out[k] = float(sum(bool(m[k]) for m in window))
        else:
            out[k] = float(np.mean([m[k] for m in applied]))
    if steps > 0 and seconds > 0 and units_per_batch:
        out[f"{units}_per_sec"] = steps * units_per_batch / seconds
        out["steps_per_sec"] = steps / seconds
    return out


def _abstract_state(task: Task, tx) -> tuple:
    state = jax.eval_shape(lambda k: step_lib.init_state(task, tx, k), jax.random.key(0))
    rng = jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0)))
    return state, rng


def _num_params(params) -> int:
    return sum(int(np.prod(np.shape(x))) for x in jax.tree.leaves(params))


def train_and_evaluate(config, workdir, *, task: Optional[Task] = None) -> dict:
    """Trains ``config`` in ``workdir`` (resuming from its checkpoints) and evaluates it.

    Args:
      config: an experiment config (see :mod:`seqjax.train.config`).
      workdir: the run's directory: ``checkpoints/``, ``metrics.jsonl``, ``tb/``.
      task: the task to train; built from ``config`` when ``None`` (tests pass a wrapped one).

    Returns:
      ``{"step": final step, "stopped_early": bool, "validation": metrics, "best_step": step of
      the best checkpoint, "params": the final parameters}``.
    """
    config = config_lib.validate(config)  # complete and checked, before anything loads
    workdir = pathlib.Path(workdir)
    check_workdir(workdir)
    parallel.initialize(config)  # joins a multi-process run; before any device is touched
    created = not workdir.exists()
    workdir.mkdir(parents=True, exist_ok=True)
    # One writer per workdir (process 0 of a multi-process run holds it for all of them).
    holder = files.exclusive(workdir) if parallel.is_primary() else contextlib.nullcontext()
    try:
        with holder:
            return _locked(config, workdir, task)
    except BaseException:
        if created and {p.name for p in workdir.iterdir()} <= {files.LOCK, files.OWNER}:
            shutil.rmtree(workdir, ignore_errors=True)  # refused before writing anything
        raise


def _locked(config, workdir: pathlib.Path, task: Optional[Task]) -> dict:
    """``train_and_evaluate`` once the workdir is this process's."""
    task = tasks.build(config) if task is None else task
    mesh = parallel.make_mesh(config)  # None: one device, as without the mesh
    tc = config.train
    tx = optim.build(config.optim, tc.num_steps)
    ckpt_dir = workdir / "checkpoints"
    for name in checkpoint.remove_incomplete(ckpt_dir):
        print(f"seqjax train: removed {ckpt_dir / name}, a save that never completed", flush=True)
    mngr = checkpoint.manager(
        ckpt_dir, keep=tc.keep, best_metric=task.best_metric, best_mode=task.best_mode
    )
    # Several processes agree on the step to save through JAX's preemption sync point (orbax);
    # one process handles the signals itself.
    signals = preempt.SIGNALS if jax.process_count() == 1 else (signal.SIGINT,)
    try:
        with preempt.stop_requests(signals) as stop:
            return _train(config, task, tx, workdir, mngr, mesh, stop)
    finally:
        mngr.close()


def check_workdir(workdir: pathlib.Path) -> None:
    """A :class:`UserError` for a workdir that cannot be one: a file, on a filesystem that is not
    there (its top-level folder is missing: an unmounted ``/scratch``), or not writable."""
    if workdir.exists() and not workdir.is_dir():
        raise UserError(f"--workdir={workdir}: is a file; give a directory")
    existing = workdir.absolute()
    while not existing.exists():
        existing = existing.parent
    if workdir.is_absolute() and existing == pathlib.Path(existing.anchor) and workdir != existing:
        top = pathlib.Path(existing.anchor) / workdir.parts[1]
        raise UserError(
            f"--workdir={workdir}: {top} does not exist (a filesystem that is not mounted?); "
            "mount it, create it, or give another --workdir"
        )
    problem = files.storage_problem(existing, needed=1)  # refuse only the hopeless: full, RO
    if problem:
        raise UserError(f"--workdir={workdir}: {problem}; give another --workdir")


def _train(config, task: Task, tx, workdir: pathlib.Path, mngr, mesh, stop) -> dict:
    """Restores or initialises the state, then trains, evaluates and checkpoints."""
    tc = config.train
    init_key, train_key = jax.random.split(jax.random.key(config.seed))
    state = step_lib.init_state(task, tx, init_key)
    rng = jax.random.key_data(train_key)
    # Replicated on the mesh before a restore, so that orbax restores into the same layout.
    state, rng = parallel.replicate(mesh, (state, rng))
    early: dict = {}
    met: dict = {}  # train.stop_when of the saved run: {"condition", "step"}

    def same_experiment(saved: dict) -> None:
        diffs = config_lib.experiment_diff(saved["config"], config)
        if diffs:
            raise UserError(
                f"--workdir={workdir}: its checkpoints belong to a different experiment "
                f"({'; '.join(diffs)}); use a new --workdir, or the same config to resume "
                "(only run-control fields such as train.num_steps may change)"
            )

    latest = None
    found = checkpoint.restore_newest(mngr, state, rng, check=same_experiment)
    if found is not None:
        latest, saved, state, rng, damaged = found
        early = saved.get("early_stop") or {}
        met = saved.get("stop_when") or {}
        checkpoint.move_aside(mngr, damaged)  # kept as <step>.damaged; those steps are redone

    split = task.eval_splits[0]
    meta = {
        "config": config_lib.to_dict(config),
        "task": task.metadata,
        "best_metric": task.best_metric,
        "best_mode": task.best_mode,
    }
    start = int(state.step)
    writer = MetricWriter(workdir) if parallel.is_primary() else parallel.NullWriter()
    progress = Progress(tc.num_steps, start)
    patience = tc.early_stop_patience
    try:
        progress.line(
            f"seqjax train: task {config.task} ({task.metadata.get('problem', '')}), "
            f"{_num_params(state.params):,} parameters, workdir {workdir}"
            + (f", resuming at step {start}" if latest is not None else "")
        )
        if parallel.is_primary():  # train.baseline: TF-IDF + logistic regression, same split
            baseline.before_training(config, workdir, progress.line)
        stopped = patience > 0 and early.get("evals_since_best", 0) >= patience
        solved = met.get("step") if tc.stop_when and met.get("condition") == tc.stop_when else None
        if solved is not None:
            progress.line(
                f"nothing to train: validation {tc.stop_when} held at step {solved} "
                "(train.stop_when); change train.stop_when to train on"
            )
            validation, stopped = task.evaluate(step_lib.eval_params(state), split), True
        elif stopped:
            progress.line(
                f"nothing to train: the run stopped early at step {start} (validation "
                f"{task.best_metric} did not improve for {patience} evaluations); raise "
                "train.early_stop_patience to continue"
            )
            validation = task.evaluate(step_lib.eval_params(state), split)
        elif start >= tc.num_steps:
            progress.line(
                f"nothing to train: the checkpoint at step {start} already reaches "
                f"train.num_steps={tc.num_steps}; raise train.num_steps to continue"
            )
            validation = task.evaluate(step_lib.eval_params(state), split)
        else:
            state, validation, stop_step, solved = _run(
                config,
                task,
                tx,
                state,
                rng,
                mngr,
                writer,
                progress,
                meta,
                latest,
                early,
                mesh,
                stop,
            )
            stopped = stop_step is not None
            start = stop_step if stopped else start
        return {
            "step": start if stopped else max(start, tc.num_steps),
            "stopped_early": stopped,
            "validation": validation,
            "best_step": mngr.best_step(),
            "params": state.params,
            "solved_step": solved,  # the first step train.stop_when held (None: never, or off)
            "units_to_solve": None if solved is None else solved * task.units_per_batch,
            "units": task.units,
        }
    finally:
        progress.close()
        writer.close()


class _EarlyStop:
    """Counts evaluations since the best value of the task's ``best_metric``."""

    def __init__(self, patience: int, mode: str, saved: dict):
        self.patience, self.mode = patience, mode
        self.best = saved.get("best")
        self.since = int(saved.get("evals_since_best", 0))

    def update(self, value: float) -> bool:
        """Records one evaluation; true when training should stop."""
        better = self.best is None or (
            value > self.best if self.mode == "max" else value < self.best
        )
        if better:
            self.best, self.since = float(value), 0
        else:
            self.since += 1
        return self.patience > 0 and self.since >= self.patience

    def state(self) -> dict:
        return {"best": self.best, "evals_since_best": self.since, "patience": self.patience}


def _run(
    config, task, tx, state, rng, mngr, writer, progress, meta, last_saved, early, mesh, stop
) -> tuple:
    """Trains from ``state.step``; returns (final state, last validation metrics, step it stopped
    early at or ``None``, the step ``train.stop_when`` first held or ``None``)."""
    tc = config.train
    stopper = _EarlyStop(tc.early_stop_patience, task.best_mode, early)
    stop_step = solved = None
    goal = conditions.parse(tc.stop_when)
    train_step = step_lib.make_train_step(task, tx, mesh)
    key = jax.random.wrap_key_data(rng)
    split = task.eval_splits[0]
    pending: list = []  # (step, device metrics) not yet fetched
    window: list = []  # host metrics of the current log window
    start = int(state.step)
    validation: dict = {}
    clock, timed = None, 0  # throughput: wall time and steps since `clock` (compile excluded)
    diag_every = tc.diagnostics_every if task.diagnose is not None else 0
    averaging = optim.ema_decay(config.optim) > 0

    multi = jax.process_count() > 1

    def save(done, state, key, validation, last_saved):
        """Writes checkpoint ``done``; a full, read-only or vanished disk is one clear line (and
        the partial save is removed), anything else a bug."""
        meta_now = {
            **meta,
            "step": done,
            "data_position": done,
            "metrics": validation,
            "early_stop": stopper.state(),
            "stop_when": {"condition": tc.stop_when, "step": solved},
        }
        try:
            checkpoint.save(mngr, done, state, jax.random.key_data(key), meta_now, validation)
        except Exception as e:
            latest = mngr.directory / str(last_saved) if last_saved is not None else None
            needed = max(1 << 20, files.tree_size(latest) if latest else 0)
            problem = files.storage_problem(mngr.directory, needed)
            if problem is None:  # not the disk: a bug, with everything orbax logged
                if hasattr(e, "held_logs"):
                    e.held_logs.release()
                raise
            checkpoint.remove_incomplete(mngr.directory, quiet_failures=True, retry_s=5.0)
            checkpoint.quiet_late_write_errors()
            kept = f"step {last_saved}" if last_saved is not None else "none was saved yet"
            raise UserError(
                f"--workdir={mngr.directory.parent}: {problem} while saving the checkpoint of "
                f"step {done}; the last good checkpoint ({kept}) is kept and the partial one "
                "removed; free space (or fix the directory) and run the same command to resume"
            ) from None

    def fetch():
        nonlocal pending
        host = jax.device_get([m for _, m in pending])
        for (step, _), m in zip(pending, host):
            window.append(m)
            if m["nonfinite"] and not tc.skip_nonfinite:
                writer.write(step, "train", _summarize(window, task.units, 0, 0, 0))
                where = (
                    f"step {last_saved} in {mngr.directory}"
                    if last_saved is not None
                    else "none was saved yet"
                )
                raise UserError(
                    f"step {step}: the loss or gradients are not finite; training stopped and "
                    f"the last good checkpoint ({where}) is kept. Lower optim.learning_rate, set "
                    "optim.clip, or set train.skip_nonfinite=True to skip such steps"
                )
        pending = []

    for s in range(start, tc.num_steps):
        state, metrics = train_step(state, parallel.shard_batch(mesh, task.batch(s)), key)
        done = s + 1
        pending.append((done, metrics))
        progress.advance()
        if clock is None:  # the first step compiled: time from its end
            jax.block_until_ready(metrics)
            clock, timed = time.perf_counter(), 0
        else:
            timed += 1
        last = done == tc.num_steps
        is_log = done % tc.log_every == 0 or last
        is_ckpt = done % tc.checkpoint_every == 0 or last
        is_eval = done % tc.eval_every == 0 or is_ckpt
        is_diag = diag_every > 0 and (done % diag_every == 0 or last)
        preempted = stop.signum is not None or (multi and mngr.reached_preemption(done))
        if not (is_log or is_eval or is_diag or preempted):
            continue
        fetch()  # never evaluate or save past a non-finite step
        if is_log or preempted:  # a preempted run logs its last (partial) window too
            seconds = time.perf_counter() - clock
            summary = _summarize(window, task.units, task.units_per_batch, seconds, timed)
            writer.write(done, "train", summary)
            progress.train(done, summary, task.units)
            window.clear()
            clock, timed = time.perf_counter(), 0
        if is_eval:
            validation = task.evaluate(step_lib.eval_params(state), split)
            writer.write(done, split, validation)
            shown = headline(validation)
            progress.line(f"step {done} {split}: {format_metrics(validation, shown)}")
            if averaging:  # the weights trained, beside their average (split "<split>_raw")
                raw = task.evaluate(state.params, split)
                writer.write(done, f"{split}_raw", raw)
                progress.line(f"step {done} {split}_raw: {format_metrics(raw, shown)}")
            if stopper.update(float(validation[task.best_metric])):
                stop_step, is_ckpt = done, True
                progress.line(
                    f"step {done}: stopping early, validation {task.best_metric} has not "
                    f"improved on {stopper.best:.4g} for {stopper.patience} evaluations"
                )
            if goal is not None and goal.missing(validation):
                raise UserError(
                    f"train.stop_when={tc.stop_when!r}: the validation metrics are "
                    f"{', '.join(validation)}; name one of them"
                )
            if goal is not None and goal.holds(validation):
                solved = stop_step = done
                is_ckpt = True
                progress.line(
                    f"step {done}: validation {tc.stop_when} holds, stopping (time to solve: "
                    f"{done} steps, {done * task.units_per_batch} {task.units})"
                )
        if is_diag:
            writer.write(done, "diagnostics", diagnostics.at_distances(task.diagnose(state.params)))
        if preempted and not (is_eval or is_ckpt):  # the checkpoint is ranked like any other
            validation = task.evaluate(step_lib.eval_params(state), split)
            writer.write(done, split, validation)
        if is_ckpt or preempted:
            save(done, state, key, validation, last_saved)
            last_saved = done
        if preempted:
            raise Interrupted(
                f"stopped by {stop.name or 'a preemption notice'} at step {done}: its checkpoint "
                f"is saved in {mngr.directory}; run the same command to resume",
                stop.signum or signal.SIGTERM,
            )
        if stop_step is not None:
            break
        clock, timed = time.perf_counter(), 0  # evaluation and saving are not training time
    return state, validation, stop_step, solved


def restore(ckpt_dir, meta: dict, first, task: Task) -> tuple[int, step_lib.TrainState]:
    """``(step, state)`` of the newest complete checkpoint from ``first`` down (what
    :func:`seqjax.train.checkpoint.open_workdir` returned), restored into the structure of
    ``task`` and of the optimizer that ``meta["config"]`` describes. Inference reads its weights
    with :func:`seqjax.train.step.eval_params`."""
    config = config_lib.validate(meta["config"])
    tx = optim.build(config.optim, config.train.num_steps)
    mngr = checkpoint.manager(
        ckpt_dir, best_metric=meta["best_metric"], best_mode=meta["best_mode"], create=False
    )
    try:
        step, _, state, _, _ = checkpoint.restore_newest(
            mngr, *_abstract_state(task, tx), first=first
        )
    finally:
        mngr.close()
    return int(step), state


def evaluate_checkpoint(
    workdir, split: Optional[str] = None, which: str = "best"
) -> dict[str, Any]:
    """Evaluates the ``"best"`` (or ``"latest"``) checkpoint of ``workdir`` on ``split`` (the
    task's validation split by default), from nothing but the workdir."""
    if split is not None and split not in ("validation", "test", "train"):  # before data loads
        raise UserError(f"--split={split!r}: choose one of validation, test, train")
    ckpt_dir, meta, first = checkpoint.open_workdir(workdir, which)
    task = tasks.build(config_lib.validate(meta["config"]))
    split = split or task.eval_splits[0]
    if split not in task.eval_splits:
        raise UserError(f"--split={split!r}: choose one of {', '.join(task.eval_splits)}")
    step, state = restore(ckpt_dir, meta, first, task)
    return {"step": step, "split": split, **task.evaluate(step_lib.eval_params(state), split)}


__all__ = ["evaluate_checkpoint", "restore", "train_and_evaluate"]
