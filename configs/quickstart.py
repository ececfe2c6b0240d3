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

from seqjax.train.config import defaults, parse_arg, short_run


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False)
    c = defaults("lm")  # every field at its default: `seqjax config show` lists them
    c.workdir = "runs/quickstart"  # the default --workdir of seqjax train
    c.data.name = "python-docs"  # a label for logs and checkpoints
    c.data.source = "embedded"  # seqjax.data.embedded_corpus(): CPython's documentation topics
    c.data.eval_batch_size = 64  # rows the validation stream is laid out in (state carried)
    c.model.hidden_size = 256
    c.model.embed_size = 32
    c.optim.learning_rate = 3e-3
    c.optim.momentum = 0.9  # sgd/rmsprop only
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 50
    c.train.num_steps = 1200
    c.train.eval_every = 200
    c.train.checkpoint_every = 400
    c.train.report = True  # draw WORKDIR/report.png when training ends
    c.sample.length = 300  # WORKDIR/sample.txt from the best checkpoint
    c.sample.prompt = "The "

    if arg.smoke:  # seconds: the tests use it
        c.data.seq_len = 16
        c.data.eval_batch_size = 128
        c.data.cache_dir = ""
        c.model.hidden_size = 16
        c.model.embed_size = 8
        c.optim.warmup_steps = 0
        short_run(c, num_steps=4, batch_size=8, every=2)
        c.sample.length = 40
    return c
