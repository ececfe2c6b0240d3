"""Fair CPU benchmark of recurrent layers: seqjax, PyTorch and Flax, each in its own process.

Every contender (:mod:`contenders`: seqjax's default ``unroll`` and its other backends, PyTorch's
``nn.LSTM``/``nn.GRU``/``nn.RNN``, Flax's cells) runs in a **fresh subprocess** per round with its
library's default threading (``torch.set_num_threads(2)``; ``OMP_WAIT_POLICY`` is removed from
the children's environment, never set), in an order rotated every round. A child compiles and
warms up its step, then times ``--repeats`` measurements of at least ``--min-seconds`` each and
reports their median; the figure is the median over ``--rounds`` rounds, the spread ``(max -
min) / median`` over rounds. All contenders start from the same weights, and the report gives the
largest relative difference of their first-step losses.

It also measures the machine's matmul peak (fp32, and bf16 with float32 accumulation), in JAX and
in PyTorch, each in its own process, and prints per contender the achieved GFLOP/s (matmul FLOPs
of forward and backward, :func:`contenders.flops`) and the fraction of the peak: the better of
JAX's and PyTorch's figure at the contender's dtype.

The load average is printed before and after; with ``--out`` the generated section of that file
is rewritten only when the 1-minute load stayed at or below 1.5 (2 cores), otherwise it says so
and writes nothing (exit status 3).

Usage (from the repository root)::

    PYTHONPATH=$PWD python experiments/bench/fair.py --out docs/benchmarks.md     # all (~30 min)
    PYTHONPATH=$PWD python experiments/bench/fair.py --cells lstm --shapes 64x256x512 --modes train
    PYTHONPATH=$PWD python experiments/bench/fair.py --cells gru \\
        --contenders "seqjax,seqjax sequential,seqjax fused hoist,PyTorch"     # levers
    PYTHONPATH=$PWD python experiments/bench/fair.py --smoke        # seconds: the test's run

``--glibc-tunables`` starts every child with ``GLIBC_TUNABLES`` set to :data:`GLIBC_TUNABLES`
(fewer page faults for large buffers, in both frameworks); ``--xla-flags`` sets ``XLA_FLAGS`` in
the JAX children. The report names both whenever they are used.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
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

SHAPES = ((32, 128, 256), (64, 256, 512), (16, 1024, 128))
SMOKE_SHAPES = ((2, 8, 16),)
CELLS = ("lstm", "gru", "elman")
MODES = ("train", "infer")
GLIBC_TUNABLES = (
    "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184:glibc.malloc.arena_max=1"
)
BEGIN = "<!-- BEGIN fair (generated: experiments/bench/fair.py --out) -->"
END = "<!-- END fair -->"
# The bars: seqjax's default at most this fraction of PyTorch's time.
BARS = {"lstm": 1.0, "gru": 0.8, "elman": 0.8}
PEAK_BAR = (64, 256, 512), 0.85


# Children ----------------------------------------------------------------------------------------


def _time(run, min_seconds: float, repeats: int) -> list:
    t = time.perf_counter()
    run(1)
    reps = max(1, round(min_seconds / max(time.perf_counter() - t, 1e-9)))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run(reps)
        times.append((time.perf_counter() - t) / reps)
    return times


def child_step(spec: dict) -> dict:
    B, T, H = spec["shape"]
    w = contenders.weights(spec["cell"], B, T, H)
    run = contenders.build(spec["contender"], spec["cell"], w, spec["mode"])
    loss0 = run(1)  # compiles; the loss of the initial weights
    times = _time(run, spec["min_seconds"], spec["repeats"])
    return {"time": statistics.median(times), "inner": times, "loss0": loss0}


def child_peak(spec: dict) -> dict:
    """Best GFLOP/s of an ``n x n`` matmul over ``spec["sizes"]``, fp32 and bf16."""
    out = {}
    if spec["library"] == "jax":
        import jax
        import jax.numpy as jnp

        for dtype in ("float32", "bfloat16"):
            f = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
            best = 0.0
            for n in spec["sizes"]:
                a = jnp.ones((n, n), dtype)
                run = lambda k: [f(a, a) for _ in range(k)][-1].block_until_ready()  # noqa: B023,E731
                run(2)
                best = max(best, 2 * n**3 / min(_time(run, spec["min_seconds"], 3)) / 1e9)
            out[dtype] = best
    else:
        import torch

        torch.set_num_threads(2)
        for dtype in ("float32", "bfloat16"):
            best = 0.0
            for n in spec["sizes"]:
                a = torch.ones((n, n), dtype=getattr(torch, dtype))
                run = lambda k: [torch.mm(a, a) for _ in range(k)]  # noqa: B023,E731
                run(2)
                best = max(best, 2 * n**3 / min(_time(run, spec["min_seconds"], 3)) / 1e9)
            out[dtype] = best
    return out


def child_env(library: str, args) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if args.glibc_tunables:
        env["GLIBC_TUNABLES"] = GLIBC_TUNABLES
    if args.xla_flags and library == "jax":
        env["XLA_FLAGS"] = args.xla_flags
    return env


def run_child(spec: dict, library: str, args) -> dict:
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", json.dumps(spec)]
    done = subprocess.run(
        cmd, env=child_env(library, args), capture_output=True, text=True, timeout=args.timeout
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"child {spec} failed ({done.returncode}): " + " | ".join(tail))
    return json.loads(lines[-1][len("RESULT ") :])


# Parent ------------------------------------------------------------------------------------------


def default_contenders(cell: str, T: int) -> list:
    """seqjax's default, its other two backends where they differ from it, PyTorch, Flax."""
    import seqjax
    from seqjax import scan

    picked = scan.resolve_auto(seqjax.cells.get(cell, 1), T, "cpu")
    others = [n for n, b in (("seqjax sequential", "sequential"), ("seqjax fused", "fused"))
              if b != picked]  # fmt: skip
    flax = [f"Flax {c}" for c in contenders.FLAX_CELLS[cell]]
    return ["seqjax", *others, "PyTorch", *flax]


