"""``seqjax bench cells``: one training step of seqjax, PyTorch and Flax cells, side by side.

A training step is what a user pays for: forward over the sequence, a linear readout to 256
classes with softmax cross-entropy at every step, backward, and an Adam update (optax for JAX,
``torch.optim.Adam`` for PyTorch), in float32, with the input size equal to the hidden size.
For each cell (LSTM, GRU, Elman) and shape (batch, T, hidden) the contenders are:

* ``seqjax``: :func:`seqjax.unroll` with ``hoist=False`` (input projection inside the loop) and
  ``hoist=True`` (one matmul over all steps before the loop).
* ``PyTorch``: ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` (oneDNN on CPU), ``torch.set_num_threads(2)``.
* ``Flax``: ``nn.RNN`` over ``LSTMCell`` and ``OptimizedLSTMCell`` / ``GRUCell`` / ``SimpleCell``.
* ``matmul-only scan``: a ``lax.scan`` doing only the step's two matmuls (``x_t W_x + h W_h + b``,
  its gate blocks summed instead of any gate math): a floor for any scan of that cell.

All contenders live in one process. Each (cell, shape) group is compiled and warmed up, then timed
for ``--rounds`` rounds, the order rotated every round so that no contender always runs first or
last; the figure is the median over rounds. Other load on the machine moves absolute times by
15-30% between runs (``PERF_NOTES.md``); ratios from one run are what to compare.

Run ``seqjax bench cells --out docs/benchmarks.md`` to rewrite the generated section of that file
(the rest of it is kept). PyTorch is needed: ``pip install torch==2.13.0``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from typing import Callable, NamedTuple

from seqjax.errors import UserError

SHAPES = ((32, 128, 256), (64, 256, 512), (16, 1024, 128))
QUICK_SHAPES = ((8, 32, 64),)
CELLS = ("lstm", "gru", "elman")
CLASSES = 256
GATES = {"lstm": 4, "gru": 3, "elman": 1}
TORCH_PIN = "torch==2.13.0"
# PERF_NOTES.md: without these glibc returns fresh pages for every large buffer (10k-150k minor
# page faults per step, 10-20% of the step time in both frameworks).
GLIBC_TUNABLES = (
    "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184:glibc.malloc.arena_max=1"
)
BEGIN = "<!-- BEGIN seqjax bench cells (generated: rewritten by `seqjax bench cells --out`) -->"
END = "<!-- END seqjax bench cells -->"
# --mode=infer writes its own section, so the two tables live side by side in one file.
INFER_BEGIN = BEGIN.replace("cells", "cells (mode infer)", 1)
INFER_END = END.replace("cells", "cells (mode infer)", 1)


class Result(NamedTuple):
    cell: str
    shape: tuple  # (batch, T, hidden)
    impl: str
    times: list  # seconds per training step, one per round


def import_torch():
    """PyTorch, imported only here: it is a benchmark-only dependency."""
    # With other jobs on the cores, OpenMP threads that spin-wait at every barrier make small
    # PyTorch steps 5-100x slower (measured on this project's shared 2-core machine); sleeping
    # waits remove that. Read by libgomp when torch loads, so set before the import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        raise UserError(
            f"torch: not installed, and `seqjax bench` compares against PyTorch; "
            f"run `pip install {TORCH_PIN}` (or `pip install -e .[bench]`)"
        ) from None
    return torch


# Contenders --------------------------------------------------------------------------------------
# Each builder returns ``run(n)``: n training steps, blocking until the last one is done.


def _jax_trainer(forward: Callable, rnn_params, xs, labels, mode: str = "train") -> Callable:
    import jax
    import jax.numpy as jnp
    import optax

    H = jax.eval_shape(forward, rnn_params, xs).shape[-1]
    kw, _ = jax.random.split(jax.random.key(1))
    params = {
        "rnn": rnn_params,
        "head": {
            "w": jax.random.normal(kw, (H, CLASSES), jnp.float32) / H**0.5,
            "b": jnp.zeros((CLASSES,), jnp.float32),
        },
    }
    opt = optax.adam(1e-3)

    def loss_fn(p, xs, labels):
        ys = forward(p["rnn"], xs)
        logits = ys @ p["head"]["w"] + p["head"]["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    def train_step(p, s, xs, labels):
        loss, g = jax.value_and_grad(loss_fn)(p, xs, labels)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    if mode == "infer":  # forward and loss only: no gradient, no update
        infer = jax.jit(loss_fn)

        def run_infer(n: int) -> None:
            for _ in range(n):
                loss = infer(params, xs, labels)
            loss.block_until_ready()

        return run_infer

    step = jax.jit(train_step, donate_argnums=(0, 1))
    state = [params, opt.init(params)]

    def run(n: int) -> None:
        p, s = state
        for _ in range(n):
            p, s, loss = step(p, s, xs, labels)
        loss.block_until_ready()
        state[:] = [p, s]

    return run


def _seqjax(cell_name: str, H: int, hoist, xs, labels, mode, backend="sequential") -> Callable:
    import jax

    import seqjax

    cell = seqjax.cells.get(cell_name, H)
    params = cell.init(jax.random.key(0), xs.shape[-1])
    forward = lambda p, xs: seqjax.unroll(cell, p, xs, hoist=hoist, backend=backend)[0]
    return _jax_trainer(forward, params, xs, labels, mode)


def _flax(cell_cls_name: str, H: int, xs, labels, mode) -> Callable:
    import flax.linen as nn
    import jax

    model = nn.RNN(getattr(nn, cell_cls_name)(H))
    params = model.init(jax.random.key(0), xs)["params"]
    forward = lambda p, xs: model.apply({"params": p}, xs)
    return _jax_trainer(forward, params, xs, labels, mode)


def _matmul_only(cell_name: str, H: int, xs, labels, mode) -> Callable:
    """``h_t = sum over gate blocks of (x_t W_x + h_{t-1} W_h + b)``: the matmuls, no gate math."""
    import jax
    import jax.numpy as jnp

    G, I = GATES[cell_name], xs.shape[-1]
    kx, kh = jax.random.split(jax.random.key(0))
    params = {
        "w_x": jax.random.normal(kx, (I, G * H), jnp.float32) / I**0.5,
        # Small enough that the linear recurrence stays bounded over thousands of steps.
        "w_h": 0.5 * jax.random.normal(kh, (H, G * H), jnp.float32) / (G * H) ** 0.5,
        "b": jnp.zeros((G * H,), jnp.float32),
    }

    def forward(p, xs):
        def body(h, x):
            z = x @ p["w_x"] + h @ p["w_h"] + p["b"]
            h = z.reshape(*z.shape[:-1], G, H).sum(-2)
            return h, h

        h0 = jnp.zeros((xs.shape[0], H), jnp.float32)
        _, ys = jax.lax.scan(body, h0, jnp.swapaxes(xs, 0, 1))
        return jnp.swapaxes(ys, 0, 1)

    return _jax_trainer(forward, params, xs, labels, mode)


def _pytorch(torch, cell_name: str, H: int, xs_np, labels_np, mode) -> Callable:
    torch.manual_seed(0)
    Module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "elman": torch.nn.RNN}[cell_name]
    rnn = Module(xs_np.shape[-1], H, batch_first=True)
    head = torch.nn.Linear(H, CLASSES)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=1e-3)
    x = torch.from_numpy(xs_np)
    y = torch.from_numpy(labels_np.astype("int64")).reshape(-1)

    if mode == "infer":

        def run_infer(n: int) -> None:
            with torch.inference_mode():
                for _ in range(n):
                    out, _ = rnn(x)
                    torch.nn.functional.cross_entropy(head(out).reshape(-1, CLASSES), y)

        return run_infer

    def run(n: int) -> None:
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            out, _ = rnn(x)
            loss = torch.nn.functional.cross_entropy(head(out).reshape(-1, CLASSES), y)
            loss.backward()
            opt.step()

    return run


FLAX_CELLS = {
    "lstm": ("LSTMCell", "OptimizedLSTMCell"),
    "gru": ("GRUCell",),
    "elman": ("SimpleCell",),
}


def contenders(torch, cell_name: str, shape: tuple, mode: str = "train") -> dict:
    import jax.numpy as jnp
    import numpy as np

    B, T, H = shape
    rng = np.random.default_rng(0)
    xs_np = rng.standard_normal((B, T, H), dtype=np.float32)
    labels_np = rng.integers(0, CLASSES, (B, T)).astype(np.int32)
    xs, labels = jnp.asarray(xs_np), jnp.asarray(labels_np)
    runs = {
        "PyTorch": _pytorch(torch, cell_name, H, xs_np, labels_np, mode),
        "seqjax hoist=False": _seqjax(cell_name, H, False, xs, labels, mode),
        "seqjax hoist=True": _seqjax(cell_name, H, True, xs, labels, mode),
    }
    if cell_name == "lstm":  # the cells with a fused form (seqjax.cells.fused)
        for hoist in (False, True):
            runs[f"seqjax fused hoist={hoist}"] = _seqjax(
                cell_name, H, hoist, xs, labels, mode, backend="fused"
            )
    for name in FLAX_CELLS[cell_name]:
        runs[f"Flax {name}"] = _flax(name, H, xs, labels, mode)
    runs["matmul-only scan"] = _matmul_only(cell_name, H, xs, labels, mode)
    return runs


# Timing ------------------------------------------------------------------------------------------


def time_group(runs: dict, rounds: int, min_seconds: float = 0.25) -> dict:
    """Median-ready timings: warm up every contender, then ``rounds`` rotated rounds."""
    reps = {}
    for name, run in runs.items():
        run(1)  # compile
        run(1)
        t = time.perf_counter()
        run(1)
        # Enough steps per measurement that each lasts at least ``min_seconds``.
        reps[name] = max(1, round(min_seconds / (time.perf_counter() - t)))
    names = list(runs)
    times = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            t = time.perf_counter()
            runs[name](reps[name])
            times[name].append((time.perf_counter() - t) / reps[name])
    return times


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
        mem = f", {kib / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} vCPU {model}{mem}, {platform.system()} {platform.release()}"


def versions(torch) -> str:
    import flax
    import jax
    import jaxlib
    import optax

    found = re.search(r"(?:MKL-DNN|oneDNN) (v[\d.]+)", torch.__config__.show())
    onednn = f" (oneDNN {found.group(1)})" if found else ""
    return (
        f"Python {platform.python_version()}, jax {jax.__version__}, jaxlib {jaxlib.__version__}, "
        f"flax {flax.__version__}, optax {optax.__version__}, torch {torch.__version__}{onednn}"
    )


# Report ------------------------------------------------------------------------------------------


def _ms(t: float) -> str:
    return f"{1e3 * t:.0f}" if t >= 0.01 else f"{1e3 * t:.1f}"


def table(results: list) -> str:
    """Markdown table: median ms per training step (time relative to PyTorch)."""
    cols = [
        "PyTorch",
        "seqjax hoist=False",
        "seqjax hoist=True",
        "seqjax fused hoist=False",
        "seqjax fused hoist=True",
        "Flax LSTMCell / GRUCell / SimpleCell",
        "Flax OptimizedLSTMCell",
        "matmul-only scan",
    ]
    alias = {"Flax LSTMCell": 5, "Flax GRUCell": 5, "Flax SimpleCell": 5}
    rows = {}
    for r in results:
        rows.setdefault((r.cell, r.shape), {})[r.impl] = statistics.median(r.times)
    lines = [
        "| cell, batch/T/hidden | " + " | ".join(cols) + " | hoist=True / hoist=False |",
        "|---" * (len(cols) + 2) + "|",
    ]
    for (cell, shape), med in rows.items():
        base = med.get("PyTorch")
        cells = ["-"] * len(cols)
        for impl, t in med.items():
            i = alias.get(impl, cols.index(impl) if impl in cols else None)
            if i is not None:
                cells[i] = _ms(t) + (f" ({t / base:.2f})" if base else "")
        hoist = med["seqjax hoist=True"] / med["seqjax hoist=False"]
        name = {"lstm": "LSTM", "gru": "GRU", "elman": "Elman"}[cell]
        lines.append(
            f"| {name} {'/'.join(map(str, shape))} | " + " | ".join(cells) + f" | {hoist:.2f} |"
        )
    return "\n".join(lines)


def default_contender(cell_name: str) -> str:
    """The contender that runs what ``seqjax.unroll`` does by default for ``cell_name`` here."""
    import seqjax
    from seqjax import scan

    hoist = scan.default_hoist()
    if scan.auto_fused(seqjax.cells.get(cell_name, 1)):
        return f"seqjax fused hoist={hoist}"
    return f"seqjax hoist={hoist}"


def lstm_bar(results: list) -> list:
    """The issue's bar: seqjax (at its default backend and hoist) no slower than Flax's fastest
    LSTM."""
    default = default_contender("lstm")
    med = {}
    for r in results:
        if r.cell == "lstm":
            med.setdefault(r.shape, {})[r.impl] = statistics.median(r.times)
    lines = []
    for shape, m in med.items():
        flax_best = min(t for impl, t in m.items() if impl.startswith("Flax"))
        ours = m[default]
        verdict = "met" if ours <= flax_best else "NOT met"
        lines.append(
            f"- LSTM {'/'.join(map(str, shape))}: {default} {_ms(ours)} ms vs Flax's fastest "
            f"{_ms(flax_best)} ms (ratio {ours / flax_best:.2f}): {verdict}"
        )
    return lines


def spread(results: list) -> str:
    """The largest interquartile range relative to its median, over all contenders."""
    worst = None
    for r in results:
        if len(r.times) >= 4:
            q = statistics.quantiles(r.times, n=4)
            worst = max(worst or 0.0, (q[2] - q[0]) / statistics.median(r.times))
    return "n/a (under 4 rounds)" if worst is None else f"{worst:.0%}"


def report(
    results: list,
    *,
    command: str,
    torch,
    load_before: str,
    load_after: str,
    rounds: int,
    mode: str = "train",
):
    tunables = os.environ.get("GLIBC_TUNABLES")
    glibc = (
        f"set for this run: `GLIBC_TUNABLES={tunables}` (PERF_NOTES.md: removes the page faults "
        "of fresh large buffers in both frameworks)"
        if tunables
        else "not set (default glibc malloc; see PERF_NOTES.md on `GLIBC_TUNABLES`)"
    )
    return "\n".join(
        [
            BEGIN if mode == "train" else INFER_BEGIN,
            "## Training step of one-layer cells (CPU)"
            if mode == "train"
            else "## Inference of one-layer cells (CPU): forward and loss, no gradient",
            "",
            f"- Command: `{command}`",
            f"- Date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
            f"- Machine: {machine()}; shared with other engineers' jobs, so absolute times move "
            "between runs: compare the ratios of one run.",
            f"- Load average (1, 5, 15 min, as `uptime` shows it): before {load_before}; "
            f"after {load_after}.",
            f"- Versions: {versions(torch)}.",
            f"- GLIBC_TUNABLES: {glibc}.",
            f"- PyTorch: `torch.set_num_threads(2)`, "
            f"`OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}`"
            " (spin-waiting OpenMP threads are 5-100x slower on small steps when other jobs"
            " share the cores).",
            f"- One step: forward, readout to {CLASSES} classes with cross-entropy at every step"
            + (", backward, Adam" if mode == "train" else " (`torch.inference_mode()`, `jax.jit`)")
            + "; float32; input size = hidden size. Median of "
            f"{rounds} rounds in rotated order, all contenders in one process; largest "
            f"interquartile range / median over all entries: {spread(results)}.",
            "",
            "Median ms per training step; in brackets the time relative to PyTorch (lower is "
            "faster). Last column: seqjax with the input projection hoisted out of the loop "
            "relative to inside it.",
            "",
            table(results),
            "",
            "The issue's bar (seqjax's default for the LSTM, what `seqjax.unroll` runs without "
            "options, no slower than Flax's fastest LSTM):",
            "",
            *lstm_bar(results),
            END if mode == "train" else INFER_END,
        ]
    )


def write_section(path: str, section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replaces the generated section of ``path`` (or appends it), keeping everything else.

    Written to a temporary file and renamed, so the file is never left half-written.
    """
    old = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + section + rest.split(end, 1)[1]
    elif old:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    else:
        new = "# Benchmarks\n\n" + section + "\n"
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, path)


