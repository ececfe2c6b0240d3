"""Faults of shared machines and clusters: two trainers on one workdir, a full, read-only or
missing filesystem, and saves that never completed. Each ends in one line and exit status 2 with
nothing lost (SIGTERM and SIGKILL are in test_crash_safety.py)."""

import asyncio
import contextlib
import logging
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types

import pytest

from seqjax import cli
from seqjax.errors import UserError
from seqjax.train import checkpoint, files, loop
from seqjax.train.cmdline import load_config_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
SMOKE = f"--config={ROOT / 'configs' / 'synthetic' / 'adding.py'}:smoke"


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}


def train(workdir, *flags, **kw):
    cmd = [sys.executable, "-m", "seqjax.cli", "train", SMOKE, f"--workdir={workdir}", *flags]
    return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300, **kw)


def snapshot(directory):
    """Every file below ``directory`` with its size and modification time."""
    d = pathlib.Path(directory)
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in d.rglob("*")}


def test_a_second_trainer_is_refused_and_a_killed_holder_does_not_block(tmp_path):
    work = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-m", "seqjax.cli", "train", SMOKE, f"--workdir={work}",
         "--config.train.num_steps=1000000", "--config.train.log_every=1"],
        env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (work / files.METRICS).is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (work / files.METRICS).is_file(), "the first trainer never started"
        started = time.monotonic()
        second = train(work)
        assert second.returncode == 2, second.stdout + second.stderr
        assert time.monotonic() - started < 60  # refused at once: no data, no compile, no wait
        err = second.stderr.strip()
        assert "\n" not in err and "Traceback" not in err
        assert f"--workdir={work}" in err and f"pid {holder.pid}" in err, err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    again = train(work)  # the kernel dropped the dead holder's lock
    assert again.returncode == 0, again.stdout + again.stderr


def test_eval_reads_without_the_lock_while_a_trainer_holds_it(tmp_path):
    work = tmp_path / "run"
    assert cli.main(["train", SMOKE, f"--workdir={work}"]) == 0
    with files.exclusive(work):
        assert cli.main(["eval", f"--workdir={work}"]) == 0


