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
"""

import ml_collections
from ml_collections import config_dict

from seqjax.train.config import parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, cell="lstm", seq_len=100)
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.task = "synthetic"

    c.data = ml_collections.ConfigDict()
    c.data.name = "temporal_order"  # seqjax.tasks.synthetic.PROBLEMS
    c.data.seq_len = arg.seq_len  # T (the relevant symbols sit at T/10..2T/10 and T/2..6T/10)
    c.data.variable_length = False  # lengths in [T, T + T/10] (padded)
    c.data.form = "hochreiter"  # hochreiter | pascanu
    c.data.eval_size = 1000

    c.model = ml_collections.ConfigDict()
    c.model.cell = arg.cell
    c.model.hidden_size = 64
    c.model.num_layers = 1
    c.model.dropout = 0.0
    c.model.forget_bias = 1.0
    c.model.chrono_t_max = config_dict.placeholder(float)
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
    c.train.num_steps = 4000
    c.train.batch_size = 32
    c.train.eval_every = 250
    c.train.checkpoint_every = 1000
    c.train.keep = 2
    c.train.log_every = 50
    c.train.skip_nonfinite = False
    c.train.diagnostics_every = 0

    if arg.smoke:
        c.data.seq_len = 10
        c.data.eval_size = 32
        c.model.hidden_size = 8
        c.train.num_steps = 6
        c.train.batch_size = 16
        c.train.eval_every = 3
        c.train.checkpoint_every = 3
        c.train.log_every = 2
    return c
