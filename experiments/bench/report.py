"""Shared pieces of the benchmark reports: the machine, the load, versions, generated sections."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics

BUSY_LOAD = 1.5  # 1-minute load average on 2 cores above which no figure is written to the docs


def load_average() -> tuple:
    """``(1, 5, 15)``-minute load averages, as ``uptime`` shows them."""
    return tuple(round(v, 2) for v in os.getloadavg())


def busy(*loads: tuple) -> bool:
    """Whether any of the 1-minute loads exceeds :data:`BUSY_LOAD`."""
    return any(load[0] > BUSY_LOAD for load in loads)


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
        mem = f", {kib / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} vCPU {model}{mem}, {platform.system()} {platform.release()}"


def versions(*packages: str) -> str:
    """Installed versions, read from package metadata (nothing is imported)."""
    out = [f"Python {platform.python_version()}"]
    for name in packages:
        try:
            out.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def spread(times: list) -> float:
    """``(max - min) / median`` of the per-round figures (0 for a single round)."""
    return (max(times) - min(times)) / statistics.median(times) if len(times) > 1 else 0.0


def ms(seconds: float) -> str:
    return f"{1e3 * seconds:.0f}" if seconds >= 0.01 else f"{1e3 * seconds:.2f}"


def write_section(path: str, section: str, begin: str, end: str) -> None:
    """Replaces the ``begin``..``end`` section of ``path`` (or appends it), keeping the rest.

    Written to a temporary file and renamed, so the file is never left half-written.
    """
    old = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + section + rest.split(end, 1)[1]
    elif old:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    else:
        new = "# Benchmarks\n\n" + section + "\n"
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(new)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
