"""The classification task, ``seqjax predict`` and the classification metrics.

Checked against independent computations: scikit-learn's metrics, predictions recomputed outside
the task, the same text with and without extra padding.
"""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
from sklearn import metrics as skm

from seqjax import cli
from seqjax.data import tokenizer_from_json
from seqjax.data.tokenizers import WordTokenizer
from seqjax.data.vectors import load_vectors
from seqjax.errors import UserError
from seqjax.models import losses
from seqjax.tasks import classify
from seqjax.train import confusion, loop
from seqjax.train.cmdline import load_config_file
from seqjax.train.predict import Predictor

ROOT = pathlib.Path(__file__).resolve().parent.parent
CSV = str(ROOT / "configs" / "sentiment" / "csv.py")
SST2 = str(ROOT / "configs" / "sentiment" / "sst2.py")

WORDS = {
    "bad": ["awful", "dull", "boring", "terrible"],
    "meh": ["okay", "average", "fine", "plain"],
    "good": ["great", "witty", "gorgeous", "superb"],
}


def _write_csv(path, n, seed, labels=WORDS):
    """A 3-class CSV with string labels: each text's words say its class."""
    rng = np.random.default_rng(seed)
    names = list(labels)
    lines = ["text,label"]
    for _ in range(n):
        y = names[rng.integers(len(names))]
        words = list(rng.choice(labels[y], size=rng.integers(2, 6)))
        words += list(rng.choice(["the", "movie", "was", "plot"], size=rng.integers(0, 4)))
        rng.shuffle(words)
        lines.append(f"{' '.join(words)},{y}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _train_args(tmp_path, *extra, train=None, validation=None, steps=6, workdir="run"):
    train = train or _write_csv(tmp_path / "train.csv", 64, 0)
    validation = validation or _write_csv(tmp_path / "valid.csv", 24, 1)
    return [
        "train",
        f"--config={CSV}:smoke,train={train},validation={validation},steps={steps}",
        f"--workdir={tmp_path / workdir}",
        f"--config.data.cache_dir={tmp_path / 'cache'}",
        *extra,
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-class, string-label CSV run (the bring-your-own-CSV template's smoke preset)."""
    tmp = tmp_path_factory.mktemp("classify")
    args = _train_args(
        tmp,
        "--config.optim.learning_rate=0.02",
        "--config.train.eval_every=15",
        "--config.train.checkpoint_every=15",
        steps=30,
    )
    assert cli.main(args) == 0
    return tmp


def test_string_label_csv_trains_and_evaluates_like_sklearn(trained, capsys):
    workdir = trained / "run"
    result = loop.evaluate_checkpoint(workdir)
    # Independent recomputation: the predictor's labels of the validation texts, then sklearn.
    predictor = Predictor(workdir)
    assert predictor.labels == ("bad", "good", "meh")  # sorted distinct training labels
    rows = [line.rsplit(",", 1) for line in (trained / "valid.csv").read_text().splitlines()[1:]]
    texts, truth = [t for t, _ in rows], [y for _, y in rows]
    predicted = [predictor.labels[i] for i in predictor.probabilities(texts).argmax(-1)]
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    assert result["macro_f1"] == pytest.approx(
        skm.f1_score(truth, predicted, average="macro", zero_division=0)
    )
    assert result["accuracy"] > 0.6  # the words give the class away: the smoke run learns
    # seqjax eval prints the matrix and draws it.
    assert cli.main(["eval", f"--workdir={workdir}"]) == 0
    out = capsys.readouterr().out
    assert "true \\ predicted" in out
    assert (workdir / "confusion_validation.png").stat().st_size > 0


def test_predict_in_process_from_args_file_and_stdin(trained, capsys, monkeypatch):
    workdir = trained / "run"
    texts = ["great witty gorgeous superb", "awful dull boring terrible"]
    assert cli.main(["predict", f"--workdir={workdir}", *texts]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for line, text, want in zip(lines, texts, ["good", "bad"]):
        label, probs, echoed = line.split("\t")
        values = dict(p.split("=") for p in probs.split())
        assert set(values) == {"bad", "good", "meh"}
        assert sum(float(v) for v in values.values()) == pytest.approx(1.0, abs=1e-3)
        assert label == max(values, key=lambda k: float(values[k])) == want
        assert echoed == text
    file = trained / "texts.txt"
    file.write_text("\n".join(texts) + "\n\n")
    assert cli.main(["predict", f"--workdir={workdir}", f"--file={file}"]) == 0
    assert capsys.readouterr().out.splitlines() == lines
    monkeypatch.setattr(sys, "stdin", open(file))
    assert cli.main(["predict", f"--workdir={workdir}", "-"]) == 0
    assert capsys.readouterr().out.splitlines() == lines


@pytest.mark.slow
def test_predict_subprocess(trained):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "seqjax.cli", "predict", f"--workdir={trained / 'run'}", "fine"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    label, probs, text = proc.stdout.strip().split("\t")
    assert label in ("bad", "good", "meh") and text == "fine" and probs.count("=") == 3


def test_padding_does_not_change_predictions(trained):
    predictor = Predictor(trained / "run")
    short = "great movie"
    alone = predictor.probabilities([short])[0]
    # In a batch with a long text the short one is padded to its width, and with pad_batch's
    # extra multiple even further.
    together = predictor.probabilities([short, " ".join(["dull plot"] * 20)])[0]
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)
    (ids,) = predictor.encode([short])
    for multiple in (8, 64):
        tokens, lengths = predictor.pad_batch([ids], pad_multiple=multiple)
        probs = np.asarray(predictor._probs(predictor.params, tokens, lengths))[0]
        np.testing.assert_allclose(probs, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n, k = 200, 4
    truth = rng.integers(0, k, n)
    predicted = np.where(rng.random(n) < 0.6, truth, rng.integers(0, k - 1, n))  # never 3 alone
    if seed == 2:
        predicted[predicted == 3] = 0  # class 3 never predicted: 0/0 precision counts as 0
    names = ["a", "b", "c", "d"]
    m = classify.confusion_matrix(truth, predicted, k)
    np.testing.assert_array_equal(m, skm.confusion_matrix(truth, predicted, labels=range(k)))
    got = classify.metrics_from_confusion(m, names)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    assert got["macro_f1"] == pytest.approx(
        skm.f1_score(truth, predicted, average="macro", zero_division=0)
    )
    p, r, _, _ = skm.precision_recall_fscore_support(
        truth, predicted, labels=range(k), zero_division=0
    )
    for i, name in enumerate(names):
        assert got[f"precision/{name}"] == pytest.approx(p[i])
        assert got[f"recall/{name}"] == pytest.approx(r[i])
    back_names, back = confusion.confusion_from_metrics(json.loads(json.dumps(got)))
    assert back_names == names
    np.testing.assert_array_equal(back, m)


def test_metrics_by_hand():
    # 2 classes: 3 negatives (2 right), 2 positives (1 right).
    m = classify.confusion_matrix(np.array([0, 0, 0, 1, 1]), np.array([0, 0, 1, 1, 0]), 2)
    got = classify.metrics_from_confusion(m, ["neg", "pos"])
    assert m.tolist() == [[2, 1], [1, 1]]
    assert got["accuracy"] == pytest.approx(3 / 5)
    assert got["precision/neg"] == pytest.approx(2 / 3) and got["recall/pos"] == pytest.approx(0.5)
    f_neg, f_pos = 2 / 3, 2 * 0.5 * 0.5 / 1.0
    assert got["macro_f1"] == pytest.approx((f_neg + f_pos) / 2)


def _fails(args, capsys, *needles):
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line, no traceback
    for needle in needles:
        assert needle in err, err
    return err


def test_bad_inputs_give_one_line_and_exit_2(tmp_path, capsys):
    train = _write_csv(tmp_path / "train.csv", 32, 0)
    valid = _write_csv(tmp_path / "valid.csv", 16, 1)
    missing = tmp_path / "nope.csv"
    _fails(_train_args(tmp_path, train=missing, validation=valid), capsys, "nope.csv")
    _fails(
        _train_args(tmp_path, "--config.data.text_column=review", train=train, validation=valid),
        capsys,
        "review",
    )
    odd = _write_csv(tmp_path / "odd.csv", 16, 2, labels={"bad": ["x"], "awesome": ["y"]})
    _fails(_train_args(tmp_path, train=train, validation=odd), capsys, "awesome")
    _fails(
        _train_args(tmp_path, "--config.data.label_names=x,y", train=train, validation=valid),
        capsys,
        "data.label_names",
    )
    for bad, needle in [
        ("model.pooling=sum", "model.pooling='sum'"),
        ("train.label_smoothing=1.0", None),
        ("model.init_scale=0.0", None),
        ("train.adversarial_eps=-0.5", None),
        ("train.adversarial_start=-1", None),
    ]:
        args = _train_args(tmp_path, f"--config.{bad}", train=train, validation=valid)
        _fails(args, capsys, needle or bad)
    _fails(["predict", f"--workdir={tmp_path / 'none'}", "text"], capsys, "has no checkpoints")
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.35])
def test_label_smoothing_cross_entropy_matches_numpy(alpha):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(7, 4)).astype(np.float32) * 3
    labels = rng.integers(0, 4, size=7)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    want = -(1 - alpha) * logp[np.arange(7), labels] - alpha / 4 * logp.sum(-1)
    got = losses.cross_entropy_terms(jax.numpy.asarray(logits), jax.numpy.asarray(labels), alpha)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)


