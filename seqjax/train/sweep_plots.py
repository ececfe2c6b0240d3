"""The plots of a sweep (matplotlib, Agg): final metrics against ``x``, loss curves, and gradient
norms against distance.

* ``final_vs_x.png``: each final validation metric (one panel each) against the sweep's ``x``
  key (``data.seq_len`` by default), one line per group (cell or variant): the mean over seeds,
  each run a dot; a ``baseline`` metric (what a model without memory scores) is drawn dashed.
* ``loss_curves.png``: validation loss against step for every run, one panel per ``x`` value.
* ``grad_norms.png``: :math:`\\|\\partial L/\\partial h_{T-k}\\|` against ``k`` on a log scale,
  one panel per group, one colour per ``x`` value; dashed at initialisation, solid at the end.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections import defaultdict

import numpy as np

from seqjax.train import files
from seqjax.train.sweep_results import group_of


def _save(fig, path: pathlib.Path) -> str:
    return files.save_figure(fig, path, dpi=80)


def _x(record: dict, spec: dict):
    return record["overrides"].get(spec["x"])


def draw_all(workdir: pathlib.Path, spec: dict, records: list[dict]) -> list[str]:
    """Draws the three figures into ``workdir``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    done = [r for r in records if r["status"] == "done"]
    if not done:
        return []
    return [
        final_vs_x(workdir, spec, done, [r for r in records if r["status"] == "failed"]),
        loss_curves(workdir, spec, done),
        *([p] if (p := grad_norms(workdir, spec, done)) else []),
        *([p] if (p := time_to_solve(workdir, spec, done)) else []),
    ]


def _group(record, spec):
    return group_of(record, spec)


