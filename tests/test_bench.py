"""The fair benchmark's plumbing (``experiments/bench/``); no timing is asserted anywhere.

The FLOP formula is checked against the matmuls JAX actually traces for a training step; the
contenders against each other on the loss of the same weights (PyTorch's ``nn.LSTM``/``GRU``/
``RNN``, Flax's cells and seqjax's backends read one set of weights in PyTorch's layout); the
script itself in its smoke mode, in fresh processes as it runs for real.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import jax
import jax.extend
import numpy as np
import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "bench"
sys.path.insert(0, str(BENCH))

import contenders  # noqa: E402
import fair  # noqa: E402
import report  # noqa: E402


@pytest.fixture(autouse=True)
def standard_promotion():
    """optax's Adam mixes Python floats with int32 counts; conftest.py makes promotion strict."""
    with jax.numpy_dtype_promotion("standard"):
        yield


HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch not installed (pip install torch)")


def _dot_flops(jaxpr, times: int = 1) -> int:
    """2 * M * N * K of every ``dot_general`` in ``jaxpr``, scans counted ``length`` times."""
    total = 0
    for e in jaxpr.eqns:
        if e.primitive.name == "dot_general":
            (lhs_c, _), (lhs_b, _) = e.params["dimension_numbers"]
            a, out = e.invars[0].aval, e.outvars[0].aval
            k = int(np.prod([a.shape[d] for d in lhs_c]))
            total += times * 2 * int(np.prod(out.shape)) * k
        for sub in jax.extend.core.jaxprs_in_params(e.params):
            n = e.params["length"] if e.primitive.name == "scan" else 1
            total += _dot_flops(sub, times * n)
    return total


@pytest.mark.parametrize("backend", ["sequential", None])
@pytest.mark.parametrize("cell", ["lstm", "gru", "elman"])
@pytest.mark.parametrize("mode", ["train", "infer"])
def test_flop_formula_counts_the_traced_matmuls(cell, mode, backend):
    import optax

    import seqjax

    B, T, H = 3, 5, 4
    w = contenders.weights(cell, B, T, H)
    c = seqjax.cells.get(cell, H)
    kw = {} if backend is None else {"backend": backend}
    params = {"rnn": contenders.seqjax_params(cell, w), "w_out": w["W_out"].T, "b_out": w["b_out"]}

    def loss(p, xs, labels):
        ys = seqjax.unroll(c, p["rnn"], xs, **kw)[0]
        logits = ys @ p["w_out"] + p["b_out"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    f = jax.value_and_grad(loss) if mode == "train" else loss
    traced = jax.make_jaxpr(f)(params, w["xs"], w["labels"]).jaxpr
    assert _dot_flops(traced) == contenders.flops(cell, B, T, H, mode)


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["lstm", "gru", "elman"])
def test_contenders_agree_on_the_loss_of_the_same_weights(cell):
    """Each distinct way of reading the weights (the other seqjax backends read them as the
    default does; tests/test_fused.py compares those)."""
    w = contenders.weights(cell, 2, 6, 8)
    distinct = ["seqjax", "seqjax sequential", "seqjax bf16", "seqjax time-major",
                "scan readout-in-loop", "PyTorch", "PyTorch bf16"]  # fmt: skip
    names = [n for n in contenders.names(cell) if n in distinct or n.startswith("Flax")]
    names = [n for n in names if HAS_TORCH or contenders.library(n) != "torch"]
    losses = {}
    for name in names:
        run = contenders.build(name, cell, w, "train")
        losses[name] = run(1)
    ref = losses["PyTorch" if HAS_TORCH else "seqjax sequential"]
    for name, loss in losses.items():
        tol = 2e-3 if name.endswith("bf16") else 1e-5
        assert abs(loss - ref) <= tol * abs(ref), (name, loss, ref)
    # inference computes the same loss
    infer = contenders.build("seqjax", cell, w, "infer")(1)
    assert abs(infer - ref) <= 1e-5 * abs(ref)


@needs_torch
def test_pytorch_trains_from_the_mapped_weights_like_optax():
    """Two Adam steps: PyTorch's and seqjax's losses stay together (the update, not only the
    forward pass, sees the same parameters)."""
    w = contenders.weights("gru", 2, 6, 8)
    a, b = (
        contenders.build("PyTorch", "gru", w, "train"),
        contenders.build("seqjax", "gru", w, "train"),
    )
    for _ in range(3):
        la, lb = a(1), b(1)
        assert abs(la - lb) <= 1e-4 * abs(lb)


def test_refusal_names_the_load():
    assert fair.refusal((1.2, 1.0, 0.9), (1.5, 1.1, 1.0)) is None
    why = fair.refusal((0.4, 0.5, 0.6), (2.31, 1.0, 0.9))
    assert why.startswith("not writing: the 1-minute load average was 0.4 before and 2.31 after")


