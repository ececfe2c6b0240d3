"""A sweep's results: its records (``done.json`` of each run), the table, ``results.csv``/``.md``.

Used by the runner (:mod:`seqjax.train.sweep`), the plots (:mod:`seqjax.train.sweep_plots`) and
``seqjax report``. Files: ``DIR/sweep.json`` (the grid), ``DIR/runs/NAME/done.json`` (a finished
run's record), ``DIR/runs/NAME/grad_norms.json`` (its gradient norms against distance).
"""

from __future__ import annotations

import csv
import io
import json
import math
import pathlib

from seqjax.errors import UserError
from seqjax.train import files

SPEC = "sweep.json"
DONE = "done.json"
CONFIG = "config.json"  # a run's resolved config, written by the sweep, read by its worker
GRAD_NORMS = "grad_norms.json"


def json_safe(v):
    """``v`` with non-finite floats as ``None`` (JSON has no NaN), recursively."""
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def read_records(workdir) -> tuple[dict, list[dict]]:
    """The sweep's spec and the ``done.json`` records of its finished runs (grid order)."""
    workdir = pathlib.Path(workdir)
    spec_path = workdir / SPEC
    if not spec_path.is_file():
        raise UserError(f"--workdir={workdir}: no {SPEC}; run seqjax sweep --workdir {workdir}")
    spec = json.loads(spec_path.read_text())
    records = []
    for r in spec["runs"]:
        path = workdir / "runs" / r["name"] / DONE
        if path.is_file():
            records.append(json.loads(path.read_text()))
    spec["_dir"] = str(workdir)
    return spec, records


def group_of(record: dict, spec: dict) -> str:
    """The line a run belongs to in the plots: its variant, else its value of ``spec["group"]``."""
    if record.get("variant"):
        return record["variant"]
    return str(record["overrides"].get(spec["group"], "all"))


def table(spec: dict, records: list[dict]) -> tuple[list[str], list[list]]:
    keys = list(dict.fromkeys(k for r in spec["runs"] for k in r["overrides"]))
    metrics = list(dict.fromkeys(k for r in records for k in r.get("validation", {})))
    head = [
        "name",
        *keys,
        "status",
        "step",
        *metrics,
        "solved_step",
        "to_solve",
        "max_grad_norm",
        "clip_rate",
        "decay_init",
        "decay_final",
        "pascanu_rate_init",
        "max_sv_init",
        "max_sv_final",
        "wall_s",
        "reason",
    ]
    from seqjax.tasks.diagnostics import decay_rate

    rows = []
    for r in records:
        norms = _load_norms(r, spec)
        for part in norms.values():  # fitted here, so a better fit applies to old runs too
            part["decay_rate"] = decay_rate(part["grad_h"])
        init, final = norms.get("init", {}), norms.get("final", {})
        train = _train_summary(pathlib.Path(spec["_dir"]) / "runs" / r["name"])
        rows.append(
            [
                r["name"],
                *[r["overrides"].get(k, "") for k in keys],
                r["status"],
                r.get("step", ""),
                *[r.get("validation", {}).get(m, "") for m in metrics],
                _or_blank(r.get("solved_step")),
                _or_blank(r.get("units_to_solve")),
                train.get("max_grad_norm", ""),
                train.get("clip_rate", ""),
                init.get("decay_rate", ""),
                final.get("decay_rate", ""),
                init.get("pascanu_rate", ""),
                init.get("max_singular_value", ""),
                final.get("max_singular_value", ""),
                r.get("wall_s", ""),
                r.get("reason", ""),
            ]
        )
    return head, rows


def _or_blank(v):
    return "" if v is None else v


def _train_summary(rundir: pathlib.Path) -> dict:
    """The largest logged training gradient norm (a window mean) and the mean clip rate."""
    records = files.read_metrics(rundir, "train")
    norms = [r["grad_norm"] for r in records if r.get("grad_norm") is not None]
    clips = [r["clip_rate"] for r in records if r.get("clip_rate") is not None]
    out = {}
    if norms:
        out["max_grad_norm"] = max(norms)
    if clips:
        out["clip_rate"] = sum(clips) / len(clips)
    return out


def _load_norms(record: dict, spec: dict) -> dict:
    path = spec.get("_dir")
    if path is None:
        return {}
    p = pathlib.Path(path) / "runs" / record["name"] / GRAD_NORMS
    return json.loads(p.read_text()) if p.is_file() else {}


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if v != v else f"{v:.4g}"
    return "" if v is None else str(v).replace("|", "/")


def write_tables(workdir, spec: dict, records: list[dict]) -> list[str]:
    """Writes ``results.csv`` and ``results.md`` of a sweep; returns their paths."""
    workdir = pathlib.Path(workdir)
    head, rows = table(spec, records)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(head)
    writer.writerows([[("" if v is None else v) for v in row] for row in rows])
    files.write_atomic(workdir / "results.csv", buf.getvalue())
    md = [
        f"# Sweep {workdir.name}: {len(records)} of {len(spec['runs'])} runs finished",
        "",
        "step: the step the run ended at; solved_step: the first evaluation at which "
        "train.stop_when held (blank: never or no condition), to_solve: the examples (tokens) "
        "seen until then; "
        "max_grad_norm: largest logged training gradient norm (mean of a log window, before "
        "clipping); clip_rate: fraction of steps clipped; "
        "decay_*: fitted per-step factor r of ||dL/dh_{T-k}|| ~ C r^k (k >= 1) at init and at "
        "the end; pascanu_rate: gamma * lambda_1(W_h) at init, the bound's factor (Elman); "
        "max_sv: lambda_1 of the top layer's recurrent matrix (largest gate block).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    md += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    from seqjax.train import baseline

    md += ["", *baseline.summary(spec, records)]  # mean ± std over folds / seeds, if any
    files.write_atomic(workdir / "results.md", "\n".join(md) + "\n")
    return [str(workdir / "results.csv"), str(workdir / "results.md")]


def is_sweep_dir(workdir) -> bool:
    return (pathlib.Path(workdir) / SPEC).is_file()


__all__ = [
    "CONFIG",
    "DONE",
    "GRAD_NORMS",
    "SPEC",
    "group_of",
    "is_sweep_dir",
    "json_safe",
    "read_records",
    "table",
    "write_tables",
]
