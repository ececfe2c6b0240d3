"""Bad inputs, table-driven: every user mistake ends in exit status 2 and one line on stderr that
names the bad value and says what to do, without a traceback, and leaves the workdir's files as
they were (names and SHA-256 of every file before and after).

Most cases run in-process through ``seqjax.cli.main``; a few run ``python -m seqjax.cli`` in a
subprocess for the real exit status. Data-layer cases go through ``seqjax.data.load_lm`` /
``load_classification`` (same ``UserError`` contract). Also here: a damaged latest checkpoint
falls back to the previous good one with a warning and is never deleted.
"""

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from seqjax import cli, data
from seqjax.errors import UserError
from seqjax.train.checkpoint import CheckpointWarning

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "configs" / "synthetic" / "adding.py")
SMOKE = f"--config={CONFIG}:smoke"


def snapshot(directory):
    """``{relative path: sha256}`` of every file under ``directory``."""
    d = pathlib.Path(directory)
    if not d.exists():
        return {}
    return {
        str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


def assert_kept(before, after):
    """Nothing that was there is deleted or changed (new files may appear only if listed)."""
    changed = {k for k in before if after.get(k) != before[k]}
    assert not changed, f"overwritten or deleted: {sorted(changed)}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished smoke run (LSTM; checkpoints at steps 3 and 6)."""
    workdir = tmp_path_factory.mktemp("trained") / "run"
    assert cli.main(["train", SMOKE, f"--workdir={workdir}"]) == 0
    return workdir


def damage(step_dir, item="state"):
    """Overwrites every file of a checkpoint item with bytes that are not what orbax wrote."""
    files = [p for p in (pathlib.Path(step_dir) / item).rglob("*") if p.is_file()]
    assert files
    for p in files:
        p.write_bytes(b"\x00garbage\xff" * 3)


def fresh_workdir(tmp_path):
    w = tmp_path / "fresh"
    w.mkdir()
    (w / "notes.txt").write_text("my notes\n")
    return w


def copy_trained(tmp_path, trained):
    w = tmp_path / "copy"
    shutil.copytree(trained, w)
    return w


# (id, argv with {w} = the workdir, which workdir, words the error line must contain)
CLI_CASES = [
    (
        "unknown-key",
        ["train", SMOKE, "--workdir={w}", "--config.model.cel=gru"],
        "fresh",
        ["model.cel", "did you mean model.cell"],
    ),
    (
        "wrong-type",
        ["train", SMOKE, "--workdir={w}", "--config.model.hidden_size=big"],
        "fresh",
        ["hidden_size", "big", "expected int"],
    ),
    (
        "unknown-cell",
        ["train", SMOKE, "--workdir={w}", "--config.model.cell=lsmt"],
        "fresh",
        ["lsmt", "choose one of"],
    ),
    (
        "negative-size",
        ["train", SMOKE, "--workdir={w}", "--config.model.hidden_size=-3"],
        "fresh",
        ["model.hidden_size=-3", "positive integer"],
    ),
    (
        "zero-layers",
        ["train", SMOKE, "--workdir={w}", "--config.model.num_layers=0"],
        "fresh",
        ["model.num_layers=0", "positive integer"],
    ),
    (
        "zero-seq-len",
        ["train", SMOKE, "--workdir={w}", "--config.data.seq_len=0"],
        "fresh",
        ["seq_len=0"],
    ),
    (
        "zero-steps",
        ["train", SMOKE, "--workdir={w}", "--config.train.num_steps=0"],
        "fresh",
        ["train.num_steps=0", "positive integer"],
    ),
    (
        "zero-batch",
        ["train", SMOKE, "--workdir={w}", "--config.train.batch_size=0"],
        "fresh",
        ["train.batch_size=0"],
    ),
    (
        "bad-optimizer",
        ["train", SMOKE, "--workdir={w}", "--config.optim.name=adamm"],
        "fresh",
        ["adamm", "choose one of"],
    ),
    (
        "negative-lr",
        ["train", SMOKE, "--workdir={w}", "--config.optim.learning_rate=-0.1"],
        "fresh",
        ["optim.learning_rate=-0.1"],
    ),
    (
        "ema-decay-1",
        ["train", SMOKE, "--workdir={w}", "--config.optim.ema_decay=1.0"],
        "fresh",
        ["optim.ema_decay=1.0", "[0, 1)"],
    ),
    (
        "dropout-above-1",
        ["train", SMOKE, "--workdir={w}", "--config.model.dropout=1.5"],
        "fresh",
        ["model.dropout=1.5"],
    ),
    (
        "unknown-task",
        ["train", SMOKE, "--workdir={w}", "--config.task=translate"],
        "fresh",
        ["translate", "choose one of"],
    ),
    (
        "unknown-problem",
        ["train", SMOKE, "--workdir={w}", "--config.data.name=subtracting"],
        "fresh",
        ["subtracting"],
    ),
    (
        "unknown-preset",
        ["train", f"--config={CONFIG}:smok", "--workdir={w}"],
        "fresh",
        ["smok", "choose from"],
    ),
    (
        "missing-config-file",
        ["train", "--config=configs/nope.py", "--workdir={w}"],
        "fresh",
        ["nope.py"],
    ),
    ("missing-workdir", ["train", SMOKE], "fresh", ["--workdir", "missing"]),
    ("unknown-flag", ["train", SMOKE, "--wrokdir={w}"], "fresh", ["wrokdir"]),
    ("unknown-command", ["trian", "--workdir={w}"], "fresh", ["trian", "choose one of"]),
    (
        "workdir-is-a-file",
        ["train", SMOKE, "--workdir={w}/notes.txt"],
        "fresh",
        ["notes.txt", "is a file"],
    ),
    ("eval-no-checkpoint", ["eval", "--workdir={w}"], "fresh", ["has no checkpoints", "train"]),
    (
        "eval-bad-choice",
        ["eval", "--workdir={w}", "--checkpoint=worst"],
        "trained",
        ["worst", "best, latest"],
    ),
    (
        "eval-unknown-split",
        ["eval", "--workdir={w}", "--split=dev"],
        "trained",
        ["dev", "choose one of"],
    ),
    ("report-no-metrics", ["report", "--workdir={w}"], "fresh", ["metrics.jsonl", "train first"]),
    (
        "other-architecture",
        ["train", SMOKE, "--workdir={w}", "--config.model.cell=gru"],
        "trained",
        ["model.cell", "'gru'", "new --workdir"],
    ),
    (
        "other-hidden-size",
        ["train", SMOKE, "--workdir={w}", "--config.model.hidden_size=16"],
        "trained",
        ["model.hidden_size", "16", "new --workdir"],
    ),
    (
        "all-checkpoints-damaged",
        ["train", SMOKE, "--workdir={w}"],
        "damaged",
        ["every checkpoint is damaged", "new --workdir"],
    ),
    ("eval-all-damaged", ["eval", "--workdir={w}"], "damaged-meta", ["no complete readable"]),
    ("sample-no-checkpoint", ["sample", "--workdir={w}"], "fresh", ["has no checkpoints", "train"]),
    (
        "predict-no-checkpoint",
        ["predict", "--workdir={w}", "a fine film"],
        "fresh",
        ["has no checkpoints", "train"],
    ),
    ("sample-not-an-lm", ["sample", "--workdir={w}"], "trained", ["'synthetic'", "task='lm'"]),
    (
        "predict-not-a-classifier",
        ["predict", "--workdir={w}", "a fine film"],
        "trained",
        ["'synthetic'", "task='classify'"],
    ),
    (
        "predict-missing-file",
        ["predict", "--workdir={w}", "--file={w}/nope.txt"],
        "trained",
        ["nope.txt", "no such file"],
    ),
    (
        "sample-negative-temperature",
        ["sample", "--workdir={w}", "--temperature=-1"],
        "trained",
        ["--temperature=-1.0", ">= 0"],
    ),
    ("sample-zero-length", ["sample", "--workdir={w}", "--length=0"], "trained", ["--length=0"]),
]


def make_workdir(kind, tmp_path, trained):
    if kind == "fresh":
        return fresh_workdir(tmp_path)
    w = copy_trained(tmp_path, trained)
    if kind == "damaged":
        for step in ("3", "6"):
            damage(w / "checkpoints" / step)
    if kind == "damaged-meta":
        for step in ("3", "6"):
            damage(w / "checkpoints" / step, "meta")
    return w


def check_error_line(err, words):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.filterwarnings("ignore::seqjax.train.checkpoint.CheckpointWarning")
@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(case, tmp_path, trained, capsys):
    _, argv, kind, words = case
    w = make_workdir(kind, tmp_path, trained)
    before = snapshot(w)
    capsys.readouterr()
    assert cli.main([a.format(w=w) for a in argv]) == 2
    err = capsys.readouterr().err
    line = check_error_line(err, words)
    assert line.startswith("seqjax")
    assert_kept(before, snapshot(w))


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [
        c
        for c in CLI_CASES
        if c[0] in ("unknown-key", "eval-no-checkpoint", "all-checkpoints-damaged")
    ],
    ids=lambda c: c[0],
)
def test_cli_bad_input_subprocess(case, tmp_path, trained):
    _, argv, kind, words = case
    w = make_workdir(kind, tmp_path, trained)
    before = snapshot(w)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-m", "seqjax.cli", *[a.format(w=w) for a in argv]],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    # Warnings (a damaged checkpoint skipped) are one line each too: "seqjax CMD: warning: ...".
    lines = [line for line in done.stderr.splitlines() if ": warning: " not in line]
    assert "CheckpointWarning" not in done.stderr  # no Python-style two-line warning
    err = "\n".join(lines)
    check_error_line(err, words)
    assert_kept(before, snapshot(w))