def test_label_smoothing_trains_on_smoothed_targets_and_evaluates_plain(tmp_path):
    """train.label_smoothing changes the training loss only: the task's train-mode loss is the
    smoothed cross-entropy of the model's logits, its eval-mode loss the plain one."""
    train = _write_csv(tmp_path / "train.csv", 32, 0)
    valid = _write_csv(tmp_path / "valid.csv", 16, 1)
    config = load_config_file(f"{CSV}:smoke,train={train},validation={valid}")
    config.data.cache_dir = ""
    config.model.dropout = config.model.word_dropout = 0.0  # train mode = eval mode but the loss
    config.train.label_smoothing = 0.2
    task = classify.build(config)
    params = jax.tree.map(lambda x: 4 * x, task.init(jax.random.key(0)))  # confident logits
    b = task.batch(0)
    logits = np.asarray(
        classify.model_from(config.model, task.metadata["vocab_size"], 3, None).apply(
            params, b["tokens"], lengths=b["lengths"]
        )[0],
        np.float64,
    )
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    y, rows = np.asarray(b["labels"]), np.arange(len(logits))
    plain = -logp[rows, y].mean()
    smoothed = (-(0.8 * logp[rows, y]) - 0.2 / 3 * logp.sum(-1)).mean()
    key = jax.random.key(1)
    assert float(task.loss(params, (), b, key, True)[0]) == pytest.approx(smoothed, rel=1e-5)
    assert float(task.loss(params, (), b, key, False)[0]) == pytest.approx(plain, rel=1e-5)
    assert smoothed != pytest.approx(plain, rel=1e-3)


