r"""Data for seqjax's tasks: loading (hub id, local files, embedded corpus), tokenizers, batching.

One implementation serves language modelling and classification. It does I/O through Hugging Face
``datasets`` and ``tokenizers`` and knows nothing of models or training: configs come in as any
``Mapping`` (a dict or an ml_collections ``ConfigDict``; pass ``config.data``), batches go out as
dicts of NumPy arrays that are deterministic functions of ``(seed, step)``.

Language modelling::

    data = seqjax.data.load_lm(config.data)         # LMData(tokenizer, splits, metadata)
    rows = seqjax.data.lm_rows(data.splits["train"], batch_size)        # (B, L) int32
    steps_per_epoch = seqjax.data.lm_steps_per_epoch(rows, seq_len)
    batch = seqjax.data.lm_batch(rows, seq_len, step)   # inputs, targets (B, T); reset; mask
    for b in seqjax.data.lm_eval_batches(data.splits["validation"], batch_size, seq_len): ...

Classification::

    data = seqjax.data.load_classification(config.data)  # ClassifyData(tokenizer, labels, ...)
    train = data.splits["train"]          # ClassifySplit(tokens, starts, lengths, labels)
    batch = seqjax.data.classify_batch(train, batch_size, seed, step)  # tokens, lengths, labels
    for b in seqjax.data.classify_eval_batches(data.splits["validation"], batch_size): ...

Checkpoints store ``data.metadata`` (JSON); ``tokenizer_from_json(metadata["tokenizer"])`` gives
the tokenizer back for ``sample`` / ``predict`` (then ``pad_batch`` for new texts).

Config fields (``data.*``; a missing key, ``None`` or ``""`` means the default in
:data:`DEFAULTS`, except that ``""`` means none for the hub split names and ``cache_dir``):

==========================  ==================================================================
``source``                  ``auto`` (default: ``files`` if ``train_files`` is set, ``hub`` if
                            ``hub_id`` is, else ``embedded``), ``embedded``, ``files``, ``hub``
``hub_id``, ``hub_config``  ``datasets.load_dataset(hub_id, hub_config)``; offline it fails with
                            one line saying how to use local files instead
``train_split`` ...         hub split names: ``train``, ``validation``, ``test_split`` ``""``;
                            ``""`` means none (validation / test are then carved by fraction)
``train_files`` ...         ``train_files``, ``validation_files``, ``test_files``: a path, a glob,
                            ``"a.csv,b.csv"`` or a list
``format``                  ``auto`` (from the extension: .txt .tokens -> text, .csv, .tsv, .json,
                            .jsonl, .parquet; a folder -> folders) or text / csv / tsv / json /
                            jsonl / parquet, ``folders`` (one subfolder per class, one text per
                            file: IMDB, ``sklearn.datasets.load_files``), ``prefixed`` (one
                            ``LABEL text`` a line: TREC)
``class_files``             one file per class, one text a line (MR, Subj, MPQA, CR):
                            ``"positive=a.txt,negative=b.txt"``; then ``validation_files`` and
                            ``test_files``, if set, take the same form
``label_regex``             ``prefixed``: how a line splits, ``(?P<label>\S+)\s+(?P<text>.*)``
``label_level``             ``full`` (default) or ``coarse``: a label's part before its first
                            ``:`` (TREC's ``NUM:dist`` -> ``NUM``)
``folds``, ``fold``         k-fold cross-validation (0: off): the test split is fold ``fold`` of
                            ``folds``, stratified by label and seeded by ``split_seed``;
                            validation a stratified ``validation_fraction`` of the other folds
                            (:mod:`seqjax.data.folds`)
``validation_fraction``     0.1; carved from train when a split has no file / hub split of its
``test_fraction``           own (0.0): LM takes contiguous tail portions (nanoGPT: first 90%
                            train, last 10% validation); classification a shuffle by
                            ``split_seed`` (0)
``text_column``             ``"text"``; ``label_column``: ``"label"``. Per split:
                            ``"sentence,validation=content"`` (a bare name is the default, then
                            ``split=name`` overrides) or a mapping ``{"train": ..., ...}``
``labels``                  the label set in id order, ``"negative,positive"`` or ``[0, 1, 2]``;
                            ``""``: the sorted distinct training labels (or a hub ClassLabel's
                            names). All-integer sets match labels by value, others by text
``encoding``                ``utf-8`` (default; a byte-order mark is dropped), ``latin-1``, ...
``encoding_errors``         ``strict`` (default; undecodable bytes are an error naming the file
                            and the byte), ``replace``, ``ignore``
``tokenizer``               ``char`` (default), ``word`` (PTB-style ``<eos>`` per line), ``bpe``
``vocab_size``              total ids incl. specials; 0: no cap (char, word), 4096 (bpe)
``min_freq``                1; ``lowercase``: False
``max_length``              classification: keep the first ``max_length`` tokens (0: all)
``cache_dir``               ``~/.cache/seqjax``; ``""`` disables the tokenised-array cache
==========================  ==================================================================

Special ids: LM char/bpe ``<unk>`` = 0; LM word ``<unk>`` = 0, ``<eos>`` = 1; classification
``<pad>`` = 0 (the padding id of every batch), ``<unk>`` = 1.

Every user mistake (missing file, empty file or data set, missing column, unknown label, bytes
that ``data.encoding`` cannot decode, no network for a hub id, too few rows for the folds, ...)
raises :class:`seqjax.errors.UserError` with one line naming the value and the fix.
"""

from seqjax.data.batching import (
    PAD_ID,
    classify_batch,
    classify_eval_batches,
    classify_steps_per_epoch,
    epoch_plan,
    gather_batch,
    lm_batch,
    lm_eval_batches,
    lm_rows,
    lm_steps_per_epoch,
    pad_batch,
)
from seqjax.data.config import DEFAULTS
from seqjax.data.pipeline import (
    ClassifyData,
    ClassifySplit,
    LMData,
    load_classification,
    load_lm,
)
from seqjax.data.sources import embedded_corpus, load_labelled, load_text
from seqjax.data.tokenizers import (
    BpeTokenizer,
    CharTokenizer,
    Tokenizer,
    WordTokenizer,
    fit_tokenizer,
    tokenizer_from_json,
)

__all__ = [
    "DEFAULTS",
    "PAD_ID",
    "BpeTokenizer",
    "CharTokenizer",
    "ClassifyData",
    "ClassifySplit",
    "LMData",
    "Tokenizer",
    "WordTokenizer",
    "classify_batch",
    "classify_eval_batches",
    "classify_steps_per_epoch",
    "embedded_corpus",
    "epoch_plan",
    "fit_tokenizer",
    "gather_batch",
    "lm_batch",
    "lm_eval_batches",
    "lm_rows",
    "lm_steps_per_epoch",
    "load_classification",
    "load_labelled",
    "load_lm",
    "load_text",
    "pad_batch",
    "tokenizer_from_json",
]
