"""``seqjax sweep``: a grid of runs of one config: the grid, the runs, their records.

A sweep config is an experiment config with a ``sweep`` field::

    c.sweep.grid = (("model.cell", ("elman", "lstm", "gru")), ("data.seq_len", (50, 100)),
                    ("seed", (0, 1, 2)))          # (dotted key, values) pairs: the product
    c.sweep.variants = (("irnn", (("model.cell", "elman"), ("model.activation", "relu"),
                                  ("model.recurrent_init", "identity"))),)  # named, optional
    c.sweep.x = "data.seq_len"                    # the x axis of the summary plot
    c.sweep.group = "model.cell"                  # one line per value (the variant if variants)

(``ml_collections`` field names cannot hold dots, hence pairs; a plain ``dict`` works too.) Every
combination of a variant (if any) and one value per grid key is a run in ``DIR/runs/NAME``,
``NAME`` made of its overrides (``irnn-seq_len=50-seed=0``), trained by
:func:`seqjax.train.loop.train_and_evaluate` with the ``sweep`` field removed. :func:`prepare`
checks every run's whole config before anything is written and saves it as
``DIR/runs/NAME/config.json``; :func:`claim` trains one run under its lock, so any number of
processes (``seqjax sweep --jobs N``, :mod:`seqjax.train.sweep_pool`, or shards ``--shard K/N``
of a cluster job array sharing the directory) complete a sweep with no run trained twice. Each
run:

* is skipped when ``DIR/runs/NAME/done.json`` exists (written atomically when it ends), so a
  restarted sweep trains only what is left; an interrupted run resumes from its checkpoints;
* stops early when its ``train.stop_when`` holds; the step (the time to solve) is recorded;
* fails without stopping the sweep when building or training it raises :class:`UserError` (a
  value only the task rejects, a non-finite loss): ``done.json`` records ``status="failed"`` and
  the reason and the last step logged (``--retry_failed`` runs it again). Values that config
  validation rejects stop the sweep before any run starts, naming the run and the key;
* saves ``grad_norms.json``: :math:`\\|\\partial L/\\partial h_t\\|` against the distance
  ``k = T - t`` on a validation batch at initialisation and with the final parameters, with the
  top layer's spectrum (:mod:`seqjax.tasks.diagnostics`).

``DIR/results.csv`` and ``DIR/results.md`` (one row per run: overrides, status, final validation
metrics, the largest training gradient norm and the clip rate, wall time of the session that
finished the run, the fitted gradient decay rate per step beside the spectral bound) and the
plots (``final_vs_x.png``, ``loss_curves.png``, ``grad_norms.png``) are rewritten after every
run; ``seqjax report --workdir DIR`` redraws them.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import pathlib
import time
import traceback
from typing import Any, Callable, Optional

from seqjax.errors import Interrupted, UserError
from seqjax.train import config as config_lib
from seqjax.train import files, preempt, sweep_plots, sweep_results
from seqjax.train.sweep_results import CONFIG, DONE, GRAD_NORMS, SPEC

# ----------------------------------------------------------------------------- the grid


def _pairs(value, what: str) -> list[tuple[str, Any]]:
    if value is None:
        return []
    if hasattr(value, "items"):
        return [(str(k), v) for k, v in value.items()]
    try:
        pairs = [(str(k), v) for k, v in value]
    except (TypeError, ValueError):
        raise UserError(
            f"{what}={value!r}: give (key, value) pairs, e.g. (('model.cell', ('elman', 'gru')),)"
        ) from None
    return pairs


def _short(key: str) -> str:
    return key.rpartition(".")[2]


def _show(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def expand(config) -> list[dict]:
    """The runs of a sweep config: ``[{"name", "variant", "overrides": {key: value}}, ...]``.

    Example:
      >>> import ml_collections
      >>> c = ml_collections.ConfigDict({"seed": 0, "model": {"cell": "lstm"}})
      >>> c.sweep = {"grid": (("model.cell", ("elman", "gru")), ("seed", (0, 1)))}
      >>> [r["name"] for r in expand(c)]
      ['cell=elman-seed=0', 'cell=elman-seed=1', 'cell=gru-seed=0', 'cell=gru-seed=1']
    """
    sweep = config.get("sweep")
    if sweep is None:
        raise UserError("config has no sweep field: give sweep.grid (see seqjax/train/sweep.py)")
    grid = _pairs(sweep.get("grid"), "sweep.grid")
    variants = [
        (name, dict(_pairs(ov, f"sweep.variants[{name}]")))
        for name, ov in _pairs(sweep.get("variants"), "sweep.variants")
    ]
    for key, values in grid:
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") or not len(values):
            raise UserError(f"sweep.grid[{key}]={values!r}: give a non-empty list of values")
    keys = [k for k, _ in grid] + [k for _, ov in variants for k in ov]
    for key in keys:
        try:
            config_lib.lookup(config, key)
        except KeyError:
            raise UserError(f"sweep key {key!r}: the config has no such field") from None
    shorts = [_short(k) for k, _ in grid]
    label = (lambda k: _short(k)) if len(set(shorts)) == len(shorts) else (lambda k: k)
    runs = []
    for name, ov in variants or [(None, {})]:
        for values in itertools.product(*[list(v) for _, v in grid]):
            overrides = {**ov, **{k: v for (k, _), v in zip(grid, values)}}
            parts = ([name] if name else []) + [
                f"{label(k)}={_show(v)}" for (k, _), v in zip(grid, values)
            ]
            runs.append({"name": "-".join(parts) or "run", "variant": name, "overrides": overrides})
    names = [r["name"] for r in runs]
    if len(set(names)) != len(names):
        raise UserError("sweep.grid/variants: two runs share a name; give distinct values")
    return runs


def run_config(config, overrides: dict):
    """A copy of ``config`` without ``sweep`` and with ``overrides`` (dotted keys) applied."""
    c = copy.deepcopy(config)
    with c.unlocked() if hasattr(c, "unlocked") else contextlib.nullcontext():
        if "sweep" in c:
            del c["sweep"]
        for key, value in overrides.items():
            parent, _, leaf = key.rpartition(".")
            node = config_lib.lookup(c, parent) if parent else c
            node[leaf] = value
    return c


# ----------------------------------------------------------------------------- running


def _grad_norms(task, params) -> dict:
    from seqjax.tasks import diagnostics

    diag = task.diagnose(params)
    g = [float(x) for x in diag.pop("grad_h")]
    scalars = {k: float(v) for k, v in diag.items()}
    return {"grad_h": g, "decay_rate": diagnostics.decay_rate(g), **scalars}


def train_one(config, rundir: pathlib.Path, *, train_fn: Callable) -> dict:
    """Trains one run (resuming), saves its gradient norms; returns its ``done.json`` record."""
    import jax

    from seqjax import tasks

    rundir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    norms_path = rundir / GRAD_NORMS
    norms = json.loads(norms_path.read_text()) if norms_path.is_file() else {}
    try:
        config_lib.validate(config)
        task = tasks.build(config)
        if task.diagnose is not None and "init" not in norms:
            init_key, _ = jax.random.split(jax.random.key(config.seed))  # as the loop does
            norms["init"] = _grad_norms(task, task.init(init_key))
            files.write_atomic(norms_path, json.dumps(sweep_results.json_safe(norms)))
        result = train_fn(config, rundir, task=task)
    except UserError as e:
        steps = [r["step"] for r in files.read_metrics(rundir, "train")]
        return {
            "status": "failed",
            "reason": str(e),
            "step": max(steps) if steps else 0,  # the last step it logged
            "wall_s": time.perf_counter() - start,
        }
    if task.diagnose is not None:
        norms["final"] = _grad_norms(task, result["params"])
        files.write_atomic(norms_path, json.dumps(sweep_results.json_safe(norms)))
    held_out = {}
    if config.task == "classify":  # the best checkpoint on validation and test, the baseline
        from seqjax.train import baseline, loop

        held_out = baseline.held_out(rundir, loop.evaluate_checkpoint)
    return {
        **held_out,
        "status": "done",
        "step": int(result["step"]),
        "best_step": result.get("best_step"),
        "validation": {k: float(v) for k, v in result["validation"].items()},
        "solved_step": result.get("solved_step"),
        "units_to_solve": result.get("units_to_solve"),
        "units": result.get("units"),
        "wall_s": time.perf_counter() - start,
    }


def parse_shard(text: str) -> Optional[tuple[int, int]]:
    """``"K/N"`` (shard K of N, counted from 0) as ``(K, N)``; ``""`` as ``None`` (all runs).

    Example:
      >>> parse_shard("1/4"), parse_shard("")
      ((1, 4), None)
    """
    if not text:
        return None
    k, sep, n = text.partition("/")
    try:
        k, n = int(k), int(n)
    except ValueError:
        k = n = -1
    if not sep or not 0 <= k < n:
        raise UserError(f"--shard={text!r}: give K/N with 0 <= K < N, e.g. --shard=0/4")
    return k, n


def in_shard(index: int, shard: Optional[tuple[int, int]]) -> bool:
    """Whether run ``index`` (grid order) belongs to ``shard``: a fixed round-robin split."""
    return shard is None or index % shard[1] == shard[0]


def prepare(config, workdir) -> list[dict]:
    """Checks every run's whole config, then writes ``DIR/sweep.json`` and each run's resolved
    config (``DIR/runs/NAME/config.json``, what the workers train); returns the runs."""
    runs = expand(config)
    resolved = {}
    for r in runs:  # every run's whole config must be valid before anything is written
        try:
            resolved[r["name"]] = config_lib.validate(run_config(config, r["overrides"]))
        except UserError as e:
            raise UserError(f"sweep run {r['name']}: {e}") from None
    workdir = pathlib.Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise UserError(f"--workdir={workdir}: is a file; give a directory")
    (workdir / "runs").mkdir(parents=True, exist_ok=True)
    sweep = config.sweep
    spec = {
        "x": sweep.get("x", "data.seq_len"),
        "group": sweep.get("group", "model.cell"),
        "runs": [{**r, "overrides": sweep_results.json_safe(r["overrides"])} for r in runs],
    }
    files.write_atomic(workdir / SPEC, json.dumps(spec, indent=1))
    for r in runs:
        rundir = workdir / "runs" / r["name"]
        rundir.mkdir(exist_ok=True)
        text = json.dumps(config_lib.to_dict(resolved[r["name"]]), indent=1)
        if not (rundir / CONFIG).is_file() or (rundir / CONFIG).read_text() != text:
            files.write_atomic(rundir / CONFIG, text)
    return runs


def _done(rundir: pathlib.Path, retry_failed: bool) -> Optional[dict]:
    """The run's record when it needs no training (done, or failed without ``retry_failed``)."""
    path = rundir / DONE
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return None if retry_failed and record.get("status") == "failed" else record


