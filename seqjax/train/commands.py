"""``seqjax train | eval | report``: flags, then one call into the library (flax examples style).

seqjax train  --config FILE[:PRESETS] --workdir DIR [--config.KEY=VALUE ...]
seqjax eval   --workdir DIR [--split validation] [--checkpoint best|latest]
              (classification: also the confusion matrix, WORKDIR/confusion_<split>.png)
seqjax report --workdir DIR [--out FILE.png]     (a sweep directory: its tables and plots)
seqjax sweep  --config FILE[:PRESETS] --workdir DIR [--jobs N] [--threads_per_run T] [--shard K/N]
              [--retry_failed] [--config.KEY=VALUE ...];  seqjax sweep --workdir DIR --status
seqjax sample --workdir DIR [--prompt TEXT] [--length 500] [--temperature 0.8] [--top_k 40]
              [--seed 0] [--checkpoint best|latest]
seqjax config show FILE[:PRESETS] [--config.KEY=VALUE ...]
              (every field of the resolved config with its doc; * marks changed values)

``--workdir`` of ``seqjax train`` may be left out when the config names a default one in its
``workdir`` field (``configs/quickstart.py`` does: ``runs/quickstart``). A config may also ask
the train command for a loss plot (``train.report=True``, see :mod:`seqjax.train.report`) and a
generated sample (language models: ``sample.length > 0`` with ``sample.prompt``,
``sample.temperature``, ``sample.top_k``, ``sample.seed``) once training ends; both are written
into the workdir.
"""

from __future__ import annotations

import json
import pathlib

from absl import flags
from ml_collections import config_flags

from seqjax.errors import UserError
from seqjax.train import cmdline


def _with_config_flag(help_: str, argv: list[str], *, lock: bool) -> flags.FlagValues:
    """Flags of a command that reads ``--config FILE[:PRESETS]`` and ``--config.KEY=VALUE``."""
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config", None, help_, flag_values=fv, lock_config=lock, sys_argv=argv
    )
    return fv


def _workdir(fv: flags.FlagValues) -> str:
    if not fv.workdir:
        raise UserError("--workdir: missing; give the run's directory, e.g. --workdir runs/x")
    return fv.workdir


def train(argv: list[str]) -> int:
    """Trains (or resumes) the experiment ``--config`` in ``--workdir``."""
    fv = _with_config_flag("experiment config FILE[:PRESETS]", argv, lock=True)
    flags.DEFINE_string("workdir", None, "run directory (checkpoints, metrics)", flag_values=fv)
    cmdline.parse(fv, argv)
    if fv.config is None:
        raise UserError("--config: missing; e.g. --config configs/synthetic/adding.py:smoke")
    from seqjax.train import config as config_lib

    config = config_lib.validate(fv.config)  # the whole config, before any data loads
    workdir = fv.workdir or config.workdir or _workdir(fv)
    from seqjax.train import (  # jax, optax, orbax load only once the flags are good
        baseline,
        confusion,
        loop,
    )
    from seqjax.train.metrics import headline

    result = loop.train_and_evaluate(config, workdir)
    validation = result["validation"]
    shown = baseline.beside(validation, baseline.read(workdir), "validation", headline(validation))
    print(
        f"done: step {result['step']}{' (stopped early)' if result.get('stopped_early') else ''}, "
        f"validation {shown}, "
        f"best checkpoint step {result['best_step']}, workdir {workdir}"
    )
    matrix = confusion.confusion_from_metrics(validation)
    if matrix is not None:  # classification: the last evaluation's confusion matrix
        print(confusion.format_confusion(*matrix))
    if config.train.report:
        from seqjax.train.report import plot_metrics

        print(f"loss plot: {plot_metrics(workdir)}")
    if "sample" in config and config.sample.length > 0:  # language models
        path = _write_sample(workdir, config.sample)
        print(f"sample (best checkpoint): {path}\n{path.read_text(encoding='utf-8')}")
    print(f"checkpoints: {pathlib.Path(workdir) / 'checkpoints'}")
    print(f"metrics: {pathlib.Path(workdir) / 'metrics.jsonl'} (TensorBoard: {workdir}/tb)")
    return 0


def _write_sample(workdir: str, options) -> pathlib.Path:
    """Generates ``options``' sample from the best checkpoint into ``WORKDIR/sample.txt``."""
    from seqjax.train.sampling import generate

    text = generate(
        workdir,
        options.prompt,
        options.length,
        temperature=options.temperature,
        top_k=options.top_k,
        seed=options.seed,
    )
    from seqjax.train import files

    return files.write_atomic(pathlib.Path(workdir) / "sample.txt", text + "\n")


def evaluate(argv: list[str]) -> int:
    """Evaluates the best (or latest) checkpoint of ``--workdir`` and prints its metrics."""
    fv = flags.FlagValues()
    flags.DEFINE_string("workdir", None, "run directory written by seqjax train", flag_values=fv)
    flags.DEFINE_string("split", None, "split to evaluate (default: validation)", flag_values=fv)
    flags.DEFINE_string("checkpoint", "best", "best | latest", flag_values=fv)
    cmdline.parse(fv, argv)
    from seqjax.train import baseline, confusion, loop

    workdir = _workdir(fv)
    result = loop.evaluate_checkpoint(workdir, fv.split, fv.checkpoint)
    print(json.dumps(result))
    linear = baseline.read(workdir)
    if linear is not None:  # classification trained with train.baseline (or seqjax baseline)
        print(f"{result['split']}: {baseline.beside(result, linear, result['split'])}")
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
    from seqjax.train import sweep

    if sweep.is_sweep_dir(_workdir(fv)):
        print("\n".join(sweep.write_report(fv.workdir)))
        from seqjax.train import baseline

        print("\n".join(baseline.summary(*sweep.read_records(fv.workdir))))
        return 0
    from seqjax.train.report import plot_metrics

    print(plot_metrics(_workdir(fv), fv.out))
    return 0


