"""``seqjax sweep --jobs N`` and ``--shard K/N``: worker processes, locks, status, bitwise runs.

Everything here runs the real command in subprocesses (``configs/sweeps/adding.py:smoke``: two
runs, Elman and LSTM): the workers pin themselves to cores and claim runs under their locks.
"""

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from seqjax.train import files, sweep, sweep_pool

ROOT = pathlib.Path(__file__).resolve().parent.parent
SWEEP = f"--config={ROOT / 'configs' / 'sweeps' / 'adding.py'}:smoke"
STEPS = 40


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}


def command(workdir, *flags):
    return [
        sys.executable, "-m", "seqjax.cli", "sweep", SWEEP, f"--workdir={workdir}",
        f"--config.train.num_steps={STEPS}", "--config.train.checkpoint_every=10",
        "--config.train.eval_every=10", "--status_every=1000", *flags,
    ]  # fmt: skip


def run(workdir, *flags):
    done = subprocess.run(
        command(workdir, *flags), env=env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def final_params(rundir):
    path = pathlib.Path(rundir) / "checkpoints" / str(STEPS) / "state"
    return ocp.StandardCheckpointer().restore(path)["train"]["params"]


def names(workdir):
    return [
        r["name"] for r in json.loads((pathlib.Path(workdir) / "sweep.json").read_text())["runs"]
    ]


def trainings(workdir):
    """How many times each run was trained to the end: 'NAME: done' lines of the workers."""
    counts = {}
    for log in (pathlib.Path(workdir) / "workers").glob("*.log"):
        for line in log.read_text().splitlines():
            name, _, rest = line.partition(": ")
            if rest.startswith("done"):
                counts[name] = counts.get(name, 0) + 1
    return counts


def test_shards_partition_the_grid_exactly():
    for n in (1, 2, 3, 7):
        owners = [[k for k in range(n) if sweep.in_shard(i, (k, n))] for i in range(20)]
        assert all(len(o) == 1 for o in owners)
    assert sweep.parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "1", "a/b", "-1/2"):
        with pytest.raises(Exception, match="--shard"):
            sweep.parse_shard(bad)


