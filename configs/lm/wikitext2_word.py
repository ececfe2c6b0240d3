r"""WikiText-2 (raw), word level, from the Hugging Face hub: a 2-layer LSTM language model.

Merity et al. 2017 ("Pointer sentinel mixture models") data, ``Salesforce/wikitext`` /
``wikitext-2-raw-v1`` (parquet; its train / validation / test splits). The word tokenizer splits on
whitespace with one ``<eos>`` per line and keeps 33,278 ids, the size of the tokenised release's
vocabulary (``<unk>``, ``<eos>`` and the most frequent training words; ``data.vocab_size=0`` keeps
every type of the raw text).
The model is Zaremba et al. 2014's medium LSTM (650 units, dropout 0.5, tied embeddings as
Press & Wolf 2017), trained with Adam instead of their SGD schedule.

Needs network access the first time (``datasets`` then caches it). Offline (``HF_HUB_OFFLINE=1``,
or this project's machines) it stops with one line saying how to use local files instead, e.g.
``--config.data.source=files --config.data.train_files=wiki.train.raw ...``.

Launch:
  seqjax train --config configs/lm/wikitext2_word.py --workdir runs/wikitext2
  seqjax eval --workdir runs/wikitext2 --split test
  seqjax train --config configs/lm/wikitext2_word.py:smoke --workdir /tmp/smoke  # needs the hub

Presets: ``smoke`` (tiny), ``cell=NAME``.

Expected result: not measured here (no network on this project's machines). For reference,
Merity et al. 2017 report validation / test perplexity 101.7 / 96.3 for the medium Zaremba LSTM
on the tokenised WikiText-2 (a 33,278-word vocabulary); the raw text's larger vocabulary makes
perplexities somewhat higher and not directly comparable.
"""

from seqjax.train.config import defaults, parse_arg, short_run


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, cell="lstm")
    c = defaults("lm")  # every field at its default: `seqjax config show` lists them
    c.data.name = "wikitext-2"
    c.data.source = "hub"
    c.data.hub_id = "Salesforce/wikitext"
    c.data.hub_config = "wikitext-2-raw-v1"
    c.data.test_split = "test"
    c.data.tokenizer = "word"
    c.data.vocab_size = 33_278  # ids incl. <unk>, <eos>; rarer words become <unk>
    c.data.seq_len = 35
    c.data.eval_batch_size = 10
    c.model.cell = arg.cell
    c.model.hidden_size = 650
    c.model.num_layers = 2
    c.model.embed_size = 650
    c.model.dropout = 0.5
    c.model.tie_embeddings = True
    c.model.init_scale = 0.05
    c.optim.clip_value = 0.25
    c.optim.momentum = 0.9  # sgd/rmsprop only
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 200
    c.train.num_steps = 40 * 2983  # ~40 epochs of the ~2.09M training tokens at B=20, T=35
    c.train.batch_size = 20
    c.train.eval_every = 1000
    c.train.checkpoint_every = 1000
    c.train.keep = 2
    c.train.log_every = 100

    if arg.smoke:
        c.data.seq_len = 8
        c.data.vocab_size = 2000
        c.data.cache_dir = ""
        c.model.hidden_size = c.model.embed_size = 16
        c.optim.warmup_steps = 0
        short_run(c, num_steps=4, batch_size=4, every=2)
    return c
