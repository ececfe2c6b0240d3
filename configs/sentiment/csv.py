r"""Bring your own CSV: a text classifier for any labelled text file, as a template to copy.

Your data: a CSV (or TSV, JSON lines, parquet) with one text column and one label column; labels
may be strings (``neg,neu,pos``) or integers, with any number of classes. Point the presets at it:

  seqjax train --config configs/sentiment/csv.py:train=reviews.csv,text=review,label=stars \
      --workdir runs/reviews
  seqjax eval --workdir runs/reviews                 # accuracy, macro-F1, confusion matrix
  seqjax predict --workdir runs/reviews "great value, works as described"
  seqjax predict --workdir runs/reviews --file new_reviews.txt     # one text a line

Presets (after the colon, comma-separated):

* ``train=PATH``: the training file (required); ``validation=PATH``: a held-out file with the
  same columns (default: 10% of the training rows, shuffled by ``data.split_seed``);
* ``text=COLUMN`` (default ``text``), ``label=COLUMN`` (default ``label``);
* ``cell=NAME`` (lstm, gru, elman, ...), ``seed=N``, ``steps=N``;
* ``smoke``: a tiny model and 6 steps (seconds; the tests use it).

Anything else: ``--config.KEY=VALUE``, e.g. ``--config.data.labels=neg,neu,pos`` to fix the label
order (default: sorted), ``--config.data.tokenizer=bpe`` for text that is not tokenised into
words, ``--config.model.embeddings_file=glove.6B.100d.txt --config.model.embed_size=100`` to
start from GloVe vectors, ``--config.train.early_stop_patience=5``.

Expected result: depends on your data. These settings (a 1-layer BiLSTM with max pooling, dropout
0.5, AdamW) are a robust start for a new dataset; configs/sentiment/sst2.py shows what tuning for
SST-2 added (SGD, attention pooling, weight averaging, adversarial training from step 2000:
``--config.train.adversarial_eps=0.1 --config.train.adversarial_start=2000``; docs/results.md).
"""

from seqjax.train.config import defaults, parse_arg, short_run


def get_config(arg=None):
    arg = parse_arg(
        arg,
        train="",
        validation="",
        text="text",
        label="label",
        cell="lstm",
        seed=0,
        steps=0,
        smoke=False,
    )
    c = defaults("classify")  # every field at its default: `seqjax config show` lists them
    c.seed = arg.seed
    c.data.name = "csv"  # a label for logs and checkpoints
    c.data.train_files = arg.train  # a path, a glob or "a.csv,b.csv"
    c.data.validation_files = arg.validation  # "" = carve validation_fraction (0.1) from train
    c.data.text_column = arg.text
    c.data.label_column = arg.label  # (data.labels "": the sorted distinct training labels)
    c.data.tokenizer = "word"  # word | char | bpe
    c.data.lowercase = True
    c.data.min_freq = 2  # rarer words become <unk>
    c.data.max_length = 400  # keep the first max_length tokens of each text (0: all)
    c.model.cell = arg.cell
    c.model.hidden_size = 256  # H per direction
    c.model.bidirectional = True
    c.model.pooling = "max"  # last | mean | max | attention
    c.model.embed_size = 256
    c.model.mlp_hidden = (256,)
    c.model.dropout = 0.5
    c.model.word_dropout = 0.1
    c.optim.name = "adamw"
    c.optim.learning_rate = 2e-3
    c.optim.clip_value = 5.0
    c.optim.weight_decay = 1e-4
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 100
    c.train.num_steps = arg.steps or 3000
    c.train.batch_size = 64
    c.train.eval_every = 250
    c.train.checkpoint_every = 250  # = eval_every: the best checkpoint is any evaluated step

    if arg.smoke:
        c.data.min_freq = 1
        c.model.hidden_size = 16
        c.model.embed_size = 16
        c.model.mlp_hidden = ()
        c.optim.warmup_steps = 0
        short_run(c, num_steps=arg.steps or 6, batch_size=8, every=3)
    return c
