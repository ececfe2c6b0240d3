"""Every GPU measurement in one call: one ``docs/benchmarks.md`` section, in under 8 minutes.

Training steps (and, for the LSTM, inference) of :mod:`contenders` on one NVIDIA GPU:

* **LSTM**: seqjax ``backend="cudnn"`` vs ``"sequential"`` vs ``"fused"``, each with the input
  projection hoisted out of the loop or not, vs PyTorch's cuDNN ``nn.LSTM`` vs Flax's LSTM cells.
* **GRU, Elman**: seqjax sequential and fused (hoist on/off) vs PyTorch (cuDNN) vs Flax.
* **bf16**: seqjax's default computing in bfloat16 (float32 master weights, as
  ``model.compute_dtype=bfloat16``) vs PyTorch under ``torch.autocast(bfloat16)``.
* **minGRU, minLSTM, LRU**: ``backend="parallel"`` vs ``"sequential"`` at T in {512, 4096,
  16384} (batch 16, hidden 256), and the ``AUTO_BACKEND["gpu"]`` rows these measurements give,
  ready to paste into ``seqjax/scan.py``; likewise whether ``AUTO_FUSED`` and ``default_hoist``
  should change for GPUs.

JAX and PyTorch each run in their own child process, one after the other (never together);
within a child each group's contenders are compiled first, then timed in ``--rounds`` rounds in
rotated order (each timing at least ``--min-seconds``), and the figure is the median. A contender
that cannot run (cuDNN on a CPU, say) is listed with its reason. A time budget (``--budget``,
seconds) stops measuring in time to write the report, listing what was skipped.

The image this is written for has jax 0.11 (CUDA), flax, optax, orbax and torch but neither
``datasets`` nor ``ml_collections``: nothing here imports them.

Usage (repository root)::

    PYTHONPATH=$PWD python experiments/bench/gpu.py --out docs/benchmarks.md      # on the GPU
    PYTHONPATH=$PWD python experiments/bench/gpu.py --allow-cpu                   # smoke, seconds
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import math
import os
import pathlib
import shlex
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE)]

import contenders  # noqa: E402
import report  # noqa: E402

BEGIN = "<!-- BEGIN gpu (generated: experiments/bench/gpu.py --out) -->"
END = "<!-- END gpu -->"
SHAPES = ((32, 128, 256), (64, 256, 512), (16, 1024, 128), (128, 256, 1024))
MODERN = ("mingru", "minlstm", "lru")
MODERN_T = (512, 4096, 16384)
MODERN_BH = (16, 256)
MODERN_TITLE = "Modern cells: sequential vs parallel"


def plan(smoke: bool) -> list:
    """The groups, most wanted first (the time budget cuts from the end): ``(title, mode, cell,
    shape, [contender, ...])``; contenders are :mod:`contenders` names, or ``"seqjax <backend>"``
    for the modern cells."""
    shapes = ((2, 8, 16),) if smoke else SHAPES
    flax = {c: [f"Flax {n}" for n in contenders.FLAX_CELLS[c]] for c in contenders.FLAX_CELLS}
    lstm = [
        "seqjax",
        "seqjax cudnn",
        "seqjax sequential",
        "seqjax sequential hoist",
        "seqjax fused",
        "seqjax fused hoist",
        "PyTorch",
        *flax["lstm"],
    ]
    classic = ["seqjax", "seqjax sequential", "seqjax sequential hoist", "seqjax fused", "PyTorch"]
    bf16 = ["seqjax", "seqjax bf16", "PyTorch", "PyTorch bf16"]
    infer = ["seqjax", "seqjax cudnn", "seqjax sequential hoist", "PyTorch", *flax["lstm"][1:]]
    if smoke:  # one of each kind: the script's plumbing in seconds
        lstm, classic, bf16, infer = (
            lstm[:3] + lstm[4:7],
            ["seqjax", "PyTorch"],
            bf16[1:2],
            infer[:1],
        )
    groups = [("LSTM", "train", "lstm", s, lstm) for s in shapes]
    B, H = (2, 16) if smoke else MODERN_BH
    for T in (8, 16) if smoke else MODERN_T:
        for cell in MODERN[:1] if smoke else MODERN:
            groups.append(
                (MODERN_TITLE, "train", cell, (B, T, H), ["seqjax sequential", "seqjax parallel"])
            )
    for cell in ("gru", "elman"):
        groups += [
            (cell.upper() if cell == "gru" else "Elman", "train", cell, s, classic + flax[cell])
            for s in shapes[:3]
        ]
    groups += [("bf16", "train", "lstm", s, bf16) for s in shapes[1:3] or shapes]
    groups += [("LSTM inference", "infer", "lstm", s, infer) for s in shapes[:3]]
    return groups


# Child -------------------------------------------------------------------------------------------


def build(name: str, mode: str, cell: str, shape: tuple, device: str):
    B, T, H = shape
    if cell in MODERN:
        return contenders.seqjax_any(cell, {"backend": name.split()[1]}, B, T, H, mode)
    w = contenders.weights(cell, B, T, H)
    return contenders.build(name, cell, w, mode, device=device)


def child(library: str, groups: list, args) -> list:
    """Times this library's contenders of every group; one result per (group, contender)."""
    device = "cpu"
    if library == "torch":
        import torch

        if torch.cuda.is_available():
            device = "cuda"
            torch.backends.cudnn.benchmark = True
    deadline = time.monotonic() + args.budget
    out = []
    for gi, (_, mode, cell, shape, names) in enumerate(groups):
        mine = [n for n in names if contenders.library(n) == library]
        runs = {}
        for name in mine:
            if time.monotonic() > deadline:
                out.append({"group": gi, "name": name, "skipped": "time budget spent"})
                continue
            try:
                run = build(name, mode, cell, shape, device)
                run(1)  # compile, warm up
                run(1)
                runs[name] = run
            except Exception as e:  # noqa: BLE001 - report why a contender cannot run here
                why = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}" if str(e) else repr(e)
                out.append({"group": gi, "name": name, "skipped": why})
        times = {n: [] for n in runs}
        order = list(runs)
        for r in range(args.rounds):
            for name in order[r % len(order) :] + order[: r % len(order)] if order else []:
                t = time.perf_counter()
                runs[name](1)
                one = time.perf_counter() - t
                reps = max(1, math.ceil(args.min_seconds / max(one, 1e-9)))
                t = time.perf_counter()
                runs[name](reps)
                times[name].append((time.perf_counter() - t) / reps)
        out += [{"group": gi, "name": n, "times": ts, "device": device} for n, ts in times.items()]
    return out


