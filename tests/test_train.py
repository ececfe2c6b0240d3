"""The training harness end to end: real smoke runs of the adding config, in-process and via the
command line. Parameters are compared bitwise, read back straight from the orbax files."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from seqjax import cli, tasks
from seqjax.errors import UserError
from seqjax.train import checkpoint, loop, optim
from seqjax.train import config as config_lib
from seqjax.train import step as step_lib
from seqjax.train.cmdline import load_config_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "configs" / "synthetic" / "adding.py")


def smoke(**overrides):
    c = load_config_file(f"{CONFIG}:smoke")
    for key, value in overrides.items():
        parent, _, leaf = key.rpartition(".")
        (config_lib.lookup(c, parent) if parent else c)[leaf] = value
    c.lock()
    return c


def saved_state(workdir, step):
    """The ``state`` item of a checkpoint as NumPy arrays, read by orbax without a target."""
    return ocp.StandardCheckpointer().restore(
        pathlib.Path(workdir) / "checkpoints" / str(step) / "state"
    )


def steps_on_disk_in(directory):
    return sorted(int(p.name) for p in pathlib.Path(directory).iterdir() if p.name.isdigit())


def steps_on_disk(workdir):
    return steps_on_disk_in(pathlib.Path(workdir) / "checkpoints")


def records(workdir, split=None):
    lines = (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    return [r for r in rows if split is None or r["split"] == split]


def assert_trees_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb) and len(la) > 0
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def l2(tree):
    return float(
        np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in jax.tree.leaves(tree)))
    )


def nan_at(task, bad_step):
    """The task with NaN inputs in training batch ``bad_step`` (a test-only fault)."""

    def batch(step):
        b = task.batch(step)
        if step == bad_step:
            b = {**b, "x": np.full_like(b["x"], np.nan)}
        return b

    return task._replace(batch=batch)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("smoke")
    result = loop.train_and_evaluate(smoke(), workdir)
    return workdir, result


# ----------------------------------------------------------------------------- train_step


def test_train_step_metrics_against_independent_gradients():
    c = smoke(**{"optim.clip_value": 0.05})
    task = tasks.build(c)
    tx = optim.build(c.optim, c.train.num_steps)
    state = step_lib.init_state(task, tx, jax.random.key(0))
    batch = task.batch(0)
    grads = jax.jit(jax.grad(lambda p: task.loss(p, (), batch, None, True)[0]))(state.params)
    params0 = jax.tree.map(np.asarray, state.params)
    train_step = step_lib.make_train_step(task, tx)
    state, m = train_step(state, batch, jax.random.key(1))
    assert float(m["grad_norm"]) == pytest.approx(l2(grads), rel=1e-5)
    assert bool(m["clipped"]) == (float(m["grad_norm"]) > 0.05)
    assert float(m["learning_rate"]) == pytest.approx(c.optim.learning_rate)
    delta = jax.tree.map(lambda a, b: np.asarray(a) - b, state.params, params0)
    assert float(m["update_norm"]) == pytest.approx(l2(delta), rel=1e-4)
    assert int(state.step) == 1 and not bool(m["nonfinite"])
    state, _ = train_step(state, task.batch(1), jax.random.key(1))
    assert train_step._cache_size() == 1  # jitted once: the second call did not recompile


def test_train_step_skips_nonfinite_batches():
    c = smoke()
    task = nan_at(tasks.build(c), 0)
    tx = optim.build(c.optim, c.train.num_steps)
    state = step_lib.init_state(task, tx, jax.random.key(0))
    before = jax.tree.map(np.asarray, (state.params, state.opt_state.inner_state))
    state, m = step_lib.make_train_step(task, tx)(state, task.batch(0), jax.random.key(1))
    assert bool(m["nonfinite"]) and int(m["skipped"]) == 1 and int(state.step) == 1
    assert_trees_equal(before, (state.params, state.opt_state.inner_state))


# ----------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("mode, best, kept", [("min", 2, [2, 4, 5]), ("max", 5, [4, 5])])
def test_checkpoints_keep_latest_k_plus_best(tmp_path, mode, best, kept):
    mngr = checkpoint.manager(tmp_path, keep=2, best_metric="mse", best_mode=mode)
    for step, mse in zip(range(1, 6), [0.5, 0.1, 0.3, 0.4, 0.6]):
        state = {"w": np.full(3, step, np.float32)}
        checkpoint.save(mngr, step, state, np.zeros(2, np.uint32), {"step": step}, {"mse": mse})
    assert mngr.best_step() == best
    mngr.close()
    assert steps_on_disk_in(tmp_path) == kept
    reader = checkpoint.manager(tmp_path, create=False)
    assert checkpoint.read_meta(reader, best) == {"step": best}
    restored, _ = checkpoint.restore(
        reader, best, {"w": np.zeros(3, np.float32)}, np.zeros(2, np.uint32)
    )
    np.testing.assert_array_equal(restored["w"], np.full(3, best, np.float32))


# ----------------------------------------------------------------------------- whole runs


def test_smoke_run_writes_checkpoints_metrics_and_tensorboard(smoke_run):
    workdir, result = smoke_run
    assert steps_on_disk(workdir) == [3, 6]  # checkpoint_every=3, keep=2
    assert result["step"] == 6 and result["best_step"] in (3, 6)
    train = records(workdir, "train")
    assert [r["step"] for r in train] == [2, 4, 6]  # log_every=2
    for key in (
        "loss",
        "mse",
        "grad_norm",
        "clip_rate",
        "update_norm",
        "learning_rate",
        "skipped",
        "examples_per_sec",
    ):
        assert all(np.isfinite(r[key]) for r in train), key
    valid = records(workdir, "validation")
    assert [r["step"] for r in valid] == [3, 6]
    assert valid[-1]["mse"] == pytest.approx(result["validation"]["mse"])
    assert list((workdir / "tb").glob("events.out.tfevents.*"))
    meta = json.loads((workdir / "checkpoints" / "6" / "meta" / "metadata").read_text())
    assert meta["config"] == config_lib.to_dict(smoke())
    assert meta["data_position"] == 6 and meta["task"]["problem"] == "adding"


def test_same_config_gives_same_losses(smoke_run, tmp_path):
    workdir, _ = smoke_run
    loop.train_and_evaluate(smoke(), tmp_path)
    timing = ("examples_per_sec", "steps_per_sec")  # wall-clock figures differ between runs
    drop = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]  # noqa: E731
    assert drop(records(tmp_path)) == drop(records(workdir))
    assert_trees_equal(saved_state(tmp_path, 6), saved_state(workdir, 6))


@pytest.mark.slow  # > 8 s on 2 shared cores: three runs, each compiling
def test_resume_is_bitwise_identical(tmp_path):
    # Two layers with dropout, and a cosine schedule: resuming must restore the data position,
    # the random numbers and the optimizer state exactly.
    c = smoke(
        **{
            "model.cell": "elman",  # compiles fastest; the loop does not care which cell
            "model.num_layers": 2,
            "model.dropout": 0.3,
            "optim.schedule": "cosine",
        }
    )
    loop.train_and_evaluate(c, tmp_path / "straight")
    task = tasks.build(c)

    def crash(step):  # the machine dies while step 4 runs, after the checkpoint at 3
        if step == 4:
            raise KeyboardInterrupt
        return task.batch(step)

    with pytest.raises(KeyboardInterrupt):
        loop.train_and_evaluate(c, tmp_path / "resumed", task=task._replace(batch=crash))
    assert steps_on_disk(tmp_path / "resumed") == [3]
    loop.train_and_evaluate(c, tmp_path / "resumed")
    assert_trees_equal(saved_state(tmp_path / "straight", 6), saved_state(tmp_path / "resumed", 6))
    tail = lambda w: [r["loss"] for r in records(w, "train") if r["step"] > 4]  # noqa: E731
    assert tail(tmp_path / "straight") == tail(tmp_path / "resumed")


@pytest.mark.slow  # > 8 s on 2 shared cores: three runs, each compiling
def test_extending_num_steps_resumes_past_a_half_written_checkpoint(smoke_run, tmp_path):
    workdir, _ = smoke_run
    run = tmp_path / "run"
    shutil.copytree(workdir, run)
    # What a save interrupted by a crash leaves: orbax's temporary directory, never renamed.
    partial = run / "checkpoints" / "9.orbax-checkpoint-tmp-1700000000000000"
    shutil.copytree(run / "checkpoints" / "6", partial)
    shutil.rmtree(partial / "state" / "d")
    assert loop.evaluate_checkpoint(run, which="latest")["step"] == 6
    result = loop.train_and_evaluate(smoke(**{"train.num_steps": 8}), run)  # only num_steps
    assert result["step"] == 8 and steps_on_disk(run)[-1] == 8
    assert not partial.exists()  # never loaded; removed at the start (with a note)
    # 8 steps straight (constant schedule) reach the same parameters
    loop.train_and_evaluate(smoke(**{"train.num_steps": 8}), tmp_path / "straight")
    assert_trees_equal(saved_state(run, 8), saved_state(tmp_path / "straight", 8))


def test_other_experiment_in_workdir_is_refused(smoke_run):
    workdir, _ = smoke_run
    before = sorted(str(p) for p in workdir.rglob("*"))
    with pytest.raises(
        UserError,
        match=r"different experiment \(model.cell: 'lstm' there, "
        r"'gru' now\); use a new --workdir",
    ):
        loop.train_and_evaluate(smoke(**{"model.cell": "gru"}), workdir)
    assert sorted(str(p) for p in workdir.rglob("*")) == before  # nothing written


def test_finished_run_is_not_retrained(smoke_run, tmp_path, capsys):
    workdir, result = smoke_run
    shutil.copytree(workdir, tmp_path / "run")
    again = loop.train_and_evaluate(smoke(), tmp_path / "run")
    assert "nothing to train: the checkpoint at step 6" in capsys.readouterr().out
    assert again["step"] == 6 and steps_on_disk(tmp_path / "run") == [3, 6]
    assert again["validation"]["mse"] == pytest.approx(result["validation"]["mse"], rel=1e-6)


def test_nonfinite_stops_naming_the_step(tmp_path, monkeypatch, capsys):
    build = tasks.build
    monkeypatch.setattr(tasks, "build", lambda c: nan_at(build(c), 4))  # update 5 uses batch 4
    rc = cli.main(["train", f"--config={CONFIG}:smoke", f"--workdir={tmp_path}"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith("seqjax train: error: step 5: the loss or gradients are not finite")
    assert "last good checkpoint (step 3 in" in err
    assert steps_on_disk(tmp_path) == [3]
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(saved_state(tmp_path, 3)))


def test_skip_nonfinite_counts_skipped_steps(tmp_path, monkeypatch):
    c = smoke(**{"train.skip_nonfinite": True})
    result = loop.train_and_evaluate(c, tmp_path, task=nan_at(tasks.build(c), 4))
    assert result["step"] == 6 and np.isfinite(result["validation"]["mse"])
    train = {r["step"]: r for r in records(tmp_path, "train")}
    assert train[4]["skipped"] == 0 and train[6]["skipped"] == 1 and train[6]["nonfinite"] == 1
    assert np.isfinite(train[6]["loss"])  # the window's mean is over the applied steps


# ----------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--config.model.cel=gru", "--config.model.cel: no such key; did you mean model.cell?"),
        (
            "--config.model.hidden_size=big",
            "--config.model.hidden_size='big': expected a positive integer",
        ),
        ("--config.model.cell=lsmt", "model.cell='lsmt': choose one of elman, lstm, gru"),
        (
            "--config.optim.name=adamm",
            "optim.name='adamm': choose one of sgd, adam, adamw, rmsprop",
        ),
        ("--workdirr=x", "Unknown command line flag 'workdirr'"),
    ],
)
def test_bad_config_exits_2_with_one_line(flag, message, tmp_path, capsys):
    rc = cli.main(["train", f"--config={CONFIG}:smoke", f"--workdir={tmp_path / 'w'}", flag])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"seqjax train: error: {message}")
    assert not (tmp_path / "w").exists()


def test_help_lists_the_flags(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "--workdir: " in out and "--config.KEY=VALUE" in out


def test_bad_preset_and_missing_file(tmp_path, capsys):
    assert cli.main(["train", f"--config={CONFIG}:smok", f"--workdir={tmp_path}"]) == 2
    assert "preset 'smok': choose from smoke, cell=<str>, seq_len=<int>" in capsys.readouterr().err
    assert cli.main(["train", "--config=nope.py", f"--workdir={tmp_path}"]) == 2
    assert "--config=nope.py: no such file 'nope.py'" in capsys.readouterr().err


def test_eval_and_report(smoke_run, capsys):
    workdir, result = smoke_run
    assert cli.main(["eval", f"--workdir={workdir}"]) == 0
    out = json.loads(capsys.readouterr().out)
    best = result["best_step"]
    logged = {r["step"]: r for r in records(workdir, "validation")}
    assert out["step"] == best and out["split"] == "validation"
    assert out["mse"] == pytest.approx(logged[best]["mse"], rel=1e-6)  # same params, same data
    assert cli.main(["eval", f"--workdir={workdir}", "--split=test", "--checkpoint=latest"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 6
    assert cli.main(["report", f"--workdir={workdir}"]) == 0
    png = pathlib.Path(capsys.readouterr().out.strip())
    assert png == workdir / "report.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # > 8 s on 2 shared cores: three runs, each compiling
def test_command_line_in_a_subprocess(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "seqjax.cli", *a], cwd=ROOT, env=env, capture_output=True, text=True
    )
    ok = run("train", f"--config={CONFIG}:smoke", f"--workdir={tmp_path / 'w'}")
    assert ok.returncode == 0, ok.stderr
    assert "step 6 validation: " in ok.stdout and steps_on_disk(tmp_path / "w") == [3, 6]
    assert "step 2/6  loss " in ok.stdout  # not a terminal: plain log lines, no progress bar
    assert ok.stderr == ""
    bad = run(
        "train",
        f"--config={CONFIG}:smoke",
        f"--workdir={tmp_path / 'w'}",
        "--config.optim.name=adamm",
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "seqjax train: error: optim.name='adamm': choose one of sgd, adam, adamw, rmsprop"
    )


# ----------------------------------------------------------------------------- learning


def test_lstm_solves_the_adding_problem(tmp_path):
    c = load_config_file(CONFIG)  # T=50, LSTM with forget-gate bias 1
    c.model.hidden_size = 32
    c.optim.learning_rate = 1e-2
    c.train.num_steps = 800
    c.train.eval_every = 800
    c.train.checkpoint_every = 800
    c.train.log_every = 800
    c.data.eval_size = 1000
    assert c.data.seq_len == 50 and c.model.forget_bias == 1.0
    result = loop.train_and_evaluate(c, tmp_path)
    assert result["validation"]["mse"] < 0.01  # the constant predictor scores 1/6
