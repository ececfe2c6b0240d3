"""The vanishing-gradient study's sweeps (configs/study): every run of the full grids is a valid
config, and every study runs end to end in its smoke form (seconds per run)."""

import json
import pathlib

import pytest

from seqjax.train import config as config_lib
from seqjax.train import sweep
from seqjax.train.cmdline import load_config_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
STUDIES = ("adding", "copy", "clipping", "digits")


@pytest.mark.parametrize("study", STUDIES)
def test_every_run_of_the_full_grid_is_valid(study):
    c = load_config_file(str(ROOT / "configs" / "study" / f"{study}.py"))
    runs = sweep.expand(c)
    assert len(runs) >= 18 and all(r["name"].count("seed=") == 1 for r in runs)
    for r in runs:
        run = config_lib.validate(sweep.run_config(c, r["overrides"]))
        assert run.seed in (0, 1, 2)
    assert len({r["overrides"]["seed"] for r in runs}) == 3  # never fewer seeds
    # Variants, not cells: the LSTM with chrono initialisation is a variant of model.cell=lstm.
    assert len({r["variant"] for r in runs}) >= (1 if study == "clipping" else 5)


@pytest.mark.parametrize("study", STUDIES)
def test_the_smoke_study_runs_end_to_end(study, tmp_path):
    c = load_config_file(str(ROOT / "configs" / "study" / f"{study}.py") + ":smoke")
    records = sweep.run_sweep(c, tmp_path, log=lambda s: None)
    assert records and all(r["status"] in ("done", "failed") for r in records)
    header = (tmp_path / "results.csv").read_text().splitlines()[0].split(",")
    assert {"solved_step", "to_solve", "decay_init", "decay_final"} <= set(header)
    assert json.loads((tmp_path / "sweep.json").read_text())["runs"]
    assert (tmp_path / "final_vs_x.png").is_file()
    if study == "adding":  # study 5's outputs from the same smoke sweep
        _study5_outputs_match_the_runs(tmp_path, records)


