r"""Sequential (or permuted) 8x8 digits, one pixel per step, with an LSTM: a small offline stand-in
for pixel-by-pixel MNIST (Le, Jaitly & Hinton 2015, sec. 4.2).

scikit-learn's 1797 bundled 8x8 digits: 1200 for training, 300 for validation, 297 for test
(:func:`seqjax.tasks.synthetic.digits`); 64 steps of one pixel; 10 classes read out at the end.
``permuted`` reads the pixels in one fixed random order (``data.name="digits_permuted"``).

Launch:
  seqjax train --config configs/synthetic/digits.py --workdir runs/digits
  seqjax train --config configs/synthetic/digits.py:permuted --workdir runs/digits_permuted
  seqjax train --config configs/synthetic/digits.py:smoke --workdir /tmp/smoke

Presets: ``smoke``, ``permuted``, ``cell=NAME``. (``seq_len`` is fixed at 64 by the images.)

Expected result (not measured here for lack of compute; the smoke preset is tested): an LSTM
reaches validation accuracy well above 0.9 within a few thousand steps (a linear classifier on the
64 pixels gets about 0.95 on this data set); chance is 0.1.

Every field not set here is ``configs/synthetic/adding.py``'s (and its ``smoke`` preset's).
"""

import pathlib

from seqjax.train.cmdline import load_config_file
from seqjax.train.config import parse_arg

BASE = pathlib.Path(__file__).resolve().parent / "adding.py"  # every other field comes from it


def _base(smoke: bool, cell: str):
    """adding.py's config (its smoke preset when ``smoke``), to override a few fields of."""
    return load_config_file(f"{BASE}:{'smoke,' if smoke else ''}cell={cell}")


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, permuted=False, cell="lstm")
    c = _base(arg.smoke, arg.cell)
    c.data.name = "digits_permuted" if arg.permuted else "digits"  # synthetic.PROBLEMS
    c.data.seq_len = 64  # unused: the images fix it at 64 pixels
    c.data.permutation_seed = 0  # digits_permuted: seed of the fixed pixel order
    c.data.eval_size = 0  # unused: the held-out splits are fixed (300 validation, 297 test)
    c.optim.learning_rate = 1e-3
    if not arg.smoke:
        c.model.hidden_size = 64
        c.train.num_steps = 3000
        c.train.batch_size = 32
        c.train.checkpoint_every = 1000
    return c
