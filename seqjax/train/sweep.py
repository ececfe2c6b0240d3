"""``seqjax sweep``: a grid of runs of one config, one after another in this process.

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
:func:`seqjax.train.loop.train_and_evaluate` with the ``sweep`` field removed. Each run:

* is skipped when ``DIR/runs/NAME/done.json`` exists (written atomically when it ends), so a
  restarted sweep trains only what is left; an interrupted run resumes from its checkpoints;
* fails without stopping the sweep when building or training it raises :class:`UserError` (a
  value only the task rejects, a non-finite loss): ``done.json`` records ``status="failed"`` and
  the reason (``--retry_failed`` runs it again). Values that config validation rejects stop the
  sweep before any run starts, naming the key;
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

from seqjax.errors import UserError
from seqjax.train import config as config_lib
from seqjax.train import files, sweep_plots, sweep_results
from seqjax.train.sweep_results import DONE, GRAD_NORMS, SPEC

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
        return {"status": "failed", "reason": str(e), "wall_s": time.perf_counter() - start}
    if task.diagnose is not None:
        norms["final"] = _grad_norms(task, result["params"])
        files.write_atomic(norms_path, json.dumps(sweep_results.json_safe(norms)))
    return {
        "status": "done",
        "step": int(result["step"]),
        "best_step": result.get("best_step"),
        "validation": {k: float(v) for k, v in result["validation"].items()},
        "wall_s": time.perf_counter() - start,
    }


def run_sweep(
    config,
    workdir,
    *,
    train_fn: Optional[Callable] = None,
    retry_failed: bool = False,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Runs every run of ``config.sweep`` not yet done in ``workdir``; writes the results.

    Args:
      config: a sweep config (see the module docstring).
      workdir: the sweep directory.
      train_fn: ``(config, rundir, task=...) -> result`` (default
        :func:`seqjax.train.loop.train_and_evaluate`; tests wrap it).
      retry_failed: train again runs whose ``done.json`` says ``failed``.
      log: where progress lines go.

    Returns:
      the ``done.json`` records of all runs, in grid order.
    """
    if train_fn is None:
        from seqjax.train.loop import train_and_evaluate as train_fn
    runs = expand(config)
    for r in runs:  # every run's whole config must be valid before anything is written
        try:
            config_lib.validate(run_config(config, r["overrides"]))
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
    records = []
    for i, r in enumerate(runs):
        rundir = workdir / "runs" / r["name"]
        done_path = rundir / DONE
        if done_path.is_file():
            record = json.loads(done_path.read_text())
            if not (retry_failed and record.get("status") == "failed"):
                log(f"[{i + 1}/{len(runs)}] {r['name']}: {record['status']}, skipped")
                records.append(record)
                continue
        log(f"[{i + 1}/{len(runs)}] {r['name']}: training")
        outcome = train_one(run_config(config, r["overrides"]), rundir, train_fn=train_fn)
        record = {
            "name": r["name"],
            "variant": r["variant"],
            "overrides": r["overrides"],
            **outcome,
        }
        files.write_atomic(done_path, json.dumps(sweep_results.json_safe(record), indent=1))
        log(
            f"[{i + 1}/{len(runs)}] {r['name']}: {record['status']}"
            + (f" ({record['reason']})" if record["status"] == "failed" else "")
        )
        records.append(record)
        try:
            write_report(workdir)
        except Exception:  # a plotting bug must not end a long sweep; the next run retries
            log(f"results of {workdir} not written:\n{traceback.format_exc()}")
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
