r"""SST-2 sentiment (GLUE binary Stanford Sentiment Treebank) with a BiLSTM trained from scratch.

Data: the GLUE SST-2 files (train 67,349 phrases, validation 872 sentences, the split everyone
reports), read by default from ``../shared/data/sst2/{train,dev}.tsv`` beside the project root
(train has the column ``sentence``, dev ``content``); the ``hub`` preset loads
``stanfordnlp/sst2`` from the Hugging Face hub instead (needs network). Labels 0/1 are named
negative/positive. Word tokenizer over the training phrases, no pretrained vectors.

Model (the sizes of Flax's ``examples/sst2``): embedding 300 -> bidirectional LSTM, 256 units
per direction -> attention pooling over the valid steps -> MLP (256) -> 2 logits, with dropout 0.5
and word dropout 0.1 (Iyyer et al. 2015). SGD with momentum 0.9 (learning rate 0.1, as Flax's
example) and L2 1e-4 (Flax's 3e-6 scored 0.5 points lower, docs/results.md), cosine decay over
9000 steps of 64 phrases; adversarial training on the word vectors (Miyato et al. 2017) from step
2000 on, eps 0.1 (``train.adversarial_eps``; it stops the validation loss from rising, so the
longer schedule pays); evaluation on an exponential moving average of the weights (decay 0.999,
``optim.ema_decay``, whose ramp min(0.999, (1+n)/(10+n)) is below 0.999 for all 9000 steps; 0
evaluates the weights themselves); best checkpoint by validation accuracy, evaluated every 750
steps; early stopping after ``train.early_stop_patience`` evaluations without improvement (off).
About 17 minutes on 2 CPU cores; the ``fast`` preset is the previous default (6000 steps without
adversarial training, about 6 minutes, 0.6 points lower: docs/results.md).

Launch:
  seqjax train --config configs/sentiment/sst2.py --workdir runs/sst2
  seqjax train --config configs/sentiment/sst2.py:cell=gru,seed=1 --workdir runs/sst2_gru_s1
  seqjax train --config configs/sentiment/sst2.py:fast --workdir runs/sst2_fast     # 6 minutes
  seqjax train --config configs/sentiment/sst2.py:smoke --workdir /tmp/sst2_smoke   # seconds
  seqjax eval --workdir runs/sst2          # accuracy, macro-F1, confusion matrix (+ PNG)
  seqjax predict --workdir runs/sst2 "a gorgeous, witty, seductive movie."

Presets (after the colon, comma-separated): ``smoke`` (tiny model, 6 steps, for tests), ``fast``
(no adversarial training, 6000 steps), ``hub`` (``stanfordnlp/sst2`` from the hub), ``cell=NAME``,
``seed=N``, ``steps=N``.

References: Flax ``examples/sst2`` (LSTM, no pretrained embeddings) 85.1-85.4% validation
accuracy; Tai et al. 2015 report 86.3% for a 2-layer LSTM with GloVe vectors.
Expected result: see docs/results.md, "Sentiment classification: SST-2" (best validation
accuracy per seed, mean and std over seeds 0-2, wall time, GRU/Elman/minGRU beside it).
"""

import pathlib

from seqjax.train.config import defaults, parse_arg, short_run

ROOT = pathlib.Path(__file__).resolve().parents[2]  # the project root
SST2 = ROOT.parent / "shared" / "data" / "sst2"  # ../shared/data/sst2


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, fast=False, hub=False, cell="lstm", seed=0, steps=0)
    c = defaults("classify")  # every field at its default: `seqjax config show` lists them
    c.seed = arg.seed  # PRNG seed: initial parameters, dropout and the order of training batches
    c.data.name = "sst2"  # a label for logs and checkpoints
    c.data.train_files = str(SST2 / "train.tsv")  # (hub preset: stanfordnlp/sst2)
    c.data.validation_files = str(SST2 / "dev.tsv")
    c.data.text_column = "sentence,validation=content"  # dev.tsv names its text column content
    c.data.labels = "0,1"  # raw labels in id order ...
    c.data.label_names = "negative,positive"  # ... and what predict prints for them
    c.data.tokenizer = "word"  # whitespace words (the files are already tokenised, lowercased)
    c.data.lowercase = True  # (min_freq 1: all 14.8k training words; max_length 0: no cut)
    c.model.cell = arg.cell  # any name in seqjax.cells.names(): elman, lstm, gru, ...
    c.model.hidden_size = 256  # H per direction (Flax examples/sst2: 256)
    c.model.bidirectional = True
    c.model.pooling = "attention"
    c.model.embed_size = 300  # D_e (Flax examples/sst2: 300)
    c.model.mlp_hidden = (256,)  # the head's hidden layers (mlp_activation relu: Flax's tanh
    c.model.dropout = 0.5  # was not better)
    c.model.word_dropout = 0.1  # tokens replaced by <unk> while training
    c.model.kernel_init = "glorot_uniform"  # (None: each cell's own initialisers)
    c.model.recurrent_init = "orthogonal"
    c.model.bias_init = "zeros"
    c.model.activation = "tanh"  # Elman (None: each cell's own)
    c.optim.name = "sgd"  # with momentum, as Flax examples/sst2 (Adam: 83.3%, docs/results.md)
    c.optim.learning_rate = 0.1
    c.optim.momentum = 0.9
    c.optim.clip_value = 5.0  # a guard: it never fired in the runs of docs/results.md
    c.optim.weight_decay = 1e-4  # L2 added to the gradient (Flax examples/sst2: 3e-6)
    c.optim.schedule = "cosine"
    c.optim.ema_decay = 0.999  # evaluate a moving average of the weights (0: the weights)
    c.train.num_steps = arg.steps or 9000  # 64 phrases a step: about 8.6 epochs
    c.train.batch_size = 64
    c.train.eval_every = 750  # validation (872 sentences) every this many steps: 12 times
    c.train.checkpoint_every = 750  # = eval_every: the best checkpoint is any evaluated step
    c.train.log_every = 100
    c.train.adversarial_eps = 0.1  # also train on word vectors moved by eps (Miyato et al. 2017)
    c.train.adversarial_start = 2000  # from this step (earlier, the BiLSTM stays at chance)

    if arg.fast:  # the default before adversarial training: 6 minutes instead of 17, 0.6 lower
        c.train.adversarial_eps = 0.0
        c.train.adversarial_start = 0  # as runs saved before the field existed: they resume
        c.train.num_steps = arg.steps or 6000
        c.train.eval_every = c.train.checkpoint_every = 500
    if arg.hub:
        c.data.train_files = ""
        c.data.validation_files = ""
        c.data.hub_id = "stanfordnlp/sst2"
        c.data.text_column = "sentence"
        c.data.labels = ""  # the hub's ClassLabel names: negative, positive
        c.data.label_names = ""
    if arg.smoke:  # runs in seconds: the tests use it
        c.model.hidden_size = 16
        c.model.embed_size = 16
        c.model.mlp_hidden = ()
        c.data.vocab_size = 2000
        c.optim.warmup_steps = 0
        c.train.adversarial_start = 0  # the tests run the adversarial term too
        short_run(c, num_steps=arg.steps or 6, batch_size=16, every=3)
    return c
