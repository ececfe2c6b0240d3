r"""The temporal-order problem at T=100 with an LSTM (Hochreiter & Schmidhuber 1997, sec. 5.6,
experiment 6a; Pascanu, Mikolov & Bengio 2013, sec. 4.1).

One-hot symbols: random distractors except an ``X`` or ``Y`` near T/10 and another near T/2; the
class (4 of them: XX, XY, YX, YY) is read out at the end with cross-entropy. Chance accuracy is
0.25 (loss ln 4 = 1.386).

Launch:
  seqjax train --config configs/synthetic/temporal_order.py --workdir runs/temporal_order
  seqjax train --config configs/synthetic/temporal_order.py:cell=elman --workdir runs/to_elman
  seqjax train --config configs/synthetic/temporal_order.py:smoke --workdir /tmp/smoke

Presets: ``smoke``, ``cell=NAME``, ``seq_len=T``.

Expected result (not measured here for lack of compute; the smoke preset is tested): the LSTM
(forget bias 1) leaves the ln 4 plateau and reaches validation accuracy near 1 within a few
thousand steps at T=100 (Hochreiter & Schmidhuber 1997 report the task solved at this length);
a tanh Elman network stays near chance at T=100.

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
    arg = parse_arg(arg, smoke=False, cell="lstm", seq_len=100)
    c = _base(arg.smoke, arg.cell)
    c.data.name = "temporal_order"  # seqjax.tasks.synthetic.PROBLEMS
    # T (the relevant symbols sit at T/10..2T/10 and T/2..6T/10)
    c.data.seq_len = 10 if arg.smoke else arg.seq_len
    c.data.variable_length = False  # lengths in [T, T + T/10] (padded)
    c.data.form = "hochreiter"  # hochreiter | pascanu
    c.optim.learning_rate = 1e-3
    if not arg.smoke:
        c.data.eval_size = 1000
        c.model.hidden_size = 64
        c.train.num_steps = 4000
        c.train.batch_size = 32
        c.train.checkpoint_every = 1000
    return c
