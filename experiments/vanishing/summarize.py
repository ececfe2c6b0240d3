"""Compact tables for experiments/vanishing/README.md from the sweeps' results.csv files.

Usage: python experiments/vanishing/summarize.py RUNS_DIR [SWEEP ...]   (RUNS_DIR holds adding/,
copy/, clipping/ written by the commands in README.md; SWEEP: only these); prints markdown, and
copies each sweep's results.csv, results.md and plots into experiments/vanishing/<sweep>/, with
``diagnostics.csv`` where a sweep logged diagnostics: every run's per-step gradient diagnostics
(``||dL/dh||`` at distances 0, 10 and the largest, the recurrent matrix's largest singular value)
from its ``metrics.jsonl``.
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
    main(pathlib.Path(sys.argv[1]), tuple(sys.argv[2:]))
