r"""IMDB movie reviews (Maas et al. 2011; 25k train / 25k test, binary) from the Hugging Face hub.

Data: ``stanfordnlp/imdb`` (parquet; needs network: offline, loading fails with one line saying
how to use local files). The hub has train and test splits and no validation: 10% of train is
held out (``data.validation_fraction``, shuffled by ``data.split_seed``) and ``test`` is the hub's
test split. Reviews are long (median ~230 words) and contain ``<br />`` markup: the word
tokenizer keeps the first ``data.max_length`` = 400 words of each, lowercased, with words seen
fewer than 3 times mapped to ``<unk>``.

Model: the SST-2 classifier (configs/sentiment/sst2.py) with max pooling, which suits long texts
better than the last state. Best checkpoint by validation accuracy; early stopping after 4
evaluations without improvement.

Launch:
  seqjax train --config configs/sentiment/imdb.py --workdir runs/imdb
  seqjax eval --workdir runs/imdb --split test
  seqjax predict --workdir runs/imdb "a gorgeous, witty, seductive movie."
  seqjax train --config configs/sentiment/imdb.py:smoke --workdir /tmp/imdb_smoke

Presets: ``smoke`` (tiny model, a few steps), ``cell=NAME``, ``seed=N``, ``steps=N``.

Expected result: not measured here (this machine is offline and CPU-only, and 25k reviews of
400 words are hours of CPU training); recurrent classifiers from scratch are reported at about
87-89% test accuracy (e.g. Maas et al. 2011 report 88.9% for their word-vector model). Run it
on a machine with network and an accelerator and record the figure in docs/results.md.
"""

from seqjax.train.config import defaults, parse_arg, short_run


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, cell="lstm", seed=0, steps=0)
    c = defaults("classify")  # every field at its default: `seqjax config show` lists them
    c.seed = arg.seed
    c.data.name = "imdb"
    c.data.hub_id = "stanfordnlp/imdb"
    c.data.validation_split = ""  # none on the hub: carve validation_fraction from train
    c.data.test_split = "test"
    c.data.tokenizer = "word"  # (labels: the hub's ClassLabel names, neg and pos)
    c.data.lowercase = True
    c.data.min_freq = 3
    c.data.vocab_size = 30000
    c.data.max_length = 400  # the first 400 words of each review
    c.model.cell = arg.cell
    c.model.bidirectional = True
    c.model.pooling = "max"
    c.model.mlp_hidden = (128,)
    c.model.dropout = 0.5
    c.model.word_dropout = 0.1
    c.optim.name = "adamw"
    c.optim.learning_rate = 2e-3
    c.optim.clip_value = 5.0
    c.optim.weight_decay = 1e-4
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 100
    c.train.num_steps = arg.steps or 3500  # 32 reviews a step: 5 epochs of the 22.5k held in
    c.train.eval_batch_size = 128
    c.train.eval_every = 350
    c.train.checkpoint_every = 350
    c.train.early_stop_patience = 4

    if arg.smoke:
        c.data.max_length = 64
        c.model.hidden_size = 16
        c.model.embed_size = 16
        c.model.mlp_hidden = ()
        c.optim.warmup_steps = 0
        short_run(c, num_steps=arg.steps or 6, batch_size=8, every=3)
    return c
