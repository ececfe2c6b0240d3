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

from seqjax.train.config import defaults, parse_arg, short_run


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, cell="lstm", seq_len=50)
    c = defaults("synthetic")  # every field at its default: `seqjax config show` lists them
    c.data.name = "adding"  # problem in seqjax.tasks.synthetic.PROBLEMS
    c.data.seq_len = arg.seq_len  # T, steps per sequence (one marker in each half)
    c.model.cell = arg.cell  # any name in seqjax.cells.names(): elman, lstm, gru, ...
    c.model.kernel_init = "glorot_uniform"  # (None: each cell's own initialisers)
    c.model.recurrent_init = "orthogonal"
    c.model.bias_init = "zeros"
    c.model.activation = "tanh"  # Elman (None: each cell's own)
    c.optim.learning_rate = 3e-3
    c.optim.momentum = 0.9  # sgd/rmsprop only (the clipping sweep switches to sgd)
    c.train.num_steps = 2000
    c.train.batch_size = 50
    c.train.eval_every = 250
    c.train.keep = 2  # latest checkpoints kept, besides the best by validation MSE

    if arg.smoke:  # runs in seconds: the tests use it
        c.data.seq_len = 8
        c.data.eval_size = 32
        c.model.hidden_size = 8
        short_run(c, num_steps=6, batch_size=16, every=3)
    return c
