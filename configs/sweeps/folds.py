r"""Sweep: the cross-validation protocol of the sentence corpora, one run per fold (MR, Subj, MPQA)
or per seed on the fixed test set (TREC), each beside the linear baseline on its own splits.

``data=mr|subj|mpqa`` sweeps ``data.fold`` over ``0 .. folds-1`` of ``configs/classify/DATA.py``
(stratified folds of the same partition, ``data.split_seed`` 0: fold i's test split is the i-th
tenth, validation 10% of the other nine); ``data=trec`` sweeps ``seed`` over 0, 1, 2 on TREC 10.
Every run fits the baseline first (``train.baseline=True``: TF-IDF 1-2 grams + logistic
regression on exactly its training split, scored on its validation and test splits) and saves
it in its run directory; ``seqjax report --workdir DIR`` prints the mean ± std over the folds of
the held-out accuracy beside the baseline's.

Launch (2 CPU cores: one run at a time, each 2 threads; about 15 minutes a fold at most):
  seqjax sweep --config configs/sweeps/folds.py:data=mr --workdir runs/folds_mr --jobs 1
  seqjax sweep --config configs/sweeps/folds.py:data=mr,first=3 --workdir runs/folds_mr3 --jobs 1
  seqjax sweep --config configs/sweeps/folds.py:data=trec --workdir runs/seeds_trec --jobs 1
  seqjax report --workdir runs/folds_mr
  seqjax sweep --config configs/sweeps/folds.py:data=mr,smoke --workdir /tmp/folds_smoke  # CI

Presets: ``data=NAME`` (mr), ``first=N`` (run only folds 0 .. N-1 of the same 10-fold partition,
for time: say so when reporting), ``folds=N`` (10: the partition itself), ``smoke`` (two folds of
the smoke model), and ``sgd``, ``cell=NAME``, ``steps=N`` passed on.
"""

import pathlib

from seqjax.train.cmdline import load_config_file
from seqjax.train.config import parse_arg

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "classify"
CORPORA = ("mr", "subj", "mpqa", "trec")


def get_config(arg=None):
    arg = parse_arg(arg, data="mr", folds=10, first=0, smoke=False, sgd=False, cell="lstm", steps=0)
    if arg.data not in CORPORA:
        from seqjax.errors import UserError

        raise UserError(f"preset data={arg.data!r}: choose one of {', '.join(CORPORA)}")
    shared = [f"cell={arg.cell}", f"steps={arg.steps}"]
    shared += [name for name in ("smoke", "sgd") if arg[name]]
    if arg.data != "trec":
        shared.append(f"folds={arg.folds}")
    c = load_config_file(f"{CONFIGS / arg.data}.py:{','.join(shared)}")
    c.train.baseline = True  # each run's own split
    if arg.data == "trec":
        grid = (("seed", (0, 1) if arg.smoke else (0, 1, 2)),)
        x = "seed"
    else:
        runs = 2 if arg.smoke else min(arg.first or arg.folds, arg.folds)
        grid = (("data.fold", tuple(range(runs))),)
        x = "data.fold"
    c.sweep = dict(grid=grid, x=x, group="model.cell")
    return c
