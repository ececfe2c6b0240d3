r"""Copy memory at T=100 with an LSTM (Arjovsky, Shah & Bengio 2016, sec. 4.1).

Ten symbols from 8, then T-1 blanks, a delimiter and 10 blanks; after the delimiter the model must
output the ten symbols it saw T+10 steps earlier. Per-step cross-entropy over all T+20 steps; the
memoryless strategy scores ``10 ln 8 / (T + 20)`` (0.173 at T=100), reported as the ``baseline``
validation metric. ``chrono_t_max=...`` gives the chrono init of Tallec & Ollivier 2018, sec. 3.

Launch:
  seqjax train --config configs/synthetic/copy.py --workdir runs/copy
  seqjax train --config configs/synthetic/copy.py:chrono=150 --workdir runs/copy_chrono
  seqjax train --config configs/synthetic/copy.py:smoke --workdir /tmp/smoke   # seconds

Presets: ``smoke``, ``cell=NAME``, ``seq_len=T``, ``chrono=T_MAX`` (LSTM chrono init; 0: off).

Expected result (measured at the sizes of experiments/vanishing/README.md, see there): the loss
drops from ln 10 = 2.30 to the memoryless baseline within a few hundred steps; getting below it
(actually copying) takes thousands of steps at T=100, and a chrono-initialised LSTM gets there
sooner than one with forget bias 1 (Tallec & Ollivier 2018, Fig. 3).

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
    arg = parse_arg(arg, smoke=False, cell="lstm", seq_len=100, chrono=0.0)
    c = _base(arg.smoke, arg.cell)
    c.data.name = "copy"  # seqjax.tasks.synthetic.PROBLEMS
    c.data.seq_len = 5 if arg.smoke else arg.seq_len  # T, the delay; sequences have T + 20 steps
    c.optim.learning_rate = 1e-3
    if arg.chrono:
        c.model.chrono_t_max = arg.chrono  # LSTM chrono init up to this many steps
    if not arg.smoke:
        c.data.eval_size = 1000
        c.model.hidden_size = 64
        c.train.num_steps = 3000
        c.train.batch_size = 32
        c.train.checkpoint_every = 1000
    return c
