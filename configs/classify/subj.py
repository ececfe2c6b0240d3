r"""Subjectivity (Pang & Lee 2004, "Subj"): 5,000 subjective + 5,000 objective sentences, 10-fold.

Data: ``../shared/data/subj/subj.{subjective,objective}``, one sentence a line (as MR). The
protocol and the model are MR's (``configs/classify/mr.py``, which this file loads and whose
presets it takes): fold ``data.fold`` of 10 is the test split, 10% of the rest validation.

Launch:
  seqjax baseline --config configs/classify/subj.py:fold=0
  seqjax sweep --config configs/sweeps/folds.py:data=subj --workdir runs/subj_folds
  seqjax train --config configs/classify/subj.py:smoke --workdir /tmp/subj_smoke

Presets: as ``mr.py`` (``fold=N``, ``folds=N``, ``seed=N``, ``steps=N``, ``cell=NAME``, ``sgd``,
``smoke``).

References (accuracy %, 10-fold): TF-IDF 1-2 grams + logistic regression 90.88 ± 0.88 (measured
with ``seqjax baseline``, experiments/own_data/README.md; 90.5 in ``../shared/data/README.md``),
NBSVM-bi 93.2 (Wang & Manning 2012), CNN with random embeddings 89.6 (Kim 2014).
"""

import pathlib

from seqjax.train.cmdline import load_config_file

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parents[1].parent / "shared" / "data" / "subj"


def get_config(arg=None):
    c = load_config_file(f"{HERE / 'mr.py'}:{arg or ''}")  # the recipe, with these presets
    c.data.name = "subj"
    c.data.class_files = (
        f"subjective={DATA / 'subj.subjective'},objective={DATA / 'subj.objective'}"
    )
    return c
