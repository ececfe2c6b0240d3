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
TRIALS = 8
SAVE_KILLS = 4  # trials that kill during a save (the others: random delay)
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

    assert kills >= TRIALS - 2 and kills_in_save >= SAVE_KILLS - 1, (kills, kills_in_save)
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


# ---- SIGTERM (preemption): the current step is saved, a restart loses no step ----

SIGTERM_TRIALS = 7
SIGTERM_IN_SAVE = 3


def stopped_at(text):
    """The step a run stopped at on a signal, from its ``stopped by SIG... at step N`` line."""
    for line in text.splitlines():
        if "stopped by SIG" in line:
            return int(line.split(" at step ")[1].split(":")[0])
    return None


def run_and_term(workdir, rng, during_save, log):
    """Starts a run and sends it SIGTERM at a random moment (twice, when during a save): returns
    ``(exit status, step reached when the signal was sent, whether it was during a save)``."""
    old_tmp = temporary_dirs(workdir)
    before = len(train_steps(workdir))
    with open(log, "w") as out:
        proc = subprocess.Popen(command(workdir), stdout=out, stderr=subprocess.STDOUT, env=env())
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if len(train_steps(workdir)) > before:
                break
            time.sleep(0.01)
        in_save = False
        if during_save:
            while proc.poll() is None and time.monotonic() < deadline:
                if temporary_dirs(workdir) - old_tmp:
                    in_save = True
                    break
                time.sleep(0.005)
        else:
            time.sleep(rng.uniform(0.0, 2.0))
        steps = train_steps(workdir)
        reached = steps[-1] if steps else 0
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            if in_save:  # a second signal while it saves changes nothing
                time.sleep(0.05)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    return proc.returncode, reached, in_save


@pytest.mark.slow
def test_sigterm_at_random_moments_saves_the_step_and_loses_none(tmp_path):
    ref = tmp_path / "reference"
    done = subprocess.run(command(ref), env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    work = tmp_path / "preempted"
    rng = random.Random(2026)
    plan = [True] * SIGTERM_IN_SAVE + [False] * (SIGTERM_TRIALS - SIGTERM_IN_SAVE)
    rng.shuffle(plan)
    stops = stops_in_save = 0
    expected_start = 0
    for i, during_save in enumerate(plan):
        log = tmp_path / f"term{i}.log"
        code, reached, in_save = run_and_term(work, rng, during_save, log)
        text = log.read_text()
        assert resumed_from(log, text) == expected_start, text  # zero steps lost
        if code == 0:
            break
        assert code == 128 + signal.SIGTERM, text
        step = stopped_at(text)
        assert step is not None and reached <= step <= reached + EVERY, (reached, step, text)
        (line,) = [ln for ln in text.splitlines() if "stopped by SIGTERM" in ln]
        assert "Traceback" not in text and line.startswith("seqjax train: stopped by SIGTERM")
        assert not temporary_dirs(work), "a partial save left behind"
        expected_start = step
        stops += 1
        stops_in_save += in_save
    done = subprocess.run(command(work), env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert resumed_from(None, done.stdout + done.stderr) == expected_start
    assert stops >= SIGTERM_TRIALS - 1, (stops, stops_in_save)
    assert stops_in_save >= SIGTERM_IN_SAVE - 1, (stops, stops_in_save)
    steps = train_steps(work)
    assert sorted(steps) == list(range(1, NUM_STEPS + 1)), "a step was lost or repeated"
    for a, b in zip(
        jax.tree.leaves(final_params(ref)), jax.tree.leaves(final_params(work)), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    print(f"preemption: {stops} SIGTERMs ({stops_in_save} during saves), 0 steps lost or repeated")


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


def train_logs(workdir):
    """``{run name: its train.log}``: sweep workers write each run's output there."""
    out = {}
    for r in rundirs(workdir):
        path = r / "train.log"
        out[r.name] = path.read_text() if path.is_file() else ""
    return out


def check_restart(log, workdir, logs_before, done_before, reached):
    """What one restart of the sweep did, from its log and the runs' logs: no traceback; every
    run finished before it was not trained again; every run it trained resumed from a committed
    checkpoint with at most one checkpoint interval repeated, and met no damaged checkpoint."""
    text = pathlib.Path(log).read_text()
    assert "Traceback" not in text, text
    for name, full in train_logs(workdir).items():
        new = full[len(logs_before.get(name, "")) :]
        if name in done_before:
            assert new == "", (name, new)
            continue
        if new and reached.get(name):
            start = resumed_from(None, new)
            assert start % EVERY == 0 and 0 <= reached[name] - start <= EVERY, (start, reached)


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
        logs_before = train_logs(work)
        log = tmp_path / f"sweep{i}.log"
        if i < SWEEP_TRIALS:
            code = kill_sweep(work, targets[i], during_save=i % 2 == 1, log=log)
        else:
            final = subprocess.run(
                sweep_command(work), env=env(), capture_output=True, text=True, timeout=300
            )
            log.write_text(final.stdout + final.stderr)
            code = final.returncode
        check_restart(log, work, logs_before, done_before, reached)
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


@pytest.mark.slow
def test_sweep_sigterm_saves_the_running_run_and_a_rerun_goes_on(tmp_path):
    ref = tmp_path / "reference"
    done = subprocess.run(
        sweep_command(ref), env=env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    work = tmp_path / "preempted"
    with open(tmp_path / "term.log", "w") as out:
        proc = subprocess.Popen(
            sweep_command(work), stdout=out, stderr=subprocess.STDOUT, env=env()
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
            len(train_steps(r)) >= SWEEP_STEPS // 3 for r in rundirs(work)
        ):
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    text = (tmp_path / "term.log").read_text()
    assert proc.returncode == 128 + signal.SIGTERM, text
    assert "Traceback" not in text and "stopped by SIGTERM" in text
    stopped = {r.name: stopped_at(log) for r, log in zip(rundirs(work), train_logs(work).values())}
    stopped = {n: step for n, step in stopped.items() if step is not None}
    assert stopped, text  # at least one worker saved its run's step
    for name in stopped:
        assert not (work / "runs" / name / "done.json").exists()  # interrupted, not failed
    before = train_logs(work)
    again = subprocess.run(
        sweep_command(work), env=env(), capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stdout + again.stderr
    for name, step in stopped.items():  # the saved step itself: nothing lost
        assert resumed_from(None, train_logs(work)[name][len(before[name]) :]) == step
    for r in rundirs(ref):
        a = final_params(r, SWEEP_STEPS)
        b = final_params(work / "runs" / r.name, SWEEP_STEPS)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
