r"""Tiny Shakespeare, character level: an LSTM language model trained with truncated BPTT.

The corpus of Karpathy's char-rnn (1,115,394 characters, 65 distinct), read from a local file:
by default ``../shared/data/tinyshakespeare/input.txt`` relative to the project root (where CI
keeps it); give another with ``--config.data.train_files=PATH``. The first 90% is training text
and the last 10% validation, as nanoGPT splits it (``data.validation_fraction=0.1``).

Launch:
  seqjax train --config configs/lm/tinyshakespeare_char.py --workdir runs/shakespeare
  seqjax train --config configs/lm/tinyshakespeare_char.py:cell=gru --workdir runs/shakespeare_gru
  seqjax sample --workdir runs/shakespeare --prompt "ROMEO:" --length 500 --temperature 0.8
  seqjax train --config configs/lm/tinyshakespeare_char.py:smoke --workdir /tmp/smoke  # seconds

Presets (after the colon, comma-separated): ``smoke`` (tiny, for tests), ``cell=NAME``
(``model.cell``), ``minutes=N`` (a training length, in steps, that fits about N minutes of 2-core
CPU time at the speed measured in docs/results.md; default 25).

Expected result (measured, docs/results.md): validation loss 1.507 nats/char (2.173 bits/char)
after the 2500 default steps, 26 min 20 s wall time on 2 CPU cores shared with other jobs
(1.539 after ~18 min).
References: nanoGPT's small Transformer reaches 1.88 nats/char on CPU ("mini" setting) and 1.4697
with a GPU.
"""

import pathlib

import ml_collections
from ml_collections import config_dict

from seqjax.train.config import parse_arg

ROOT = pathlib.Path(__file__).resolve().parents[2]  # the project root
DEFAULT_FILE = ROOT / ".." / "shared" / "data" / "tinyshakespeare" / "input.txt"
STEPS_PER_MINUTE = 100  # measured for the default model on 2 shared CPU cores (docs/results.md)


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, cell="lstm", minutes=25)
    c = ml_collections.ConfigDict()
    c.seed = 0  # PRNG seed: initial parameters and dropout
    c.task = "lm"  # seqjax/tasks/lm.py

    c.data = ml_collections.ConfigDict()
    c.data.name = "tinyshakespeare"  # a label for logs and checkpoints
    c.data.source = "files"
    c.data.train_files = str(DEFAULT_FILE.resolve())  # the whole text; validation carved from it
    c.data.validation_fraction = 0.1  # the last 10% (nanoGPT)
    c.data.test_fraction = 0.0
    c.data.tokenizer = "char"
    c.data.cache_dir = "~/.cache/seqjax"  # tokenised arrays ("" disables the cache)
    c.data.seq_len = 64  # T: truncated-BPTT window, steps per training batch
    c.data.eval_batch_size = 64  # rows the validation stream is laid out in (state carried)

    c.model = ml_collections.ConfigDict()
    c.model.cell = arg.cell  # any name in seqjax.cells.names()
    c.model.hidden_size = 512  # H, units per layer
    c.model.num_layers = 1  # stacked recurrent layers
    c.model.embed_size = 64  # D_e, character vectors
    c.model.dropout = 0.1  # Zaremba et al. 2014 dropout on non-recurrent connections
    c.model.variational = False  # one dropout mask per window (Gal & Ghahramani 2016)
    c.model.embed_dropout = 0.0  # drop whole character types (Gal & Ghahramani 2016, sec. 4.2)
    c.model.tie_embeddings = False  # readout = embedding^T (needs embed_size == hidden_size)
    c.model.init_scale = 0.1  # embedding and readout ~ U(-s, s)
    c.model.forget_bias = 1.0  # LSTM: added to the forget-gate bias (Jozefowicz et al. 2015)
    c.model.chrono_t_max = config_dict.placeholder(float)  # LSTM: chrono init up to this many steps
    c.model.reset_after = True  # GRU: reset gate after the recurrent matmul (cuDNN form)
    c.model.kernel_init = "glorot_uniform"  # input weights (seqjax.cells.inits)
    c.model.recurrent_init = "orthogonal"  # recurrent weights, per gate block
    c.model.bias_init = "zeros"

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "adam"
    c.optim.learning_rate = 2e-3  # peak learning rate
    c.optim.clip = "global_norm"
    c.optim.clip_value = 1.0
    c.optim.momentum = 0.9
    c.optim.nesterov = False
    c.optim.weight_decay = 0.0
    c.optim.schedule = "cosine"  # cosine decay to 0 over train.num_steps, after the warmup
    c.optim.warmup_steps = 100
    c.optim.ema_decay = 0.0  # > 0: evaluate an exponential moving average of the weights
    c.optim.decay_factor = 0.5
    c.optim.decay_every = 1000
    c.optim.decay_start = 0

    c.train = ml_collections.ConfigDict()
    c.train.num_steps = STEPS_PER_MINUTE * arg.minutes  # updates
    c.train.batch_size = 64  # B: contiguous rows of the training stream
    c.train.eval_every = 250  # steps between validation evaluations
    c.train.checkpoint_every = 500  # steps between checkpoints (and one at the end)
    c.train.keep = 2  # latest checkpoints kept, besides the best by validation loss
    c.train.log_every = 50
    c.train.skip_nonfinite = False

    if arg.smoke:  # seconds: the tests use it
        c.data.seq_len = 16
        c.data.eval_batch_size = 1024
        c.data.cache_dir = ""
        c.model.hidden_size = 16
        c.model.embed_size = 8
        c.optim.warmup_steps = 0
        c.train.num_steps = 4
        c.train.batch_size = 8
        c.train.eval_every = 2
        c.train.checkpoint_every = 2
        c.train.log_every = 2
    return c
