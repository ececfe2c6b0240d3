"""The language-modelling task (seqjax/tasks/lm.py), ``seqjax sample`` and the LM configs."""

import importlib.util
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import cli, data, tasks
from seqjax.models.losses import cross_entropy as nll
from seqjax.tasks.lm import build_model
from seqjax.train import loop

ROOT = pathlib.Path(__file__).resolve().parent.parent

QUICKSTART = ROOT / "configs" / "quickstart.py"
SHAKESPEARE = ROOT / "configs" / "lm" / "tinyshakespeare_char.py"
WIKITEXT = ROOT / "configs" / "lm" / "wikitext2_word.py"
PTB = ROOT / "configs" / "lm" / "ptb_word.py"

TEXT = "".join(
    f"Line {i}: the quick brown fox jumps over the lazy dog; {i * i % 97} bottles.\n"
    for i in range(60)
)


def load_config(path, arg=None):
    spec = importlib.util.spec_from_file_location("_cfg", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


@pytest.fixture
def small_config(tmp_path):
    """The quickstart's smoke config on a small local text (two layers, to carry a list)."""
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    c = load_config(QUICKSTART, "smoke")
    c.data.source = "files"
    c.data.train_files = str(path)
    c.data.seq_len = 5
    c.data.eval_batch_size = 3
    c.model.num_layers = 2
    c.train.batch_size = 4
    return c


def jitted_loss(task):
    return jax.jit(task.loss, static_argnums=4)  # (params, state, batch, key, train)


def test_carried_state_equals_one_long_unroll(small_config):
    """Windows 0, 1, 2 with the task's carried state give the NLL of one unroll over 15 steps."""
    task = tasks.build(small_config)
    loss = jitted_loss(task)
    params = task.init(jax.random.key(0))
    state = task.initial_state(params)
    per_window = []
    for step in range(3):
        value, (state, _) = loss(params, state, task.batch(step), None, False)
        per_window.append(float(value))
    # Independent: the model over the concatenated windows from a zero state, in one call.
    model = build_model(small_config.model, int(task.metadata["vocab_size"]))
    inputs = np.concatenate([task.batch(s)["inputs"] for s in range(3)], axis=1)
    targets = np.concatenate([task.batch(s)["targets"] for s in range(3)], axis=1)
    logits, _ = model.apply(params, jnp.asarray(inputs))
    window = [slice(5 * i, 5 * i + 5) for i in range(3)]
    expected = [float(nll(logits[:, w], targets[:, w])) for w in window]
    np.testing.assert_allclose(per_window, expected, rtol=1e-5)
    assert per_window[1] != per_window[0]


def test_state_is_reset_each_epoch_and_gradient_stops_at_the_boundary(small_config):
    task = tasks.build(small_config)
    loss = jitted_loss(task)
    epoch = task.metadata["steps_per_epoch"]
    params = task.init(jax.random.key(0))
    fresh = task.initial_state(params)
    carried = fresh
    for step in range(2):
        _, (carried, _) = loss(params, carried, task.batch(step), None, False)
    first = task.batch(epoch)  # window 0 of the second epoch: its reset flag zeroes the carry
    assert bool(first["reset"]) and not bool(task.batch(epoch - 1)["reset"])
    assert float(loss(params, carried, first, None, False)[0]) == float(
        loss(params, fresh, first, None, False)[0]
    )
    nxt = task.batch(2)  # not a reset: the carried state matters
    assert float(loss(params, carried, nxt, None, False)[0]) != float(
        loss(params, fresh, nxt, None, False)[0]
    )
    # Truncated BPTT: the loss of a window has no gradient into the carry it starts from.
    grad = jax.grad(lambda s: task.loss(params, s, nxt, None, False)[0])(carried)
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grad))


def test_evaluate_equals_full_stream_nll_and_bpc_is_nats_over_ln2(small_config):
    """One row (eval_batch_size=1) carried across windows = one unroll over the whole stream."""
    small_config.data.eval_batch_size = 1
    task = tasks.build(small_config)
    params = task.init(jax.random.key(1))
    metrics = task.evaluate(params, "validation")
    stream = data.load_lm(small_config.data).splits["validation"]
    model = build_model(small_config.model, int(task.metadata["vocab_size"]))
    logits, _ = model.apply(params, jnp.asarray(stream[None, :-1]))
    logp = np.asarray(jax.nn.log_softmax(logits[0].astype(jnp.float32)), np.float64)
    expected = -logp[np.arange(len(stream) - 1), stream[1:]].mean()
    assert metrics["tokens"] == len(stream) - 1
    np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)
    assert metrics["bpc"] == pytest.approx(metrics["loss"] / math.log(2), rel=1e-12)


