r"""A linear baseline beside every classification result: TF-IDF 1-2 grams + logistic regression.

``seqjax baseline --config FILE[:PRESETS] [--config.KEY=VALUE ...] [--workdir DIR]`` (or
``--workdir DIR`` alone: the run's saved config) and ``train.baseline=True`` (fitted before
training, logged, saved as ``WORKDIR/baseline.json``) fit it with scikit-learn on **exactly** the
training split the recurrent classifier sees and score it on the same validation split and, when
there is one, the same test split: the rows come from :func:`seqjax.data.pipeline.labelled_rows`,
which :func:`seqjax.data.load_classification` tokenises, and each split's ``rows_digest`` (a hash of
its texts and labels in order) is saved on both sides, so any mismatch shows.

The model: :math:`x = \mathrm{tfidf}(\text{word unigrams and bigrams})` (scikit-learn's
``TfidfVectorizer(ngram_range=(1, 2))``: lowercased, tokens of 2+ word characters, smoothed idf,
rows L2-normalised), then multinomial logistic regression :math:`p(y \mid x) =
\mathrm{softmax}(W x + b)` with L2 penalty :math:`\frac{1}{2C}\lVert W\rVert^2`. :math:`C` is chosen
among :data:`C_GRID` by validation accuracy, the privilege the recurrent model has too (its best
checkpoint is chosen on that split); without a validation split :data:`C_DEFAULT`. Each text is
used whole (``data.max_length`` truncates only the recurrent model's input). Accuracy and
macro-F1 are computed by the classification task's own formulas
(:func:`seqjax.tasks.classify.metrics_from_confusion`).

Measured on this machine's corpora (``experiments/own_data/README.md``), MR 10-fold with ``C = 10``
reproduces the 77.9% of ``../shared/data/README.md``; scikit-learn's default ``C = 1`` is about 2
points lower on MR and Subj. Reference: Wang & Manning 2012 ("Baselines and bigrams") for why
word bigrams with a linear model are the baseline to beat on short-text classification.
"""

from __future__ import annotations

import json
import math
import pathlib
import time
from typing import Callable, Optional

from seqjax.errors import UserError

BASELINE = "baseline.json"
NAME = "TF-IDF word 1-2 grams + logistic regression"
C_GRID = (1.0, 10.0, 100.0)  # inverse L2 strength, chosen on validation accuracy
C_DEFAULT = 10.0  # without a validation split
SHOWN = ("accuracy", "macro_f1")  # what a results line shows beside the recurrent model's


def _sklearn():
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise UserError(
            "the linear baseline needs scikit-learn, which is not installed; "
            "pip install 'seqjax[tasks]' (or pip install scikit-learn), or set train.baseline=False"
        ) from None
    return TfidfVectorizer, LogisticRegression


def _data_config(config) -> dict:
    from seqjax.train import config as config_lib

    return {
        k: v for k, v in config_lib.flatten(config_lib.to_dict(config)).items() if k[:5] == "data."
    }


def fit(config) -> dict:
    """Fits the baseline on the training split of a classification ``config`` and scores it.

    Returns:
      ``{"model", "C", "labels", "seconds", "data" (the data.* fields), "digests" and
      "examples" per split, "validation" and "test" (when the split exists): metrics}``; the
      metrics are those of :func:`seqjax.tasks.classify.metrics_from_confusion` (accuracy,
      macro_f1, per-class precision/recall, confusion counts) under the task's label names.
    """
    from seqjax.data.pipeline import labelled_rows
    from seqjax.tasks import classify
    from seqjax.train import config as config_lib

    config = config_lib.validate(config)
    if config.task != "classify":
        raise UserError(f"task={config.task!r}: the linear baseline is for classify configs")
    TfidfVectorizer, LogisticRegression = _sklearn()
    rows = labelled_rows(config.data)
    names = classify.display_names(rows.names, config.data.label_names)
    held_out = [s for s in ("validation", "test") if s in rows.texts]
    if not held_out:
        raise UserError(
            "the linear baseline needs a validation or test split: keep "
            "data.validation_fraction > 0 or give data.validation_files"
        )
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2))
    x_train = vectorizer.fit_transform(rows.texts["train"])
    x = {s: vectorizer.transform(rows.texts[s]) for s in held_out}

    def scored(c: float) -> tuple:
        model = LogisticRegression(C=c, max_iter=2000).fit(x_train, rows.labels["train"])
        out = {}
        for s in held_out:
            m = classify.confusion_matrix(rows.labels[s], model.predict(x[s]), len(names))
            out[s] = classify.metrics_from_confusion(m, names)
        return out

    if "validation" in held_out:
        tried = {c: scored(c) for c in C_GRID}
        c = max(C_GRID, key=lambda c: (tried[c]["validation"]["accuracy"], -c))  # ties: smaller C
        metrics = tried[c]
    else:
        c, metrics = C_DEFAULT, scored(C_DEFAULT)
    return {
        "model": NAME,
        "C": c,
        "labels": list(names),
        "seconds": time.perf_counter() - start,
        "data": _data_config(config),
        "digests": dict(rows.digests),
        "examples": {s: len(t) for s, t in rows.texts.items()},
        **metrics,
    }


