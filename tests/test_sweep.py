"""``seqjax sweep`` end to end on tiny in-process runs: results and plots, restart skips finished
runs, an interrupted run resumes, a failed run is recorded and the sweep goes on."""

import csv
import json
import pathlib

import numpy as np
import pytest

from seqjax import cli
from seqjax.errors import UserError
from seqjax.train import loop, sweep
from seqjax.train.cmdline import load_config_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
ADDING = str(ROOT / "configs" / "synthetic" / "adding.py")


def sweep_config(grid, **extra):
    c = load_config_file(f"{ADDING}:smoke")
    c.train.num_steps = 4
    c.train.eval_every = 2
    c.train.checkpoint_every = 2
    c.data.seq_len = 6
    c.sweep = dict(grid=grid, x="data.seq_len", **extra)
    return c


class Counting:
    """``train_and_evaluate`` that counts its calls and fails on the runs named in ``fail``."""

    def __init__(self, fail=()):
        self.calls, self.fail = [], tuple(fail)

    def __call__(self, config, rundir, task=None):
        self.calls.append(pathlib.Path(rundir).name)
        if any(f in pathlib.Path(rundir).name for f in self.fail):
            raise UserError("step 3: the loss or gradients are not finite (injected)")
        return loop.train_and_evaluate(config, rundir, task=task)


GRID = (("model.cell", ("elman", "gru", "lstm")), ("seed", (0,)))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sweep")
    train = Counting(fail=("cell=lstm",))
    records = sweep.run_sweep(sweep_config(GRID), workdir, train_fn=train, log=lambda s: None)
    return workdir, train, records


def test_expand_names_runs_by_their_overrides():
    c = sweep_config(GRID, variants=(("irnn", (("model.activation", "relu"),)),))
    runs = sweep.expand(c)
    assert [r["name"] for r in runs] == [
        "irnn-cell=elman-seed=0",
        "irnn-cell=gru-seed=0",
        "irnn-cell=lstm-seed=0",
    ]
    assert runs[0]["overrides"] == {"model.activation": "relu", "model.cell": "elman", "seed": 0}
    run = sweep.run_config(c, runs[1]["overrides"])
    assert "sweep" not in run and run.model.cell == "gru" and run.model.activation == "relu"
    assert c.model.cell == "lstm"  # the sweep config itself is untouched


