"""``seqjax report``: loss and metric curves of a run, from ``WORKDIR/metrics.jsonl``, to a PNG.

One panel per metric; each split (train, validation, ...) is a line. Records repeated by a
resumed run (same split and step) count once, the last one written. Loss-like metrics (``loss``,
``mse``, ``grad_norm``, ``update_norm``) are drawn on a log scale when all positive.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import tempfile
from typing import Optional

from seqjax.errors import UserError
from seqjax.train.metrics import FILE

_LOG_SCALE = ("loss", "mse", "grad_norm", "update_norm", "perplexity")


def read_metrics(workdir) -> dict[str, dict[str, list]]:
    """``{split: {metric: [(step, value), ...] sorted by step}}`` from ``metrics.jsonl``."""
    path = pathlib.Path(workdir) / FILE
    if not path.is_file():
        raise UserError(f"--workdir={workdir}: no {FILE} in it; train first with seqjax train")
    records: dict = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            records[(r.get("split", "train"), r["step"])] = r
    out: dict = {}
    for (split, step), r in sorted(records.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        for k, v in r.items():
            if k in ("step", "split") or v is None:
                continue
            out.setdefault(split, {}).setdefault(k, []).append((step, float(v)))
    if not out:
        raise UserError(f"{path}: holds no metrics yet")
    return out


def plot_metrics(workdir, out: Optional[str] = None) -> str:
    """Draws every metric's curves into one PNG (``WORKDIR/report.png`` by default); returns its
    path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = read_metrics(workdir)
    names = sorted(
        {m for per_split in data.values() for m in per_split}, key=lambda n: (n != "loss", n)
    )
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        values = []
        for split, per_split in sorted(data.items()):
            if name in per_split:
                steps, ys = zip(*per_split[name])
                ax.plot(steps, ys, label=split, marker="." if len(steps) < 30 else None)
                values.extend(ys)
        if name in _LOG_SCALE and values and min(values) > 0:
            ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle(str(workdir))
    fig.tight_layout()
    path = pathlib.Path(out) if out else pathlib.Path(workdir) / "report.png"
    if path.suffix.lower() != ".png":
        raise UserError(f"--out={out}: give a .png file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, dpi=110)


def save_figure(fig, path: pathlib.Path, dpi: int = 110) -> str:
    """Saves ``fig`` as ``path`` and closes it. Written beside the target and renamed, so a
    reader never sees half a file; the file gets the usual permissions (``mkstemp`` gives 0600)."""
    import matplotlib.pyplot as plt

    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return str(path)


__all__ = ["plot_metrics", "read_metrics", "save_figure"]