def measure(args) -> dict:
    """``{(mode, cell, shape): {contender: {"times": [per round], "loss0": float}}}``."""
    results = {}
    for mode in args.modes:
        for cell in args.cells:
            for shape in args.shapes:
                names = args.contenders or default_contenders(cell, shape[1])
                names = [n for n in names if n in contenders.names(cell)]
                if args.skipped:
                    names = [n for n in names if contenders.library(n) != "torch"]
                got = {n: {"times": [], "loss0": None} for n in names}
                t0 = time.perf_counter()
                for r in range(args.rounds):
                    k = r % len(names)
                    for name in names[k:] + names[:k]:
                        spec = {"kind": "step", "contender": name, "cell": cell, "mode": mode,
                                "shape": shape, "min_seconds": args.min_seconds,
                                "repeats": args.repeats}  # fmt: skip
                        out = run_child(spec, contenders.library(name), args)
                        got[name]["times"].append(out["time"])
                        got[name]["loss0"] = out["loss0"]
                results[(mode, cell, tuple(shape))] = got
                where = f"{mode} {cell} {'/'.join(map(str, shape))}"
                took = time.perf_counter() - t0
                print(f"{where}: {took:.0f} s, load {report.load_average()}", file=sys.stderr)
                for name, g in got.items():  # as it goes: a run cut short still says something
                    per_round = ", ".join(report.ms(t) for t in g["times"])
                    print(f"  {name}: {per_round} ms", file=sys.stderr, flush=True)
    return results


def peaks(args) -> dict:
    sizes = (64, 128) if args.smoke else (512, 1024, 2048)
    out = {}
    for library in ("jax", "torch"):
        spec = {"kind": "peak", "library": library, "sizes": sizes, "min_seconds": 0.2}
        try:
            out[library] = run_child(spec, library, args)
        except RuntimeError as e:  # e.g. torch not installed
            print(f"peak of {library}: {e}", file=sys.stderr)
            continue
        print(f"peak GFLOP/s, {library}: {out[library]}", file=sys.stderr, flush=True)
    return out