def claim(run: dict, workdir, *, train_fn: Callable, retry_failed: bool = False) -> tuple:
    """Trains ``run`` unless it needs nothing or another process holds it; returns
    ``(record or None, what happened)`` with what in ``"skipped"`` (finished before), ``"busy"``
    (another process trains it: no record) or ``"trained"``. The run's lock is held from the
    check to the ``done.json``, so no two processes (``--jobs``, ``--shard``) train one run."""
    rundir = pathlib.Path(workdir) / "runs" / run["name"]
    record = _done(rundir, retry_failed)
    if record is not None:
        return record, "skipped"
    try:
        with files.exclusive(rundir, what="sweep run"):
            record = _done(rundir, retry_failed)  # finished by another process meanwhile
            if record is not None:
                return record, "skipped"
            config = config_lib.validate(json.loads((rundir / CONFIG).read_text()))
            outcome = train_one(config, rundir, train_fn=train_fn)
            record = {
                "name": run["name"],
                "variant": run["variant"],
                "overrides": run["overrides"],
                **outcome,
            }
            text = json.dumps(sweep_results.json_safe(record), indent=1)
            files.write_atomic(rundir / DONE, text)
            return record, "trained"
    except files.Busy:
        return None, "busy"


def describe(record: dict) -> str:
    """``done`` / ``failed (reason)`` with the time to solve, for a log line."""
    if record["status"] == "failed":
        return f"failed at step {record.get('step', 0)} ({record['reason']})"
    solved = record.get("solved_step")
    return "done" + (f", solved at step {solved}" if solved is not None else "")