def beside(metrics: dict, baseline: Optional[dict], split: str, keys=SHOWN) -> str:
    """``"accuracy 0.744 (linear baseline 0.762)  macro_f1 0.72 (linear baseline 0.74)"``: the
    recurrent model's metrics on ``split`` with the baseline's on the same split (only the
    model's when there is no baseline for it).

    Example:
      >>> beside({"accuracy": 0.7441, "loss": 0.5}, {"validation": {"accuracy": 0.7623}},
      ...        "validation", keys=("accuracy",))
      'accuracy 0.7441 (linear baseline 0.7623)'
    """
    theirs = (baseline or {}).get(split) or {}
    parts = []
    for k in keys:
        if k in metrics:
            extra = f" (linear baseline {theirs[k]:.4g})" if k in theirs else ""
            parts.append(f"{k} {metrics[k]:.4g}{extra}")
    return "  ".join(parts)


def describe(result: dict) -> list[str]:
    """The lines ``seqjax baseline`` prints for a :func:`fit` result."""
    lines = [
        f"linear baseline ({result['model']}, C={result['C']:g}): "
        f"{result['examples']['train']} training examples (rows {result['digests']['train']}), "
        f"{result['seconds']:.1f} s"
    ]
    for s in ("validation", "test"):
        if s in result:
            shown = "  ".join(f"{k} {result[s][k]:.4f}" for k in SHOWN)
            lines.append(
                f"{s}: {shown}  ({result['examples'][s]} examples, rows {result['digests'][s]})"
            )
    return lines


def read(workdir) -> Optional[dict]:
    """The baseline saved in ``workdir`` (``baseline.json``), or ``None``."""
    path = pathlib.Path(workdir) / BASELINE
    return json.loads(path.read_text()) if path.is_file() else None


def save(workdir, result: dict) -> pathlib.Path:
    from seqjax.train import files

    pathlib.Path(workdir).mkdir(parents=True, exist_ok=True)
    return files.write_atomic(pathlib.Path(workdir) / BASELINE, json.dumps(result, indent=1))


def before_training(config, workdir, log: Callable[[str], None] = print) -> Optional[dict]:
    """With ``train.baseline=True``: the baseline of ``config``'s split, fitted and saved in
    ``workdir`` (kept when a resumed run finds one for the same ``data.*`` fields), and logged;
    ``None`` when the field is off or absent (other tasks)."""
    train = config.get("train") or {}
    if not train.get("baseline", False):
        return None
    saved = read(workdir)
    if saved is not None and saved.get("data") == _data_config(config):
        result = saved
    else:
        result = fit(config)
        save(workdir, result)
    for line in describe(result):
        log(line)
    return result


def held_out(rundir, evaluate_checkpoint: Callable) -> dict:
    """What a sweep records of a finished classification run beside its last validation
    metrics: its best checkpoint's metrics on every held-out split (``best_validation``,
    ``test``), and the baseline saved in the run (``baseline``), when there is one.

    ``evaluate_checkpoint`` is :func:`seqjax.train.loop.evaluate_checkpoint` (passed in: the loop
    imports this module, not the other way round).
    """
    from seqjax.train import checkpoint

    splits = checkpoint.open_workdir(rundir, "latest")[1]["task"].get("splits", {})
    out = {"best_validation": evaluate_checkpoint(rundir, "validation", "best")}
    if "test" in splits:
        out["test"] = evaluate_checkpoint(rundir, "test", "best")
    baseline = read(rundir)
    if baseline is not None:
        out["baseline"] = {s: baseline[s] for s in ("validation", "test") if s in baseline}
    return out


# ----------------------------------------------------------------------------- fold summaries

#: The grid keys that a summary averages over (the folds of a cross-validation, the seeds).
OVER = ("data.fold", "seed")


