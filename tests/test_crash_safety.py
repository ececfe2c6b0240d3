"""Crash safety, proven by fault injection: ``seqjax train`` is killed with SIGKILL at random
moments (some in the middle of a checkpoint save) and restarted on the same workdir until it
finishes; its final parameters must equal those of an uninterrupted run bit for bit.

Kills during saves: the runs start through ``tests/helpers/slow_commit.py``, which makes every
save sleep after writing its files into orbax's temporary directory and before the rename that
commits it; the test polls ``checkpoints/`` for that temporary directory and kills
the process while it exists. The other kills come after a random delay once training has started.

Checked for every restart: it resumed from a step that was committed (a multiple of
``checkpoint_every`` not above the last step the killed run reached), no checkpoint was found
damaged (no warning), and at most one checkpoint interval of steps was repeated
(``metrics.jsonl`` has a train record for every step, so repeats show up as duplicates).

A sweep (``configs/sweeps/adding.py:smoke``, two runs) is killed the same way at six points spread
over both runs (every other one in a save) and restarted each time: runs finished before a
restart are skipped and not one byte of their directories changes, the interrupted run resumes
from a committed checkpoint, and every run's final parameters equal an uninterrupted sweep's.
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

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "configs" / "synthetic" / "adding.py")
NUM_STEPS = 300
EVERY = 10  # checkpoint interval
TRIALS = 12
SAVE_KILLS = 5  # trials that kill during a save (the others: random delay)
SAVE_DELAY = 0.25  # seconds each save waits before committing
SLOW_COMMIT = ROOT / "tests" / "helpers" / "slow_commit.py"


def command(workdir):
    return [
        sys.executable,
        str(SLOW_COMMIT),
        str(SAVE_DELAY),
        "train",
        f"--config={CONFIG}:smoke",
        f"--workdir={workdir}",
        f"--config.train.num_steps={NUM_STEPS}",
        f"--config.train.checkpoint_every={EVERY}",
        f"--config.train.eval_every={EVERY}",
        "--config.train.log_every=1",
        "--config.train.keep=2",
    ]


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e["JAX_PLATFORMS"] = "cpu"
    return e


def train_steps(workdir):
    """Steps of the train records in ``metrics.jsonl`` (every line must parse)."""
    path = pathlib.Path(workdir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["step"] for r in rows if r["split"] == "train"]


def final_params(workdir, step=NUM_STEPS):
    state = ocp.StandardCheckpointer().restore(
        pathlib.Path(workdir) / "checkpoints" / str(step) / "state"
    )
    return state["train"]["params"]


def temporary_dirs(workdir):
    """Names of orbax's temporary (uncommitted) checkpoint directories."""
    d = pathlib.Path(workdir) / "checkpoints"
    try:
        return {p.name for p in d.iterdir() if "tmp" in p.name}
    except FileNotFoundError:
        return set()


