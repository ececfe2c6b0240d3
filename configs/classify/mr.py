r"""MR movie-review polarity (Pang & Lee 2005): 10,662 sentences, 10-fold cross-validation.

Data: ``../shared/data/mr/rt-polarity.{pos,neg}`` beside the project root, one sentence a line,
the label is the file (``data.class_files``; lowercased and tokenised already). No fixed split:
fold ``data.fold`` of ``data.folds`` = 10 (stratified, ``data.split_seed`` 0) is the test split,
10% of the other nine folds (stratified) the validation split that picks the best checkpoint and
stops training early, the rest (about 8,640 sentences) the training split. A sweep over the folds
(``configs/sweeps/folds.py:data=mr``) reports the mean ± std of the ten test accuracies, beside
the linear baseline on the same splits (``train.baseline=True``).

This file is the recipe the other sentence corpora share (``subj.py``, ``mpqa.py``, ``trec.py``
load it and swap the data): what SST-2 taught (``configs/sentiment/sst2.py``, docs/results.md)
scaled to ~9k training sentences: embedding 300, a BiLSTM of 256 units per direction, attention
pooling, an MLP head (256), dropout 0.5 and word dropout 0.1; AdamW (the ``sgd`` preset: SST-2's
SGD with momentum 0.9, learning rate 0.1, which on SST-2 needed ~100k examples to leave chance,
11 epochs here) with cosine decay and warm-up; evaluation on a moving average of the weights
(``optim.ema_decay`` 0.999); adversarial training on the word vectors (eps 0.1, Miyato et al.
2017) from step 400, after the first epochs; validation every 100 steps, early stopping after 6
evaluations without improvement. Not tuned: the long runs are in
``experiments/own_data/README.md``.

Launch:
  seqjax baseline --config configs/classify/mr.py:fold=0            # seconds
  seqjax train --config configs/classify/mr.py:fold=0 --workdir runs/mr/fold0
  seqjax eval --workdir runs/mr/fold0 --split test                   # the held-out fold
  seqjax sweep --config configs/sweeps/folds.py:data=mr --workdir runs/mr_folds
  seqjax train --config configs/classify/mr.py:smoke --workdir /tmp/mr_smoke     # seconds

Presets: ``fold=N`` (0), ``folds=N`` (10; fewer folds for time), ``seed=N``, ``steps=N``,
``cell=NAME``, ``sgd``, ``smoke`` (tiny model, a few steps).

References (``../shared/data/README.md``; accuracy %, 10-fold): TF-IDF 1-2 grams + logistic
regression 77.87 ± 0.82 (measured with ``seqjax baseline``, experiments/own_data/README.md; 77.9 in
``../shared/data/README.md``), NBSVM-bi 79.4 (Wang & Manning 2012), CNN with random embeddings
76.1 (Kim 2014). Expected result: to be measured (experiments/own_data/README.md).
"""

import pathlib

from seqjax.train.config import defaults, parse_arg, short_run

ROOT = pathlib.Path(__file__).resolve().parents[2]  # the project root
DATA = ROOT.parent / "shared" / "data"  # ../shared/data


def get_config(arg=None):  # (subj.py and mpqa.py pass their presets on to this one)
    arg = parse_arg(arg, smoke=False, sgd=False, cell="lstm", seed=0, steps=0, fold=0, folds=10)
    c = defaults("classify")  # every field at its default: `seqjax config show` lists them
    c.seed = arg.seed
    c.data.name = "mr"
    mr = DATA / "mr"
    c.data.class_files = f"positive={mr / 'rt-polarity.pos'},negative={mr / 'rt-polarity.neg'}"
    c.data.folds = arg.folds  # test = fold data.fold, stratified; validation: 10% of the rest
    c.data.fold = arg.fold
    c.data.tokenizer = "word"  # whitespace words (already tokenised)
    c.data.lowercase = True
    c.model.cell = arg.cell
    c.model.hidden_size = 256  # H per direction
    c.model.bidirectional = True
    c.model.pooling = "attention"
    c.model.embed_size = 300
    c.model.mlp_hidden = (256,)
    c.model.dropout = 0.5
    c.model.word_dropout = 0.1
    c.model.kernel_init = "glorot_uniform"
    c.model.recurrent_init = "orthogonal"
    c.model.bias_init = "zeros"
    c.optim.name = "adamw"
    c.optim.learning_rate = 1e-3
    c.optim.weight_decay = 1e-4
    c.optim.clip_value = 5.0
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 100
    c.optim.ema_decay = 0.999  # evaluate a moving average of the weights
    c.train.num_steps = arg.steps or 2000  # 64 sentences a step: about 15 epochs of MR
    c.train.batch_size = 64
    c.train.eval_every = 100
    c.train.checkpoint_every = 100  # = eval_every: the best checkpoint is any evaluated step
    c.train.early_stop_patience = 6
    c.train.adversarial_eps = 0.1  # Miyato et al. 2017
    c.train.adversarial_start = 400
    c.train.baseline = True  # TF-IDF + logistic regression on the same split, logged first

    if arg.sgd:  # SST-2's optimizer (configs/sentiment/sst2.py)
        c.optim.name = "sgd"
        c.optim.learning_rate = 0.1
        c.optim.momentum = 0.9
        c.optim.warmup_steps = 0
    if arg.smoke:  # seconds: the tests use it
        c.model.hidden_size = 16
        c.model.embed_size = 16
        c.model.mlp_hidden = ()
        c.data.vocab_size = 2000
        c.optim.warmup_steps = 0
        c.train.adversarial_start = 0
        c.train.early_stop_patience = 0
        c.train.baseline = False  # (the integration tests turn it on)
        short_run(c, num_steps=arg.steps or 6, batch_size=16, every=3)
    return c