def test_write_section_replaces_only_its_own_section(tmp_path):
    path = tmp_path / "docs" / "benchmarks.md"
    b, e = fair.BEGIN, fair.END
    report.write_section(str(path), f"{b}\nfirst\n{e}", b, e)
    path.write_text(path.read_text().replace("# Benchmarks", "# Benchmarks\n\nHand-written intro."))
    path.write_text(path.read_text() + "\n## Decisions\nkept\n")
    report.write_section(str(path), f"{b}\nsecond\n{e}", b, e)
    text = path.read_text()
    assert "second" in text and "first" not in text and text.count(b) == 1
    assert "Hand-written intro." in text and "## Decisions\nkept" in text
    assert [p.name for p in path.parent.iterdir()] == ["benchmarks.md"]  # no temporary left
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_bad_arguments_name_the_value():
    with pytest.raises(SystemExit, match="--shapes='32x128'"):
        fair.parse(["--shapes", "32x128"])
    with pytest.raises(SystemExit, match="'nope'"):
        fair.parse(["--contenders", "nope"])
    assert fair.parse(["--shapes", "1x2x3,4x5x6"]).shapes == ((1, 2, 3), (4, 5, 6))


@pytest.mark.slow
def test_smoke_run_in_fresh_processes(tmp_path):
    """``fair.py --smoke``: every contender in its own process, the report's format, and the
    docs written only when the machine was quiet."""
    out = tmp_path / "benchmarks.md"
    names = "seqjax,PyTorch,Flax OptimizedLSTMCell"
    cmd = [sys.executable, str(BENCH / "fair.py"), "--smoke", "--cells", "lstm", "--contenders",
           names, "--out", str(out)]  # fmt: skip
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}  # the children must not inherit it
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    text = done.stdout
    assert text.startswith(fair.BEGIN) and text.rstrip().endswith(fair.END), done.stderr
    assert "`OMP_WAIT_POLICY` unset" in text and "Matmul peak, GFLOP/s" in text
    rows = [line for line in text.splitlines() if line.startswith("| lstm | 2/8/16 |")]
    expected = [n for n in names.split(",") if HAS_TORCH or n != "PyTorch"]
    assert [r.split("|")[3].strip() for r in rows] == expected * 2  # train, then infer
    for r in rows:
        ms, spread, _, gflops, frac = (c.strip() for c in r.split("|")[4:9])
        assert float(ms) > 0 and spread == "0%" and float(gflops) >= 0 and frac.endswith("%")
    loss_line = next(line for line in text.splitlines() if line.startswith("First-step loss"))
    assert float(loss_line.split("contenders ")[1].split(" ")[0]) < 1e-5
    before = float(text.split("before (")[1].split(",")[0])
    after = float(text.split("after (")[1].split(",")[0])
    if max(before, after) > report.BUSY_LOAD:
        assert done.returncode == 3 and "not writing" in done.stderr and not out.exists()
    else:
        assert done.returncode == 0 and out.read_text().count(fair.BEGIN) == 1


def test_gpu_auto_rows_merge_lengths_with_the_same_winner():
    import gpu

    groups = [
        (gpu.MODERN_TITLE, "train", c, (16, T, 256), []) for T in gpu.MODERN_T for c in gpu.MODERN
    ]
    seq = {512: 1.0, 4096: 5.0, 16384: 20.0}
    par = {512: 2.0, 4096: 3.0, 16384: 8.0}
    results = {}
    for gi, (_, _, _, (_, T, _), _) in enumerate(groups):
        results[(gi, "seqjax sequential")] = [seq[T]]
        results[(gi, "seqjax parallel")] = [par[T]]
    assert gpu.auto_rows(results, groups) == ((512, "sequential"), (None, "parallel"))
    par[512] = 0.5
    results = {
        k: [par[groups[k[0]][3][1]]] if "parallel" in k[1] else v for k, v in results.items()
    }
    assert gpu.auto_rows(results, groups) == ((None, "parallel"),)


@pytest.mark.slow
def test_gpu_script_smoke_on_cpu_without_datasets_or_ml_collections(tmp_path):
    """``gpu.py --allow-cpu``: the whole plan in miniature, in an environment where ``datasets``
    and ``ml_collections`` cannot be imported (the GPU image has neither)."""
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    for name in ("datasets", "ml_collections"):
        (blocked / f"{name}.py").write_text(
            f"raise ImportError('{name} is not in the GPU image')\n"
        )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(blocked), os.environ.get("PYTHONPATH", "")]),
    }
    out = tmp_path / "benchmarks.md"
    cmd = [sys.executable, str(BENCH / "gpu.py"), "--allow-cpu", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    assert text.count(gpu_begin()) == 1 and "child failed" not in text
    for title in ("### LSTM", "### Modern cells", "### GRU", "### Elman", "### bf16"):
        assert title in text
    rows = [
        "| train | lstm | 2/8/16 | seqjax fused |",
        "| train | mingru | 2/16/16 | seqjax parallel |",
    ]
    rows.append("| train | lstm | 2/8/16 | PyTorch |" if HAS_TORCH else "| train | gru | 2/8/16 |")
    assert all(row in text for row in rows)
    line = next(x for x in text.splitlines() if x.startswith('- `AUTO_BACKEND["gpu"] = '))
    rows = eval(line.split(" = ", 1)[1].split("`", 1)[0])  # a Python literal, as printed
    assert rows and rows[-1][0] is None and {b for _, b in rows} <= {"sequential", "parallel"}
    assert "- lstm: fused / sequential time" in text
    assert "seqjax cudnn: UserError: backend='cudnn': needs an NVIDIA GPU" in text


def gpu_begin():
    import gpu

    return gpu.BEGIN