def _mean_std(values: list) -> str:
    if not values:
        return ""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return f"{100 * mean:.2f}"
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def _held_out_accuracy(record: dict) -> tuple:
    """``(split, the run's accuracy, the baseline's)`` of a record: the best checkpoint on test,
    else on validation, else the last validation."""
    baseline = record.get("baseline") or {}
    for split, key in (("test", "test"), ("validation", "best_validation")):
        if key in record:
            theirs = (baseline.get(split) or {}).get("accuracy")
            return split, record[key]["accuracy"], theirs
    theirs = (baseline.get("validation") or {}).get("accuracy")
    return "validation", (record.get("validation") or {}).get("accuracy"), theirs


def summary(spec: dict, records: list[dict], metric: str = "accuracy") -> list[str]:
    """Markdown lines: per group of runs that differ only in :data:`OVER` keys (the folds, the
    seeds), the held-out accuracy's mean ± std (sample std, ``n - 1``) beside the linear
    baseline's on the same splits, their paired difference and how many runs beat it; ``[]``
    when the grid has none of those keys or no finished run has an accuracy.

    Example:
      >>> spec = {"runs": [{"overrides": {"data.fold": i}} for i in range(2)]}
      >>> recs = [{"status": "done", "overrides": {"data.fold": i}, "test": {"accuracy": a},
      ...          "baseline": {"test": {"accuracy": 0.5}}} for i, a in enumerate((0.6, 0.8))]
      >>> summary(spec, recs)[-1]
      '| all | 2 | test | 70.00 ± 14.14 | 50.00 ± 0.00 | 20.00 ± 14.14 | 2 of 2 |'
    """
    del metric  # accuracy: what every protocol of these corpora reports
    keys = list(dict.fromkeys(k for r in spec["runs"] for k in r["overrides"]))
    over = [k for k in keys if k in OVER]
    if not over:
        return []
    groups: dict = {}
    for r in records:
        if r.get("status") != "done":
            continue
        name = r.get("variant") or "-".join(
            f"{k.rpartition('.')[2]}={v}" for k, v in r["overrides"].items() if k not in OVER
        )
        groups.setdefault(name or "all", []).append(_held_out_accuracy(r))
    if not any(a is not None for rows in groups.values() for _, a, _ in rows):
        return []  # no accuracy to summarise: a regression task, or nothing finished yet
    lines = [
        f"## Mean ± std over {' and '.join(over)} (held-out accuracy %, the linear baseline "
        f"({NAME}) on the same splits)",
        "",
        "| runs | n | split | accuracy | linear baseline | difference | beat the baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, rows in groups.items():
        ours = [a for _, a, _ in rows if a is not None]
        pairs = [(a, b) for _, a, b in rows if a is not None and b is not None]
        theirs = [b for _, b in pairs]
        diffs = [a - b for a, b in pairs]
        wins = f"{sum(d > 0 for d in diffs)} of {len(diffs)}" if diffs else ""
        split = "/".join(sorted({s for s, _, _ in rows}))
        lines.append(
            f"| {name} | {len(ours)} | {split} | {_mean_std(ours)} | {_mean_std(theirs)} | "
            f"{_mean_std(diffs)} | {wins} |"
        )
    return lines


# ----------------------------------------------------------------------------- the command


def main(argv: list[str]) -> int:
    """``seqjax baseline --config FILE[:PRESETS] [--config.KEY=VALUE ...] [--workdir DIR]``."""
    from absl import flags
    from ml_collections import config_flags

    from seqjax.train import cmdline

    fv = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config", None, "classification config FILE[:PRESETS]", flag_values=fv, sys_argv=argv
    )
    flags.DEFINE_string(
        "workdir", None, "a run directory: save baseline.json there (alone: its config)",
        flag_values=fv,
    )  # fmt: skip
    cmdline.parse(fv, argv)
    if fv.config is not None:
        config = fv.config
    elif fv.workdir:
        from seqjax.train import checkpoint

        config = checkpoint.open_workdir(fv.workdir, "latest")[1]["config"]
    else:
        raise UserError(
            "--config: missing; e.g. seqjax baseline --config configs/classify/mr.py "
            "(or --workdir DIR of a trained run)"
        )
    result = fit(config)
    print("\n".join(describe(result)))
    if fv.workdir:
        print(f"saved: {save(fv.workdir, result)}")
    return 0


__all__ = [
    "BASELINE",
    "C_GRID",
    "OVER",
    "before_training",
    "beside",
    "describe",
    "fit",
    "held_out",
    "main",
    "read",
    "save",
    "summary",
]
