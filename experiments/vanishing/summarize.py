"""Compact tables for experiments/vanishing/README.md from the sweeps' results.csv files.

Usage: python experiments/vanishing/summarize.py RUNS_DIR [SWEEP ...]   (RUNS_DIR holds adding/,
copy/, clipping/ written by the commands in README.md; SWEEP: only these); prints markdown, and
copies each sweep's results.csv, results.md and plots into experiments/vanishing/<sweep>/, with
``diagnostics.csv`` where a sweep logged diagnostics: every run's per-step gradient diagnostics
(``||dL/dh||`` at distances 0, 10 and the largest, the recurrent matrix's largest singular value)
from its ``metrics.jsonl``.

Study 5 (gradient norm against distance, every cell, at init and after training):
``python experiments/vanishing/summarize.py --distance RUNS_DIR SWEEP [SWEEP ...]`` writes
``grad_norms.csv`` (one row per run and moment: the fitted decay, the bound's factor and
``||dL/dh_{T-k}||`` at a fixed set of distances k) and ``grad_vs_distance.png`` (one panel per
cell: the median over seeds per T, the fit ``C r^k`` dotted and, for Elman-type cells, the spectral
bound ``(gamma lambda_1)^k`` from the same start) into experiments/vanishing/<sweep>/, and prints
the per-cell decay table, which for committed sweeps also comes from results.csv alone
(``--decay``).
"""

from __future__ import annotations

import csv
import pathlib
import shutil
import statistics
import sys
from collections import defaultdict

HERE = pathlib.Path(__file__).resolve().parent


def rows(path: pathlib.Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def num(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        return float("nan")


def fmt(v: float) -> str:
    return "-" if v != v else f"{v:.3g}"


def by_group(rs: list[dict], group, x: str, value) -> str:
    """A markdown table: one row per group, one column per x, cells 'v1 / v2' over seeds."""
    table = defaultdict(lambda: defaultdict(list))
    xs = []
    for r in rs:
        table[group(r)][r[x]].append(value(r))
        if r[x] not in xs:
            xs.append(r[x])
    out = [f"| | {' | '.join(f'{x}={v}' for v in xs)} |", "|---|" + "---|" * len(xs)]
    for g, cells in table.items():
        out.append(f"| {g} | " + " | ".join(" / ".join(cells.get(v, [])) or "" for v in xs) + " |")
    return "\n".join(out)


def diagnostics(sweep_dir: pathlib.Path, out: pathlib.Path) -> None:
    """Writes ``out``: one row per run and diagnostics step (no file when no run logged any)."""
    from seqjax.train.files import read_metrics

    table = []
    for run in sorted((sweep_dir / "runs").iterdir()):
        for m in read_metrics(run, "diagnostics"):
            g = {int(k.split("=")[1]): v for k, v in m.items() if k.startswith("grad_h/k=")}
            k = max(g) if g else ""
            table.append([run.name, m["step"], g.get(0), g.get(10), k, g.get(k),
                          m.get("max_singular_value")])  # fmt: skip
    out.unlink(missing_ok=True)
    if table:
        with open(out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["run", "step", "grad_h_k0", "grad_h_k10", "k_max", "grad_h_kmax", "max_sv"])
            w.writerows(table)


def spread(values: list) -> str:
    """'median (min-max)' of the finite values, with 'k/n' when some runs never got there."""
    got = sorted(v for v in values if v == v)
    if not got:
        return f"never (0/{len(values)})"
    mid = statistics.median(got)
    text = f"{mid:.0f} ({got[0]:.0f}-{got[-1]:.0f})" if len(got) > 1 else f"{got[0]:.0f}"
    return text if len(got) == len(values) else f"{text}, {len(got)}/{len(values)}"


def copy_table(sweep_dir: pathlib.Path, rs: list[dict], variant) -> str:
    """Per cell and T: solved k/n (loss below a tenth of the memoryless baseline) with the
    median (range) step it took, and the first validation step below the baseline itself."""
    from seqjax.train.files import read_metrics

    groups = defaultdict(list)
    for r in rs:
        groups[(variant(r), int(r["data.seq_len"]))].append(r)
    head = "| cell | T | solved | steps to solve | first step under baseline | final / baseline |"
    out = [head, "|---|---|---|---|---|---|"]
    for (cell, t), runs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        solved = [num(r["solved_step"]) for r in runs]
        below, ratio = [], []
        for r in runs:
            val = read_metrics(sweep_dir / "runs" / r["name"], "validation")
            below.append(next((m["step"] for m in val if m["loss"] < m["baseline"]), float("nan")))
            ratio.append(f"{val[-1]['loss'] / val[-1]['baseline']:.2f}" if val else "-")
        k = sum(v == v for v in solved)
        out.append(f"| {cell} | {t} | {k}/{len(runs)} | {spread(solved) if k else '-'} | "
                   f"{spread(below)} | {', '.join(ratio)} |")  # fmt: skip
    return "\n".join(out)


# Distances kept in grad_norms.csv: every step near the loss, then about 5 per decade.
KEEP = (0, 1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 40, 50, 70, 100, 150, 200, 300, 400, 500, 750, 1000)


def _curves(sweep_dir: pathlib.Path, rs: list[dict]) -> list[tuple[dict, dict]]:
    import json

    from seqjax.train.sweep_results import GRAD_NORMS

    out = []
    for r in rs:
        p = sweep_dir / "runs" / r["name"] / GRAD_NORMS
        if p.is_file():
            out.append((r, json.loads(p.read_text())))
    return out


def grad_norms_csv(curves, out: pathlib.Path) -> None:
    """One row per run and moment (init, final): decay, bound, max_sv, ||g_k|| at KEEP."""
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "when", "decay_rate", "pascanu_rate", "max_sv"]
                   + [f"k={k}" for k in KEEP])  # fmt: skip
        for r, norms in curves:
            for when in ("init", "final"):
                if when not in norms:
                    continue
                n, g = norms[when], norms[when]["grad_h"]
                at = [g[k] if k < len(g) and g[k] is not None else "" for k in KEEP]
                w.writerow([r["name"], when, n.get("decay_rate"), n.get("pascanu_rate", ""),
                            n.get("max_singular_value", ""), *at])  # fmt: skip


