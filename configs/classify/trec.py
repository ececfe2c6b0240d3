r"""TREC question classification (Li & Roth 2002): 5,452 training questions, the 500 of TREC 10 as
the test set, 6 coarse classes (``fine``: the 50 fine ones).

Data: ``../shared/data/trec/train_5500.label`` (ISO-8859-1, hence ``data.encoding=latin-1``) and
``TREC_10.label``, one ``COARSE:fine question`` a line (``data.format=prefixed``: the first word
is the label; ``data.label_level=coarse`` keeps ``COARSE``). 10% of the training questions
(shuffled by ``data.split_seed``) are the validation split that picks the best checkpoint; the
test split is TREC 10, reported once per seed (no folds). The model is MR's
(``configs/classify/mr.py``, which this file loads).

Launch:
  seqjax baseline --config configs/classify/trec.py
  seqjax train --config configs/classify/trec.py --workdir runs/trec
  seqjax eval --workdir runs/trec --split test
  seqjax sweep --config configs/sweeps/folds.py:data=trec --workdir runs/trec_seeds   # 3 seeds
  seqjax train --config configs/classify/trec.py:smoke --workdir /tmp/trec_smoke

Presets: ``fine`` (50 classes), ``seed=N``, ``steps=N``, ``cell=NAME``, ``sgd``, ``smoke``.

References (test accuracy %, 6 classes): TF-IDF 1-2 grams + logistic regression 88.60 (measured
with ``seqjax baseline``, experiments/own_data/README.md; 88.2 in ``../shared/data/README.md``), CNN with random embeddings 91.2 (Kim 2014).
"""

import pathlib

from seqjax.train.cmdline import load_config_file
from seqjax.train.config import parse_arg

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parents[1].parent / "shared" / "data" / "trec"


def get_config(arg=None):
    arg = parse_arg(arg, fine=False, smoke=False, sgd=False, cell="lstm", seed=0, steps=0)
    shared = [f"cell={arg.cell}", f"seed={arg.seed}", f"steps={arg.steps}"]
    shared += [name for name in ("smoke", "sgd") if arg[name]]
    c = load_config_file(f"{HERE / 'mr.py'}:{','.join(shared)}")  # the recipe
    c.data.name = "trec_fine" if arg.fine else "trec"
    c.data.class_files = ""
    c.data.folds = 0  # a fixed test set
    c.data.train_files = str(DATA / "train_5500.label")
    c.data.test_files = str(DATA / "TREC_10.label")
    c.data.format = "prefixed"  # data.label_regex: the first word is the label
    c.data.encoding = "latin-1"  # train_5500.label is ISO-8859-1
    c.data.label_level = "full" if arg.fine else "coarse"
    return c