def run_sweep(
    config,
    workdir,
    *,
    train_fn: Optional[Callable] = None,
    retry_failed: bool = False,
    shard: Optional[tuple[int, int]] = None,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Runs, one after another in this process, every run of ``config.sweep`` (of ``shard``) not
    yet done in ``workdir``; writes the results. ``seqjax sweep`` runs them in worker processes
    instead (:mod:`seqjax.train.sweep_pool`); this is the Python API, where tests inject faults.

    Args:
      config: a sweep config (see the module docstring).
      workdir: the sweep directory.
      train_fn: ``(config, rundir, task=...) -> result`` (default
        :func:`seqjax.train.loop.train_and_evaluate`; tests wrap it).
      retry_failed: train again runs whose ``done.json`` says ``failed``.
      shard: ``(K, N)``: only the runs of shard K of N (:func:`in_shard`).
      log: where progress lines go.

    Returns:
      the ``done.json`` records of the runs trained or found finished, in grid order.
    """
    if train_fn is None:
        from seqjax.train.loop import train_and_evaluate as train_fn
    runs = prepare(config, workdir)
    workdir = pathlib.Path(workdir)
    records = []
    with preempt.stop_requests() as stop:  # a signal between runs stops the sweep there too
        for i, r in enumerate(runs):
            if not in_shard(i, shard):
                continue
            tag = f"[{i + 1}/{len(runs)}] {r['name']}"
            if _done(workdir / "runs" / r["name"], retry_failed) is None:
                log(f"{tag}: training")
            record, what = claim(r, workdir, train_fn=train_fn, retry_failed=retry_failed)
            if what == "busy":
                log(f"{tag}: another process trains it, skipped")
                continue
            log(f"{tag}: {record['status']}, skipped" if what == "skipped" else f"{tag}: "
                f"{describe(record)}")  # fmt: skip
            records.append(record)
            if what == "trained":
                try:
                    write_report(workdir)
                except Exception:  # a plotting bug must not end a long sweep; the next retries
                    log(f"results of {workdir} not written:\n{traceback.format_exc()}")
            if stop.signum is not None and i + 1 < len(runs):
                raise Interrupted(
                    f"stopped by {stop.name} after run {r['name']}; run the same command to go on",
                    stop.signum,
                )
    write_report(workdir)
    return records


# ----------------------------------------------------------------------------- results


def write_report(workdir) -> list[str]:
    """Writes ``results.csv``, ``results.md`` and the plots of a sweep; returns their paths."""
    workdir = pathlib.Path(workdir)
    spec, records = sweep_results.read_records(workdir)
    paths = sweep_results.write_tables(workdir, spec, records)
    return paths + sweep_plots.draw_all(workdir, spec, records)


is_sweep_dir = sweep_results.is_sweep_dir
read_records = sweep_results.read_records

__all__ = ["expand", "is_sweep_dir", "read_records", "run_config", "run_sweep", "write_report"]
