r"""Study 4: permuted sequential digits (64 steps, the offline stand-in for pixel MNIST), 3 seeds.

scikit-learn's 8x8 digits read one pixel per step in a fixed random order (``digits_permuted``,
Le et al. 2015, sec. 4.2's permuted MNIST at 1/12 of its length): LSTM, GRU, IRNN, IndRNN,
expRNN and LRU, 100 units, 3000 steps of 32 images, accuracy on the 300 validation and 297 test
images.

Launch:
  seqjax sweep --config configs/study/digits.py --workdir runs/study/digits --jobs 2
  seqjax sweep --config configs/study/digits.py:smoke --workdir /tmp/study_digits   # seconds
  seqjax sweep --config configs/study/digits.py:cells=indrnn --config.model.num_layers=4 \
      --workdir runs/study/digits_indrnn4                                          # deeper IndRNN

Presets: ``smoke``; ``steps=N``; ``cells=lstm/gru/...`` (slash-separated variant names).

Reference points (permuted MNIST): Le et al. 2015 (IRNN 82%, LSTM 88%), Li et al. 2018 (IndRNN
96%), Lezcano-Casado & Martinez-Rubio 2019 (expRNN 96.2%).
"""

import pathlib
import runpy

from seqjax.train.config import parse_arg

common = runpy.run_path(str(pathlib.Path(__file__).resolve().parent / "common.py"))

CELLS = ("lstm", "gru", "irnn", "indrnn", "exprnn", "lru")


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, steps=3000, cells="/".join(CELLS))
    table = common["variants"](64)
    table["irnn"] = (*table["irnn"], ("optim.learning_rate", 1e-3))
    c = common["base"](100)
    c.data.name = "digits_permuted"
    c.data.seq_len = 64  # unused: the images fix it
    c.data.eval_size = 0  # unused: fixed held-out splits
    c.train.batch_size = 32
    c.train.num_steps = arg.steps
    c.train.eval_every = 250
    c.train.checkpoint_every = 500
    c.train.log_every = 100
    c.sweep = dict(
        variants=common["pick"](table, arg.cells.split("/")),
        grid=(("seed", (0, 1, 2)),),
        x="seed",
    )
    if arg.smoke:
        common["smoke"](c)
        c.sweep["variants"] = common["pick"](table, ("lstm", "indrnn"))
        c.sweep["grid"] = (("seed", (0,)),)
    return c
