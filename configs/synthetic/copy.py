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
"""

import ml_collections
from ml_collections import config_dict

from seqjax.train.config import parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, cell="lstm", seq_len=100, chrono=0.0)
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.task = "synthetic"

    c.data = ml_collections.ConfigDict()
    c.data.name = "copy"  # seqjax.tasks.synthetic.PROBLEMS
    c.data.seq_len = arg.seq_len  # T, the delay; sequences have T + 20 steps
    c.data.eval_size = 1000

    c.model = ml_collections.ConfigDict()
    c.model.cell = arg.cell
    c.model.hidden_size = 64
    c.model.num_layers = 1
    c.model.dropout = 0.0
    c.model.forget_bias = 1.0
    c.model.chrono_t_max = config_dict.placeholder(float)
    if arg.chrono:
        c.model.chrono_t_max = arg.chrono
    c.model.activation = "tanh"
    c.model.reset_after = True
    c.model.kernel_init = "glorot_uniform"
    c.model.recurrent_init = "orthogonal"
    c.model.bias_init = "zeros"

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "adam"
    c.optim.learning_rate = 1e-3
    c.optim.clip = "global_norm"
    c.optim.clip_value = 1.0
    c.optim.momentum = 0.9
    c.optim.nesterov = False
    c.optim.weight_decay = 0.0
    c.optim.schedule = "constant"
    c.optim.warmup_steps = 0
    c.optim.decay_factor = 0.5
    c.optim.decay_every = 1000
    c.optim.decay_start = 0

    c.train = ml_collections.ConfigDict()
    c.train.num_steps = 3000
    c.train.batch_size = 32
    c.train.eval_every = 250
    c.train.checkpoint_every = 1000
    c.train.keep = 2
    c.train.log_every = 50
    c.train.skip_nonfinite = False
    c.train.diagnostics_every = 0

    if arg.smoke:
        c.data.seq_len = 5
        c.data.eval_size = 32
        c.model.hidden_size = 8
        c.train.num_steps = 6
        c.train.batch_size = 16
        c.train.eval_every = 3
        c.train.checkpoint_every = 3
        c.train.log_every = 2
    return c
