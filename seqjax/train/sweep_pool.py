"""``seqjax sweep --jobs N``: runs in worker processes, each pinned to its own cores; the status.

A sweep is many small runs. On a CPU the lever is processes, not ``vmap`` (measured on 2 cores:
the adding sweep's 24 runs took 240 s with two workers of one core against 422 s one at a time on
both cores, 1.76x; ``docs/benchmarks.md``).
:func:`run_workers` starts ``jobs`` worker processes (``python -m seqjax.train.sweep_pool
WORKDIR``), each pinned (``os.sched_setaffinity``) to ``threads_per_run`` cores of its own, so
that XLA sizes its thread pools to that share. Every worker claims the next run it can lock
(:func:`seqjax.train.sweep.claim`, in the order of :func:`next_run`), trains it with its output
in ``runs/NAME/train.log``, and goes on until no run is left; several sweeps or shards on one
directory share the work the same way. The workers share JAX's persistent compilation cache in
``WORKDIR/xla-cache/threads-N``: runs that differ only by seed compile once.

Bitwise reproducibility: XLA's float reductions depend on its thread count, so a run gives the
same bits only under the same ``threads_per_run``. Every run of a sweep runs under it, whatever
``jobs`` is: ``--jobs 1`` and ``--jobs 2`` give identical runs (``tests/test_sweep_pool.py``).

While the workers run, the console shows :func:`status` (done / running / failed / pending, the
last metric, the time left), refreshed in place on a terminal and every ``--status_every``
seconds in a log. SIGTERM or Ctrl-C reaches every worker: each saves its run's current step and
stops; a rerun resumes them.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Callable, Optional

from seqjax.errors import Interrupted, UserError
from seqjax.train import config as config_lib
from seqjax.train import files, preempt, sweep, sweep_results
from seqjax.train.sweep_results import CONFIG, DONE, SPEC

SMALL_MODEL = 1_000_000  # parameters; at most this: one core per run (the auto --jobs)
CACHE = "xla-cache"  # WORKDIR/xla-cache/threads-N: the workers' compiled programs


def cores() -> list[int]:
    """The CPU cores this process may run on."""
    return sorted(os.sched_getaffinity(0))


def auto_layout(num_params: int, available: int) -> tuple[int, int]:
    """``(jobs, threads_per_run)`` when ``--jobs``/``--threads_per_run`` are not given: small
    models (at most :data:`SMALL_MODEL` parameters) run one per core, since their steps are too
    short to use two cores well; larger ones one at a time on every core.

    Example:
      >>> auto_layout(20_000, 2), auto_layout(5_000_000, 2)
      ((2, 1), (1, 2))
    """
    if num_params <= SMALL_MODEL:
        return available, 1
    return 1, available


def count_params(config) -> int:
    """The parameter count of a run's model (shapes only: no parameter is drawn)."""
    import jax

    from seqjax import tasks

    task = tasks.build(config)
    shapes = jax.eval_shape(task.init, jax.random.key(0))
    return sum(math.prod(x.shape) for x in jax.tree.leaves(shapes))


def _worker_command(workdir, shard, retry_failed) -> list[str]:
    cmd = [sys.executable, "-m", "seqjax.train.sweep_pool", str(workdir)]
    if shard is not None:
        cmd.append(f"--shard={shard[0]}/{shard[1]}")
    if retry_failed:
        cmd.append("--retry_failed")
    return cmd


def _child_setup(cores: set) -> None:
    """In a worker before it starts: its cores, and death with the parent (Linux
    ``PR_SET_PDEATHSIG``), so that a sweep killed by SIGKILL leaves no worker training on."""
    os.sched_setaffinity(0, cores)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _env(workdir, threads_per_run: int) -> dict:
    """A worker's environment: this seqjax first on the path, and JAX's persistent compilation
    cache in ``WORKDIR/xla-cache/threads-N`` (unless ``JAX_COMPILATION_CACHE_DIR`` is set), so a
    program compiled for one run is loaded by the runs that differ from it only by seed (about
    7 s of compilation per run of the adding sweep on one core). Per thread count, since every
    run of a sweep must get the same bits whatever ``--jobs`` is."""
    root = str(pathlib.Path(__file__).resolve().parents[2])  # the seqjax this process runs
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if "JAX_COMPILATION_CACHE_DIR" not in env:
        cache = pathlib.Path(workdir).absolute() / CACHE / f"threads-{threads_per_run}"
        env["JAX_COMPILATION_CACHE_DIR"] = str(cache)
        env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    return env


