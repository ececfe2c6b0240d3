r"""Quickstart: a character-level LSTM language model on text every Python ships (no download).

The corpus is CPython's documentation topics (``pydoc_data.topics``, ``data.source="embedded"``,
about 0.5M characters); the first 90% trains, the last 10% validates. One command trains it in a
few minutes on 2 CPU cores with a progress bar, then writes a loss plot and a generated sample:

  seqjax train --config configs/quickstart.py         # workdir: runs/quickstart (config.workdir)
  seqjax sample --workdir runs/quickstart --prompt "The " --length 300 --seed 1
  seqjax train --config configs/quickstart.py:smoke --workdir /tmp/quick   # seconds (tests)

It prints where everything is: ``runs/quickstart/checkpoints`` (orbax; the best by validation
loss and the latest), ``metrics.jsonl`` and ``tb/`` (TensorBoard), ``report.png`` (loss and bpc
curves) and ``sample.txt``. Running the command again resumes (here: finds the run finished).

Expected result (measured, docs/results.md): validation 2.238 bits/char (1.552 nats/char) after
1200 steps, 3 min 16 s wall time (65 s of CPU time) on 2 CPU cores shared with other jobs.
"""

import ml_collections
from ml_collections import config_dict

from seqjax.train.config import parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False)
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.task = "lm"  # seqjax/tasks/lm.py
    c.workdir = "runs/quickstart"  # the default --workdir of seqjax train

    c.data = ml_collections.ConfigDict()
    c.data.name = "python-docs"  # a label for logs and checkpoints
    c.data.source = "embedded"  # seqjax.data.embedded_corpus(): CPython's documentation topics
    c.data.validation_fraction = 0.1  # the last 10% of the text
    c.data.tokenizer = "char"
    c.data.cache_dir = "~/.cache/seqjax"  # tokenised arrays ("" disables the cache)
    c.data.seq_len = 64  # T: truncated-BPTT window
    c.data.eval_batch_size = 64  # rows the validation stream is laid out in (state carried)

    c.model = ml_collections.ConfigDict()
    c.model.cell = "lstm"
    c.model.hidden_size = 256
    c.model.num_layers = 1
    c.model.embed_size = 32
    c.model.dropout = 0.0
    c.model.variational = False
    c.model.embed_dropout = 0.0
    c.model.tie_embeddings = False
    c.model.init_scale = 0.1
    c.model.forget_bias = 1.0  # Jozefowicz et al. 2015
    c.model.chrono_t_max = config_dict.placeholder(float)
    c.model.kernel_init = "glorot_uniform"
    c.model.recurrent_init = "orthogonal"
    c.model.bias_init = "zeros"

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "adam"
    c.optim.learning_rate = 3e-3
    c.optim.clip = "global_norm"
    c.optim.clip_value = 1.0
    c.optim.momentum = 0.9
    c.optim.nesterov = False
    c.optim.weight_decay = 0.0
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 50
    c.optim.ema_decay = 0.0  # > 0: evaluate an exponential moving average of the weights
    c.optim.decay_factor = 0.5
    c.optim.decay_every = 1000
    c.optim.decay_start = 0

    c.train = ml_collections.ConfigDict()
    c.train.num_steps = 1200
    c.train.batch_size = 32  # B: contiguous rows of the training stream
    c.train.eval_every = 200
    c.train.checkpoint_every = 400
    c.train.keep = 1
    c.train.log_every = 50
    c.train.skip_nonfinite = False
    c.train.report = True  # draw WORKDIR/report.png when training ends

    c.sample = ml_collections.ConfigDict()  # WORKDIR/sample.txt from the best checkpoint
    c.sample.prompt = "The "
    c.sample.length = 300
    c.sample.temperature = 0.8
    c.sample.top_k = 40
    c.sample.seed = 0

    if arg.smoke:  # seconds: the tests use it
        c.data.seq_len = 16
        c.data.eval_batch_size = 128
        c.data.cache_dir = ""
        c.model.hidden_size = 16
        c.model.embed_size = 8
        c.optim.warmup_steps = 0
        c.train.num_steps = 4
        c.train.batch_size = 8
        c.train.eval_every = 2
        c.train.checkpoint_every = 2
        c.train.log_every = 2
        c.sample.length = 40
    return c
