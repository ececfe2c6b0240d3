"""Compile time and memory of a 2-layer LSTM training step against the sequence length T.

A training step = forward through two stacked ``seqjax.unroll`` LSTM layers, a linear readout to
``V`` classes with cross-entropy at every step, backward, Adam. For each T the step is jitted
fresh and timed in two parts: trace + lower to StableHLO (``jax.jit(step).lower``), and XLA
compile (``.compile()``). Memory is XLA's own static figure for the compiled program
(``compiled.memory_analysis()``: ``temp_size_in_bytes``, the scratch the step needs besides its
arguments and outputs), with and without ``remat=True`` (``jax.checkpoint`` around each step,
Chen et al. 2016, sec. 3), so it needs no run at T=16384.

Under ``lax.scan`` the step body is compiled once whatever T is, so compile time should stay flat
in T, while the residuals saved for the backward pass grow linearly in T (O(T * activations)
without remat, O(T * carry) with it).

It also runs the step, for ``--run-lengths``, in a fresh subprocess per (T, remat) and reports
the process's peak resident memory (``ru_maxrss``): what training at that length really takes.

Usage (writes its section of docs/benchmarks.md between its own markers):
  PYTHONPATH=$PWD python experiments/bench/compile_memory.py --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import seqjax

BEGIN = "<!-- BEGIN compile_memory (generated: experiments/bench/compile_memory.py --out) -->"
END = "<!-- END compile_memory -->"


def make_step(hidden: int, inputs: int, classes: int, remat: bool):
    cell = seqjax.cells.lstm(hidden)
    tx = optax.adam(1e-3)

    def init(key):
        k1, k2, k3 = jax.random.split(key, 3)
        params = {
            "l1": cell.init(k1, inputs),
            "l2": cell.init(k2, hidden),
            "w": jax.random.normal(k3, (hidden, classes)) / hidden**0.5,
        }
        return params, tx.init(params)

    def loss(params, xs, ys):
        h, _ = seqjax.unroll(cell, params["l1"], xs, remat=remat)
        h, _ = seqjax.unroll(cell, params["l2"], h, remat=remat)
        logits = h @ params["w"]
        # One-hot form: the integer-label form (take_along_axis) transposes to a scatter-add that
        # XLA constant-folds for seconds at large T, which would hide what the scan costs.
        return optax.softmax_cross_entropy(logits, jax.nn.one_hot(ys, logits.shape[-1])).mean()

    def step(params, opt_state, xs, ys):
        value, grads = jax.value_and_grad(loss)(params, xs, ys)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return init, step


def measure(T: int, remat: bool, args) -> dict:
    init, step = make_step(args.hidden, args.inputs, args.classes, remat)
    params, opt_state = jax.eval_shape(init, jax.random.key(0))
    xs = jax.ShapeDtypeStruct((args.batch, T, args.inputs), jnp.float32)
    ys = jax.ShapeDtypeStruct((args.batch, T), jnp.int32)
    t0 = time.perf_counter()
    lowered = jax.jit(step, donate_argnums=(0, 1)).lower(params, opt_state, xs, ys)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    mem = compiled.memory_analysis()
    return {
        "lower_s": t1 - t0,
        "compile_s": t2 - t1,
        "temp": mem.temp_size_in_bytes,
        "args": mem.argument_size_in_bytes,
    }


def run_child(T: int, remat: bool, args) -> None:
    """In a fresh process: compile and run two training steps at length T; print the peak
    resident memory (``ru_maxrss``) and the second step's time as one JSON line."""
    import json
    import resource

    import numpy as np

    init, step = make_step(args.hidden, args.inputs, args.classes, remat)
    params, opt_state = init(jax.random.key(0))
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.standard_normal((args.batch, T, args.inputs), dtype=np.float32))
    ys = jnp.asarray(rng.integers(0, args.classes, (args.batch, T)), jnp.int32)
    fn = jax.jit(step, donate_argnums=(0, 1))
    params, opt_state, loss = fn(params, opt_state, xs, ys)
    loss.block_until_ready()
    t = time.perf_counter()
    params, opt_state, loss = fn(params, opt_state, xs, ys)
    loss.block_until_ready()
    seconds = time.perf_counter() - t
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"maxrss": kib * 1024, "step_s": seconds, "loss": float(loss)}))


