"""Modern cells: sequential vs parallel training steps, against the classic GRU and LSTM.

One training step = forward, backward and an Adam update of a one-layer recurrent model with a
linear read-out to 256 classes and cross-entropy at every step (as in ``contenders.py``), float32,
batch 16, hidden 256, input 256. minGRU, minLSTM and LRU run with both backends
(``seqjax.unroll(..., backend="sequential" | "parallel")``), minGRU also with its linear-space
parallel form (``log_space=False``, "parallel-linear"); GRU and LSTM step by step. All
configurations share one process; at each T they are compiled, warmed up once, then timed in
rounds with a rotated order, and the median is reported. Memory is XLA's compiled memory analysis
of the jitted step (temporary buffers, the peak scratch the program needs beyond its arguments
and outputs), which is exact and does not depend on what else runs on the machine.

A second table times the scan alone (forward + backward of ``sum(h**2)``) in four forms, and
measures the accuracy of the two log-space forms against a float64 loop.

Usage::

    python experiments/bench/modern.py            # full run, ~15 min on 2 cores
    python experiments/bench/modern.py --quick    # T in {128, 1024}, 2 rounds: a smoke run
    python experiments/bench/modern.py --write docs/benchmarks.md   # also update that section

A configuration whose predicted time (its previous step time scaled linearly in T, times the
number of calls) exceeds ``--max-seconds-per-config`` is skipped, and the table says so.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import seqjax
from seqjax.cells.linear_scan import linear_scan, log_linear_scan
from seqjax.cells.mingru import log_g

HEADING = "## Modern cells: sequential vs parallel"
CONFIGS = [  # (cell, backend); "parallel-linear" = parallel with log_space=False
    ("mingru", "sequential"),
    ("mingru", "parallel"),
    ("mingru", "parallel-linear"),
    ("minlstm", "sequential"),
    ("minlstm", "parallel"),
    ("lru", "sequential"),
    ("lru", "parallel"),
    ("gru", "sequential"),
    ("lstm", "sequential"),
]
BATCH, HIDDEN, INPUT, CLASSES = 16, 256, 256, 256


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def build(cell_name: str, backend: str, T: int):
    """A compiled training step, its arguments, and XLA's temp-buffer size in bytes."""
    kwargs = {"log_space": False} if backend == "parallel-linear" else {}
    backend = backend.split("-")[0]
    cell = seqjax.cells.get(cell_name, HIDDEN, **kwargs)
    k_cell, k_out, k_x, k_y = jax.random.split(jax.random.key(0), 4)
    params = {
        "cell": cell.init(k_cell, INPUT),
        "w_out": jax.random.normal(k_out, (HIDDEN, CLASSES)) / np.sqrt(HIDDEN),
    }
    xs = jax.random.normal(k_x, (BATCH, T, INPUT))
    targets = jax.random.randint(k_y, (BATCH, T), 0, CLASSES)
    opt = optax.adam(1e-3)

    def loss(params, xs, targets):
        ys, _ = seqjax.unroll(cell, params["cell"], xs, backend=backend)
        logits = ys @ params["w_out"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

    def train_step(params, opt_state, xs, targets):
        value, grads = jax.value_and_grad(loss)(params, xs, targets)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    args = (params, opt.init(params), xs, targets)
    t0 = time.perf_counter()
    compiled = jax.jit(train_step).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    temp = compiled.memory_analysis().temp_size_in_bytes
    return compiled, args, temp, compile_s


def available_memory() -> int:
    """``MemAvailable`` in bytes (Linux), or unlimited where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            kib = next(int(ln.split()[1]) for ln in f if ln.startswith("MemAvailable:"))
        return kib * 1024
    except (OSError, StopIteration, ValueError):
        return 1 << 62


def timed(fn, args) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t0


def bench_training(lengths, rounds, max_seconds):
    """{(cell, backend, T): (median s, temp bytes) or ("skipped", predicted s)}."""
    results, last = {}, {}
    for T in lengths:
        built = {}
        for cfg in CONFIGS:
            if cfg in last:
                prev_T, prev_s = last[cfg]
                predicted = prev_s * T / prev_T
                if predicted * (rounds + 1) > max_seconds:
                    results[(*cfg, T)] = ("skipped", f"~{predicted:.0f} s/step predicted")
                    print(f"T={T} {cfg}: skipped, predicted {predicted:.1f} s/step", flush=True)
                    continue
            compiled, args, temp, compile_s = build(*cfg, T)
            if temp > 0.6 * available_memory():  # a machine shared with others: do not swamp it
                results[(*cfg, T)] = ("skipped", f"needs {temp / 2**30:.1f} GiB of temporaries")
                print(f"T={T} {cfg}: skipped, temp {temp / 2**30:.1f} GiB", flush=True)
                continue
            timed(compiled, args)  # warm-up: first-touch page faults, thread pools
            built[cfg] = (compiled, args, temp)
            print(f"T={T} {cfg}: compiled in {compile_s:.1f} s, temp {temp / 2**20:.0f} MiB")
        times = {cfg: [] for cfg in built}
        order = list(built)
        for r in range(rounds):
            for cfg in order[r % len(order) :] + order[: r % len(order)]:
                times[cfg].append(timed(*built[cfg][:2]))
        for cfg, ts in times.items():
            med = statistics.median(ts)
            results[(*cfg, T)] = (med, built[cfg][2])
            last[cfg] = (T, med)
            print(f"T={T} {cfg}: {1e3 * med:.1f} ms  {[round(1e3 * t) for t in ts]}", flush=True)
        del built
    return results


def heinsen_scan(log_a, log_b):
    """Heinsen 2023's two-pass form (zero initial state): ``A + logcumsumexp(log b - A)``."""
    a_star = jnp.cumsum(log_a, axis=-2)
    return jnp.exp(a_star + jax.lax.cumlogsumexp(log_b - a_star, axis=log_b.ndim - 2))


def pairs_scan(log_a, log_b):
    return log_linear_scan(log_a, log_b, jnp.zeros(log_b.shape[:-2] + log_b.shape[-1:]))


def linear_space_scan(log_a, log_b):
    return linear_scan(jnp.exp(log_a), jnp.exp(log_b), jnp.zeros(log_b.shape[:-2] + (1,)))


def sequential_scan(log_a, log_b):
    def body(h, ab):
        h = jnp.exp(ab[0]) * h + jnp.exp(ab[1])
        return h, h

    tm = lambda a: jnp.moveaxis(a, -2, 0)  # noqa: E731
    h0 = jnp.zeros(log_b.shape[:-2] + log_b.shape[-1:])
    return jnp.moveaxis(jax.lax.scan(body, h0, (tm(log_a), tm(log_b)))[1], 0, -2)


SCANS = {
    "lax.scan (sequential)": sequential_scan,
    "associative, linear space": linear_space_scan,
    "associative, log-space pairs (seqjax)": pairs_scan,
    "Heinsen cumsum + logcumsumexp": heinsen_scan,
}


def min_gates(k, scale):
    """minGRU's ``(log a, log b)`` from pre-activations ``scale * k``, ``k: (..., 2, H)``."""
    k = scale * k
    log_a = -jax.nn.softplus(k[..., 0, :])
    log_b = -jax.nn.softplus(-k[..., 0, :]) + log_g(k[..., 1, :])
    return log_a, log_b


def bench_scans(lengths, rounds):
    """Scan-only timings: forward + backward of ``sum(h**2)``."""
    timing = {}
    for T in lengths:
        k = jax.random.normal(jax.random.key(0), (BATCH, T, 2, HIDDEN))
        log_a, log_b = min_gates(k, 1.0)
        fns = {
            name: jax.jit(jax.grad(lambda a, b, f=f: (f(a, b) ** 2).sum(), argnums=(0, 1)))
            for name, f in SCANS.items()
        }
        for f in fns.values():
            timed(f, (log_a, log_b))
        ts = {name: [] for name in fns}
        for _ in range(rounds):
            for name, f in fns.items():
                ts[name].append(timed(f, (log_a, log_b)))
        for name in fns:
            timing[(name, T)] = statistics.median(ts[name])
            print(f"scan T={T} {name}: {1e3 * timing[(name, T)]:.1f} ms", flush=True)
    return timing


def scan_accuracy():
    """Largest relative error of each scan form against a float64 loop, T = 16384, hidden 4."""
    accuracy = {}
    for scale in (1.0, 1e3):
        T, H = 16384, 4
        k = jax.random.normal(jax.random.key(1), (T, 2, H))
        log_a, log_b = min_gates(k, scale)
        a, b = np.exp(np.asarray(log_a, np.float64)), np.exp(np.asarray(log_b, np.float64))
        h, ref = np.zeros(H), np.empty((T, H))
        for t in range(T):
            h = a[t] * h + b[t]
            ref[t] = h
        for name in SCANS:
            out = np.asarray(jax.jit(SCANS[name])(log_a, log_b), np.float64)
            rel = np.abs(out - ref) / np.maximum(np.abs(ref), 1e-30)
            accuracy[(name, scale)] = (float(rel[:512].max()), float(rel.max()))
    return accuracy


def render(results, lengths, scan_timing, scan_lengths, accuracy, meta) -> str:
    ms = lambda v: f"{1e3 * v:.0f}" if v >= 0.1 else f"{1e3 * v:.1f}"  # noqa: E731
    lines = [
        f"Command: `{meta['command']}`. Machine: {meta['machine']}; jax {jax.__version__}, "
        f"backend {jax.default_backend()}. Load (`uptime`) before: {meta['load_before']}; "
        f"after: {meta['load_after']}. Run took {meta['minutes']:.1f} min. "
        f"GLIBC_TUNABLES: {os.environ.get('GLIBC_TUNABLES', 'unset')}.",
        "",
        f"Training step (forward, backward, Adam; read-out to {CLASSES} classes), batch {BATCH}, "
        f"hidden {HIDDEN}, input {INPUT}, float32: median ms of {meta['rounds']} rounds in "
        "rotated order, one process. In brackets: XLA temp buffers of the compiled step (MiB).",
        "",
        "| cell | backend | " + " | ".join(f"T={T}" for T in lengths) + " |",
        "|---|---|" + "---|" * len(lengths),
    ]
    for cell, backend in CONFIGS:
        row = []
        for T in lengths:
            v = results.get((cell, backend, T))
            if v is None:
                row.append("-")
            elif v[0] == "skipped":
                row.append(f"skipped ({v[1]})")
            else:
                row.append(f"{ms(v[0])} ({v[1] / 2**20:.0f})")
        lines.append(f"| {cell} | {backend} | " + " | ".join(row) + " |")
    lines += ["", "Ratios (time / time; > 1 means the second is faster):", ""]
    lines += ["| ratio | " + " | ".join(f"T={T}" for T in lengths) + " |"]
    lines += ["|---|" + "---|" * len(lengths)]

    def t(cell, backend, T):
        v = results.get((cell, backend, T))
        return None if v is None or v[0] == "skipped" else v[0]

    pairs = [
        (f"{c} sequential / {c} parallel", (c, "sequential"), (c, "parallel"))
        for c in ("mingru", "minlstm", "lru")
    ] + [
        (
            "mingru parallel / mingru parallel-linear",
            ("mingru", "parallel"),
            ("mingru", "parallel-linear"),
        ),
        ("gru / mingru parallel", ("gru", "sequential"), ("mingru", "parallel")),
        ("gru / mingru sequential", ("gru", "sequential"), ("mingru", "sequential")),
        ("lstm / minlstm parallel", ("lstm", "sequential"), ("minlstm", "parallel")),
        ("lstm / minlstm sequential", ("lstm", "sequential"), ("minlstm", "sequential")),
    ]
    for label, num, den in pairs:
        cells = []
        for T in lengths:
            a, b = t(*num, T), t(*den, T)
            cells.append("-" if a is None or b is None else f"{a / b:.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### Log-space scan forms",
        "",
        f"The recurrence alone, minGRU gates from N(0, 1) pre-activations, batch {BATCH}, hidden "
        f"{HIDDEN}: forward + backward of `sum(h**2)`, median ms of {meta['rounds']} rounds.",
        "",
        "| form | " + " | ".join(f"T={T}" for T in scan_lengths) + " |",
        "|---|" + "---|" * len(scan_lengths),
    ]
    for name in SCANS:
        lines.append(
            f"| {name} | " + " | ".join(ms(scan_timing[(name, T)]) for T in scan_lengths) + " |"
        )
    return "\n".join(lines) + "\n\n" + render_accuracy(accuracy)


def render_accuracy(accuracy) -> str:
    lines = [
        "Largest relative error against a float64 loop, T = 16384, batch 1, hidden 4, float32:",
        "",
        "| form | gates N(0,1): t < 512 | all t | gates of size 1e3: t < 512 | all t |",
        "|---|---|---|---|---|",
    ]
    for name in SCANS:
        (a1, b1), (a2, b2) = accuracy[(name, 1.0)], accuracy[(name, 1e3)]
        lines.append(f"| {name} | {a1:.1e} | {b1:.1e} | {a2:.1e} | {b2:.1e} |")
    return "\n".join(lines) + "\n"


START = "<!-- experiments/bench/modern.py: generated from here -->"
END = "<!-- experiments/bench/modern.py: generated up to here -->"


def write_section(path: str, body: str) -> None:
    """Puts ``body`` between this benchmark's markers in ``path``, under :data:`HEADING`.

    Everything outside the markers (other sections, notes written by hand under the heading) is
    kept; without markers the section is appended. A temporary file is written and renamed, so
    the file is never left half-written.
    """
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    block = f"{START}\n{body}{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        new = head + block + rest.split(END, 1)[1]
    else:
        new = text.rstrip("\n") + f"\n\n{HEADING}\n\n{block}\n"
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".md")
    with os.fdopen(fd, "w") as f:
        f.write(new)
    os.replace(tmp, path)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} CPUs ({model})"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="T in {128, 1024}, 2 rounds")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 3)")
    parser.add_argument("--max-seconds-per-config", type=float, default=120.0)
    parser.add_argument("--write", metavar="PATH", help="update this section of a markdown file")
    parser.add_argument(
        "--accuracy-only", action="store_true", help="only the scan forms' accuracy table"
    )
    args = parser.parse_args(argv)
    if args.accuracy_only:
        print(render_accuracy(scan_accuracy()))
        return
    lengths = [128, 1024] if args.quick else [128, 1024, 4096, 16384]
    scan_lengths = [512] if args.quick else [512, 4096]
    rounds = args.rounds or (2 if args.quick else 3)
    meta = {
        "command": "python experiments/bench/modern.py " + " ".join(argv or sys.argv[1:]),
        "machine": machine(),
        "load_before": load(),
        "rounds": rounds,
    }
    print(meta["load_before"], flush=True)
    t0 = time.perf_counter()
    scan_timing, accuracy = bench_scans(scan_lengths, rounds), scan_accuracy()
    results = bench_training(lengths, rounds, args.max_seconds_per_config)
    meta["minutes"] = (time.perf_counter() - t0) / 60
    meta["load_after"] = load()
    body = render(results, lengths, scan_timing, scan_lengths, accuracy, meta)
    print(body)
    if args.write:
        write_section(args.write, body)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
