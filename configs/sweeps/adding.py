r"""Sweep: the adding problem against T for tanh Elman, LSTM (forget bias 1), GRU and IRNN.

Le, Jaitly & Hinton 2015, sec. 4.1 (IRNN: ReLU with identity recurrent init; Fig. 2), on the
two-channel adding problem of ``configs/synthetic/adding.py``; Hochreiter & Schmidhuber 1997,
sec. 5.4. Every run shares one optimizer (Adam, global-norm clipping 1) and everything else of
the base config; only the cell and its init differ.

Launch:
  seqjax sweep --config configs/sweeps/adding.py --workdir runs/sweep_adding          # the issue's grid
  seqjax sweep --config configs/sweeps/adding.py:small --workdir runs/sweep_adding    # an earlier, scaled-down sweep
  seqjax sweep --config configs/sweeps/adding.py:smoke --workdir /tmp/sweep_smoke     # CI, seconds
  seqjax report --workdir runs/sweep_adding                                           # redraw

Presets: ``smoke`` (2 runs, tiny), ``small`` (the scaled-down grid of experiments/vanishing:
T in {50, 100, 200}, seeds 0 and 1, H=64, 1500 steps).

Expected result (full grid; see experiments/vanishing/README.md for what we measured at the small
size): LSTM and GRU reach MSE far below the 1/6 baseline at every T; the tanh Elman network stays
at the baseline beyond T=50 (its gradient decays geometrically with distance); IRNN is in between
and sensitive to the learning rate (Le et al. 2015 report it solving T=400 with SGD).
"""

import pathlib

from seqjax.train.cmdline import load_config_file
from seqjax.train.config import parse_arg

BASE = pathlib.Path(__file__).resolve().parent.parent / "synthetic" / "adding.py"

VARIANTS = (
    ("elman", (("model.cell", "elman"), ("model.activation", "tanh"))),
    ("lstm", (("model.cell", "lstm"), ("model.forget_bias", 1.0))),
    ("gru", (("model.cell", "gru"),)),
    (
        "irnn",
        (
            ("model.cell", "elman"),
            ("model.activation", "relu"),
            ("model.recurrent_init", "identity"),
        ),
    ),
)


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, small=False)
    c = load_config_file(f"{BASE}:smoke" if arg.smoke else str(BASE))
    c.train.diagnostics_every = 250
    c.sweep = dict(
        variants=VARIANTS,
        grid=(("data.seq_len", (50, 100, 200, 400)), ("seed", (0, 1, 2))),
        x="data.seq_len",
    )
    if arg.small:
        c.model.hidden_size = 64
        c.train.num_steps = 1500
        c.train.eval_every = 250
        c.train.checkpoint_every = 500
        c.data.eval_size = 500
        c.sweep.grid = (("data.seq_len", (50, 100, 200)), ("seed", (0, 1)))
    if arg.smoke:
        c.train.diagnostics_every = 3
        c.sweep.variants = VARIANTS[:2]
        c.sweep.grid = (("data.seq_len", (6,)), ("seed", (0,)))
    return c