def measure_run(T: int, remat: bool, args) -> dict:
    import json
    import subprocess
    import sys

    cmd = [sys.executable, __file__, "--child", f"{T},{int(remat)}"]
    cmd += [f"--{k}={getattr(args, k)}" for k in ("batch", "inputs", "hidden", "classes")]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--compile-lengths", default="128,1024,8192")
    ap.add_argument("--memory-lengths", default="128,1024,4096,16384")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--inputs", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--classes", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3, help="compiles per T (median reported)")
    ap.add_argument("--out", help="markdown file whose section between the markers is rewritten")
    ap.add_argument("--run-lengths", default="1024,4096,16384", help="T run in a subprocess")
    ap.add_argument("--child", help=argparse.SUPPRESS)  # "T,remat": run_child in this process
    args = ap.parse_args()
    if args.child:
        T, remat = map(int, args.child.split(","))
        return run_child(T, bool(remat), args)
    load_before = os.getloadavg()

    lines = ["## Compile time and memory of a 2-layer LSTM training step (CPU)", ""]
    sizes = f"batch {args.batch}, input {args.inputs}, hidden {args.hidden}, {args.classes} classes"
    lines += [
        f"- Command: `PYTHONPATH=$PWD python experiments/bench/compile_memory.py --out "
        f"docs/benchmarks.md` ({sizes}; float32; forward + per-step cross-entropy + backward + "
        "Adam, jitted with donated state).",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; jax "
        f"{jax.__version__}, Python {platform.python_version()}, {jax.devices()[0].platform}.",
    ]
    rows = []
    for T in map(int, args.compile_lengths.split(",")):
        runs = [measure(T, False, args) for _ in range(args.repeats)]
        rows.append(
            (
                T,
                statistics.median(r["lower_s"] for r in runs),
                statistics.median(r["compile_s"] for r in runs),
            )
        )
        print(f"compile T={T}: lower {rows[-1][1]:.2f} s, compile {rows[-1][2]:.2f} s", flush=True)
    mem = []
    for T in map(int, args.memory_lengths.split(",")):
        plain, remat = measure(T, False, args), measure(T, True, args)
        mem.append((T, plain["temp"], remat["temp"], plain["args"]))
        print(f"memory T={T}: temp {mib(plain['temp'])} MiB, remat {mib(remat['temp'])} MiB")
    ran = []
    for T in map(int, args.run_lengths.split(",")) if args.run_lengths else ():
        plain, remat = measure_run(T, False, args), measure_run(T, True, args)
        ran.append((T, plain, remat))
        print(f"run T={T}: maxrss {mib(plain['maxrss'])} MiB, remat {mib(remat['maxrss'])} MiB")
    load_after = os.getloadavg()
    lines += [
        f"- Load average (1, 5, 15 min) before {', '.join(f'{x:.2f}' for x in load_before)}; "
        f"after {', '.join(f'{x:.2f}' for x in load_after)}: the machine is shared, so the "
        "seconds are noisy; the trend in T is the point.",
        "",
        f"Compile time (median of {args.repeats} fresh jits, seconds):",
        "",
        "| T | trace + lower | XLA compile |",
        "|---|---|---|",
    ]
    lines += [f"| {T} | {lo:.2f} | {co:.2f} |" for T, lo, co in rows]
    lines += [
        "",
        "Memory: XLA's `compiled.memory_analysis().temp_size_in_bytes` (scratch besides arguments "
        "and outputs; the arguments, i.e. parameters, Adam state and the batch, are listed too), "
        "MiB:",
        "",
        "| T | temp, remat=False | temp, remat=True | remat / plain | arguments |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {T} | {mib(p)} | {mib(r)} | {r / p:.2f} | {mib(a)} |" for T, p, r, a in mem]
    if ran:
        lines += [
            "",
            "Measured by running: a fresh process per row compiles and runs two training steps; "
            "peak resident memory of the process (`ru_maxrss`, MiB, including Python, JAX and "
            "the compiled program) and the second step's wall time:",
            "",
            "| T | maxrss, remat=False | maxrss, remat=True | remat / plain "
            "| step s, remat=False | step s, remat=True |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {T} | {mib(p['maxrss'])} | {mib(r['maxrss'])} | {r['maxrss'] / p['maxrss']:.2f} "
            f"| {p['step_s']:.2f} | {r['step_s']:.2f} |"
            for T, p, r in ran
        ]
    section = "\n".join([BEGIN, *lines, END]) + "\n"
    print(section)
    if args.out:
        path = pathlib.Path(args.out)
        text = path.read_text() if path.exists() else ""
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            text = head + section.rstrip("\n") + rest.split(END, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n" + section
        path.write_text(text)


if __name__ == "__main__":
    main()