def run_child(library: str, groups: list, args) -> list:
    if library == "torch" and importlib.util.find_spec("torch") is None:
        why = "torch is not installed (pip install torch)"
        return [
            {"group": gi, "name": n, "skipped": why}
            for gi, g in enumerate(groups)
            for n in g[4]
            if contenders.library(n) == library
        ]
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    spec = json.dumps(
        {
            "library": library,
            "groups": groups,
            "rounds": args.rounds,
            "min_seconds": args.min_seconds,
            "budget": args.budget,
        }
    )
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", spec]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.budget + 300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        return [
            {"group": gi, "name": n, "skipped": f"{library} child failed: {tail[:300]}"}
            for gi, g in enumerate(groups)
            for n in g[4]
            if contenders.library(n) == library
        ]
    return json.loads(lines[-1][len("RESULT ") :])


# Report ------------------------------------------------------------------------------------------


def auto_rows(results: dict, groups: list) -> tuple:
    """``AUTO_BACKEND["gpu"]`` rows from the modern cells: at each T the backend with the lower
    geometric-mean time over the three cells; consecutive T with the same winner merged."""
    winners = []
    for T in sorted({g[3][1] for g in groups if g[0] == MODERN_TITLE}):
        logs = {"sequential": [], "parallel": []}
        for gi, g in enumerate(groups):
            if g[0] == MODERN_TITLE and g[3][1] == T:
                for b in logs:
                    t = results.get((gi, f"seqjax {b}"))
                    if t:
                        logs[b].append(math.log(statistics.median(t)))
        if all(logs.values()) and len(logs["sequential"]) == len(logs["parallel"]):
            winners.append((T, min(logs, key=lambda b: sum(logs[b]))))
    rows = []
    for i, (T, b) in enumerate(winners):
        if i + 1 < len(winners) and winners[i + 1][1] == b:
            continue
        rows.append((T if i + 1 < len(winners) else None, b))
    return tuple(rows)


def ratio_lines(cell: str, groups: list, results: dict) -> list:
    """Per shape: fused / sequential (both hoist=False) and hoist=True / hoist=False."""
    med = lambda gi, n: statistics.median(results[(gi, n)]) if (gi, n) in results else None  # noqa: E731
    fused, hoist = [], []
    for gi, g in enumerate(groups):
        if g[2] != cell or g[1] != "train" or g[0] == "bf16":
            continue
        seq, fu, sh = (
            med(gi, n) for n in ("seqjax sequential", "seqjax fused", "seqjax sequential hoist")
        )
        shape = "/".join(map(str, g[3]))
        if seq and fu:
            fused.append(f"{fu / seq:.2f} at {shape}")
        if seq and sh:
            hoist.append(f"{sh / seq:.2f} at {shape}")
    out = []
    if fused:
        out.append(f"- {cell}: fused / sequential time {', '.join(fused)} (`AUTO_FUSED`).")
    if hoist:
        out.append(f"- {cell}: hoist=True / hoist=False time {', '.join(hoist)} (`default_hoist`).")
    return out


