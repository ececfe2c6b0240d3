"""The harness's files: atomic writes with the usual permissions, and the one metrics reader.

Every file a run or a sweep writes besides its checkpoints (``done.json``, ``results.csv``,
``results.md``, ``sample.txt``, the PNG figures) goes through :func:`atomic_path`: the content is
written to a temporary file beside the target, flushed to disk and renamed over it, so a reader
(or a crash) sees the old file or the new one, never half of one. The file gets the permissions a
plain ``open(path, "w")`` would (``0o666`` less the umask), not ``mkstemp``'s owner-only 0600.

``metrics.jsonl`` (:mod:`seqjax.train.metrics`) is appended line by line; :func:`read_metrics` is
its one reader: records in file order with the last one of each ``(split, step)`` kept (a resumed
run writes some steps again) and lines cut short by a crash skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import tempfile
from typing import Iterator, Optional

from seqjax.errors import UserError

METRICS = "metrics.jsonl"
LOCK = ".seqjax.lock"  # held (flock) by the one process writing a directory
OWNER = ".seqjax.pid"  # that process's id, for the message another process gets


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, suffix: str = "") -> Iterator[pathlib.Path]:
    """Yields a temporary path beside ``path`` to write; on success it replaces ``path``.

    Example:
      >>> import tempfile
      >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
      >>> with atomic_path(target) as tmp:
      ...     _ = tmp.write_text("hello")
      >>> target.read_text(), oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
      ('hello', True)
    """
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield pathlib.Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_atomic(path, text: str) -> pathlib.Path:
    """Writes ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return pathlib.Path(path)


def save_figure(fig, path, dpi: int = 110) -> str:
    """Saves a matplotlib ``fig`` as the PNG ``path`` atomically and closes it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return str(path)


class Busy(UserError):
    """Another process holds the directory (a :class:`UserError`: one line, exit 2)."""


@contextlib.contextmanager
def exclusive(directory, what: str = "--workdir") -> Iterator[None]:
    """Holds ``DIRECTORY/.seqjax.lock`` for the body: one writer per run directory.

    A second process asking for it gets a :class:`UserError` at once, naming the directory and the
    holder's process id. The lock is an OS file lock (``filelock``): the kernel drops it when its
    process dies, even by SIGKILL, so a stale lock never blocks a restart.
    """
    import filelock

    directory = pathlib.Path(directory)
    key = str(directory.resolve())
    if key in _held:  # this process holds it already (a sweep worker around its run): re-enter
        yield
        return
    lock = filelock.FileLock(directory / LOCK, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        try:
            pid = (directory / OWNER).read_text().strip() or "unknown"
        except OSError:
            pid = "unknown"
        raise Busy(
            f"{what}={directory}: in use by another seqjax process (pid {pid}); wait for it to "
            f"finish or stop it, or use another {what}"
        ) from None
    _held.add(key)
    try:
        write_atomic(directory / OWNER, f"{os.getpid()}\n")
        yield
    finally:
        _held.discard(key)
        with contextlib.suppress(OSError):  # before the release: the next holder writes its own
            (directory / OWNER).unlink()
        lock.release()


_held: set = set()  # directories this process holds the lock of


def locked_by_another(directory) -> bool:
    """Whether another process holds ``directory``'s lock now (a run in progress)."""
    import filelock

    path = pathlib.Path(directory) / LOCK
    if not path.exists() or str(pathlib.Path(directory).resolve()) in _held:
        return False
    lock = filelock.FileLock(path, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        return True
    lock.release()
    return False


def storage_problem(directory, needed: int = 1 << 20) -> Optional[str]:
    """What keeps ``directory`` from being written, as a phrase, or ``None`` when it looks fine:
    it vanished (an unmounted filesystem), is read-only or not writable, or has less than
    ``needed`` bytes free. Asked after a write failed, to tell a full disk from a bug."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return f"{directory} does not exist any more (a filesystem that was unmounted?)"
    try:
        st = os.statvfs(directory)
    except OSError as e:
        return f"{directory} cannot be read ({e.strerror})"
    if st.f_flag & os.ST_RDONLY:
        return f"{directory} is on a read-only filesystem"
    if not os.access(directory, os.W_OK):
        return f"{directory} is not writable by this user"
    free = st.f_bavail * st.f_frsize
    if free < needed:
        return f"no space left on the device of {directory} ({free / 1024:.0f} KiB free)"
    return None


def tree_size(directory) -> int:
    """Bytes of the files below ``directory`` (0 if it is absent)."""
    return sum(p.stat().st_size for p in pathlib.Path(directory).rglob("*") if p.is_file())


def read_metrics(workdir, split: Optional[str] = None) -> list[dict]:
    """The records of ``WORKDIR/metrics.jsonl`` (of one ``split``, if given), sorted by split and
    step, the last record of each ``(split, step)`` kept; ``[]`` when the file is absent."""
    path = pathlib.Path(workdir) / METRICS
    if not path.is_file():
        return []
    records: dict = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            key = (r.get("split", "train"), r.get("step"))
            if split is None or key[0] == split:
                records.pop(key, None)  # the last one written wins
                records[key] = r
    return [records[k] for k in sorted(records, key=lambda k: (k[0], k[1]))]


__all__ = [
    "LOCK",
    "METRICS",
    "Busy",
    "OWNER",
    "atomic_path",
    "exclusive",
    "locked_by_another",
    "read_metrics",
    "save_figure",
    "storage_problem",
    "tree_size",
    "write_atomic",
]
