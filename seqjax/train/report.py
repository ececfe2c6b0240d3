"""``seqjax report``: loss and metric curves of a run, from ``WORKDIR/metrics.jsonl``, to a PNG.

One panel per metric; each split (train, validation, ...) is a line. Records repeated by a
resumed run (same split and step) count once, the last one written. Loss-like metrics (``loss``,
``mse``, ``grad_norm``, ``update_norm``) are drawn on a log scale when all positive.
"""

from __future__ import annotations

import math
import pathlib
from typing import Optional

from seqjax.errors import UserError
from seqjax.train import files

_LOG_SCALE = ("loss", "mse", "grad_norm", "update_norm", "perplexity")


def read_metrics(workdir) -> dict[str, dict[str, list]]:
    """``{split: {metric: [(step, value), ...] sorted by step}}`` from ``metrics.jsonl``."""
    path = pathlib.Path(workdir) / files.METRICS
    if not path.is_file():
        raise UserError(
            f"--workdir={workdir}: no {files.METRICS} in it; train first with seqjax train"
        )
    out: dict = {}
    for r in files.read_metrics(workdir):
        for k, v in r.items():
            if k in ("step", "split") or v is None:
                continue
            split = out.setdefault(r.get("split", "train"), {})
            split.setdefault(k, []).append((r["step"], float(v)))
    if not out:
        raise UserError(f"{path}: holds no metrics yet")
    return out


def varying(data: dict[str, dict[str, list]]) -> list[str]:
    """The metrics worth a panel: those whose values differ somewhere (a constant such as a
    baseline, a token count or a zero skip counter says nothing as a curve), ``loss`` first.

    Example:
      >>> varying({"train": {"loss": [(1, 2.0), (2, 1.0)], "skipped": [(1, 0.0), (2, 0.0)]}})
      ['loss']
    """
    values: dict = {}
    for per_split in data.values():
        for name, points in per_split.items():
            values.setdefault(name, set()).update(v for _, v in points)
    return sorted((n for n, v in values.items() if len(v) > 1), key=lambda n: (n != "loss", n))


def plot_metrics(workdir, out: Optional[str] = None) -> str:
    """Draws the curves of every metric that varies into one PNG (``WORKDIR/report.png`` by
    default); returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = read_metrics(workdir)
    names = varying(data) or ["loss"]
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
    return files.save_figure(fig, path, dpi=110)


__all__ = ["plot_metrics", "read_metrics", "varying"]
