r"""Sweep: gradient clipping on and off for a tanh Elman network trained with SGD on the adding
problem, at learning rates up to where its gradients explode (Pascanu, Mikolov & Bengio 2013,
sec. 3.2: clip the gradient's norm to a threshold).

SGD with momentum 0.9 (clipping matters for plain SGD; Adam already normalises step sizes),
T=50, H=64. A run whose loss goes non-finite stops and is recorded as ``failed`` with the step;
the table reports each run's largest training gradient norm and its clip rate.

Launch:
  seqjax sweep --config configs/sweeps/clipping.py --workdir runs/sweep_clipping
  seqjax sweep --config configs/sweeps/clipping.py:smoke --workdir /tmp/sweep_smoke   # CI

Presets: ``smoke``.

Expected result: at the smallest learning rate both settings train alike; at the larger ones the
unclipped network's gradient norm jumps by orders of magnitude (and its loss may go non-finite),
while the clipped one keeps training. What we measured is in experiments/vanishing/README.md.
"""

import pathlib

from seqjax.train.cmdline import load_config_file
from seqjax.train.config import parse_arg

BASE = pathlib.Path(__file__).resolve().parent.parent / "synthetic" / "adding.py"


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False)
    c = load_config_file(f"{BASE}:smoke,cell=elman" if arg.smoke else f"{BASE}:cell=elman")
    c.model.activation = "tanh"
    c.optim.name = "sgd"
    c.optim.momentum = 0.9
    c.optim.clip_value = 1.0
    c.train.diagnostics_every = 250
    if not arg.smoke:
        c.model.hidden_size = 64
        c.data.eval_size = 500
        c.train.num_steps = 1000
    c.sweep = dict(
        grid=(
            ("optim.learning_rate", (0.01, 0.1, 1.0)),
            ("optim.clip", ("none", "global_norm")),
            ("seed", (0,)),
        ),
        x="optim.learning_rate",
        group="optim.clip",
    )
    if arg.smoke:
        c.train.diagnostics_every = 3
        c.sweep.grid = (
            ("optim.learning_rate", (0.01, 100.0)),
            ("optim.clip", ("none",)),
            ("seed", (0,)),
        )
    return c
