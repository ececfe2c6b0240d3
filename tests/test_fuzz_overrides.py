"""Property-based: random command lines never crash seqjax (hypothesis).

Random ``--config.KEY=VALUE`` overrides (keys of the schema and unknown ones; values of the wrong
type, huge and negative numbers, non-finite floats, empty strings, unicode) go to ``train`` and
``sweep``, and random flags to ``eval``, ``predict`` and ``sample``. Every outcome must be exit 0
or exit 2 with exactly one line on stderr, never a traceback, and a refusal must leave the
workdir's files exactly as they were.

A command line that passes every check is not trained here (a valid ``train.num_steps=10**9``
would run for days): ``train_and_evaluate`` is replaced by a stub that builds the task and stops,
so that everything up to the first training step, data loading included, is exercised.
"""

import os
import pathlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqjax import cli, tasks
from seqjax.train import config as config_lib
from seqjax.train import loop

ROOT = pathlib.Path(__file__).resolve().parent.parent
SYNTHETIC = f"{ROOT / 'configs/synthetic/adding.py'}:smoke"
SWEEP = f"{ROOT / 'configs/sweeps/adding.py'}:smoke"
KEYS = sorted(config_lib.fields("synthetic"))
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class Accepted(Exception):
    """Raised by the stub once a command line passed every check and its task was built."""


def stub(config, workdir, **kwargs):
    tasks.build(config_lib.validate(config))
    raise Accepted


NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 2**31, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
)
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "None", "nan", "1e400", "()"]))
VALUES = st.one_of(NUMBERS.map(str), TEXT, st.sampled_from(["True", "false", "(1, 2)", "[3]"]))
KEY = st.one_of(
    st.sampled_from(KEYS),
    st.sampled_from(["model.cel", "optim", "train.num_steps.x", "zzz", "data..seq_len"]),
    st.text(alphabet="abcdefghij._", min_size=1, max_size=15),
)


def files_of(directory):
    d = pathlib.Path(directory)
    if not d.exists():
        return None
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in d.rglob("*")}


def outcome(argv, capsys):
    """Runs the command; returns (exit status, stderr). Anything raised but Accepted fails."""
    capsys.readouterr()
    try:
        code = cli.main(argv)
    except Accepted:
        code = 0
    except SystemExit as e:  # --help and friends
        code = int(e.code or 0)
    err = capsys.readouterr().err.strip()
    return code, err


def check(code, err, before, after):
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err
    if code == 2:
        assert err and "\n" not in err, err
        assert before == after, "a refused command changed the workdir"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished smoke run, and the real trainer (the fuzz tests replace it)."""
    work = tmp_path_factory.mktemp("fuzz") / "run"
    assert cli.main(["train", f"--config={SYNTHETIC}", f"--workdir={work}"]) == 0
    return work


@pytest.mark.slow
@FUZZ
@given(overrides=st.lists(st.tuples(KEY, VALUES), min_size=1, max_size=3))
def test_train_overrides_never_crash(overrides, finished, capsys, monkeypatch):
    monkeypatch.setattr(loop, "train_and_evaluate", stub)
    argv = ["train", f"--config={SYNTHETIC}", f"--workdir={finished}"]
    argv += [f"--config.{k}={v}" for k, v in overrides]
    before = files_of(finished)
    code, err = outcome(argv, capsys)
    check(code, err, before, files_of(finished))


@pytest.mark.slow
@FUZZ
@given(overrides=st.lists(st.tuples(KEY, VALUES), min_size=1, max_size=2))
def test_sweep_overrides_never_crash(overrides, tmp_path_factory, capsys, monkeypatch):
    monkeypatch.setattr(loop, "train_and_evaluate", stub)
    work = tmp_path_factory.mktemp("sweep")
    argv = ["sweep", f"--config={SWEEP}", f"--workdir={work}"]
    argv += [f"--config.{k}={v}" for k, v in overrides]
    before = files_of(work)
    code, err = outcome(argv, capsys)
    check(code, err, before, files_of(work))


FLAG = st.sampled_from(
    ["--split", "--checkpoint", "--prompt", "--length", "--temperature", "--top_k", "--seed",
     "--batch_size", "--file", "--config.model.cell", "--nope"]
)  # fmt: skip


@pytest.mark.slow
@FUZZ
@given(
    command=st.sampled_from(["eval", "predict", "sample"]),
    flags=st.lists(st.tuples(FLAG, VALUES), max_size=3),
)
def test_reader_flags_never_crash(command, flags, finished, capsys):
    argv = [command, f"--workdir={finished}", *[f"{f}={v}" for f, v in flags]]
    if command == "predict":
        argv.append("a text")
    before = files_of(finished)
    code, err = outcome(argv, capsys)
    check(code, err, before, files_of(finished))


def test_the_property_can_fail(finished, capsys):
    """A command that crashes would fail ``check``: a traceback is not exit 0 or 2."""
    with pytest.raises(AssertionError):
        check(1, "Traceback (most recent call last):", {}, {})
    with pytest.raises(AssertionError):
        check(2, "two\nlines", {}, {})
    code, err = outcome(["eval", f"--workdir={finished}", "--split=vaildation"], capsys)
    assert code == 2 and "--split='vaildation'" in err


def test_an_accepted_override_really_trains(finished, tmp_path, capsys):
    """The stub stands in for training only; one accepted command line trains for real."""
    work = tmp_path / "real"
    argv = ["train", f"--config={SYNTHETIC}", f"--workdir={work}", "--config.model.cell=gru"]
    assert outcome(argv, capsys)[0] == 0 and os.path.isdir(work / "checkpoints")
