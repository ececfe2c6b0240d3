r"""Sweep: copy memory at T=100, LSTM with forget bias 1 against chrono init.

Tallec & Ollivier 2018, sec. 3 (chrono init: forget biases ``log U[1, T_max - 1]``, input biases
their negatives, here ``T_max = 1.5 T = 150``) and Fig. 3 (copy task); the task of Arjovsky et al.
2016, sec. 4.1 (``configs/synthetic/copy.py``). The memoryless baseline ``10 ln 8 / (T + 20)`` is
drawn dashed on the plots.

Launch:
  seqjax sweep --config configs/sweeps/copy.py --workdir runs/sweep_copy           # 3 seeds
  seqjax sweep --config configs/sweeps/copy.py:small --workdir runs/sweep_copy     # 1 seed, 2000 steps
  seqjax sweep --config configs/sweeps/copy.py:smoke --workdir /tmp/sweep_smoke    # CI

Presets: ``smoke``, ``small`` (experiments/vanishing).

The paper's result: both variants drop to the baseline quickly; the chrono-initialised LSTM
leaves it first (Tallec & Ollivier 2018, Fig. 3). The study at scale is configs/study/copy.py; what
we measured (chrono leaves it later, ends lower) is in experiments/vanishing/README.md, section 3.
"""

import pathlib

from seqjax.train.cmdline import load_config_file
from seqjax.train.config import parse_arg

BASE = pathlib.Path(__file__).resolve().parent.parent / "synthetic" / "copy.py"


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, small=False)
    c = load_config_file(f"{BASE}:smoke" if arg.smoke else str(BASE))
    T = c.data.seq_len
    c.train.diagnostics_every = 500
    c.train.num_steps = 10000
    c.sweep = dict(
        variants=(
            ("lstm_fb1", (("model.forget_bias", 1.0),)),
            ("chrono", (("model.chrono_t_max", 1.5 * T),)),
        ),
        grid=(("data.seq_len", (T,)), ("seed", (0, 1, 2))),
        x="data.seq_len",
    )
    if arg.small:
        c.train.num_steps = 2000
        c.data.eval_size = 500
        c.sweep.grid = (("data.seq_len", (T,)), ("seed", (0,)))
    if arg.smoke:
        c.train.num_steps = 6
        c.train.diagnostics_every = 3
        c.sweep.grid = (("data.seq_len", (T,)), ("seed", (0,)))
    return c
