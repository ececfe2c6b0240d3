"""``seqjax train | eval | report``: flags, then one call into the library (flax examples style).

seqjax train  --config FILE[:PRESETS] --workdir DIR [--config.KEY=VALUE ...]
seqjax eval   --workdir DIR [--split validation] [--checkpoint best|latest]
seqjax report --workdir DIR [--out FILE.png]     (a sweep directory: its tables and plots)
seqjax sweep  --config FILE[:PRESETS] --workdir DIR [--retry_failed] [--config.KEY=VALUE ...]
"""

from __future__ import annotations

import json

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
        f"done: step {result['step']}, validation {json.dumps(result['validation'])}, "
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
    from seqjax.train import loop

    print(json.dumps(loop.evaluate_checkpoint(_workdir(fv), fv.split, fv.checkpoint)))
    return 0


def report(argv: list[str]) -> int:
    """Draws ``--workdir``'s metric curves to a PNG and prints its path."""
    fv = flags.FlagValues()
    flags.DEFINE_string("workdir", None, "run directory written by seqjax train", flag_values=fv)
    flags.DEFINE_string("out", None, "PNG file (default: WORKDIR/report.png)", flag_values=fv)
    cmdline.parse(fv, argv)
    from seqjax.train import sweep

    if sweep.is_sweep_dir(_workdir(fv)):
        print("\n".join(sweep.write_report(fv.workdir)))
        return 0
    from seqjax.train.report import plot_metrics

    print(plot_metrics(_workdir(fv), fv.out))
    return 0


def sweep(argv: list[str]) -> int:
    """Runs every run of ``--config``'s ``sweep`` grid not yet finished in ``--workdir``."""
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config",
        None,
        "sweep config FILE[:PRESETS] (with a sweep field)",
        flag_values=fv,
        lock_config=False,
        sys_argv=argv,
    )
    flags.DEFINE_string("workdir", None, "sweep directory (runs/, results)", flag_values=fv)
    flags.DEFINE_bool("retry_failed", False, "train failed runs again", flag_values=fv)
    cmdline.parse(fv, argv)
    if fv.config is None:
        raise UserError("--config: missing; e.g. --config configs/sweeps/adding.py:smoke")
    workdir = _workdir(fv)
    from seqjax.train import sweep as sweep_lib

    records = sweep_lib.run_sweep(fv.config, workdir, retry_failed=fv.retry_failed)
    failed = sum(r["status"] == "failed" for r in records)
    print(f"done: {len(records)} runs ({failed} failed), results in {workdir}/results.md")
    return 0
