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

from seqjax.train.config import defaults, parse_arg, short_run

ROOT = pathlib.Path(__file__).resolve().parents[2]  # the project root
DEFAULT_FILE = ROOT / ".." / "shared" / "data" / "tinyshakespeare" / "input.txt"
STEPS_PER_MINUTE = 100  # measured for the default model on 2 shared CPU cores (docs/results.md)


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, cell="lstm", minutes=25)
    c = defaults("lm")  # every field at its default: `seqjax config show` lists them
    c.data.name = "tinyshakespeare"  # a label for logs and checkpoints
    c.data.source = "files"
    c.data.train_files = str(DEFAULT_FILE.resolve())  # the whole text; the last 10% validates
    c.data.eval_batch_size = 64  # rows the validation stream is laid out in (state carried)
    c.model.cell = arg.cell  # any name in seqjax.cells.names()
    c.model.hidden_size = 512
    c.model.embed_size = 64  # D_e, character vectors
    c.model.dropout = 0.1  # Zaremba et al. 2014 dropout on non-recurrent connections
    c.optim.learning_rate = 2e-3
    c.optim.momentum = 0.9  # sgd/rmsprop only
    c.optim.schedule = "cosine"  # cosine decay to 0 over train.num_steps, after the warmup
    c.optim.warmup_steps = 100
    c.train.num_steps = STEPS_PER_MINUTE * arg.minutes
    c.train.batch_size = 64  # B: contiguous rows of the training stream
    c.train.eval_every = 250
    c.train.keep = 2

    if arg.smoke:  # seconds: the tests use it
        c.data.seq_len = 16
        c.data.eval_batch_size = 1024
        c.data.cache_dir = ""
        c.model.hidden_size = 16
        c.model.embed_size = 8
        c.optim.warmup_steps = 0
        short_run(c, num_steps=4, batch_size=8, every=2)
    return c