def test_word_level_reports_perplexity(small_config):
    small_config.data.tokenizer = "word"
    task = tasks.build(small_config)
    params = task.init(jax.random.key(0))
    metrics = task.evaluate(params, "validation")
    assert "bpc" not in metrics
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]), rel=1e-12)
    state = task.initial_state(params)
    _, (_, train_metrics) = task.loss(params, state, task.batch(0), None, False)
    assert set(train_metrics) == {"perplexity"}


@pytest.mark.slow  # ~65 s on 2 busy shared cores; less when they are idle
def test_quickstart_smoke_trains_then_samples_deterministically(tmp_path, monkeypatch, capsys):
    """``seqjax train --config configs/quickstart.py:smoke`` with no --workdir, offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", f"--config={QUICKSTART}:smoke"]) == 0
    out = capsys.readouterr().out
    workdir = tmp_path / "runs" / "quickstart"  # the config's default workdir
    for name in ("checkpoints", "metrics.jsonl", "report.png", "sample.txt"):
        assert (workdir / name).exists(), name
        assert str(workdir.relative_to(tmp_path) / name) in out
    assert (workdir / "sample.txt").read_text(encoding="utf-8").startswith("The ")

    def sample(seed):
        argv = ["sample", f"--workdir={workdir}", "--prompt", "def ", "--length", "60"]
        assert cli.main([*argv, "--temperature", "0.8", "--top-k", "5", f"--seed={seed}"]) == 0
        return capsys.readouterr().out

    first, again, other = sample(0), sample(0), sample(1)
    assert first.startswith("def ") and len(first) > 60
    assert first == again
    assert first != other


def test_sample_without_checkpoint_exits_2(tmp_path, capsys):
    assert cli.main(["sample", f"--workdir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoints" in err and "seqjax train" in err and "Traceback" not in err


def test_offline_hub_config_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc = cli.main(["train", f"--config={WIKITEXT}:smoke", f"--workdir={tmp_path / 'w'}"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Salesforce/wikitext" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "w").exists()  # nothing written


def test_ptb_presets_follow_zaremba():
    small, medium, large = (load_config(PTB, p) for p in ("small", "medium", "large"))
    assert (small.model.hidden_size, medium.model.hidden_size, large.model.hidden_size) == (
        200,
        650,
        1500,
    )
    assert (small.model.dropout, medium.model.dropout, large.model.dropout) == (0.0, 0.5, 0.65)
    for c, epochs in ((small, 13), (medium, 39), (large, 55)):
        T = c.data.seq_len
        epoch = (929_589 // 20 - 1) // T
        assert c.train.num_steps == epochs * epoch
        # SGD at lr 1 on the loss summed over T steps == lr T on the per-token mean loss.
        assert c.optim.learning_rate * (1 / T) == pytest.approx(1.0)


@pytest.mark.slow  # reads and tokenises 1.1 MB, evaluates 111k characters: ~35 s on busy cores
def test_tinyshakespeare_smoke(shared_data, tmp_path):
    c = load_config(SHAKESPEARE, "smoke")
    c.train.num_steps = c.train.eval_every = c.train.checkpoint_every = 2  # one evaluation
    assert c.data.train_files == str((shared_data / "tinyshakespeare" / "input.txt").resolve())
    result = loop.train_and_evaluate(c, tmp_path)
    splits = data.load_lm(c.data).splits
    assert len(splits["train"]) + len(splits["validation"]) == 1_115_394  # every character
    assert len(splits["validation"]) == pytest.approx(111_539, abs=1)  # the last 10% (nanoGPT)
    assert result["validation"]["tokens"] == len(splits["validation"]) - 1
    assert result["validation"]["bpc"] == pytest.approx(result["validation"]["loss"] / math.log(2))
    assert result["best_step"] == 2