# ---- data layer: the same contract through seqjax.data ----


def write(path, content):
    path = pathlib.Path(path)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def lm_config(tmp_path, text=b"hello world\n" * 50, **over):
    return {
        "source": "files",
        "train_files": write(tmp_path / "train.txt", text),
        "cache_dir": "",
        **over,
    }


def cls_config(tmp_path, csv="text,label\ngood film,pos\nbad film,neg\n" * 10, **over):
    return {
        "source": "files",
        "train_files": write(tmp_path / "train.csv", csv),
        "cache_dir": "",
        **over,
    }


DATA_CASES = [
    (
        "missing-file",
        "lm",
        lambda t: {"source": "files", "train_files": str(t / "nope.txt"), "cache_dir": ""},
        ["nope.txt"],
    ),
    ("empty-file", "lm", lambda t: lm_config(t, b""), ["train.txt", "empty"]),
    ("non-utf8", "lm", lambda t: lm_config(t, b"caf\xe9 \xff\xfe\n" * 20), ["train.txt"]),
    ("all-empty-texts", "lm", lambda t: lm_config(t, b"\n \n\n"), ["all texts are empty"]),
    (
        "all-empty-jsonl",
        "cls",
        lambda t: {
            "source": "files",
            "cache_dir": "",
            "train_files": write(t / "train.jsonl", '{"text": "", "label": 1}\n' * 10),
        },
        ["train.jsonl", "all texts are empty"],
    ),
    (
        "all-empty-csv",
        "cls",
        lambda t: cls_config(t, "text,label\n" + ',pos\n"  ",neg\n' * 5),
        ["train.csv", "all texts are empty"],
    ),
    (
        "missing-column",
        "cls",
        lambda t: cls_config(t, "sentence,label\ngood,pos\nbad,neg\n" * 9),
        ["text"],
    ),
    (
        "unknown-label",
        "cls",
        lambda t: cls_config(t, labels="neg,pos", csv="text,label\na,pos\nb,meh\n" * 10),
        ["meh"],
    ),
    (
        "hub-offline",
        "cls",
        lambda t: {"source": "hub", "hub_id": "nobody/no-such-dataset", "cache_dir": ""},
        ["nobody/no-such-dataset"],
    ),
    ("unknown-tokenizer", "lm", lambda t: lm_config(t, tokenizer="morse"), ["morse"]),
    ("unknown-format", "lm", lambda t: lm_config(t, format="xml"), ["xml"]),
    ("negative-fraction", "lm", lambda t: lm_config(t, validation_fraction=-0.5), ["-0.5"]),
]