def run_and_kill(workdir, rng, during_save, log):
    """Starts a run, kills it (SIGKILL) at a random moment; returns what the run printed."""
    before = len(train_steps(workdir))
    old_tmp = temporary_dirs(workdir)  # left by earlier kills
    with open(log, "w") as out:
        proc = subprocess.Popen(command(workdir), stdout=out, stderr=subprocess.STDOUT, env=env())
        deadline = time.monotonic() + 120
        killed_in_save = False
        while proc.poll() is None and time.monotonic() < deadline:
            if len(train_steps(workdir)) > before:  # training has started
                break
            time.sleep(0.01)
        if during_save:
            skip = rng.randrange(2)  # kill in the first or second save from here
            seen = False
            while proc.poll() is None and time.monotonic() < deadline:
                now = bool(temporary_dirs(workdir) - old_tmp)
                if now and not seen and skip:
                    skip -= 1
                elif now and not skip:
                    proc.send_signal(signal.SIGKILL)
                    killed_in_save = True
                    break
                seen = now
                time.sleep(0.005)
        else:
            time.sleep(rng.uniform(0.0, 2.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        proc.wait()
    if killed_in_save:  # the save was interrupted before its commit: the temporary dir stays
        assert temporary_dirs(workdir) - old_tmp
    return proc.returncode, killed_in_save


def resumed_from(log, text=None):
    """The step a restart resumed from (0: it started afresh), read from its log."""
    text = pathlib.Path(log).read_text() if text is None else text
    assert "Traceback" not in text, text
    assert "damaged" not in text and "CheckpointWarning" not in text, text
    for line in text.splitlines():
        if "resuming at step" in line:
            return int(line.split("resuming at step")[1].split()[0].strip(","))
    return 0


@pytest.mark.slow
def test_sigkill_at_random_moments_resumes_bitwise(tmp_path):
    ref = tmp_path / "reference"
    done = subprocess.run(command(ref), env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert train_steps(ref) == list(range(1, NUM_STEPS + 1))

    work = tmp_path / "killed"
    rng = random.Random(1234)
    plan = [True] * SAVE_KILLS + [False] * (TRIALS - SAVE_KILLS)
    rng.shuffle(plan)
    kills = kills_in_save = 0
    reached = 0  # the last step the previous run logged
    repeated = []
    for i, during_save in enumerate(plan):
        log = tmp_path / f"trial{i}.log"
        code, in_save = run_and_kill(work, rng, during_save, log)
        start = resumed_from(log)
        if i:
            assert start % EVERY == 0 and start <= reached, (start, reached)
            assert reached - start <= EVERY, (start, reached)
            repeated.append(reached - start)
        steps = train_steps(work)
        reached = steps[-1] if steps else 0
        if code == 0:  # finished before the kill: the remaining trials have nothing to do
            break
        assert code == -signal.SIGKILL
        kills += 1
        kills_in_save += in_save
    # Restart to completion.
    log = tmp_path / "final.log"
    done = subprocess.run(command(work), env=env(), capture_output=True, text=True, timeout=300)
    pathlib.Path(log).write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    start = resumed_from(log)
    assert start % EVERY == 0 and reached - EVERY <= start <= reached
    repeated.append(reached - start)

    assert kills >= 10 and kills_in_save >= 3, (kills, kills_in_save)
    steps = train_steps(work)
    assert sorted(set(steps)) == list(range(1, NUM_STEPS + 1))
    ref_params, params = final_params(ref), final_params(work)
    for a, b in zip(jax.tree.leaves(ref_params), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    print(
        f"fault injection: {kills} kills ({kills_in_save} during saves), "
        f"{len(temporary_dirs(work))} uncommitted saves left on disk, steps repeated per "
        f"restart {repeated} (max {max(repeated)}, checkpoint interval {EVERY})"
    )


# ---- a sweep killed mid-way: finished runs are not redone, the interrupted one resumes ----

SWEEP = str(ROOT / "configs" / "sweeps" / "adding.py")
SWEEP_STEPS = 120  # per run; the smoke sweep has two runs (elman, lstm)
SWEEP_TRIALS = 6


def sweep_command(workdir):
    return [
        sys.executable,
        str(SLOW_COMMIT),
        str(SAVE_DELAY),
        "sweep",
        f"--config={SWEEP}:smoke",
        f"--workdir={workdir}",
        f"--config.train.num_steps={SWEEP_STEPS}",
        f"--config.train.checkpoint_every={EVERY}",
        f"--config.train.eval_every={EVERY}",
        "--config.train.log_every=1",
        "--config.train.keep=2",
    ]


def rundirs(workdir):
    d = pathlib.Path(workdir) / "runs"
    return sorted(d.iterdir()) if d.is_dir() else []


def files_of(rundir):
    """``{relative path: bytes}`` of every file of a run directory."""
    return {str(p.relative_to(rundir)): p.read_bytes() for p in rundir.rglob("*") if p.is_file()}


def kill_sweep(workdir, target, during_save, log):
    """Starts the sweep, SIGKILLs it once ``target`` training steps (summed over the runs) are
    logged, or in the first checkpoint save after that; returns its exit status."""
    steps = lambda: sum(len(set(train_steps(r))) for r in rundirs(workdir))  # noqa: E731
    tmp = lambda: set().union(*(temporary_dirs(r) for r in rundirs(workdir)))  # noqa: E731
    old_tmp, start = tmp(), steps()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            sweep_command(workdir), stdout=out, stderr=subprocess.STDOUT, env=env()
        )
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if steps() >= max(target, start + 1):
                break
            time.sleep(0.005)
        while during_save and proc.poll() is None and time.monotonic() < deadline:
            if tmp() - old_tmp:
                break
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
    return proc.returncode


def check_restart(log, done_before, reached):
    """What one restart of the sweep did, read from its log: every run finished before it was
    skipped; the first run it trained resumed from a committed checkpoint with at most one
    checkpoint interval repeated; no traceback, no damaged checkpoint."""
    text = pathlib.Path(log).read_text()
    resumed_from(log, text)
    for name in done_before:
        assert f"{name}: done, skipped" in text, text
        assert f"{name}: training" not in text, text
    trained = [ln.split("] ")[1].split(":")[0] for ln in text.splitlines() if ": training" in ln]
    if trained and reached.get(trained[0]):
        first = trained[0]
        part = text.split(f"{first}: training", 1)[1]
        start = resumed_from(log, text=part)
        assert start % EVERY == 0 and 0 <= reached[first] - start <= EVERY, (start, reached)


@pytest.mark.slow
def test_sweep_killed_mid_way_skips_finished_runs_and_resumes(tmp_path):
    ref = tmp_path / "reference"
    done = subprocess.run(
        sweep_command(ref), env=env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    names = [r.name for r in rundirs(ref)]
    assert len(names) == 2

    work = tmp_path / "killed"
    rng = random.Random(99)
    # Kill points, in distinct training steps summed over both runs: spread over the sweep.
    span = 2 * SWEEP_STEPS / SWEEP_TRIALS
    targets = [int((i + rng.uniform(0.2, 0.8)) * span) for i in range(SWEEP_TRIALS)]
    kills, finished_mid_way = 0, 0
    for i in range(SWEEP_TRIALS + 1):  # the last start runs to completion
        done_before = [r.name for r in rundirs(work) if (r / "done.json").is_file()]
        files_before = {n: files_of(work / "runs" / n) for n in done_before}
        reached = {r.name: (train_steps(r) or [0])[-1] for r in rundirs(work)}
        log = tmp_path / f"sweep{i}.log"
        if i < SWEEP_TRIALS:
            code = kill_sweep(work, targets[i], during_save=i % 2 == 1, log=log)
        else:
            final = subprocess.run(
                sweep_command(work), env=env(), capture_output=True, text=True, timeout=300
            )
            log.write_text(final.stdout + final.stderr)
            code = final.returncode
        check_restart(log, done_before, reached)
        for n in done_before:  # finished runs: not one byte changed
            assert files_of(work / "runs" / n) == files_before[n], n
        if code == 0:
            break
        assert code == -signal.SIGKILL
        kills += 1
        finished_mid_way += sum((r / "done.json").is_file() for r in rundirs(work)) == 1
    assert code == 0
    assert kills >= 3 and finished_mid_way >= 1, (kills, finished_mid_way)
    for n in names:
        record = json.loads((work / "runs" / n / "done.json").read_text())
        assert record["status"] == "done" and record["step"] == SWEEP_STEPS
        steps = train_steps(work / "runs" / n)
        assert sorted(set(steps)) == list(range(1, SWEEP_STEPS + 1))
        a = final_params(ref / "runs" / n, SWEEP_STEPS)
        b = final_params(work / "runs" / n, SWEEP_STEPS)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    ref_rows = (ref / "results.csv").read_text().splitlines()
    assert len((work / "results.csv").read_text().splitlines()) == len(ref_rows)
    print(f"sweep fault injection: {kills} kills, {finished_mid_way} with the first run finished")
