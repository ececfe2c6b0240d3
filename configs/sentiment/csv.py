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

import ml_collections

from seqjax.train.config import parse_arg


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
    c = ml_collections.ConfigDict()
    c.seed = arg.seed
    c.task = "classify"

    c.data = ml_collections.ConfigDict()
    c.data.name = "csv"  # a label for logs and checkpoints
    c.data.train_files = arg.train  # a path, a glob or "a.csv,b.csv"
    c.data.validation_files = arg.validation  # "" = carve validation_fraction from train
    c.data.validation_fraction = 0.1
    c.data.format = "auto"  # from the extension: .csv .tsv .json .jsonl .parquet
    c.data.text_column = arg.text
    c.data.label_column = arg.label
    c.data.labels = ""  # the label set in id order; "" = the sorted distinct training labels
    c.data.label_names = ""  # names to show for them (e.g. "negative,positive" for 0,1)
    c.data.tokenizer = "word"  # word | char | bpe
    c.data.lowercase = True
    c.data.min_freq = 2  # rarer words become <unk>
    c.data.vocab_size = 0  # 0: no cap
    c.data.max_length = 400  # keep the first max_length tokens of each text (0: all)
    c.data.cache_dir = "~/.cache/seqjax"  # tokenised arrays; "" disables the cache

    c.model = ml_collections.ConfigDict()
    c.model.cell = arg.cell
    c.model.hidden_size = 256  # H per direction
    c.model.num_layers = 1
    c.model.bidirectional = True
    c.model.pooling = "max"  # last | mean | max | attention
    c.model.embed_size = 256
    c.model.embeddings_file = ""  # GloVe-format text file; its vectors must have embed_size values
    c.model.init_scale = 0.1  # a random embedding starts U(-s, s)
    c.model.mlp_hidden = (256,)
    c.model.dropout = 0.5
    c.model.variational = False  # True: one dropout mask per text, reused at every step
    c.model.word_dropout = 0.1
    c.model.forget_bias = 1.0
    c.model.kernel_init = "glorot_uniform"
    c.model.recurrent_init = "orthogonal"
    c.model.bias_init = "zeros"

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "adamw"
    c.optim.learning_rate = 2e-3
    c.optim.clip = "global_norm"
    c.optim.clip_value = 5.0
    c.optim.weight_decay = 1e-4
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 100
    c.optim.ema_decay = 0.0  # > 0: evaluate an exponential moving average of the weights

    c.train = ml_collections.ConfigDict()
    c.train.num_steps = arg.steps or 3000
    c.train.batch_size = 64
    c.train.eval_batch_size = 256
    c.train.eval_every = 250
    c.train.checkpoint_every = 250  # = eval_every: the best checkpoint is any evaluated step
    c.train.keep = 1
    c.train.log_every = 50
    c.train.skip_nonfinite = False
    c.train.label_smoothing = 0.0  # > 0: train on (1-a)*onehot + a/classes targets
    c.train.adversarial_eps = 0.0  # > 0: also train on word vectors moved by eps (Miyato 2017)
    c.train.adversarial_start = 0  # the step from which that second loss term counts
    c.train.early_stop_patience = 0  # stop after this many evaluations without improvement; 0 off

    if arg.smoke:
        c.data.min_freq = 1
        c.model.hidden_size = 16
        c.model.embed_size = 16
        c.model.mlp_hidden = ()
        c.optim.warmup_steps = 0
        c.train.num_steps = arg.steps or 6
        c.train.batch_size = 8
        c.train.eval_every = 3
        c.train.checkpoint_every = 3
        c.train.log_every = 2
    return c
