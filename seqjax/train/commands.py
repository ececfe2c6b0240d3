"""``seqjax train | eval | report``: flags, then one call into the library (flax examples style).

seqjax train  --config FILE[:PRESETS] --workdir DIR [--config.KEY=VALUE ...]
seqjax eval   --workdir DIR [--split validation] [--checkpoint best|latest]
              (classification: also the confusion matrix, WORKDIR/confusion_<split>.png)
seqjax report --workdir DIR [--out FILE.png]
"""

from __future__ import annotations

import json
import pathlib

from absl import flags
from ml_collections import config_flags

from seqjax.errors import UserError
from seqjax.train import cmdline


def _workdir(fv: flags.FlagValues) -> str:
    if not fv.workdir:
        raise UserError("--workdir: missing; give the run's directory, e.g. --workdir runs/x")
    return fv.workdir


def train(argv: list[str]) -> int:
    """Trains (or resumes) the experiment ``--config`` in ``--workdir``."""
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config",
        None,
        "experiment config FILE[:PRESETS]",
        flag_values=fv,
        lock_config=True,
        sys_argv=argv,
    )
    flags.DEFINE_string("workdir", None, "run directory (checkpoints, metrics)", flag_values=fv)
    cmdline.parse(fv, argv)
    if fv.config is None:
        raise UserError("--config: missing; e.g. --config configs/synthetic/adding.py:smoke")
    workdir = _workdir(fv)
    from seqjax.train import loop  # jax, optax, orbax load only once the flags are good

    result = loop.train_and_evaluate(fv.config, workdir)
    print(
        f"done: step {result['step']}{' (stopped early)' if result.get('stopped_early') else ''}, "
        f"validation {json.dumps(result['validation'])}, "
        f"best checkpoint step {result['best_step']}, workdir {workdir}"
    )
    return 0


def evaluate(argv: list[str]) -> int:
    """Evaluates the best (or latest) checkpoint of ``--workdir`` and prints its metrics."""
    fv = flags.FlagValues()
    flags.DEFINE_string("workdir", None, "run directory written by seqjax train", flag_values=fv)
    flags.DEFINE_string("split", None, "split to evaluate (default: validation)", flag_values=fv)
    flags.DEFINE_string("checkpoint", "best", "best | latest", flag_values=fv)
    cmdline.parse(fv, argv)
    from seqjax.train import confusion, loop

    workdir = _workdir(fv)
    result = loop.evaluate_checkpoint(workdir, fv.split, fv.checkpoint)
    print(json.dumps(result))
    matrix = confusion.confusion_from_metrics(result)
    if matrix is not None:  # classification: the confusion matrix as a table and a PNG
        names, m = matrix
        print(confusion.format_confusion(names, m))
        png = confusion.plot_confusion(
            names,
            m,
            pathlib.Path(workdir) / f"confusion_{result['split']}.png",
            f"{result['split']}, step {result['step']}",
        )
        print(f"confusion matrix: {png}")
    return 0


def report(argv: list[str]) -> int:
    """Draws ``--workdir``'s metric curves to a PNG and prints its path."""
    fv = flags.FlagValues()
    flags.DEFINE_string("workdir", None, "run directory written by seqjax train", flag_values=fv)
    flags.DEFINE_string("out", None, "PNG file (default: WORKDIR/report.png)", flag_values=fv)
    cmdline.parse(fv, argv)
    from seqjax.train.report import plot_metrics

    print(plot_metrics(_workdir(fv), fv.out))
    return 0