@pytest.mark.slow
def test_jobs_2_trains_every_run_bitwise_as_jobs_1(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    run(one, "--jobs=1", "--threads_per_run=1")
    run(two, "--jobs=2", "--threads_per_run=1")
    for name in names(one):
        a, b = final_params(one / "runs" / name), final_params(two / "runs" / name)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert trainings(two) == {n: 1 for n in names(two)}
    assert "2 workers x 1 core(s)" in (run(two, "--jobs=2").stdout)  # a rerun: nothing to do


@pytest.mark.slow
def test_killed_at_a_random_moment_then_rerun_trains_every_run_once(tmp_path):
    work = tmp_path / "s"
    rng = random.Random(7)
    proc = subprocess.Popen(
        command(work, "--jobs=2"), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((work / "runs").glob("*/metrics.jsonl")):
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 3.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(2.0)
    orphans = [r for r in (work / "runs").iterdir() if files.locked_by_another(r)]
    assert orphans == [], "a worker kept training after its sweep was killed"
    run(work, "--jobs=2")
    for name in names(work):
        record = json.loads((work / "runs" / name / "done.json").read_text())
        assert record["status"] == "done" and record["step"] == STEPS
    assert trainings(work) == {n: 1 for n in names(work)}


@pytest.mark.slow
@pytest.mark.parametrize("how", ["two shards", "two whole sweeps"])
def test_two_processes_on_one_directory_train_each_run_once(tmp_path, how):
    work = tmp_path / "s"  # both start from nothing: both plan it (atomic, identical files)
    flags = [["--shard=0/2"], ["--shard=1/2"]] if how == "two shards" else [[], []]
    procs = [
        subprocess.Popen(
            command(work, "--jobs=1", *f),
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for f in flags
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert trainings(work) == {n: 1 for n in names(work)}, outs
    for name in names(work):
        assert json.loads((work / "runs" / name / "done.json").read_text())["status"] == "done"


def test_status_shows_done_failed_running_and_pending(tmp_path):
    spec = {"x": "seed", "group": "model.cell", "runs": [
        {"name": n, "variant": None, "overrides": {}} for n in ("a", "b", "c", "d")]}  # fmt: skip
    (tmp_path / "sweep.json").write_text(json.dumps(spec))
    for n in "abcd":
        (tmp_path / "runs" / n).mkdir(parents=True)
        (tmp_path / "runs" / n / "config.json").write_text(json.dumps({"train": {"num_steps": 9}}))
    (tmp_path / "runs/a/done.json").write_text(
        json.dumps({"status": "done", "step": 9, "validation": {"mse": 0.01}})
    )
    (tmp_path / "runs/b/done.json").write_text(
        json.dumps({"status": "failed", "step": 4, "reason": "x"})
    )
    (tmp_path / "runs/c/metrics.jsonl").write_text(
        '{"step": 3, "split": "train", "loss": 1, "steps_per_sec": 1.5}\n'
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", "import filelock, sys, time; l = filelock.FileLock(sys.argv[1]); "
         "l.acquire(); print('held', flush=True); time.sleep(60)", str(tmp_path / "runs/c" /
                                                                       files.LOCK)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        table = sweep_pool.status(tmp_path).splitlines()
    finally:
        holder.kill()
    rows = {ln.split()[0]: ln.split()[1:] for ln in table[1:-1]}
    assert rows["a"][:3] == ["done", "9/9", "mse"] and rows["b"][:2] == ["failed", "4/9"]
    assert rows["c"][:2] == ["running", "3/9"] and rows["c"][-1] == "0m04s"  # 6 steps at 1.5/s
    assert rows["d"][:2] == ["pending", "0/9"]
    assert table[-1].startswith("1 done, 1 running, 1 failed, 1 pending")


def test_next_run_spreads_programs_then_goes_longest_first(tmp_path):
    """Tier 0 (the first run of each compiled program) in grid order; then the seed-1 runs,
    longest program first by the wall time of its seed-0 run; never a run done, failed, tried
    by this worker or outside the shard."""
    runs = [
        {"name": f"{cell}-{seed}", "variant": None, "overrides": {"model.cell": cell, "seed": seed}}
        for cell in ("elman", "lstm", "gru") for seed in (0, 1)
    ]  # fmt: skip
    for r in runs:
        (tmp_path / "runs" / r["name"]).mkdir(parents=True)

    def finish(name, wall, status="done"):
        done = tmp_path / "runs" / name / "done.json"
        done.write_text(json.dumps({"status": status, "wall_s": wall}))

    order, tried = [], set()
    pick = lambda **kw: sweep_pool.next_run(runs, tmp_path, tried, **kw)  # noqa: E731
    for wall in (5.0, 30.0, 12.0):  # each finishes before the next pick
        r = pick()
        order.append(r["name"])
        finish(r["name"], wall)
    assert order == ["elman-0", "lstm-0", "gru-0"]
    tried.add("lstm-1")  # say this worker tried it (and it failed with --retry_failed)
    assert pick()["name"] == "gru-1" and pick(retry_failed=True)["name"] == "gru-1"
    tried.clear()
    assert pick()["name"] == "lstm-1"  # 30 s before 12 s before 5 s
    finish("lstm-1", 29.0, status="failed")
    assert pick()["name"] == "gru-1"
    assert pick(shard=(0, 2)) is None  # grid indices 0, 2, 4: the seed-0 runs, all done
    for name in ("gru-1", "elman-1"):
        finish(name, 1.0)
    assert pick() is None and pick(retry_failed=True)["name"] == "lstm-1"
    assert sweep_pool._program(runs[0]) == sweep_pool._program(runs[1])