def run_workers(
    config,
    workdir,
    *,
    jobs: int = 0,
    threads_per_run: int = 0,
    shard: Optional[tuple[int, int]] = None,
    retry_failed: bool = False,
    status_every: float = 30.0,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Prepares the sweep, runs it with ``jobs`` workers of ``threads_per_run`` cores each (0:
    :func:`auto_layout`), shows its status, writes the results; returns the finished records."""
    runs = sweep.prepare(config, workdir)
    workdir = pathlib.Path(workdir)
    available = cores()
    if not jobs or not threads_per_run:
        first = json.loads((workdir / "runs" / runs[0]["name"] / CONFIG).read_text())
        _, auto_threads = auto_layout(count_params(config_lib.validate(first)), len(available))
        threads_per_run = threads_per_run or auto_threads
        jobs = jobs or max(1, len(available) // threads_per_run)
    if jobs < 1 or threads_per_run < 1:
        raise UserError(f"--jobs={jobs}, --threads_per_run={threads_per_run}: must be >= 1")
    pending = [r for i, r in enumerate(runs) if sweep.in_shard(i, shard)]
    jobs = min(jobs, max(1, len(pending)))
    log(
        f"seqjax sweep: {len(pending)} runs{f' (shard {shard[0]}/{shard[1]})' if shard else ''}, "
        f"{jobs} workers x {threads_per_run} core(s) (this machine: {len(available)} cores), "
        f"logs in {workdir}/runs/NAME/train.log"
    )
    (workdir / "workers").mkdir(exist_ok=True)
    procs = []
    for k in range(jobs):
        share = range(k * threads_per_run, (k + 1) * threads_per_run)
        mine = {available[j % len(available)] for j in share}
        out = open(workdir / "workers" / f"worker-{k}.log", "a")  # noqa: SIM115 (closed below)
        procs.append(
            (
                subprocess.Popen(
                    _worker_command(workdir, shard, retry_failed),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=_env(workdir, threads_per_run),
                    preexec_fn=lambda cores=mine: _child_setup(cores),
                ),
                out,
            )
        )
    tty = sys.stdout.isatty()
    shown, last = None, 0.0
    with preempt.stop_requests() as stop:
        forwarded = False
        while any(p.poll() is None for p, _ in procs):
            if stop.signum is not None and not forwarded:  # each worker saves and stops
                for p, _ in procs:
                    if p.poll() is None:
                        p.send_signal(signal.SIGTERM)
                forwarded = True
            now = time.monotonic()
            if tty or now - last >= status_every:
                table = status(workdir, shard)
                if tty:
                    print("\033[H\033[J" + table, flush=True)  # redraw in place
                elif table != shown:
                    log(table)
                shown, last = table, now
            time.sleep(0.5 if tty else 1.0)
    for _, out in procs:
        out.close()
    codes = [p.returncode for p, _ in procs]
    sweep.write_report(workdir)
    log(status(workdir, shard))
    if stop.signum is not None or any(c == 128 + signal.SIGTERM for c in codes):
        raise Interrupted(
            f"stopped by {stop.name or 'SIGTERM'}: every running run saved its step; run the same "
            "command to go on",
            stop.signum or signal.SIGTERM,
        )
    crashed = [k for k, c in enumerate(codes) if c not in (0,)]
    if crashed:
        raise RuntimeError(
            f"sweep workers {crashed} ended with status {[codes[k] for k in crashed]}; see "
            f"{workdir}/workers/worker-K.log"
        )
    _, records = sweep_results.read_records(workdir)
    return records


# ----------------------------------------------------------------------------- status


def _remaining_seconds(rundir: pathlib.Path, num_steps: int) -> tuple[int, Optional[float]]:
    """``(last step logged, seconds left at its last speed)`` of a run."""
    train = files.read_metrics(rundir, "train")
    if not train:
        return 0, None
    last = train[-1]
    rate = next((r["steps_per_sec"] for r in reversed(train) if r.get("steps_per_sec")), None)
    left = (num_steps - last["step"]) / rate if rate else None
    return int(last["step"]), left


def _duration(seconds: Optional[float]) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else (f"{seconds // 60}m{seconds % 60:02d}s")
    )


def status(workdir, shard: Optional[tuple[int, int]] = None) -> str:
    """A table of the sweep's runs: done / running / failed / pending, step, last validation
    metric, time left; the summary line estimates the sweep's time left from the workers'
    speeds."""
    workdir = pathlib.Path(workdir)
    if not (workdir / SPEC).is_file():
        raise UserError(f"--workdir={workdir}: no {SPEC}; run seqjax sweep --workdir {workdir}")
    spec = json.loads((workdir / SPEC).read_text())
    rows, counts, left, running_rates = [], {}, [], 0
    for i, r in enumerate(spec["runs"]):
        if not sweep.in_shard(i, shard):
            continue
        rundir = workdir / "runs" / r["name"]
        config_path = rundir / CONFIG
        num_steps = json.loads(config_path.read_text())["train"]["num_steps"] if (
            config_path.is_file()) else 0  # fmt: skip
        step, secs = _remaining_seconds(rundir, num_steps)
        record = json.loads((rundir / DONE).read_text()) if (rundir / DONE).is_file() else None
        if record is not None:
            state = record["status"]
            step = record.get("step", step)
            secs = 0.0
        elif files.locked_by_another(rundir):
            state = "running"
            running_rates += 1
        else:
            state = "pending"
        counts[state] = counts.get(state, 0) + 1
        metric = ""
        valid = files.read_metrics(rundir, "validation")
        if record and record.get("validation"):
            metric = _metric(record["validation"])
        elif valid:
            metric = _metric(valid[-1])
        if state in ("running", "pending"):
            left.append(secs)
        rows.append((r["name"], state, f"{step}/{num_steps}", metric, _duration(secs)))
    known = [s for s in left if s is not None]
    per_run = (sum(known) / len(known)) if known else None
    total = None if per_run is None else per_run * len(left) / max(1, running_rates or 1)
    eta = "all finished" if not left else f"about {_duration(total)} left"
    head = ("run", "status", "step", "validation", "left")
    widths = [max(len(str(x[c])) for x in [head, *rows]) for c in range(5)]
    line = lambda x: "  ".join(f"{str(v):<{w}}" for v, w in zip(x, widths))  # noqa: E731
    summary = ", ".join(f"{counts[k]} {k}" for k in ("done", "running", "failed", "pending")
                        if counts.get(k))  # fmt: skip
    return "\n".join([line(head), *map(line, rows), f"{summary}; {eta}"])


def _metric(m: dict) -> str:
    for key in ("mse", "accuracy", "bpc", "perplexity", "loss"):
        if m.get(key) is not None:
            return f"{key} {m[key]:.4g}"
    return ""


# ----------------------------------------------------------------------------- the worker


def _program(run: dict) -> str:
    """What a run compiles: its overrides without the seeds (a seed changes values, not
    shapes), so runs that differ only by seed share one compiled program."""
    kept = {k: v for k, v in run["overrides"].items() if k != "seed" and not k.endswith(".seed")}
    return json.dumps(sweep_results.json_safe(kept), sort_keys=True)


def next_run(runs: list, workdir, tried: set, shard=None, retry_failed: bool = False):
    """The run a worker claims next, or ``None`` when none is left to it: among the runs of
    ``shard`` not done, not held by another process and not ``tried`` by this worker, the first
    of the lowest *tier* (tier k: the k-th run of its compiled program, :func:`_program`).

    So two workers do not compile the same program at once: the later runs of a program find it
    in the compilation cache. Within a tier above 0 the runs whose program took longest (the
    wall time of its earlier run) go first, so the sweep ends on short runs and no worker idles
    long at the end (longest-processing-time-first scheduling)."""
    workdir = pathlib.Path(workdir)
    tiers, walls, candidates = {}, {}, []
    for i, r in enumerate(runs):
        program = _program(r)
        tier = tiers[program] = tiers.get(program, -1) + 1
        rundir = workdir / "runs" / r["name"]
        if (rundir / DONE).is_file() and program not in walls:
            walls[program] = json.loads((rundir / DONE).read_text()).get("wall_s") or 0.0
        if not sweep.in_shard(i, shard) or r["name"] in tried:
            continue
        if sweep._done(rundir, retry_failed) is not None or files.locked_by_another(rundir):
            continue
        candidates.append((tier, program, i, r))
    if not candidates:
        return None
    tier, program, i, r = min(  # tier, then (above tier 0) the longest program, then grid order
        candidates, key=lambda c: (c[0], -walls.get(c[1], 0.0) if c[0] else 0.0, c[2])
    )
    return r


def worker(workdir, shard=None, retry_failed: bool = False) -> int:
    """One worker process: claims and trains runs of ``workdir`` (in the order of
    :func:`next_run`) until none is left; exit status 0, or 143/130 when stopped by a signal
    (its run saved)."""
    from seqjax.train.loop import train_and_evaluate

    workdir = pathlib.Path(workdir)
    spec = json.loads((workdir / SPEC).read_text())
    tried: set = set()
    with preempt.stop_requests() as stop:
        while (r := next_run(spec["runs"], workdir, tried, shard, retry_failed)) is not None:
            if stop.signum is not None:
                return 128 + stop.signum
            tried.add(r["name"])
            rundir = workdir / "runs" / r["name"]
            with open(rundir / "train.log", "a", encoding="utf-8") as out:
                stdout, stderr = sys.stdout, sys.stderr
                sys.stdout = sys.stderr = out
                try:
                    record, what = sweep.claim(
                        r, workdir, train_fn=train_and_evaluate, retry_failed=retry_failed
                    )
                except Interrupted as e:  # its step is saved: say so in its log, and stop
                    print(f"seqjax sweep: {e}", file=out, flush=True)
                    print(f"{r['name']}: {e}", file=stdout, flush=True)
                    return e.exit_code
                finally:
                    sys.stdout, sys.stderr = stdout, stderr
            if what == "trained":
                print(f"{r['name']}: {sweep.describe(record)}", flush=True)
        if stop.signum is not None:
            return 128 + stop.signum
    return 0


def main(argv: list[str]) -> int:
    workdir = argv[0]
    shard = next((sweep.parse_shard(a.split("=", 1)[1]) for a in argv if a.startswith("--shard=")),
                 None)  # fmt: skip
    return worker(workdir, shard, retry_failed="--retry_failed" in argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = ["SMALL_MODEL", "auto_layout", "cores", "next_run", "run_workers", "status", "worker"]