@pytest.mark.parametrize("case", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_data_bad_input(case, tmp_path):
    _, kind, make, words = case
    config = make(tmp_path)
    before = snapshot(tmp_path)
    load = data.load_lm if kind == "lm" else data.load_classification
    with pytest.raises(UserError) as info:
        load(config)
    check_error_line(str(info.value), words)
    assert_kept(before, snapshot(tmp_path))


def test_batch_larger_than_data():
    with pytest.raises(UserError, match="batch_size=64"):
        data.lm_rows(list(range(50)), 64)
    split = data.ClassifySplit(
        tokens=[1, 2, 3], starts=[0, 1, 2], lengths=[1, 1, 1], labels=[0, 1, 0]
    )
    with pytest.raises(UserError, match="batch_size=8"):
        data.classify_steps_per_epoch(split, 8, drop_remainder=True)


def test_vocabulary_missing():
    for bad in ({}, {"kind": "char"}, "{not json", {"kind": "klingon", "symbols": []}):
        with pytest.raises(UserError) as info:
            data.tokenizer_from_json(bad)
        check_error_line(str(info.value), ["vocabulary", "retrain"])


# ---- a damaged latest checkpoint: fall back to the previous one, keep the damaged one ----


def test_damaged_latest_checkpoint_falls_back(tmp_path, trained, capsys):
    w = copy_trained(tmp_path, trained)
    damage(w / "checkpoints" / "6")
    before = snapshot(w)
    with pytest.warns(CheckpointWarning, match="step 6"):
        assert cli.main(["eval", f"--workdir={w}", "--checkpoint=latest"]) == 0
    assert '"step": 3' in capsys.readouterr().out
    assert snapshot(w) == before  # a reader changes nothing

    # Training resumes from step 3, keeps the damaged step as 6.damaged and redoes step 6.
    with pytest.warns(CheckpointWarning, match="step 6"):
        assert cli.main(["train", SMOKE, f"--workdir={w}"]) == 0
    out = capsys.readouterr().out
    assert "resuming at step 3" in out
    damaged = {
        k.replace("checkpoints/6.damaged/", "checkpoints/6/"): v
        for k, v in snapshot(w).items()
        if k.startswith("checkpoints/6.damaged/")
    }
    assert damaged == {k: v for k, v in before.items() if k.startswith("checkpoints/6/")}
    # The redone step 6 equals the undamaged original bit for bit.
    a = ocp.StandardCheckpointer().restore(trained / "checkpoints" / "6" / "state")
    b = ocp.StandardCheckpointer().restore(w / "checkpoints" / "6" / "state")
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