@pytest.mark.parametrize("eps", [0.0, 0.7])
def test_adversarial_loss_and_gradient_match_a_per_position_embedding(tmp_path, eps):
    """train.adversarial_eps: the task's training loss is L(x) + L(x + r), r = eps g/||g|| per
    example with g = dL/dx held constant, and so is its gradient. The reference gives every
    (example, step) its own embedding row, so that dL/dx is an ordinary parameter gradient
    (``jax.grad``, not the task's vjp through the ``embed_delta`` hook) and x + r is a change of
    parameters; its embedding gradient is scattered back onto the vocabulary in NumPy."""
    train = _write_csv(tmp_path / "train.csv", 32, 0)
    config = load_config_file(f"{CSV}:smoke,train={train}")
    config.data.cache_dir = ""
    config.model.dropout = config.model.word_dropout = 0.0  # deterministic: no masks to share
    config.train.adversarial_eps = eps
    task = classify.build(config)
    model = classify.model_from(config.model, task.metadata["vocab_size"], 3, None)
    params = jax.tree.map(lambda x: 3 * x, task.init(jax.random.key(0)))
    b = task.batch(0)
    tokens, lengths, labels = (np.asarray(b[k]) for k in ("tokens", "lengths", "labels"))
    B, T = tokens.shape
    rows = np.arange(B * T).reshape(B, T)

    def mean_nll(p):
        logits, _ = model.apply(p, rows, lengths=b["lengths"])
        return jax.numpy.mean(losses.cross_entropy_terms(logits, b["labels"]))

    per_position = {**params, "embed": params["embed"][tokens.reshape(-1)]}
    g = np.asarray(jax.grad(mean_nll)(per_position)["embed"], np.float64).reshape(B, T, -1)
    assert np.all(g[np.arange(T) >= lengths[:, None]] == 0)  # padded steps: no gradient
    r = eps * g / np.sqrt((g**2).sum(axis=(1, 2), keepdims=True))
    moved = {**per_position, "embed": per_position["embed"] + r.reshape(B * T, -1)}

    def reference(p):
        return mean_nll(p) + (
            mean_nll({**p, "embed": p["embed"] + r.reshape(B * T, -1)}) if eps else 0
        )

    want_loss = float(reference(per_position))
    want = jax.tree.map(np.asarray, jax.grad(reference)(per_position))
    embed_grad = np.zeros(params["embed"].shape)
    np.add.at(embed_grad, tokens.reshape(-1), want.pop("embed"))
    key = jax.random.key(1)
    (loss, (_, metrics)), grads = jax.value_and_grad(
        lambda p: task.loss(p, (), b, key, True), has_aux=True
    )(params)
    assert float(loss) == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(np.asarray(grads.pop("embed")), embed_grad, rtol=1e-4, atol=1e-6)
    jax.tree.map(
        lambda got, w: np.testing.assert_allclose(np.asarray(got), w, rtol=1e-4, atol=1e-6),
        grads,
        want,
    )
    if eps:  # the moved vectors cost more (to first order, the most a step of eps can cost)
        assert float(metrics["adversarial_loss"]) > float(metrics["clean_loss"]) + 1e-3
        assert float(metrics["adversarial_loss"]) == pytest.approx(float(mean_nll(moved)), rel=1e-5)
    else:
        assert "adversarial_loss" not in metrics
        assert float(task.loss(params, (), b, key, False)[0]) == pytest.approx(want_loss, rel=1e-6)


