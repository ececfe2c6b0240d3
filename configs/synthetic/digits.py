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
"""

import ml_collections
from ml_collections import config_dict

from seqjax.train.config import parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, permuted=False, cell="lstm")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.task = "synthetic"

    c.data = ml_collections.ConfigDict()
    c.data.name = "digits_permuted" if arg.permuted else "digits"  # synthetic.PROBLEMS
    c.data.permutation_seed = 0  # digits_permuted: seed of the fixed pixel order
    c.data.eval_size = 0  # unused: the held-out splits are fixed (300 validation, 297 test)

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
    c.train.num_steps = 3000
    c.train.batch_size = 32
    c.train.eval_every = 250
    c.train.checkpoint_every = 1000
    c.train.keep = 2
    c.train.log_every = 50
    c.train.skip_nonfinite = False
    c.train.diagnostics_every = 0

    if arg.smoke:
        c.model.hidden_size = 8
        c.train.num_steps = 6
        c.train.batch_size = 16
        c.train.eval_every = 3
        c.train.checkpoint_every = 3
        c.train.log_every = 2
    return c
