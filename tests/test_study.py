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
