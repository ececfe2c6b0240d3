"""The benchmark's plumbing; no timing here (speed is measured by `seqjax bench`, never a test)."""

import sys

import pytest

from seqjax import bench, cli
from seqjax.errors import UserError


def test_missing_torch_is_a_user_error_naming_the_pin(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # ``import torch`` now raises ImportError
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # restored afterwards
    with pytest.raises(UserError, match=r"pip install torch==2\.13\.0"):
        bench.import_torch()
    assert cli.main(["bench", "cells", "--quick"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install torch==2.13.0" in err[0]


def _results():
    R = bench.Result
    shape = (2, 3, 4)
    return [
        R("lstm", shape, "PyTorch", [0.100, 0.120, 0.080]),
        R("lstm", shape, "seqjax hoist=False", [0.050, 0.050, 0.900]),
        R("lstm", shape, "seqjax hoist=True", [0.060, 0.060, 0.060]),
        R("lstm", shape, "Flax LSTMCell", [0.200] * 3),
        R("lstm", shape, "Flax OptimizedLSTMCell", [0.040] * 3),
        R("lstm", shape, "matmul-only scan", [0.030] * 3),
    ]


def test_table_reports_medians_and_ratios_to_pytorch():
    row = bench.table(_results()).splitlines()[-1]
    cells = [c.strip() for c in row.strip("|").split("|")]
    # median PyTorch 100 ms; seqjax median 50 ms despite one slow round.
    assert cells == ["LSTM 2/3/4", "100 (1.00)", "50 (0.50)", "60 (0.60)", "-", "-", "200 (2.00)",
                     "40 (0.40)", "30 (0.30)", "1.20"]  # fmt: skip


def test_lstm_bar_compares_the_default_against_flax_fastest(monkeypatch):
    monkeypatch.setattr("seqjax.scan.auto_fused", lambda cell: False)
    monkeypatch.setattr("seqjax.scan.default_hoist", lambda: False)
    [line] = bench.lstm_bar(_results())
    assert "hoist=False 50 ms" in line and "fastest 40 ms" in line and line.endswith("NOT met")
    monkeypatch.setattr("seqjax.scan.default_hoist", lambda: True)
    assert "NOT met" in bench.lstm_bar(_results())[0]
    monkeypatch.setattr("seqjax.scan.default_hoist", lambda: False)
    monkeypatch.setattr("seqjax.scan.auto_fused", lambda cell: cell.name == "lstm")
    fused = bench.Result("lstm", (2, 3, 4), "seqjax fused hoist=False", [0.030] * 3)
    [line] = bench.lstm_bar([*_results(), fused])
    assert "fused hoist=False 30 ms" in line and line.endswith(": met")


def test_write_section_replaces_only_its_own_section(tmp_path):
    path = tmp_path / "docs" / "benchmarks.md"
    bench.write_section(str(path), f"{bench.BEGIN}\nfirst\n{bench.END}")
    assert "first" in path.read_text()
    path.write_text(path.read_text().replace("# Benchmarks", "# Benchmarks\n\nHand-written intro."))
    path.write_text(path.read_text() + "\n## Decisions\nkept\n")
    bench.write_section(str(path), f"{bench.BEGIN}\nsecond\n{bench.END}")
    text = path.read_text()
    assert "second" in text and "first" not in text
    assert "Hand-written intro." in text and "## Decisions\nkept" in text
    assert text.count(bench.BEGIN) == 1
    assert [p.name for p in path.parent.iterdir()] == ["benchmarks.md"]  # no temporary left


def test_write_section_appends_to_a_file_without_one(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# Notes\nmine\n")
    bench.write_section(str(path), f"{bench.BEGIN}\nx\n{bench.END}")
    assert path.read_text().startswith("# Notes\nmine\n") and path.read_text().endswith(
        f"{bench.END}\n"
    )


@pytest.mark.parametrize("bad", ["32x128", "ax1x2", "0x1x2", ""])
def test_bad_shapes_name_the_value(bad):
    with pytest.raises(UserError, match="--shapes="):
        bench._parse_shapes(bad)
    assert bench._parse_shapes("1x2x3,4x5x6") == ((1, 2, 3), (4, 5, 6))


def test_train_and_infer_sections_live_side_by_side(tmp_path):
    path = tmp_path / "benchmarks.md"
    bench.write_section(str(path), f"{bench.BEGIN}\ntrain1\n{bench.END}")
    infer = (bench.INFER_BEGIN, bench.INFER_END)
    bench.write_section(str(path), f"{infer[0]}\ninfer1\n{infer[1]}", *infer)
    bench.write_section(str(path), f"{bench.BEGIN}\ntrain2\n{bench.END}")
    bench.write_section(str(path), f"{infer[0]}\ninfer2\n{infer[1]}", *infer)
    text = path.read_text()
    assert "train2" in text and "infer2" in text and "train1" not in text and "infer1" not in text


@pytest.mark.parametrize("mode", ["train", "infer"])
def test_jax_contenders_run_in_both_modes(mode):
    import jax
    import jax.numpy as jnp
    import numpy as np

    xs = jnp.asarray(np.random.default_rng(0).standard_normal((2, 3, 4), dtype=np.float32))
    labels = jnp.zeros((2, 3), jnp.int32)
    for run in (
        bench._seqjax("lstm", 4, None, xs, labels, mode, backend="fused"),
        bench._seqjax("gru", 4, False, xs, labels, mode),
        bench._matmul_only("lstm", 4, xs, labels, mode),
    ):
        with jax.numpy_dtype_promotion("standard"):  # optax's Adam, as the benchmark runs it
            run(2)