def render(results: dict, peak: dict, *, command: str, load_before, load_after, args) -> str:
    best = {
        d: max((p[d] for p in peak.values()), default=float("nan")) for d in ("float32", "bfloat16")
    }
    gflops = lambda d: ", ".join(f"{lib} {p[d]:.0f}" for lib, p in peak.items())  # noqa: E731
    glibc = f"`GLIBC_TUNABLES={GLIBC_TUNABLES}`" if args.glibc_tunables else "not set"
    xla = f"`XLA_FLAGS={args.xla_flags}` (JAX children)" if args.xla_flags else "not set"
    lines = [
        BEGIN,
        "## Training and inference steps, each contender in its own process (CPU)",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"- Machine: {report.machine()}",
        f"- Versions: {report.versions('jax', 'jaxlib', 'flax', 'optax', 'torch')}",
        f"- Load average (1, 5, 15 min): before {load_before}; after {load_after}",
        f"- Matmul peak, GFLOP/s (best of n = 512, 1024, 2048): fp32 {gflops('float32')}; "
        f"bf16 with fp32 accumulation {gflops('bfloat16')}. Fraction of peak below: of the "
        "better library's figure at the contender's dtype.",
        f"- Each contender in a fresh process per round, {args.rounds} round(s), rotated order; "
        f"each child's figure the median of {args.repeats} timings of at least "
        f"{args.min_seconds} s; spread = (max - min) / median over rounds. "
        "PyTorch: `torch.set_num_threads(2)`, `OMP_WAIT_POLICY` unset. "
        f"GLIBC_TUNABLES: {glibc}. XLA_FLAGS: {xla}.",
        "- Training step: the layer, a readout to 256 classes at every step, cross-entropy, "
        "backward, Adam (optax / torch.optim); float32 unless the contender says bf16; input size "
        "= hidden size; all contenders from the same weights. GFLOP/s counts the matmuls of "
        "forward and backward (formula: `experiments/bench/contenders.py`).",
        *([f"- Not run: {args.skipped}."] if args.skipped else []),
        "",
    ]  # fmt: skip
    verdicts = []
    for mode in ("train", "infer"):
        groups = {k: v for k, v in results.items() if k[0] == mode}
        if not groups:
            continue
        title = "Training step" if mode == "train" else "Inference (forward and loss, no gradient)"
        lines += [f"### {title}", "", "| cell | B/T/H | contender | ms | spread | / PyTorch "
                  "| GFLOP/s | % of peak |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for (_, cell, shape), got in groups.items():
            med = {n: statistics.median(g["times"]) for n, g in got.items()}
            base = med.get("PyTorch")
            flop = contenders.flops(cell, *shape, mode)
            for name, t in med.items():
                dtype = "bfloat16" if name.endswith("bf16") else "float32"
                rate = flop / t / 1e9
                ratio = f"{t / base:.2f}" if base else "-"
                lines.append(
                    f"| {cell} | {'/'.join(map(str, shape))} | {name} | {report.ms(t)} | "
                    f"{report.spread(got[name]['times']):.0%} | {ratio} | {rate:.0f} | "
                    f"{rate / best[dtype]:.0%} |"
                )
            verdicts += bar_lines(mode, cell, shape, med, flop, best["float32"])
        lines.append("")
    losses = [g["loss0"] for got in results.values() for g in got.values()]
    spread = max(
        (max(abs(g["loss0"] - min(h["loss0"] for h in got.values())) / abs(g["loss0"])
             for g in got.values()) for got in results.values()),
        default=0.0,
    )  # fmt: skip
    lines += [
        f"First-step loss (same weights in every library): largest relative difference between "
        f"contenders {spread:.1e} over {len(losses)} runs.",
        "",
        "The issue's bars (seqjax's default `unroll`):",
        "",
        *verdicts,
        END,
    ]
    return "\n".join(lines)


def bar_lines(mode: str, cell: str, shape: tuple, med: dict, flop: float, peak: float) -> list:
    if "seqjax" not in med:
        return []
    where = f"{cell} {'/'.join(map(str, shape))} {mode}"
    ours, out = med["seqjax"], []
    if "PyTorch" in med:
        r, bar = ours / med["PyTorch"], BARS[cell]
        out.append(f"- {where}: {r:.2f} of PyTorch's time (bar {bar}): "
                   f"{'met' if r <= bar else 'NOT met'}")  # fmt: skip
    flax = {n: t for n, t in med.items() if n.startswith("Flax")}
    if flax:
        fastest = min(flax, key=flax.get)
        r = ours / flax[fastest]
        out.append(f"- {where}: {r:.2f} of {fastest}'s time (bar 1.0): "
                   f"{'met' if r <= 1.0 else 'NOT met'}")  # fmt: skip
    if tuple(shape) == PEAK_BAR[0] and mode == "train":
        frac = flop / ours / 1e9 / peak
        out.append(f"- {where}: {frac:.0%} of the fp32 matmul peak (bar {PEAK_BAR[1]:.0%}): "
                   f"{'met' if frac >= PEAK_BAR[1] else 'NOT met'}")  # fmt: skip
    return out


def refusal(load_before: tuple, load_after: tuple) -> str | None:
    """Why the docs must not get these figures (the machine was busy), or ``None``."""
    if report.busy(load_before, load_after):
        return (
            f"not writing: the 1-minute load average was {load_before[0]} before and "
            f"{load_after[0]} after the run (above {report.BUSY_LOAD} on 2 cores: other jobs "
            "shared the cores); rerun on a quiet machine"
        )
    return None


def _shapes(text: str) -> tuple:
    try:
        shapes = tuple(tuple(int(v) for v in s.split("x")) for s in text.split(","))
    except ValueError:
        shapes = ()
    if not shapes or any(len(s) != 3 or min(s) <= 0 for s in shapes):
        raise SystemExit(f"--shapes={text!r}: give BATCHxTxHIDDEN[,...], e.g. 32x128x256")
    return shapes


def parse(argv: list) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--shapes", default=None, help="BxTxH,... (default: the three)")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--contenders", default=None, help="comma-separated (default: see docs)")
    ap.add_argument("--rounds", type=int, default=None, help="default 3 (smoke: 1)")
    ap.add_argument("--repeats", type=int, default=None, help="timings per child (default 3)")
    ap.add_argument("--min-seconds", type=float, default=None, help="per timing (default 0.5)")
    ap.add_argument("--glibc-tunables", action="store_true")
    ap.add_argument("--xla-flags", default=None)
    ap.add_argument("--timeout", type=float, default=900, help="seconds per child")
    ap.add_argument("--smoke", action="store_true", help="tiny shape, one round, short timings")
    ap.add_argument("--out", default=None, help="markdown file whose generated section to rewrite")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return args
    args.cells = tuple(args.cells.split(","))
    args.modes = tuple(args.modes.split(","))
    bad = [c for c in args.cells if c not in CELLS] + [m for m in args.modes if m not in MODES]
    if bad:
        raise SystemExit(f"unknown cell or mode {bad}: cells {CELLS}, modes {MODES}")
    args.shapes = _shapes(args.shapes) if args.shapes else (SMOKE_SHAPES if args.smoke else SHAPES)
    args.contenders = args.contenders.split(",") if args.contenders else None
    args.skipped = ""
    if importlib.util.find_spec("torch") is None:
        args.skipped = "PyTorch contenders (torch is not installed: `pip install torch==2.13.0`)"
    for c in args.contenders or ():
        if not any(c in contenders.names(cell) for cell in args.cells):
            raise SystemExit(f"--contenders: {c!r} is not one of {contenders.names(args.cells[0])}")
    smoke = args.smoke
    args.rounds = args.rounds or (1 if smoke else 3)
    args.repeats = args.repeats or (1 if smoke else 3)
    args.min_seconds = args.min_seconds if args.min_seconds is not None else (0.0 if smoke else 0.5)
    return args


def main(argv: list | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.child:
        spec = json.loads(args.child)
        out = child_step(spec) if spec["kind"] == "step" else child_peak(spec)
        print("RESULT " + json.dumps(out), flush=True)
        return 0
    command = "PYTHONPATH=$PWD python experiments/bench/fair.py " + shlex.join(argv)
    load_before = report.load_average()
    print(f"load average before: {load_before}", file=sys.stderr)
    peak = peaks(args)
    results = measure(args)
    load_after = report.load_average()
    section = render(results, peak, command=command.strip(), load_before=load_before,
                     load_after=load_after, args=args)  # fmt: skip
    print(section)
    if args.out:
        why = refusal(load_before, load_after)
        if why:
            print(f"{args.out}: {why}", file=sys.stderr)
            return 3
        report.write_section(args.out, section, BEGIN, END)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
