r"""MPQA opinion polarity (Wiebe et al. 2005): 3,312 positive + 7,294 negative phrases, 10-fold.

Data: ``../shared/data/mpqa/mpqa.{pos,neg}``, one phrase a line (as MR; most are 1-4 words, the
classes unbalanced, so the folds' stratification matters). The protocol and the model are MR's
(``configs/classify/mr.py``, which this file loads and whose presets it takes).

Launch:
  seqjax baseline --config configs/classify/mpqa.py:fold=0
  seqjax sweep --config configs/sweeps/folds.py:data=mpqa --workdir runs/mpqa_folds
  seqjax train --config configs/classify/mpqa.py:smoke --workdir /tmp/mpqa_smoke

Presets: as ``mr.py`` (``fold=N``, ``folds=N``, ``seed=N``, ``steps=N``, ``cell=NAME``, ``sgd``,
``smoke``).

References (accuracy %, 10-fold): TF-IDF 1-2 grams + logistic regression 85.90 ± 1.13 (measured
with ``seqjax baseline``, experiments/own_data/README.md; 85.7 in ``../shared/data/README.md``),
NBSVM-bi 86.3 (Wang & Manning 2012), CNN with random embeddings 83.4 (Kim 2014).
"""

import pathlib

from seqjax.train.cmdline import load_config_file

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parents[1].parent / "shared" / "data" / "mpqa"


def get_config(arg=None):
    c = load_config_file(f"{HERE / 'mr.py'}:{arg or ''}")  # the recipe, with these presets
    c.data.name = "mpqa"
    c.data.class_files = f"positive={DATA / 'mpqa.pos'},negative={DATA / 'mpqa.neg'}"
    return c