def sweep(argv: list[str]) -> int:
    """Runs every run of ``--config``'s ``sweep`` grid not yet finished in ``--workdir``, in
    worker processes (:mod:`seqjax.train.sweep_pool`); ``--status``: the table of its runs."""
    argv = [_dashes(a) for a in argv]
    fv = _with_config_flag("sweep config FILE[:PRESETS] (with a sweep field)", argv, lock=False)
    flags.DEFINE_string("workdir", None, "sweep directory (runs/, results)", flag_values=fv)
    flags.DEFINE_bool("retry_failed", False, "train failed runs again", flag_values=fv)
    flags.DEFINE_integer("jobs", 0, "worker processes; 0: auto (small models: one per core)",
                         flag_values=fv)  # fmt: skip
    flags.DEFINE_integer("threads_per_run", 0, "cores per run (the same for any --jobs keeps "
                         "runs bitwise identical); 0: auto", flag_values=fv)  # fmt: skip
    flags.DEFINE_string("shard", "", "K/N: only shard K of N of the grid (cluster job arrays)",
                        flag_values=fv)  # fmt: skip
    flags.DEFINE_bool("status", False, "print the table of the sweep's runs and exit",
                      flag_values=fv)  # fmt: skip
    flags.DEFINE_float("status_every", 30.0, "seconds between status tables in a log",
                       flag_values=fv)  # fmt: skip
    cmdline.parse(fv, argv)
    workdir = _workdir(fv)
    from seqjax.train import sweep as sweep_lib
    from seqjax.train import sweep_pool

    shard = sweep_lib.parse_shard(fv.shard)
    if fv.status:
        print(sweep_pool.status(workdir, shard))
        return 0
    if fv.config is None:
        raise UserError("--config: missing; e.g. --config configs/sweeps/adding.py:smoke")
    records = sweep_pool.run_workers(
        fv.config,
        workdir,
        jobs=fv.jobs,
        threads_per_run=fv.threads_per_run,
        shard=shard,
        retry_failed=fv.retry_failed,
        status_every=fv.status_every,
    )
    failed = sum(r["status"] == "failed" for r in records)
    print(f"done: {len(records)} runs ({failed} failed), results in {workdir}/results.md")
    return 0


def _dashes(arg: str) -> str:
    """``--retry-failed`` as ``--retry_failed`` (absl flag names cannot hold a dash)."""
    name, eq, value = arg.partition("=")
    if name.startswith("--") and not name.startswith("--config"):
        name = "--" + name[2:].replace("-", "_")
    return name + eq + value


def sample(argv: list[str]) -> int:
    """Prints text generated by the best (or latest) checkpoint of a language model's workdir."""
    fv = flags.FlagValues()
    flags.DEFINE_string("workdir", None, "run directory of a language model", flag_values=fv)
    flags.DEFINE_string("prompt", "\n", "text to continue", flag_values=fv)
    flags.DEFINE_integer("length", 500, "tokens to generate", flag_values=fv)
    flags.DEFINE_float("temperature", 0.8, "divides the logits; 0 = greedy", flag_values=fv)
    flags.DEFINE_integer("top_k", 40, "draw among the k likeliest tokens; 0 = all", flag_values=fv)
    flags.DEFINE_integer("seed", 0, "PRNG seed: the same seed gives the same text", flag_values=fv)
    flags.DEFINE_string("checkpoint", "best", "best | latest", flag_values=fv)
    # --top-k is accepted as a spelling of --top_k (absl flag names cannot hold a dash).
    cmdline.parse(fv, ["--top_k" + a[7:] if a.startswith("--top-k") else a for a in argv])
    from seqjax.train.sampling import generate

    text = generate(
        _workdir(fv),
        fv.prompt,
        fv.length,
        temperature=fv.temperature,
        top_k=fv.top_k,
        seed=fv.seed,
        which=fv.checkpoint,
    )
    print(text)
    return 0


def config(argv: list[str]) -> int:
    """``seqjax config show FILE[:PRESETS] [--config.KEY=VALUE ...]``: the resolved config."""
    usage = "usage: seqjax config show FILE[:PRESETS] [--config.KEY=VALUE ...]"
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(usage)
        return 0
    if argv[1] != "show":
        raise UserError(f"config {argv[1]!r}: unknown subcommand; {usage}")
    rest = argv[2:]
    if rest and not rest[0].startswith("-"):
        rest = [f"--config={rest[0]}", *rest[1:]]
    fv = _with_config_flag("experiment config FILE[:PRESETS]", ["config show", *rest], lock=True)
    cmdline.parse(fv, ["config show", *rest])
    if fv.config is None:
        raise UserError(f"no config given; {usage}")
    from seqjax.train import config as config_lib

    print(config_lib.show(fv.config, title=cmdline.flag_value(rest, "config") or ""))
    return 0