def final_vs_x(workdir, spec, records, failed=()) -> str:
    """Final validation metrics against ``x``; failed runs are crosses at the top of each panel."""
    import matplotlib.pyplot as plt

    from seqjax.train.metrics import headline

    # The headline metrics only: per-class and confusion counts would give dozens of panels.
    names = dict.fromkeys(k for r in records for k in headline(r["validation"], limit=99))
    metrics = [k for k in names if k != "baseline"]
    if "mse" in metrics and "loss" in metrics:  # the same number for regression problems
        metrics.remove("loss")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.3), squeeze=False)
    groups = list(dict.fromkeys(_group(r, spec) for r in records))
    numeric = all(isinstance(_x(r, spec), (int, float)) for r in records)
    for ax, m in zip(axes[0], metrics):
        for gi, g in enumerate(groups):
            rs = [r for r in records if _group(r, spec) == g and m in r["validation"]]
            by_x = defaultdict(list)
            for r in rs:
                by_x[_x(r, spec)].append(r["validation"][m])
            xs = sorted(by_x, key=lambda v: (v is None, v if numeric else str(v)))
            pos = xs if numeric else list(range(len(xs)))
            color = f"C{gi}"
            ax.plot(pos, [np.mean(by_x[x]) for x in xs], "-o", color=color, label=g, ms=3)
            for p, x in zip(pos, xs):
                ax.plot([p] * len(by_x[x]), by_x[x], ".", color=color, alpha=0.4)
        base = {
            _x(r, spec): r["validation"]["baseline"]
            for r in records
            if "baseline" in r["validation"]
        }
        if m in ("loss", "mse") and base:
            bx = sorted(base)
            ax.plot(bx, [base[x] for x in bx], "k--", lw=1, label="baseline (no memory)")
        vals = [r["validation"][m] for r in records if m in r["validation"]]
        if m in ("loss", "mse") and vals and min(vals) > 0:
            ax.set_yscale("log")
        top = ax.get_ylim()[1]
        for r in failed:
            if numeric and isinstance(_x(r, spec), (int, float)):
                gi = groups.index(_group(r, spec)) if _group(r, spec) in groups else len(groups)
                ax.plot(
                    [_x(r, spec)],
                    [top],
                    "x",
                    color=f"C{gi}",
                    ms=9,
                    mew=2,
                    clip_on=False,
                    label="failed (non-finite)" if r is failed[0] else None,
                )
        xv = [_x(r, spec) for r in records]
        if numeric and min(xv) > 0 and max(xv) / min(xv) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(spec["x"])
        ax.set_title(f"final validation {m}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, pathlib.Path(workdir) / "final_vs_x.png")


def time_to_solve(workdir, spec, records) -> str | None:
    """Steps until ``train.stop_when`` held against ``x`` (Le et al. 2015, Fig. 2): the median
    over seeds per group, each run a dot, unsolved runs as open circles at the top (at the step
    their training ended). ``None`` when no run has a stop condition."""
    import matplotlib.pyplot as plt

    runs = [r for r in records if "solved_step" in r]
    if not any(r.get("solved_step") is not None for r in runs):
        return None
    numeric = all(isinstance(_x(r, spec), (int, float)) for r in runs)
    groups = list(dict.fromkeys(_group(r, spec) for r in runs))
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    top = max(r.get("step", 0) for r in runs)
    xs_all = sorted({_x(r, spec) for r in runs}, key=lambda v: v if numeric else str(v))
    where = (lambda x: x) if numeric else (lambda x: xs_all.index(x))  # noqa: E731
    for gi, g in enumerate(groups):
        color, mine = f"C{gi}", [r for r in runs if _group(r, spec) == g]
        by_x = defaultdict(list)
        for r in mine:
            if r.get("solved_step") is not None:
                by_x[_x(r, spec)].append(r["solved_step"])
        xs = sorted(by_x, key=lambda v: v if numeric else str(v))
        if xs:
            ax.plot([where(x) for x in xs], [np.median(by_x[x]) for x in xs], "-o", color=color,
                    ms=3, label=g)  # fmt: skip
        for r in mine:
            solved = r.get("solved_step")
            y, face = (solved, color) if solved is not None else (top, "none")
            ax.plot([where(_x(r, spec))], [y], "o", color=color, alpha=0.5, ms=5, mfc=face)
    if not numeric:
        ax.set_xticks(range(len(xs_all)), [str(x) for x in xs_all])
    ax.set_xlabel(spec["x"])
    ax.set_ylabel("steps to solve (open: not solved)")
    ax.set_title("time to solve (train.stop_when)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, pathlib.Path(workdir) / "time_to_solve.png")


def _validation_loss(rundir: pathlib.Path) -> list[tuple[int, float]]:
    records = files.read_metrics(rundir, "validation")
    return [(r["step"], r["loss"]) for r in records if r.get("loss") is not None]


def loss_curves(workdir, spec, records) -> str:
    import matplotlib.pyplot as plt

    xs = list(dict.fromkeys(_x(r, spec) for r in records))
    cols = min(4, len(xs))
    rows = math.ceil(len(xs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    groups = list(dict.fromkeys(_group(r, spec) for r in records))
    for ax, x in zip(axes.flat, xs):
        for r in records:
            if _x(r, spec) != x:
                continue
            curve = _validation_loss(pathlib.Path(workdir) / "runs" / r["name"])
            if curve:
                steps, vals = zip(*curve)
                gi = groups.index(_group(r, spec))
                first = not any(line.get_label() == _group(r, spec) for line in ax.lines)
                ax.plot(
                    steps, vals, color=f"C{gi}", alpha=0.8, label=_group(r, spec) if first else None
                )
            if "baseline" in r["validation"]:
                ax.axhline(r["validation"]["baseline"], color="k", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_title(f"{spec['x']}={x}")
        ax.set_xlabel("step")
        ax.set_ylabel("validation loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(xs) :]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, pathlib.Path(workdir) / "loss_curves.png")


def grad_norms(workdir, spec, records) -> str | None:
    import matplotlib.pyplot as plt

    curves = []
    for r in records:
        p = pathlib.Path(workdir) / "runs" / r["name"] / "grad_norms.json"
        if p.is_file():
            curves.append((r, json.loads(p.read_text())))
    if not curves:
        return None
    groups = list(dict.fromkeys(_group(r, spec) for r, _ in curves))
    xs = list(dict.fromkeys(_x(r, spec) for r, _ in curves))
    cols = min(4, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, g in zip(axes.flat, groups):
        labelled = set()
        for r, norms in curves:
            if _group(r, spec) != g:
                continue
            color = f"C{xs.index(_x(r, spec))}"
            for when, style in (("init", "--"), ("final", "-")):
                if when not in norms:
                    continue
                y = np.asarray([np.nan if v is None else v for v in norms[when]["grad_h"]], float)
                y = np.where(y > 0, y, np.nan)
                label = (
                    f"{spec['x']}={_x(r, spec)}"
                    if (when == "final" and _x(r, spec) not in labelled)
                    else None
                )
                if label:
                    labelled.add(_x(r, spec))
                ax.plot(np.arange(len(y)), y, style, color=color, lw=1, alpha=0.8, label=label)
        ax.set_yscale("log")
        ax.set_title(f"{g}: ||dL/dh_(T-k)||  (-- init, - final)", fontsize="small")
        ax.set_xlabel("distance k = T - t")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, pathlib.Path(workdir) / "grad_norms.png")


__all__ = ["draw_all", "final_vs_x", "grad_norms", "loss_curves"]
