"""Confusion matrices of classification metrics: back from the metrics dict, as text, as a PNG.

A classification task's ``evaluate`` reports each count of its confusion matrix ``M`` (examples
of true class ``j`` predicted as ``k``) as the scalar ``confusion/<true>/<predicted>``, so that
the matrix travels through ``metrics.jsonl``, checkpoints and ``seqjax eval``'s JSON like any
other metric; ``seqjax eval`` prints it as a table and draws ``WORKDIR/confusion_<split>.png``.
"""

from __future__ import annotations

import pathlib
from typing import Mapping, Optional

import numpy as np

from seqjax.train import files

PREFIX = "confusion/"


def confusion_from_metrics(metrics: Mapping) -> Optional[tuple[list[str], np.ndarray]]:
    """``(label names, M)`` from the ``confusion/<true>/<pred>`` entries; ``None`` if there are
    none.

    Example:
      >>> names, m = confusion_from_metrics({"accuracy": 0.75, "confusion/a/a": 1,
      ...     "confusion/a/b": 1, "confusion/b/a": 0, "confusion/b/b": 2})
      >>> names, m.tolist()
      (['a', 'b'], [[1, 1], [0, 2]])
    """
    cells = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] + "/" == PREFIX:
            cells[(parts[1], parts[2])] = value
    if not cells:
        return None
    names = list(dict.fromkeys(t for t, _ in cells))
    index = {n: i for i, n in enumerate(names)}
    m = np.zeros((len(names), len(names)), np.int64)
    for (t, p), v in cells.items():
        m[index[t], index[p]] = int(round(float(v)))
    return names, m


def format_confusion(names: list[str], m: np.ndarray) -> str:
    """The matrix as a text table: rows are true labels, columns predictions.

    Example:
      >>> print(format_confusion(["neg", "pos"], np.array([[1, 1], [0, 2]])))
      true \\ predicted  neg  pos
      neg                1    1
      pos                0    2
    """
    head = "true \\ predicted"
    first = max(len(head), *(len(n) for n in names))
    widths = [max(len(n), len(str(m[:, k].max()))) for k, n in enumerate(names)]
    lines = [f"{head:<{first}}  " + "  ".join(f"{n:>{w}}" for n, w in zip(names, widths))]
    for j, name in enumerate(names):
        cells = "  ".join(f"{int(m[j, k]):>{w}}" for k, w in enumerate(widths))
        lines.append(f"{name:<{first}}  {cells}")
    return "\n".join(lines)


def plot_confusion(names: list[str], m: np.ndarray, path, title: str = "") -> pathlib.Path:
    """Draws ``M`` (counts and row-normalised shading) to the PNG ``path``, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = pathlib.Path(path)
    rows = m.sum(axis=1, keepdims=True)
    share = np.where(rows > 0, m / np.maximum(rows, 1), 0.0)
    size = 1.2 + 0.6 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for j in range(len(names)):
        for k in range(len(names)):
            color = "white" if share[j, k] > 0.5 else "black"
            ax.text(k, j, f"{int(m[j, k])}", ha="center", va="center", color=color)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    fig.tight_layout()
    files.save_figure(fig, path, dpi=110)
    return path


__all__ = ["PREFIX", "confusion_from_metrics", "format_confusion", "plot_confusion"]