def distance_figure(curves, variant, x: str, out: pathlib.Path, title: str) -> None:
    """One panel per cell: median ||g_k|| over seeds per value of ``x`` at init (dashed) and
    after training (solid), the final fit C r^k (dotted) and, where the cell has one, the
    spectral bound's (gamma lambda_1)^k at init from the same k = 1 norm (grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from seqjax.tasks.diagnostics import decay_fit

    cells = list(dict.fromkeys(variant(r) for r, _ in curves))
    xs = list(dict.fromkeys(r.get(x, "-") for r, _ in curves))
    cols = min(5, len(cells))
    rows_ = -(-len(cells) // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(3.6 * cols, 3.0 * rows_), squeeze=False)
    for ax, cell in zip(axes.flat, cells):
        notes = []
        for i, xv in enumerate(xs):
            group = [n for r, n in curves if variant(r) == cell and r.get(x, "-") == xv]
            if not group:
                continue
            for when, style in (("init", "--"), ("final", "-")):
                ys = [np.asarray([np.nan if v is None else v for v in n[when]["grad_h"]], float)
                      for n in group if when in n]  # fmt: skip
                if not ys:
                    continue
                size = min(len(y) for y in ys)
                with np.errstate(all="ignore"):
                    y = np.nanmedian(np.stack([np.where(y[:size] > 0, y[:size], np.nan)
                                               for y in ys]), axis=0)  # fmt: skip
                label = f"{x.split('.')[-1]}={xv}" if when == "final" else None
                ax.plot(np.arange(size), y, style, color=f"C{i}", lw=1, label=label)
                c, r = decay_fit(list(y))
                if when == "final" and c == c:
                    k = np.arange(1, size)
                    ax.plot(k, c * r**k, ":", color=f"C{i}", lw=1.2)
                rates = [n[when].get("decay_rate", float("nan")) for n in group if when in n]
                notes.append((xv, when, statistics.median(rates)))
                bound = [n[when]["pascanu_rate"] for n in group if "pascanu_rate" in n[when]]
                if when == "init" and bound and y[1] == y[1]:
                    b, k = statistics.median(bound), np.arange(1, size)
                    with np.errstate(all="ignore"):
                        ax.plot(k, y[1] * b ** (k - 1), "-.", color="0.5", lw=0.8,
                                label="bound" if i == 0 else None)  # fmt: skip
        ax.set_yscale("log")
        ax.set_ylim(bottom=max(ax.get_ylim()[0], 1e-12))
        r_at = {w: v for xv, w, v in notes if xv == xs[-1]}
        text = " -> ".join(f"{r_at[w]:.3f}" for w in ("init", "final") if w in r_at)
        ax.set_title(f"{cell}: r {text} at {x.split('.')[-1]}={xs[-1]}", fontsize="x-small")
        ax.set_xlabel("distance k = T - t", fontsize="small")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="xx-small")
    for ax in list(axes.flat)[len(cells) :]:
        ax.axis("off")
    fig.suptitle(f"{title}: ||dL/dh_(T-k)||, median over seeds (-- init, - final, : fit C r^k, "
                 "-. bound (gamma lambda_1)^k at init)", fontsize="small")  # fmt: skip
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def decay_table(rs: list[dict], variant, x: str = "data.seq_len") -> str:
    """Per cell and x: the fitted per-step factor r at init and after training, gamma lambda_1
    at init (the bound's factor, Elman-type cells) and lambda_1 at init and after training,
    each the median (range) over seeds."""

    def mid(rs_, key):
        v = sorted(num(r[key]) for r in rs_ if num(r[key]) == num(r[key]))
        if not v:
            return "-"
        m, lo, hi = (f"{u:.3f}" for u in (statistics.median(v), v[0], v[-1]))
        return m if lo == hi else f"{m} ({lo}-{hi})"

    groups = defaultdict(list)
    for r in rs:
        groups[(variant(r), r.get(x, "-"))].append(r)
    out = [f"| cell | {x.split('.')[-1]} | r init | r final | gamma lambda_1 init | "
           "lambda_1 init | lambda_1 final |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for (cell, xv), g in groups.items():
        out.append(f"| {cell} | {xv} | {mid(g, 'decay_init')} | {mid(g, 'decay_final')} | "
                   f"{mid(g, 'pascanu_rate_init')} | {mid(g, 'max_sv_init')} | "
                   f"{mid(g, 'max_sv_final')} |")  # fmt: skip
    return "\n".join(out)


def distance(runs: pathlib.Path, sweeps, curves_too: bool = True, into: pathlib.Path = HERE):
    """Study 5 for each sweep: the figure and grad_norms.csv in ``into/<sweep>`` (when its run
    folders are here) and the decay table (from its results.csv, the committed one when the runs
    are gone)."""
    for sweep in sweeps:
        src, dst = runs / sweep, into / sweep
        csv_path = src / "results.csv" if (src / "results.csv").is_file() else dst / "results.csv"
        rs = rows(csv_path)
        if sweep.startswith("clipping"):  # one cell; its runs differ in clipping and rate
            variant, x = (lambda r: r["optim.clip"]), "optim.learning_rate"
        else:  # runs named VARIANT-key=value-...
            variant, x = (lambda r: r["name"].split("-")[0]), "data.seq_len"
        curves = _curves(src, rs) if curves_too and (src / "runs").is_dir() else []
        if curves:
            dst.mkdir(parents=True, exist_ok=True)
            grad_norms_csv(curves, dst / "grad_norms.csv")
            distance_figure(curves, variant, x, dst / "grad_vs_distance.png", sweep)
        print(f"\n## {sweep}: per-step gradient decay\n")
        print(decay_table(rs, variant, x))


def solved_table(rs: list[dict], variant) -> str:
    """Per cell and T: solved k/n (train.stop_when held) and the median (range) step."""
    groups = defaultdict(list)
    for r in rs:
        groups[(variant(r), int(r["data.seq_len"]))].append(r)
    out = ["| cell | T | solved | steps to solve | final MSE |", "|---|---|---|---|---|"]
    for (cell, t), g in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        solved = [num(r["solved_step"]) for r in g]
        k = sum(v == v for v in solved)
        out.append(f"| {cell} | {t} | {k}/{len(g)} | {spread(solved) if k else '-'} | "
                   f"{', '.join(fmt(num(r['mse'])) for r in g)} |")  # fmt: skip
    return "\n".join(out)


def main(runs: pathlib.Path, only=()) -> None:
    variant = lambda r: r["name"].split("-")[0]  # noqa: E731
    for sweep in only or ("adding", "copy", "clipping"):
        src = runs / sweep
        if not (src / "results.csv").is_file():
            continue
        dst = HERE / sweep
        dst.mkdir(exist_ok=True)
        diagnostics(src, dst / "diagnostics.csv")
        for name in ("results.csv", "results.md", "final_vs_x.png", "loss_curves.png",
                     "grad_norms.png"):
            if (src / name).is_file():
                shutil.copyfile(src / name, dst / name)
        rs = rows(src / "results.csv")
        print(f"\n## {sweep}\n")
        if sweep.startswith("adding"):
            print(solved_table(rs, variant))
            print()
        if sweep == "adding":
            val = lambda r: "failed" if r["status"] == "failed" else fmt(num(r["mse"]))  # noqa
            print(by_group(rs, variant, "data.seq_len", val))
            print()
            dec = lambda r: f"{fmt(num(r['decay_init']))}→{fmt(num(r['decay_final']))}"  # noqa
            print(by_group(rs, variant, "data.seq_len", dec))
        elif sweep == "copy":
            val = lambda r: f"{fmt(num(r['loss']))} (acc {fmt(num(r['accuracy']))})"  # noqa
            print(by_group(rs, variant, "data.seq_len", val))
            print()
            print(copy_table(src, rs, variant))
        elif sweep.startswith("clipping"):
            val = lambda r: (
                (  # noqa: E731
                    "failed" if r["status"] == "failed" else fmt(num(r["mse"]))
                )
                + f", max ‖g‖ {fmt(num(r['max_grad_norm']))}"
            )
            print(by_group(rs, lambda r: r["optim.clip"], "optim.learning_rate", val))


if __name__ == "__main__":
    if sys.argv[1] in ("--distance", "--decay"):
        distance(pathlib.Path(sys.argv[2]), sys.argv[3:], curves_too=sys.argv[1] == "--distance")
    else:
        main(pathlib.Path(sys.argv[1]), tuple(sys.argv[2:]))