def test_adversarial_term_counts_from_adversarial_start(tmp_path):
    """Before train.adversarial_start the training loss is the clean loss (the term's weight is 0
    in the batch); from it on, clean + adversarial."""
    train = _write_csv(tmp_path / "train.csv", 32, 0)
    config = load_config_file(f"{CSV}:smoke,train={train}")
    config.data.cache_dir = ""
    config.train.adversarial_eps, config.train.adversarial_start = 0.5, 3
    task = classify.build(config)
    params, key = task.init(jax.random.key(0)), jax.random.key(1)
    for step in (0, 2, 3, 7):
        b = task.batch(step)
        loss, (_, m) = task.loss(params, (), b, key, True)
        np.testing.assert_array_equal(b["adversarial"], np.full(len(b["labels"]), float(step >= 3)))
        want = m["clean_loss"] + (m["adversarial_loss"] if step >= 3 else 0.0)
        assert float(loss) == pytest.approx(float(want), rel=1e-6)
        assert float(m["adversarial_loss"]) > float(m["clean_loss"])


def test_adversarial_delta_has_norm_eps_per_example():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(3, 5, 4)).astype(np.float32)
    g[1] = 0.0  # an example without gradient stays unperturbed
    r = np.asarray(classify.adversarial_delta(jax.numpy.asarray(g), 0.3))
    np.testing.assert_allclose(np.sqrt((r**2).sum(axis=(1, 2))), [0.3, 0.0, 0.3], rtol=1e-6)
    np.testing.assert_allclose(r[0], 0.3 * g[0] / np.linalg.norm(g[0]), rtol=1e-6)
    assert np.all(r[1] == 0)


def test_early_stopping_stops_and_stays_stopped(tmp_path, capsys):
    # A zero-ish learning rate cannot improve validation accuracy: patience 2 stops at the
    # second evaluation after the first (steps 2, 4, 6: best at 2, no gain at 4 and 6).
    args = _train_args(
        tmp_path,
        "--config.optim.learning_rate=1e-12",
        "--config.train.eval_every=2",
        "--config.train.checkpoint_every=100",
        "--config.train.early_stop_patience=2",
        steps=20,
    )
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "stopping early" in out and "done: step 6 (stopped early)" in out
    assert cli.main(args) == 0  # resumes from the step-6 checkpoint: nothing to train
    assert "nothing to train: the run stopped early at step 6" in capsys.readouterr().out


def test_embeddings_file_initialises_the_embedding(tmp_path):
    train = _write_csv(tmp_path / "train.csv", 32, 0)
    vectors = tmp_path / "vec.txt"
    vectors.write_text("2 16\ngreat " + " ".join(["0.5"] * 16) + "\nzzz " + "1 " * 15 + "1\n")
    config = load_config_file(f"{CSV}:smoke,train={train}")
    config.data.cache_dir = ""
    config.model.embeddings_file = str(vectors)
    task = classify.build(config)
    params = task.init(jax.random.key(0))
    row = tokenizer_from_json(task.metadata["tokenizer"]).token_to_id("great")
    np.testing.assert_array_equal(np.asarray(params["embed"][row]), np.full(16, 0.5))
    assert task.metadata["embeddings_rows"] == 1
    vectors.write_text("great 0.5 0.5\n")
    with pytest.raises(UserError, match=r"vec.txt:1: 2 components"):
        classify.build(config)
    vectors.write_text("great " + " ".join(["x"] * 16) + "\n")
    with pytest.raises(UserError, match="not a number"):
        classify.build(config)
    config.model.embeddings_file = str(tmp_path / "absent.txt")
    with pytest.raises(UserError, match="no such file"):
        classify.build(config)


