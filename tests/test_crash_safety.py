"""Crash safety, proven by fault injection: ``seqjax train`` is killed with SIGKILL at random
moments (some in the middle of a checkpoint save) and restarted on the same workdir until it
finishes; its final parameters must equal those of an uninterrupted run bit for bit.

Kills during saves: the runs set ``SEQJAX_TEST_SAVE_DELAY`` (see :mod:`seqjax.train.checkpoint`),
which makes every save sleep after writing its files into orbax's temporary directory and before
the rename that commits it; the test polls ``checkpoints/`` for that temporary directory and kills
the process while it exists. The other kills come after a random delay once training has started.

Checked for every restart: it resumed from a step that was committed (a multiple of
``checkpoint_every`` not above the last step the killed run reached), no checkpoint was found
damaged (no warning), and at most one checkpoint interval of steps was repeated
(``metrics.jsonl`` has a train record for every step, so repeats show up as duplicates).
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


def command(workdir):
    return [
        sys.executable,
        "-m",
        "seqjax.cli",
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
    e["SEQJAX_TEST_SAVE_DELAY"] = str(SAVE_DELAY)
    e["JAX_PLATFORMS"] = "cpu"
    return e


def train_steps(workdir):
    """Steps of the train records in ``metrics.jsonl`` (every line must parse)."""
    path = pathlib.Path(workdir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["step"] for r in rows if r["split"] == "train"]


def final_params(workdir):
    state = ocp.StandardCheckpointer().restore(
        pathlib.Path(workdir) / "checkpoints" / str(NUM_STEPS) / "state"
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


def resumed_from(log):
    text = pathlib.Path(log).read_text()
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