@pytest.mark.parametrize(
    "grid, message",
    [
        ((("model.cel", ("elman",)),), "model.cel"),
        ((("model.cell", ()),), "non-empty"),
        ((("model.cell", ("elman", "nope")),), "model.cell='nope'"),
    ],
)
def test_bad_grids_fail_before_anything_runs(grid, message, tmp_path):
    with pytest.raises(UserError, match=message):
        sweep.run_sweep(sweep_config(grid), tmp_path / "s", train_fn=Counting())
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_sweep_writes_results_and_plots(finished):
    workdir, train, records = finished
    assert train.calls == ["cell=elman-seed=0", "cell=gru-seed=0", "cell=lstm-seed=0"]
    assert [r["status"] for r in records] == ["done", "done", "failed"]
    assert "not finite" in records[2]["reason"]
    with open(workdir / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == train.calls
    assert [r["status"] for r in rows] == ["done", "done", "failed"]
    for r, rec in zip(rows[:2], records[:2]):
        assert float(r["mse"]) == pytest.approx(rec["validation"]["mse"])
        assert float(r["wall_s"]) > 0
    md = (workdir / "results.md").read_text()
    assert md.count("\n| cell=") == 3 and "failed" in md
    for png in ("final_vs_x.png", "loss_curves.png", "grad_norms.png"):
        assert (workdir / png).read_bytes()[:4] == b"\x89PNG"
    # The final validation metrics are those of the run's own metrics.jsonl.
    last = [json.loads(x) for x in (workdir / "runs" / train.calls[0] / "metrics.jsonl").open()]
    last = [x for x in last if x["split"] == "validation"][-1]
    assert last["mse"] == pytest.approx(records[0]["validation"]["mse"])
    norms = json.loads((workdir / "runs" / train.calls[1] / "grad_norms.json").read_text())
    assert len(norms["init"]["grad_h"]) == len(norms["final"]["grad_h"]) == 7  # T + 1
    assert norms["init"]["grad_h"] != norms["final"]["grad_h"]


@pytest.mark.slow
def test_restart_skips_finished_and_failed_runs(finished):
    workdir, _, _ = finished
    done = sorted((workdir / "runs").glob("*/done.json"))
    before = {p: p.stat().st_mtime_ns for p in done}
    ckpts = {p: p.stat().st_mtime_ns for p in (workdir / "runs").glob("*/checkpoints/*")}
    again = Counting()
    records = sweep.run_sweep(sweep_config(GRID), workdir, train_fn=again, log=lambda s: None)
    assert again.calls == []
    assert [r["status"] for r in records] == ["done", "done", "failed"]
    assert {p: p.stat().st_mtime_ns for p in done} == before
    assert {p: p.stat().st_mtime_ns for p in (workdir / "runs").glob("*/checkpoints/*")} == ckpts
    # --retry_failed trains the failed run again (now without the injected fault).
    records = sweep.run_sweep(
        sweep_config(GRID), workdir, train_fn=again, retry_failed=True, log=lambda s: None
    )
    assert again.calls == ["cell=lstm-seed=0"] and records[2]["status"] == "done"


@pytest.mark.slow
def test_report_command_redraws_a_sweep(finished, capsys):
    workdir, _, _ = finished
    for p in ("results.md", "grad_norms.png"):
        (workdir / p).unlink()
    assert cli.main(["report", "--workdir", str(workdir)]) == 0
    assert (workdir / "results.md").is_file() and (workdir / "grad_norms.png").is_file()
    assert "results.csv" in capsys.readouterr().out


@pytest.mark.slow
def test_interrupted_run_resumes_from_its_checkpoint(tmp_path, capsys):
    grid = (("model.cell", ("elman",)), ("seed", (0,)))
    c = sweep_config(grid)
    (run,) = sweep.expand(c)
    rundir = tmp_path / "runs" / run["name"]
    # The first session stopped after its checkpoint at step 2 (num_steps may grow on resume).
    partial = sweep.run_config(c, run["overrides"])
    partial.train.num_steps = 2
    loop.train_and_evaluate(partial, rundir)
    first = [json.loads(x) for x in (rundir / "metrics.jsonl").open()]
    capsys.readouterr()
    train = Counting()
    (record,) = sweep.run_sweep(c, tmp_path, train_fn=train, log=lambda s: None)
    assert train.calls == [run["name"]] and record["status"] == "done" and record["step"] == 4
    assert "resuming at step 2" in capsys.readouterr().out
    steps = [json.loads(x)["step"] for x in (rundir / "metrics.jsonl").open()]
    assert steps[: len(first)] == [r["step"] for r in first] and max(steps) == 4
    # Bitwise the same as an uninterrupted run.
    whole = loop.train_and_evaluate(sweep.run_config(c, run["overrides"]), tmp_path / "whole")
    assert record["validation"]["mse"] == whole["validation"]["mse"]


def test_sweep_configs_expand_and_validate():
    from seqjax.train import config as config_lib

    for spec in (
        "adding.py",
        "adding.py:smoke",
        "copy.py:small",
        "copy.py:smoke",
        "clipping.py",
        "clipping.py:smoke",
    ):
        c = load_config_file(str(ROOT / "configs" / "sweeps" / spec))
        runs = sweep.expand(c)
        assert runs and len({r["name"] for r in runs}) == len(runs)
        for r in runs:
            config_lib.validate(sweep.run_config(c, r["overrides"]))
    assert len(sweep.expand(load_config_file(str(ROOT / "configs/sweeps/adding.py")))) == 48


def test_decay_rate_fits_a_geometric_curve():
    from seqjax.tasks.diagnostics import decay_rate

    g = 2.0 * 0.8 ** np.arange(30)
    g[0] = 100.0  # k = 0 carries the readout's direct term: skipped
    assert decay_rate(g) == pytest.approx(0.8)
    assert np.isnan(decay_rate([1.0, 0.0, 0.5]))
    assert decay_rate([9.0, 1.0, 0.5, 0.25, 0.0, 0.0]) == pytest.approx(0.5)  # underflow: cut