def _summarize():
    import importlib.util

    path = ROOT / "experiments" / "vanishing" / "summarize.py"
    spec = importlib.util.spec_from_file_location("summarize", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _study5_outputs_match_the_runs(sweep_dir, records):
    import csv

    out = sweep_dir / "study5"
    _summarize().distance(sweep_dir.parent, [sweep_dir.name], into=out)
    assert (out / sweep_dir.name / "grad_vs_distance.png").is_file()
    with open(out / sweep_dir.name / "grad_norms.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 2 * len(records)  # init and final for every run
    for row in table:
        norms = json.loads((sweep_dir / "runs" / row["run"] / "grad_norms.json").read_text())
        g = norms[row["when"]]["grad_h"]
        assert float(row["k=0"]) == pytest.approx(g[0]) and float(row["k=5"]) == pytest.approx(g[5])
        assert row["k=7"] == ""  # beyond T (6 + the readout step)
        assert float(row["decay_rate"]) == pytest.approx(norms[row["when"]]["decay_rate"])


def test_the_study5_fit_recovers_a_geometric_decay():
    """The dotted line of the figure: C r^k fitted over k >= 1 (k = 0 holds the readout's direct
    term), stopping at the first norm that underflowed to 0; against numpy's own polyfit."""
    import numpy as np

    from seqjax.tasks.diagnostics import decay_fit

    g = [9.0] + [2.5 * 0.93**k for k in range(1, 40)] + [0.0, 0.0]
    assert decay_fit(g) == pytest.approx((2.5, 0.93))
    rng = np.random.default_rng(0)
    noisy = [1.0] + list(0.7 * 0.98 ** np.arange(1, 60) * np.exp(rng.normal(0, 0.1, 59)))
    slope, intercept = np.polyfit(np.arange(1, 60), np.log(noisy[1:]), 1)
    assert decay_fit(noisy) == pytest.approx((np.exp(intercept), np.exp(slope)))


def _rows(name):
    import csv

    path = ROOT / "experiments" / "vanishing" / name / "results.csv"
    with open(path) as f:
        return list(csv.DictReader(f))


def test_committed_clipping_results_back_the_readme_summary():
    """The claims of experiments/vanishing/README.md's summary for study 3, from the committed
    results.csv files (3 seeds each): unclipped runs at lr >= 0.1 diverge, clipped runs finish,
    and at lr 0.1 a norm threshold of 0.1 gives the lr-0.01 regime where value clipping does not."""
    runs = _rows("clipping")
    assert len(runs) == 27 and {r["seed"] for r in runs} == {"0", "1", "2"}
    for r in runs:
        unclipped_high = r["optim.clip"] == "none" and float(r["optim.learning_rate"]) >= 0.1
        assert (r["status"] == "failed") == unclipped_high, r["name"]
        if unclipped_high:
            assert int(r["step"]) <= 22 and "not finite" in r["reason"]
    test = {(r["optim.clip"], r["seed"]): r for r in _rows("clipping_threshold01")}
    low = {r["seed"]: r for r in runs if r["optim.clip"] == "global_norm"
           and float(r["optim.learning_rate"]) == 0.01}  # fmt: skip
    for seed in "012":
        norm, value = test[("global_norm", seed)], test[("value", seed)]
        assert float(norm["mse"]) < 0.17 and float(norm["max_sv_final"]) < 1.6
        assert float(low[seed]["max_sv_final"]) < 1.6
        assert float(value["mse"]) > 0.2 and float(value["max_sv_final"]) > 10


def test_committed_copy_results_back_the_readme_summary():
    """Study 2's claims in experiments/vanishing/README.md, from the committed results.csv files:
    expRNN ends far under the memoryless baseline and the gated cells near it, nothing solves in
    4000 steps, chrono ends above forget bias 1 at 4000 steps and below it at 8000 (T=100)."""
    ratio = lambda r: float(r["loss"]) / float(r["baseline"])  # noqa: E731
    runs = {(r["name"].split("-")[0], r["data.seq_len"], r["seed"]): r for r in _rows("copy")}
    assert len(runs) == 30 and {k[2] for k in runs} == {"0", "1", "2"}
    for (cell, t, seed), r in runs.items():
        assert r["status"] == "done" and r["step"] == "4000" and not r["solved_step"], r["name"]
        if cell == "exprnn":
            assert ratio(r) < 0.4, r["name"]
        else:
            assert 0.8 < ratio(r) < 1.02, r["name"]
        if cell == "lstm_chrono":
            assert ratio(r) > ratio(runs[("lstm", t, seed)]), r["name"]
    longer = {(r["name"].split("-")[0], r["seed"]): r for r in _rows("copy_8000")
              if r["data.seq_len"] == "100" and r["name"].startswith("lstm")}  # fmt: skip
    for seed in "012":
        chrono, lstm = longer[("lstm_chrono", seed)], longer[("lstm", seed)]
        assert chrono["step"] == lstm["step"] == "8000"
        assert ratio(chrono) < 0.8 < ratio(lstm) < 0.85, seed


def test_committed_adding_results_back_the_readme_summary():
    """Study 1's claims in experiments/vanishing/README.md, from the committed results.csv files:
    GRU solves every T, chrono 3/3 at T=100 and 2/3 at 200 and 400, forget bias 1 none in 3000
    steps at T=200 but 2/3 by 10000, tanh Elman and IRNN none."""

    def solved(name):
        out = {}
        for r in _rows(name):
            key = (r["name"].split("-")[0], r["data.seq_len"])
            out.setdefault(key, []).append(r)
        return out

    runs = solved("adding")
    assert len(runs) == 22 and all(len(v) == 3 for v in runs.values())  # 11 cells, T=100/200
    count = lambda rs: sum(bool(r["solved_step"]) for r in rs)  # noqa: E731
    assert all(float(r["mse"]) < 0.01 for r in runs[("gru", "200")])
    assert count(runs[("lstm_chrono", "100")]) == 3 and count(runs[("lstm_chrono", "200")]) == 2
    for cell in ("elman", "lstm", "irnn_lr0.01", "irnn_lr0.001", "indrnn", "cornn", "lru"):
        assert count(runs[(cell, "200")]) == 0, cell
    assert count(runs[("elman", "100")]) == 0 and count(runs[("lstm", "100")]) == 0
    longer = solved("adding_lstm_10000")[("lstm", "200")]
    assert sorted(int(r["step"]) for r in longer) == [4600, 5300, 10000] and count(longer) == 2
    at_400 = solved("adding_400")
    assert count(at_400[("gru", "400")]) == 3 and count(at_400[("lstm_chrono", "400")]) == 2