# Command line ------------------------------------------------------------------------------------


def _parse_shapes(text: str) -> tuple:
    try:
        shapes = tuple(tuple(int(v) for v in s.split("x")) for s in text.split(","))
    except ValueError:
        shapes = ()
    if not shapes or any(len(s) != 3 or min(s) <= 0 for s in shapes):
        raise UserError(f"--shapes={text!r}: give BATCHxTxHIDDEN[,...], e.g. 32x128x256")
    return shapes


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(
        prog="seqjax bench",
        description="Time one training step of seqjax, PyTorch and Flax cells side by side.",
    )
    parser.add_argument("what", choices=["cells"], help="what to benchmark")
    parser.add_argument("--quick", action="store_true", help="one tiny shape, 3 rounds (smoke)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 9)")
    parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated: lstm,gru,elman")
    parser.add_argument("--shapes", default=None, help="BATCHxTxHIDDEN,... (default: the 3)")
    parser.add_argument("--out", default=None, help="markdown file whose section to rewrite")
    parser.add_argument(
        "--mode",
        choices=["train", "infer"],
        default="train",
        help="train: forward, backward, Adam (default); infer: forward and loss only",
    )
    parser.add_argument(
        "--glibc-tunables",
        action="store_true",
        help="rerun in a child process with PERF_NOTES.md's GLIBC_TUNABLES (fewer page faults)",
    )
    args = parser.parse_args(argv[1:])
    torch = import_torch()
    if args.glibc_tunables and os.environ.get("GLIBC_TUNABLES") != GLIBC_TUNABLES:
        env = {**os.environ, "GLIBC_TUNABLES": GLIBC_TUNABLES}
        return subprocess.run([sys.executable, "-m", "seqjax.cli", *argv], env=env).returncode

    cells = tuple(c.strip() for c in args.cells.split(","))
    for c in cells:
        if c not in CELLS:
            raise UserError(f"--cells={args.cells!r}: {c!r} is not one of {', '.join(CELLS)}")
    rounds = args.rounds if args.rounds is not None else (3 if args.quick else 9)
    if rounds < 1:
        raise UserError(f"--rounds={rounds}: must be at least 1")
    if args.shapes:
        shapes = _parse_shapes(args.shapes)
    else:
        shapes = QUICK_SHAPES if args.quick else SHAPES
    command = "seqjax " + " ".join(argv)
    if os.environ.get("GLIBC_TUNABLES"):
        command = f"GLIBC_TUNABLES={os.environ['GLIBC_TUNABLES']} {command}"

    torch.set_num_threads(2)
    load_before = load_average()
    results = []
    for cell in cells:
        for shape in shapes:
            t0 = time.perf_counter()
            runs = contenders(torch, cell, shape, args.mode)
            times = time_group(runs, rounds)
            results += [Result(cell, shape, impl, ts) for impl, ts in times.items()]
            del runs
            gc.collect()
            print(
                f"{cell} {'/'.join(map(str, shape))}: done in {time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    section = report(
        results,
        command=command,
        torch=torch,
        load_before=load_before,
        load_after=load_average(),
        rounds=rounds,
        mode=args.mode,
    )
    print(section)
    if args.out:
        markers = (BEGIN, END) if args.mode == "train" else (INFER_BEGIN, INFER_END)
        write_section(args.out, section, *markers)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(["bench", *sys.argv[1:]]))
