"""The synthetic task, the sequence model and build_cell, against NumPy and plain loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import cells, schema, tasks
from seqjax.errors import UserError
from seqjax.models import build_cell, common, sequence_model
from seqjax.tasks import generators, synthetic
from seqjax.train import config as config_lib


def smoke_config(**overrides):
    from seqjax.train.cmdline import load_config_file

    c = load_config_file("configs/synthetic/adding.py:smoke")
    for key, value in overrides.items():
        parent, _, leaf = key.rpartition(".")
        (config_lib.lookup(c, parent) if parent else c)[leaf] = value
    return c


def test_batches_are_the_generators_adding_problem():
    # The problem itself is tested in test_generators.py; here: the wiring and the seed streams.
    task = synthetic.build(smoke_config())
    b = task.batch(5)
    rng = np.random.default_rng(np.random.SeedSequence(0, spawn_key=(0, 5)))
    d = generators.adding_problem_le(rng, 16, 8)
    np.testing.assert_array_equal(b["x"], d.inputs)
    np.testing.assert_array_equal(b["y"], d.targets)
    assert set(b) == {"x", "y"} and b["y"].shape == (16,)


def test_batches_are_a_function_of_seed_and_step():
    task = synthetic.build(smoke_config())
    a, b = task.batch(3), task.batch(3)
    np.testing.assert_array_equal(a["x"], b["x"])
    assert not np.array_equal(task.batch(3)["x"], task.batch(4)["x"])
    other = synthetic.build(smoke_config(seed=1))
    assert not np.array_equal(other.batch(3)["x"], a["x"])


def test_eval_set_is_held_out_and_fixed():
    task = synthetic.build(smoke_config(**{"data.eval_size": 16, "train.batch_size": 16}))
    params = task.init(jax.random.key(0))
    first = task.evaluate(params, "validation")
    assert first == task.evaluate(params, "validation")
    assert first != task.evaluate(params, "test")
    valid = synthetic.adding(synthetic._rng(0, synthetic.SPLITS["validation"]), 16, seq_len=8)
    for step in range(20):
        assert not np.array_equal(task.batch(step)["x"], valid.inputs)


def test_evaluate_averages_over_chunks():
    c = smoke_config(**{"data.eval_size": 40, "train.batch_size": 16})  # chunks 16, 16, 8
    task = synthetic.build(c)
    params = task.init(jax.random.key(0))
    data = synthetic.adding(synthetic._rng(0, synthetic.SPLITS["validation"]), 40, seq_len=8)
    model = sequence_model(cells.lstm(8), 2, 1)
    preds = np.asarray(model.apply(params, jnp.asarray(data.inputs))[0], np.float64)[:, 0]
    expected = np.mean((preds - data.targets) ** 2)
    assert task.evaluate(params, "validation")["mse"] == pytest.approx(expected, rel=1e-5)


def test_xent_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 4)).astype(np.float32)
    labels = rng.integers(0, 4, (3, 5)).astype(np.int32)
    mask = (rng.uniform(size=(3, 5)) > 0.3).astype(np.float32)
    loss, m = synthetic.xent(jnp.asarray(logits), {"y": labels, "mask": mask})
    z = logits.astype(np.float64)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]
    assert float(loss) == pytest.approx((nll * mask).sum() / mask.sum(), rel=1e-5)
    acc = ((logits.argmax(-1) == labels) * mask).sum() / mask.sum()
    assert float(m["accuracy"]) == pytest.approx(acc, rel=1e-6)


def test_sequence_model_reads_out_the_last_valid_step():
    cell = cells.gru(6)
    model = sequence_model(cell, 3, 2, readout="last")
    params = model.init(jax.random.key(0))
    xs = jax.random.normal(jax.random.key(1), (4, 7, 3))
    lengths = jnp.array([7, 5, 1, 3])
    out, _ = model.apply(params, xs, lengths=lengths)
    for i, n in enumerate(lengths.tolist()):  # reference: a Python loop over one sequence
        h = cell.initial_carry(params["rnn"][0], ())
        for t in range(n):
            h, y = cell.step(params["rnn"][0], h, xs[i, t])
        ref = y @ params["readout"]["w"] + params["readout"]["b"]
        np.testing.assert_allclose(out[i], ref, rtol=1e-5, atol=1e-6)
    every, _ = sequence_model(cell, 3, 2, readout="every").apply(params, xs)
    assert every.shape == (4, 7, 2)
    np.testing.assert_allclose(every[:, -1], model.apply(params, xs)[0], rtol=1e-6)


def test_build_cell_passes_only_accepted_options():
    model = {
        "cell": "lstm",
        "hidden_size": 4,
        "forget_bias": 2.5,
        "reset_after": False,
        "activation": "relu",
        "chrono_t_max": None,
    }
    params = build_cell(model).init(jax.random.key(0), 3)
    np.testing.assert_array_equal(params["b"][4:8], 2.5)  # forget-gate block, zero init + 2.5
    gru = build_cell({**model, "cell": "gru"})  # ignores forget_bias and activation
    assert "b_hn" not in gru.init(jax.random.key(0), 3)  # reset_after=False reached the GRU


def test_bad_cell_options_name_the_key():
    for key, value, message in [
        ("model.cell", "lsmt", r"^model.cell='lsmt': choose one of elman, lstm, gru"),
        ("model.hidden_size", 0, r"^model.hidden_size=0: must be a positive integer"),
        ("model.kernel_init", "glorot", r"^model.kernel_init='glorot': choose one of"),
        ("model.chrono_t_max", 1.5, r"^model.chrono_t_max=1.5: must be a number > 2"),
    ]:
        with pytest.raises(UserError, match=message):
            config_lib.validate(smoke_config(**{key: value}))


def test_a_newly_registered_cell_becomes_a_choice(monkeypatch):
    """A cell is one factory in the registry and its options in the schema, nothing else."""
    seen = {}

    def toy(hidden_size, *, leak=0.5):
        seen["leak"] = leak
        return cells.elman(hidden_size, "identity")

    monkeypatch.setitem(cells._FACTORIES, "toy", toy)
    monkeypatch.setitem(common.FIELDS, "model.leak", schema.number(0.5, "toy: the leak"))
    c = config_lib.defaults("synthetic")
    c.data.seq_len, c.data.eval_size, c.model.hidden_size = 8, 16, 4
    c.model.cell, c.model.leak = "toy", 0.25
    task = synthetic.build(config_lib.validate(c))  # the config's choices follow the registry
    assert seen["leak"] == 0.25
    assert task.evaluate(task.init(jax.random.key(0)), "validation")["mse"] > 0


def test_bad_data_options_fail_before_anything_is_built():
    cases = [
        ({"data.seq_len": 1}, r"^data.seq_len=1: must be >= 2 for data.name='adding'$"),
        ({"data.name": "copyy"}, r"^data.name='copyy': choose one of adding, adding_hs"),
        ({"data.name": "copy", "data.seq_len": 0}, r"^data.seq_len=0: must be a positive integer$"),
        ({"data.name": "temporal_order", "data.form": "x"}, r"^data.form='x': choose one of"),
        (
            {
                "data.name": "temporal_order",
                "data.seq_len": 20,
                "data.form": "pascanu",
                "data.variable_length": True,
            },
            r"^data.variable_length=True: the 'pascanu' form has fixed lengths",
        ),
    ]
    for overrides, message in cases:
        with pytest.raises(UserError, match=message):
            config_lib.validate(smoke_config(**overrides))


@pytest.mark.parametrize("name", sorted(synthetic.MIN_SEQ_LEN))
def test_min_seq_len_is_the_generators_own(name):
    """The schema's bound is the generator's: the shortest length draws, one shorter fails."""
    low = synthetic.MIN_SEQ_LEN[name]
    synthetic.PROBLEMS[name](np.random.default_rng(0), 2, seq_len=low)
    if low > 1:
        with pytest.raises(UserError):
            synthetic.PROBLEMS[name](np.random.default_rng(0), 2, seq_len=low - 1)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("optim.name", "adamm", "optim.name='adamm': choose one of sgd, adam, adamw, rmsprop"),
        (
            "optim.clip",
            "norm",
            "optim.clip='norm': choose one of none, global_norm, value, adaptive",
        ),
        (
            "optim.schedule",
            "linear",
            "optim.schedule='linear': choose one of constant, cosine, step",
        ),
        ("optim.learning_rate", -1.0, "optim.learning_rate=-1.0: must be a number > 0"),
        ("train.batch_size", 0, "train.batch_size=0: must be a positive integer"),
        ("model.num_layers", 0, "model.num_layers=0: must be a positive integer"),
        ("task", "nope", f"task='nope': choose one of {', '.join(tasks.names())}"),
        ("seed", -3, "seed=-3: must be a non-negative integer"),
    ],
)
def test_validate_names_key_and_choices(key, value, message):
    c = smoke_config()
    c.unlock()
    parent, _, leaf = key.rpartition(".")
    (config_lib.lookup(c, parent) if parent else c)[leaf] = value
    with pytest.raises(UserError) as e:
        config_lib.validate(c)
    assert str(e.value) == message


def test_presets_parse_like_big_vision():
    p = config_lib.parse_arg("smoke, seq_len=100", smoke=False, seq_len=50, cell="lstm")
    assert (p.smoke, p.seq_len, p.cell) == (True, 100, "lstm")
    with pytest.raises(UserError, match="preset 'smok': choose from smoke, seq_len=<int>"):
        config_lib.parse_arg("smok", smoke=False, seq_len=50)


def test_experiment_diff_ignores_run_control_only():
    a = config_lib.to_dict(smoke_config())
    b = smoke_config(**{"train.num_steps": 99, "train.keep": 5})
    assert config_lib.experiment_diff(a, b) == []
    c = smoke_config(**{"model.hidden_size": 9})
    assert config_lib.experiment_diff(a, c) == ["model.hidden_size: 8 there, 9 now"]


def test_synthetic_task_imports_nothing_impure():
    # (seqjax.models is in tests/test_imports.py's list; tasks sit just above it.)
    import subprocess
    import sys

    code = (
        "import sys, seqjax.tasks.synthetic; "
        "bad = [m for m in ('absl', 'orbax', 'tqdm', 'ml_collections', 'tensorboardX') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    "generate, readout, classes",
    [
        (  # class at the last valid step of variable-length sequences
            lambda rng, batch_size, seq_len=20: generators.temporal_order(
                rng, batch_size, seq_len, variable_length=True
            ),
            "last",
            4,
        ),
        (  # class at every step
            lambda rng, batch_size, seq_len=20: generators.copy_memory(
                rng, batch_size, seq_len, one_hot=True
            ),
            "every",
            10,
        ),
    ],
)
def test_classification_problems_plug_into_the_table(monkeypatch, generate, readout, classes):
    monkeypatch.setitem(synthetic.PROBLEMS, "toy", generate)
    task = synthetic.build(smoke_config(**{"data.name": "toy", "data.seq_len": 20}))
    assert (task.best_metric, task.best_mode) == ("accuracy", "max")
    assert task.metadata["readout"] == readout and task.metadata["output_size"] == classes
    params = task.init(jax.random.key(0))
    b = task.batch(0)
    value, (_, m) = task.loss(params, (), b, None, False)
    # Reference: the untrained model's cross-entropy, recomputed with NumPy from its logits.
    layer = sequence_model(cells.lstm(8), b["x"].shape[-1], classes, readout=readout)
    logits = np.asarray(layer.apply(params, b["x"], lengths=b.get("lengths"))[0], np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, b["y"][..., None], -1)[..., 0]
    assert float(value) == pytest.approx(nll.mean(), rel=1e-5)
    assert 0.0 <= float(m["accuracy"]) <= 1.0


# ----------------------------------------------------------------------------- phase-2 problems


def config_file(spec, **overrides):
    from seqjax.train.cmdline import load_config_file

    c = load_config_file(spec)
    for key, value in overrides.items():
        parent, _, leaf = key.rpartition(".")
        (config_lib.lookup(c, parent) if parent else c)[leaf] = value
    return c


def test_adding_hs_batches_and_solved_rate_against_numpy():
    task = synthetic.build(smoke_config(**{"data.name": "adding_hs", "data.seq_len": 12}))
    b = task.batch(2)
    d = generators.adding_problem(synthetic._rng(0, (0, 2)), 16, 12)
    np.testing.assert_array_equal(b["x"], d.inputs)
    params = task.init(jax.random.key(1))
    params["readout"]["b"] = jnp.asarray([0.5], jnp.float32)  # predictions near the targets
    _, (_, m) = task.loss(params, (), b, None, False)
    model = sequence_model(cells.lstm(8), 2, 1)
    pred = np.asarray(model.apply(params, b["x"])[0])[:, 0]
    assert float(m["solved"]) == pytest.approx(generators.fraction_solved(pred, b["y"]))


def test_copy_is_one_hot_per_step_with_the_memoryless_baseline():
    c = config_file("configs/synthetic/copy.py:smoke")
    task = synthetic.build(c)
    b = task.batch(0)
    d = generators.copy_memory(synthetic._rng(0, (0, 0)), 16, 5, one_hot=True)
    np.testing.assert_array_equal(b["x"], d.inputs)
    assert b["x"].shape == (16, 25, 10) and b["y"].shape == (16, 25)
    assert task.metadata["readout"] == "every"
    metrics = task.evaluate(task.init(jax.random.key(0)))
    assert metrics["baseline"] == pytest.approx(10 * np.log(8) / (5 + 20))


def test_digits_splits_are_fixed_and_disjoint():
    full = generators.sequential_digits("train")
    valid = synthetic.digits(None, 1, split="validation")
    np.testing.assert_array_equal(valid.inputs, full.inputs[: synthetic.DIGITS_VALIDATION])
    test = synthetic.digits(None, 1, split="test")
    np.testing.assert_array_equal(test.targets, generators.sequential_digits("test").targets)
    batch = synthetic.digits(np.random.default_rng(0), 500)
    # Every training image is one of the generator's training images past the validation ones.
    rest = full.inputs[synthetic.DIGITS_VALIDATION :, :, 0]
    rows = {r.tobytes() for r in rest}
    assert all(x.tobytes() in rows for x in batch.inputs[:, :, 0])
    perm = synthetic.digits_permuted(None, 1, split="validation")
    order = generators.digits_permutation(0)
    np.testing.assert_array_equal(perm.inputs, valid.inputs[:, order])
    c = config_file("configs/synthetic/digits.py:smoke")
    task = synthetic.build(c)
    assert task.evaluate(task.init(jax.random.key(0)), "test")["accuracy"] >= 0.0


@pytest.mark.parametrize(
    "spec",
    [
        "configs/synthetic/copy.py:smoke",
        "configs/synthetic/temporal_order.py:smoke",
        "configs/synthetic/digits.py:smoke,permuted",
        "configs/synthetic/adding.py:smoke",
    ],
)
def test_each_problem_smoke_config_trains(spec, tmp_path):
    from seqjax.train import loop

    c = config_file(spec)
    if spec.startswith("configs/synthetic/adding"):
        c.data.name = "adding_hs"
    result = loop.train_and_evaluate(c, tmp_path)
    assert result["step"] == c.train.num_steps
    assert all(np.isfinite(v) for v in result["validation"].values())
    if c.data.name == "adding_hs":
        assert 0.0 <= result["validation"]["solved"] <= 1.0


def test_diagnostics_in_metrics_match_grad_norms_per_step(tmp_path):
    import json

    from seqjax import analysis
    from seqjax.train import loop

    c = smoke_config(**{"train.diagnostics_every": 3, "model.cell": "elman"})
    result = loop.train_and_evaluate(c, tmp_path)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    diag = [r for r in map(json.loads, lines) if r["split"] == "diagnostics"]
    assert [r["step"] for r in diag] == [3, 6]
    # Independently: the final parameters on the first batch of the validation set.
    params = result["params"]
    valid = synthetic.adding(synthetic._rng(0, synthetic.SPLITS["validation"]), 32, seq_len=8)
    xs, y = jnp.asarray(valid.inputs[:16]), jnp.asarray(valid.targets[:16])
    w, b = params["readout"]["w"], params["readout"]["b"]
    cell = build_cell(c.model)
    g = analysis.grad_norms_per_step(
        cell, params["rnn"][0], xs, lambda ys, _: jnp.square(ys[:, -1] @ w + b - y[:, None])[:, 0]
    )
    for k in (0, 1, 4, 8):
        assert diag[-1][f"grad_h/k={k}"] == pytest.approx(float(g.total[k]), rel=1e-4)
    w_h = np.asarray(params["rnn"][0]["w_h"], np.float64)
    assert diag[-1]["spectral_radius"] == pytest.approx(np.abs(np.linalg.eigvals(w_h)).max(), 1e-4)
    assert diag[-1]["max_singular_value"] == pytest.approx(np.linalg.norm(w_h, 2), rel=1e-4)
    assert diag[-1]["pascanu_rate"] == pytest.approx(np.linalg.norm(w_h, 2), rel=1e-4)  # tanh


def test_diagnostics_report_gate_saturation_for_gated_cells():
    c = smoke_config(**{"model.cell": "lstm"})
    task = synthetic.build(c)
    d = task.diagnose(task.init(jax.random.key(0)))
    assert d["grad_h"].shape == (9,)
    for name in ("input", "forget", "output"):
        assert 0.0 <= float(d[f"gate/{name}/saturated"]) <= 1.0
    assert {"spectral_radius/f", "max_singular_value/o"} <= set(d)


def test_diagnostics_every_is_validated():
    with pytest.raises(UserError, match="train.diagnostics_every=-1"):
        config_lib.validate(smoke_config(**{"train.diagnostics_every": -1}))
