r"""The adding problem at T=50 with an LSTM (forget-gate bias 1), Adam and global-norm clipping.

Hochreiter & Schmidhuber 1997, sec. 5.4; the two-channel form of Le et al. 2015, sec. 4.1 and
Arjovsky et al. 2016, sec. 4.2 (see ``seqjax/tasks/synthetic.py``). Predicting the constant 1
scores MSE 1/6 = 0.167; a model that solves the task goes far below.

Launch:
  seqjax train --config configs/synthetic/adding.py --workdir runs/adding
  seqjax train --config configs/synthetic/adding.py:seq_len=200,cell=gru --workdir runs/adding_gru
  seqjax train --config configs/synthetic/adding.py:smoke --workdir /tmp/smoke   # seconds
  seqjax train --config configs/synthetic/adding.py:seq_len=100 --workdir runs/adding_hs \
      --config.data.name=adding_hs     # Hochreiter & Schmidhuber's form, with the solved rate

Presets (after the colon, comma-separated): ``smoke`` (tiny, for tests), ``cell=NAME``
(``model.cell``), ``seq_len=T`` (``data.seq_len``).

Expected result (measured, 2 shared CPU cores): validation MSE 1.9e-4 at step 2000 for seed 0
(1.2e-4 and 1.3e-4 for seeds 1 and 2), about 60 s wall time; the loss sits at the 1/6 plateau for
the first ~750 steps. See the "Training" section of README.md.
"""

import ml_collections
from ml_collections import config_dict

from seqjax.train.config import parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, cell="lstm", seq_len=50)
    c = ml_collections.ConfigDict()
    c.seed = 0  # PRNG seed: initial parameters, training batches and held-out sets
    c.task = "synthetic"  # task module in seqjax/tasks (seqjax.tasks.TASKS)

    c.data = ml_collections.ConfigDict()
    c.data.name = "adding"  # problem in seqjax.tasks.synthetic.PROBLEMS
    c.data.seq_len = arg.seq_len  # T, steps per sequence (one marker in each half)
    c.data.eval_size = 2000  # examples in each held-out split (validation, test)

    c.model = ml_collections.ConfigDict()
    c.model.cell = arg.cell  # any name in seqjax.cells.names(): elman, lstm, gru, ...
    c.model.hidden_size = 128  # H, units per layer
    c.model.num_layers = 1  # stacked recurrent layers
    c.model.dropout = 0.0  # dropout between layers while training
    c.model.compute_dtype = "float32"  # float32 | bfloat16 (mixed: float32 params, loss, update)
    c.model.forget_bias = 1.0  # LSTM: added to the forget-gate bias (Jozefowicz et al. 2015)
    c.model.chrono_t_max = config_dict.placeholder(float)  # LSTM: chrono init up to this many steps
    c.model.activation = "tanh"  # Elman: tanh | relu (IRNN with recurrent_init=identity) | identity
    c.model.reset_after = True  # GRU: reset gate after the recurrent matmul (cuDNN form)
    c.model.kernel_init = "glorot_uniform"  # input weights (seqjax.cells.inits)
    c.model.recurrent_init = "orthogonal"  # recurrent weights, per gate block
    c.model.bias_init = "zeros"  # biases before forget_bias/chrono

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "adam"  # sgd | adam | adamw | rmsprop
    c.optim.learning_rate = 3e-3  # peak learning rate
    c.optim.clip = "global_norm"  # none | global_norm | value | adaptive
    c.optim.clip_value = 1.0  # threshold of the clipping above
    c.optim.momentum = 0.9  # sgd/rmsprop momentum (0: none)
    c.optim.nesterov = False  # Nesterov momentum (adam: NAdam)
    c.optim.weight_decay = 0.0  # L2 (adamw: decoupled)
    c.optim.schedule = "constant"  # constant | cosine | step
    c.optim.warmup_steps = 0  # linear warmup from 0 before the schedule
    c.optim.ema_decay = 0.0  # > 0: evaluate an exponential moving average of the weights
    c.optim.decay_factor = 0.5  # step schedule: multiply by this ...
    c.optim.decay_every = 1000  # ... every this many steps ...
    c.optim.decay_start = 0  # ... after this many steps

    c.train = ml_collections.ConfigDict()
    c.train.num_steps = 2000  # training steps (updates)
    c.train.batch_size = 50  # examples per step
    c.train.eval_every = 250  # steps between validation evaluations
    c.train.checkpoint_every = 500  # steps between checkpoints (and one at the end)
    c.train.keep = 2  # latest checkpoints kept, besides the best by validation MSE
    c.train.log_every = 50  # steps between train-metric lines
    c.train.skip_nonfinite = False  # skip non-finite updates instead of stopping
    c.train.diagnostics_every = 0  # steps between gradient-flow diagnostics (0: off)

    # Where it runs (seqjax/train/parallel.py, docs/parallel.md); not part of the experiment.
    c.mesh = ml_collections.ConfigDict()
    c.mesh.data = 1  # devices sharing each batch (data parallel): 1 | n | -1 = all devices

    if arg.smoke:  # runs in seconds: the tests use it
        c.data.seq_len = 8
        c.data.eval_size = 32
        c.model.hidden_size = 8
        c.train.num_steps = 6
        c.train.batch_size = 16
        c.train.eval_every = 3
        c.train.checkpoint_every = 3
        c.train.log_every = 2
    return c