def test_workdir_on_a_missing_filesystem_is_refused_and_nothing_created(capsys):
    top = pathlib.Path("/") / f"seqjax-no-such-mount-{os.getpid()}"
    assert cli.main(["train", SMOKE, f"--workdir={top / 'runs' / 'x'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{top} does not exist (a filesystem that is not mounted?)" in err and "\n" not in err
    assert not top.exists()


def test_an_unfinished_save_is_removed_with_a_note(tmp_path, capsys):
    work = tmp_path / "run"
    assert cli.main(["train", SMOKE, f"--workdir={work}"]) == 0
    junk = work / "checkpoints" / "7.orbax-checkpoint-tmp-123"
    (junk / "state").mkdir(parents=True)
    (junk / "state" / "half").write_bytes(b"\0" * 10)
    capsys.readouterr()
    assert cli.main(["train", SMOKE, f"--workdir={work}", "--config.train.num_steps=9"]) == 0
    out = capsys.readouterr().out
    assert f"removed {junk}, a save that never completed" in out
    assert not junk.exists()


def test_a_partial_save_still_being_written_is_deleted_on_a_retry(tmp_path, monkeypatch):
    """In-flight writes add a file while the directory is deleted: the first deletion fails
    (as rmtree does with ENOTEMPTY), the retry removes it; without retry_s it is left (quietly)."""
    real, calls = checkpoint.shutil.rmtree, []

    def racing(path, *a, **k):
        calls.append(path)
        if len(calls) % 2:  # every first try meets a file that appeared meanwhile
            raise OSError(39, "Directory not empty", str(path))
        real(path, *a, **k)

    monkeypatch.setattr(checkpoint.shutil, "rmtree", racing)
    keep = tmp_path / "5"
    keep.mkdir()
    for retry_s, left in ((0.0, True), (5.0, False)):
        calls.clear()
        part = tmp_path / "9.orbax-checkpoint-tmp-1"
        part.mkdir(exist_ok=True)
        removed = checkpoint.remove_incomplete(tmp_path, quiet_failures=True, retry_s=retry_s)
        assert part.exists() == left and removed == ([] if left else [part.name])
    assert keep.is_dir()  # a committed checkpoint is never touched
    part.mkdir()
    calls.clear()
    with pytest.raises(OSError):
        checkpoint.remove_incomplete(tmp_path)  # not quiet, no retry: the error is raised


def test_a_failed_save_on_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(
    tmp_path, monkeypatch
):
    """The injected form of the disk-full test (runs everywhere): the third save fails after
    writing part of its files, and the filesystem then reports almost no free space."""
    work = tmp_path / "run"
    real_save, calls = checkpoint.save, []

    def failing_save(mngr, step, *args):
        calls.append(step)
        if len(calls) < 3:
            return real_save(mngr, step, *args)
        partial = pathlib.Path(mngr.directory) / f"{step}.orbax-checkpoint-tmp-1"
        partial.mkdir()
        (partial / "piece").write_bytes(b"\0" * 100)
        monkeypatch.setattr(files, "storage_problem", lambda d, needed=0: "no space left (0 KiB)")
        raise ValueError("RESOURCE_EXHAUSTED: Failed to write (os_error_code=28)")

    monkeypatch.setattr(checkpoint, "save", failing_save)
    c = load_config_file(f"{ROOT / 'configs/synthetic/adding.py'}:smoke")
    c.train.num_steps, c.train.checkpoint_every = 12, 3
    with pytest.raises(UserError) as e:
        loop.train_and_evaluate(c, work)
    message = str(e.value)
    assert "no space left" in message and "checkpoint of step 9" in message
    assert "the last good checkpoint (step 6) is kept" in message and "\n" not in message
    names = sorted(p.name for p in (work / "checkpoints").iterdir())
    assert names == ["3", "6"], names  # the partial save is gone, the good ones stay
    monkeypatch.undo()
    assert loop.evaluate_checkpoint(work, which="latest")["step"] == 6


def test_closed_loop_reports_of_a_failed_save_are_dropped_and_nothing_else(monkeypatch):
    """What tensorstore reports when a write of a failed save completes into orbax's closed event
    loop (an unraisable RuntimeError raised in asyncio, outside the main thread) is dropped; the
    same error raised elsewhere, or in the main thread, still reaches the previous hook."""
    seen = []

    def previous(unraisable):
        tb = unraisable.exc_traceback
        while tb.tb_next is not None:
            tb = tb.tb_next
        seen.append((threading.current_thread().name, tb.tb_frame.f_code.co_name))

    monkeypatch.setattr(sys, "unraisablehook", previous)
    checkpoint._drop_closed_loop_errors()
    checkpoint._drop_closed_loop_errors()  # installed once
    closed = asyncio.new_event_loop()
    closed.close()

    def report(fn):
        try:
            fn()
        except RuntimeError as e:
            args = (type(e), e, e.__traceback__, None, None)
            sys.unraisablehook(types.SimpleNamespace(**dict(zip(UNRAISABLE, args))))

    def elsewhere():
        raise RuntimeError("Event loop is closed")

    for name, fn in [("asyncio", lambda: closed.call_soon_threadsafe(print)), ("own", elsewhere)]:
        thread = threading.Thread(target=report, args=(fn,), name=name)
        thread.start()
        thread.join()
    report(lambda: closed.call_soon_threadsafe(print))
    assert seen == [("own", "elsewhere"), ("MainThread", "_check_closed")]


def test_late_oserrors_of_a_failed_save_are_dropped_and_nothing_else(caplog):
    log = logging.getLogger("asyncio")
    before = list(log.filters)
    log.filters[:] = [f for f in before if not isinstance(f, checkpoint._LateWriteErrors)]
    try:
        checkpoint.quiet_late_write_errors()
        checkpoint.quiet_late_write_errors()  # installed once
        assert sum(isinstance(f, checkpoint._LateWriteErrors) for f in log.filters) == 1

        def late(exc):
            try:
                raise exc
            except BaseException as e:
                info = (type(e), e, e.__traceback__)
            log.error("Future exception was never retrieved\nfuture: <Future>", exc_info=info)

        def chained():
            try:
                raise OSError(28, "No space left on device")
            except OSError as e:
                raise RuntimeError("while writing") from e

        with caplog.at_level(logging.ERROR, logger="asyncio"):
            late(OSError(28, "No space left on device"))
            try:
                chained()
            except RuntimeError as e:
                late(e)
            late(ValueError("a bug"))
            log.error("something else", exc_info=(OSError, OSError(5, "io"), None))
        kept = [r.getMessage().splitlines()[0] for r in caplog.records]
        assert kept == ["Future exception was never retrieved", "something else"]
    finally:
        log.filters[:] = before


UNRAISABLE = ("exc_type", "exc_value", "exc_traceback", "err_msg", "object")


@contextlib.contextmanager
def small_filesystem(size="600k"):
    """A real tmpfs of ``size`` (root only; skips the test where mounting is refused)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mnt = pathlib.Path(tempfile.mkdtemp(prefix="seqjax-tmpfs-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        mnt.rmdir()
        pytest.skip(f"mount -t tmpfs refused here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        mnt.rmdir()


@pytest.mark.slow
def test_disk_full_on_a_real_small_filesystem():
    with small_filesystem("600k") as mnt:
        work = mnt / "run"
        done = train(
            work, "--config.train.num_steps=400", "--config.train.checkpoint_every=5",
            "--config.train.eval_every=5", "--config.train.keep=1000",
            "--config.model.hidden_size=48",
        )  # fmt: skip
        assert done.returncode == 2, done.stdout + done.stderr[-3000:]
        err = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(err) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
        assert f"--workdir={work}" in err[0] and "KiB free" in err[0], err[0]
        left = [str(p.relative_to(work)) for p in (work / "checkpoints").rglob("*tmp*")]
        assert not left, f"partial files left: {left}"
        kept = sorted(int(p.name) for p in (work / "checkpoints").iterdir())
        assert kept and f"(step {kept[-1]}) is kept" in err[0]
    # (the tmpfs is gone now: the check that the kept checkpoint reads is the injected test's)


@pytest.mark.slow
def test_read_only_workdir_is_one_line_and_nothing_changes():
    with small_filesystem("4m") as mnt:
        work = mnt / "run"
        assert train(work).returncode == 0
        before = snapshot(work)
        ro = subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True)
        if ro.returncode:
            pytest.skip("remounting read-only refused here")
        done = train(work, "--config.train.num_steps=12")
        assert done.returncode == 2, done.stdout + done.stderr
        assert "read-only filesystem" in done.stderr and done.stderr.count("\n") == 1
        assert snapshot(work) == before