def test_load_vectors_skips_unknown_and_repeated_words(tmp_path):
    tok = WordTokenizer(["<pad>", "<unk>", "good", "bad"], ["<pad>", "<unk>"])
    path = tmp_path / "v.txt"
    path.write_text("bad 1 2\nugly 3 4\nbad 9 9\n\ngood 5 6\n")
    vectors, rows = load_vectors(str(path), tok, 2)
    assert rows.tolist() == [3, 2]
    np.testing.assert_array_equal(vectors, [[1, 2], [5, 6]])
    path.write_text("ugly 1 2\n")
    with pytest.raises(UserError, match="no word"):
        load_vectors(str(path), tok, 2)


@pytest.mark.slow
def test_sst2_smoke_on_the_shared_files(shared_data, tmp_path, capsys):
    workdir = tmp_path / "sst2"
    args = ["train", f"--config={SST2}:smoke", f"--workdir={workdir}"]
    assert cli.main([*args, f"--config.data.cache_dir={tmp_path / 'cache'}"]) == 0
    result = loop.evaluate_checkpoint(workdir)
    counts = sum(v for k, v in result.items() if k.startswith("confusion/"))
    assert counts == 872  # every validation sentence of dev.tsv, once
    text = "a gorgeous, witty, seductive movie."
    assert cli.main(["predict", f"--workdir={workdir}", text]) == 0
    label, _, echoed = capsys.readouterr().out.strip().splitlines()[-1].split("\t")
    assert label in ("negative", "positive") and echoed == text


def _restore_latest(workdir):
    """(config, task, state) of the latest checkpoint of a classification run."""
    import ml_collections

    from seqjax.train import checkpoint

    ckpt_dir, meta, first = checkpoint.open_workdir(workdir, "latest")
    config = ml_collections.ConfigDict(meta["config"])
    task = classify.build(config)
    return config, task, loop.restore(ckpt_dir, meta, first, task)[1]


def test_weight_averaging_is_what_eval_predict_and_resume_use(tmp_path, capsys):
    """With optim.ema_decay the run evaluates, ranks and predicts with the running average of the
    weights and logs the trained weights beside it; a run stopped and resumed half-way ends with
    the same average as one that never stopped."""
    from seqjax.train import optim

    data = [_write_csv(tmp_path / "train.csv", 64, 0), _write_csv(tmp_path / "valid.csv", 24, 1)]

    def run(name, steps):
        args = _train_args(
            tmp_path,
            "--config.optim.learning_rate=0.05",
            "--config.optim.ema_decay=0.8",
            "--config.optim.schedule=constant",  # so that extending 10 steps to 20 is one run
            "--config.train.eval_every=10",
            "--config.train.checkpoint_every=10",
            "--config.train.keep=3",
            train=data[0],
            validation=data[1],
            steps=steps,
            workdir=name,
        )
        assert cli.main(args) == 0
        return tmp_path / name

    straight = run("straight", 20)
    run("resumed", 10)
    resumed = run("resumed", 20)
    capsys.readouterr()

    config, task, state = _restore_latest(straight)
    _, _, state_r = _restore_latest(resumed)
    average = optim.averaged(state.opt_state, state.params)
    for a, b in zip(
        jax.tree.leaves(average), jax.tree.leaves(optim.averaged(state_r.opt_state, state_r.params))
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert any(
        not np.allclose(np.asarray(a), np.asarray(p))
        for a, p in zip(jax.tree.leaves(average), jax.tree.leaves(state.params))
    )
    # The logged validation rows: the average's ("validation") and the weights' ("validation_raw").
    rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    last = {r["split"]: r for r in rows if r.get("step") == 20}
    assert last["validation"]["loss"] == pytest.approx(task.evaluate(average, "validation")["loss"])
    assert last["validation_raw"]["loss"] == pytest.approx(
        task.evaluate(state.params, "validation")["loss"]
    )
    assert last["validation"]["loss"] != pytest.approx(last["validation_raw"]["loss"])
    # predict answers with the average: its probabilities are the average's, not the weights'.
    predictor = Predictor(straight)
    texts = ["great witty movie", "awful dull plot", "okay fine"]
    tokens, lengths = predictor.pad_batch(predictor.encode(texts))
    model = classify.model_from(
        config.model,
        predictor.tokenizer.vocab_size,
        len(predictor.labels),
        predictor.tokenizer.unk_id,
    )
    want = jax.nn.softmax(model.apply(average, tokens, lengths=lengths)[0], axis=-1)
    np.testing.assert_allclose(predictor.probabilities(texts), np.asarray(want), rtol=1e-5)