def render(groups: list, raw: list, *, command: str, device: str, args) -> str:
    results = {(r["group"], r["name"]): r["times"] for r in raw if "times" in r}
    skipped = [(r["group"], r["name"], r["skipped"]) for r in raw if "skipped" in r]
    lines = [
        BEGIN,
        f"## GPU: {device}",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- Versions: {report.versions('jax', 'jaxlib', 'flax', 'optax', 'torch')}",
        f"- JAX and PyTorch each in their own process, one after the other; {args.rounds} rounds "
        f"in rotated order, median ms per step (timings of at least {args.min_seconds} s); in "
        "brackets the time relative to the group's first PyTorch row (lower is faster).",
        "- Step: as in `experiments/bench/contenders.py` (readout to 256 classes, cross-entropy, "
        "backward, Adam; inference: forward and loss).",
        "",
    ]
    titles = []
    for g in groups:
        if g[0] not in titles:
            titles.append(g[0])
    for title in titles:
        lines += [
            f"### {title}",
            "",
            "| mode | cell | B/T/H | contender | ms | / PyTorch |",
            "|---|---|---|---|---|---|",
        ]
        for gi, (t, mode, cell, shape, names) in enumerate(groups):
            if t != title:
                continue
            base = results.get((gi, "PyTorch"))
            for name in names:
                ts = results.get((gi, name))
                if not ts:
                    continue
                med = statistics.median(ts)
                rel = f"{med / statistics.median(base):.2f}" if base else "-"
                lines.append(
                    f"| {mode} | {cell} | {'/'.join(map(str, shape))} | {name} | "
                    f"{report.ms(med)} | {rel} |"
                )
        lines.append("")
    rows = auto_rows(results, groups)
    lines += [
        "### What the figures say for `seqjax/scan.py`",
        "",
        f'- `AUTO_BACKEND["gpu"] = {rows!r}` (minGRU, minLSTM, LRU: per T, the backend with the '
        "lower geometric-mean training-step time over the three cells).",
    ]
    for cell in ("lstm", "gru", "elman"):
        lines += ratio_lines(cell, groups, results)
    if skipped:
        lines += ["", "Not measured:", ""]
        lines += [
            f"- {groups[gi][2]} {'/'.join(map(str, groups[gi][3]))} {name}: {why}"
            for gi, name, why in skipped
        ]
    lines.append(END)
    return "\n".join(lines)


def gpu_name() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 else ""
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return ""


def main(argv: list | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--allow-cpu", action="store_true", help="smoke run on CPU: tiny shapes")
    ap.add_argument("--rounds", type=int, default=None, help="default 3 (smoke: 1)")
    ap.add_argument("--min-seconds", type=float, default=None, help="default 0.1 (smoke: 0)")
    ap.add_argument("--budget", type=float, default=None, help="seconds of JAX (default 300)")
    ap.add_argument("--out", default=None, help="markdown file whose GPU section to rewrite")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        args = argparse.Namespace(**spec)
        groups = [tuple(g) for g in spec["groups"]]
        print("RESULT " + json.dumps(child(spec["library"], groups, args)), flush=True)
        return 0
    device = gpu_name()
    if not device and not args.allow_cpu:
        print(
            "gpu.py: no NVIDIA GPU here (nvidia-smi found none); run it on a GPU machine, or "
            "pass --allow-cpu for a smoke run of the script",
            file=sys.stderr,
        )
        return 2
    smoke = not device
    args.rounds = args.rounds or (1 if smoke else 3)
    args.min_seconds = args.min_seconds if args.min_seconds is not None else (0.0 if smoke else 0.1)
    args.budget = args.budget or (120.0 if smoke else 300.0)
    groups = plan(smoke)
    t0 = time.perf_counter()
    raw = run_child("jax", groups, args)
    print(f"jax: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    raw += run_child(
        "torch", groups, argparse.Namespace(**{**vars(args), "budget": args.budget / 3})
    )
    print(f"jax + torch: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    command = "PYTHONPATH=$PWD python experiments/bench/gpu.py " + shlex.join(argv)
    section = render(
        groups, raw, command=command.strip(), device=device or "none (CPU smoke run)", args=args
    )
    print(section)
    if args.out:
        report.write_section(args.out, section, BEGIN, END)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
