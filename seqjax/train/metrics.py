"""Where metrics go: ``WORKDIR/metrics.jsonl``, TensorBoard event files, and the terminal.

``metrics.jsonl`` has one JSON object per logged step and split, e.g.
``{"step": 100, "split": "train", "loss": 0.03, "grad_norm": 0.4, ...}``. A resumed run appends;
readers (:mod:`seqjax.train.report`) keep the last record of each ``(split, step)``. TensorBoard
files (tensorboardX) go to ``WORKDIR/tb`` with tags ``split/metric``.

On a terminal a tqdm progress bar shows the loss and throughput; otherwise (a log file, CI) plain
lines are printed every ``train.log_every`` steps.
"""

from __future__ import annotations

import json
import math
import pathlib
import sys
from typing import Optional

from seqjax.train.files import METRICS as FILE

_SHORT = {"examples": "ex", "tokens": "tok"}


class MetricWriter:
    """Appends metrics to ``workdir/metrics.jsonl`` and to TensorBoard files in ``workdir/tb``."""

    def __init__(self, workdir: pathlib.Path):
        from tensorboardX import SummaryWriter

        self._dir = pathlib.Path(workdir)
        path = self._dir / FILE
        torn = path.is_file() and path.stat().st_size > 0 and _last_byte(path) != b"\n"
        self._file = open(path, "a", encoding="utf-8")
        if torn:  # a run killed mid-line: end that line so the next record starts on its own
            self._file.write("\n")
        self._tb = SummaryWriter(logdir=str(pathlib.Path(workdir) / "tb"))

    def write(self, step: int, split: str, metrics: dict) -> None:
        record = {"step": int(step), "split": split}
        record.update({k: _json_number(v) for k, v in metrics.items()})
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
            for k, v in metrics.items():
                self._tb.add_scalar(f"{split}/{k}", float(v), int(step))
            self._tb.flush()
        except OSError as e:
            from seqjax.errors import UserError
            from seqjax.train.files import storage_problem

            problem = storage_problem(self._dir) or e.strerror
            raise UserError(
                f"--workdir={self._dir}: {problem} while writing the metrics of step {step}; the "
                "checkpoints are kept; free space (or fix the directory) and run the same "
                "command to resume"
            ) from None

    def close(self) -> None:
        self._file.close()
        self._tb.close()


def _last_byte(path: pathlib.Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1)


def _json_number(v) -> Optional[float]:
    v = float(v)
    return v if math.isfinite(v) else None  # JSON has no NaN or infinity: null


def format_metrics(metrics: dict, keys: Optional[tuple] = None) -> str:
    """``"loss 0.0312  mse 0.0312"`` with 4 significant digits."""
    keys = keys or tuple(metrics)
    return "  ".join(f"{k} {metrics[k]:.4g}" for k in keys if k in metrics)


# Evaluation results that are counts or per-class detail, not a line's headline.
_DETAIL = ("tokens",)


def headline(metrics: dict, limit: int = 8) -> tuple:
    """The keys a one-line summary shows: the scalar metrics without a ``/`` in their name (per
    class, confusion counts and per-block detail stay in ``metrics.jsonl``), at most ``limit``.

    Example:
      >>> headline({"loss": 1, "accuracy": 0.5, "recall/pos": 1, "confusion/a/b": 3, "tokens": 9})
      ('loss', 'accuracy')
    """
    return tuple(k for k in metrics if "/" not in k and k not in _DETAIL)[:limit]


class Progress:
    """A tqdm bar on a terminal, plain log lines elsewhere."""

    def __init__(self, total: int, initial: int, *, tty: Optional[bool] = None):
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.total = total
        self._bar = None
        if self.tty:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, initial=initial, file=sys.stdout, dynamic_ncols=True, unit="step"
            )

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def train(self, step: int, metrics: dict, units: str) -> None:
        """Shows the train metrics of the last log window."""
        rate = metrics.get(f"{units}_per_sec")
        if self._bar is not None:
            post = {"loss": f"{metrics['loss']:.4g}"}
            if rate is not None:
                post[_SHORT.get(units, units) + "/s"] = f"{rate:.0f}"
            self._bar.set_postfix(post, refresh=False)
            return
        text = format_metrics(metrics, ("loss", "grad_norm", "clip_rate", "learning_rate"))
        rate_text = f"  {rate:.0f} {units}/s" if rate is not None else ""
        self.line(f"step {step}/{self.total}  {text}{rate_text}")

    def line(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


__all__ = ["FILE", "MetricWriter", "Progress", "format_metrics", "headline"]
