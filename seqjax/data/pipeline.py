"""From the ``data.*`` config to tokenised arrays: :func:`load_lm` and :func:`load_classification`.

Each reads the raw splits (:mod:`seqjax.data.sources`), fits the tokenizer on the training split
only (:mod:`seqjax.data.tokenizers`), encodes every split, and caches the arrays
(:mod:`seqjax.data.cache`) so that a second run with the same source and settings neither reads
the files again nor re-tokenises.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from seqjax.data import cache, sources
from seqjax.data import config as C
from seqjax.data.labels import _as_int, infer_label_set, map_labels
from seqjax.data.tokenizers import Tokenizer, fit_tokenizer, tokenizer_from_json
from seqjax.errors import UserError

log = logging.getLogger(__name__)


class LMData(NamedTuple):
    """Language-modelling data: one token stream per split."""

    tokenizer: Tokenizer
    splits: dict  # split name -> np.ndarray (n_tokens,) int32: the split's whole token stream
    metadata: dict  # JSON-serialisable: tokenizer (to_json), token counts, where splits came from


class ClassifySplit(NamedTuple):
    """One split of a classification data set, as flat arrays (no padding yet)."""

    tokens: np.ndarray  # (total,) int32: every example's tokens, concatenated
    starts: np.ndarray  # (N,) int64: where example i begins in ``tokens``
    lengths: np.ndarray  # (N,) int32: its length, truncated to data.max_length; always >= 1
    labels: np.ndarray  # (N,) int32: ids into ClassifyData.labels

    @property
    def num_examples(self) -> int:
        return len(self.labels)


class ClassifyData(NamedTuple):
    """Classification data: the label names and a :class:`ClassifySplit` per split."""

    tokenizer: Tokenizer
    labels: tuple  # label names (str) in id order
    splits: dict  # split name -> ClassifySplit
    metadata: dict  # JSON-serialisable: tokenizer, labels, counts per split and label, sources


def _tokenizer_settings(cfg: Mapping) -> dict:
    return {
        "kind": C.choice(cfg, "tokenizer", C.TOKENIZERS),
        "vocab_size": C.number(cfg, "vocab_size", int, 0),
        "min_freq": C.number(cfg, "min_freq", int, 1),
        "lowercase": C.flag(cfg, "lowercase"),
    }


def _fit(settings: dict, texts: list[str], task: str) -> Tokenizer:
    s = settings
    return fit_tokenizer(
        s["kind"],
        texts,
        task=task,
        vocab_size=s["vocab_size"],
        min_freq=s["min_freq"],
        lowercase=s["lowercase"],
    )


def _key_parts(cfg: Mapping, task: str, settings: dict) -> dict:
    return {
        "task": task,
        "source": sources.source_identity(cfg),
        "text_column": C.per_split(cfg, "text_column"),
        "label_column": C.per_split(cfg, "label_column") if task == "classify" else None,
        "labels": C.label_set(cfg) if task == "classify" else None,
        "fractions": [C.get(cfg, "validation_fraction"), C.get(cfg, "test_fraction")],
        "split_seed": C.get(cfg, "split_seed") if task == "classify" else None,
        "encoding": C.encoding(cfg),
        "encoding_errors": C.choice(cfg, "encoding_errors", C.ENCODING_ERRORS),
        "tokenizer": settings,
        **(_labelled_key_parts(cfg) if task == "classify" else {}),
    }


def _labelled_key_parts(cfg: Mapping) -> dict:
    """What else the rows of a classification split depend on (its layout, folds)."""
    parts = {k: C.get(cfg, k) for k in ("label_level", "folds")}
    if parts["folds"]:
        parts["fold"] = C.get(cfg, "fold")
    if C.choice(cfg, "format", C.FORMATS) == "prefixed":
        parts["label_regex"] = C.get(cfg, "label_regex")
    return parts


def load_lm(cfg: Mapping) -> LMData:
    """Token streams for language modelling from the ``data.*`` config (a Mapping).

    Returns:
      :class:`LMData` with ``splits["train"]``, ``splits["validation"]`` (when it has data or a
      fraction) and ``splits["test"]`` (likewise): 1-D int32 token streams.

    Example:
      >>> data = load_lm({"source": "embedded", "tokenizer": "char", "cache_dir": ""})
      >>> sorted(data.splits), data.splits["train"].dtype.name
      (['train', 'validation'], 'int32')
      >>> n_train, n_val = len(data.splits["train"]), len(data.splits["validation"])
      >>> round(n_val / (n_train + n_val), 3)  # the last 10% of the text
      0.1
    """
    settings = _tokenizer_settings(cfg)
    name = f"lm-{cache.cache_key(_key_parts(cfg, 'lm', settings))}"
    cache_dir = C.cache_dir(cfg)
    hit = cache.load(cache_dir, name)
    if hit is not None:
        meta, arrays = hit
        log.info("data: loaded tokenised splits from cache %s/%s", cache_dir, name)
        tokenizer = tokenizer_from_json(meta["tokenizer"])
    else:
        texts, where = sources.load_text(cfg)
        tokenizer = _fit(settings, [texts["train"]], "lm")
        arrays = {split: tokenizer.encode(text) for split, text in texts.items()}
        for split, stream in arrays.items():
            if len(stream) < 2:
                raise UserError(
                    f"{where[split]}: the {split} split has {len(stream)} tokens; it needs at least"
                    " 2 (an input and a target); give it more text"
                )
        meta = {
            "task": "lm",
            "tokenizer": tokenizer.to_json(),
            "vocab_size": tokenizer.vocab_size,
            "splits": {
                s: {"tokens": int(len(a)), "characters": len(texts[s]), "source": where[s]}
                for s, a in arrays.items()
            },
            "cache_entry": name,
        }
        cache.save(cache_dir, name, meta, arrays)
    return LMData(tokenizer, {s: arrays[s] for s in C.SPLITS if s in arrays}, meta)


def coarse(label):
    """A hierarchical label's part before its first ``:`` (TREC's ``NUM:dist`` -> ``NUM``);
    other values as they are.

    >>> coarse("NUM:dist"), coarse("positive"), coarse(3)
    ('NUM', 'positive', 3)
    """
    return label.split(":", 1)[0] if isinstance(label, str) else label


def _label_names(cfg: Mapping, rows: Mapping[str, sources.Labelled]) -> tuple[list[str], dict]:
    """The label set, and each split's raw labels as the values to match against it."""
    names = C.label_set(cfg)
    class_names = rows["train"].class_names
    values = {s: r.labels for s, r in rows.items()}
    by_class_names = class_names is not None and (
        names is None or not all(_as_int(n) is not None for n in names)
    )
    if by_class_names:  # a hub ClassLabel column stores ids; match by the names it declares
        values = {
            s: [class_names[v] if v is not None and 0 <= v < len(class_names) else v for v in vs]
            for s, vs in values.items()
        }
    if C.choice(cfg, "label_level", C.LABEL_LEVELS) == "coarse":
        values = {s: [coarse(v) for v in vs] for s, vs in values.items()}
        class_names = class_names and list(dict.fromkeys(coarse(n) for n in class_names))
    if by_class_names:
        names = names or list(class_names)
    return (names or infer_label_set(values["train"])), values


def rows_digest(texts: Sequence[str], labels: np.ndarray, names: Sequence[str]) -> str:
    """A hash of a split's rows in order (each text and its label's name): two models that report
    the same digest for a split were trained or scored on exactly the same examples.

    >>> rows_digest(["a film"], np.array([1]), ["neg", "pos"]) == rows_digest(
    ...     ["a film"], np.array([0]), ["neg", "pos"])
    False
    """
    h = hashlib.sha256()
    for text, label in zip(texts, labels):
        h.update(text.encode("utf-8", "surrogatepass") + b"\0" + str(names[label]).encode() + b"\n")
    return h.hexdigest()[:16]


class LabelledRows(NamedTuple):
    """The rows of every split as the classifier sees them, before tokenising."""

    texts: dict  # split -> list[str]
    labels: dict  # split -> np.ndarray (N,) int32: ids into ``names``
    names: tuple  # the label set in id order
    where: dict  # split -> where it came from (files, fold, fraction)
    digests: dict  # split -> :func:`rows_digest`


def labelled_rows(cfg: Mapping) -> LabelledRows:
    """The classification splits of the ``data.*`` config, as texts and label ids: the rows
    :func:`load_classification` tokenises and the linear baseline (``seqjax baseline``) fits,
    so both see the same split (compare their ``digests``)."""
    rows, where = sources.load_labelled(cfg)
    names, values = _label_names(cfg, rows)
    labels = {s: map_labels(values[s], names, where[s]) for s in rows}
    texts = {s: list(r.texts) for s, r in rows.items()}
    digests = {s: rows_digest(texts[s], labels[s], names) for s in rows}
    return LabelledRows(texts, labels, tuple(names), where, digests)


def load_classification(cfg: Mapping) -> ClassifyData:
    """Tokenised (text, label) examples per split from the ``data.*`` config (a Mapping).

    Texts that encode to no token at all (empty rows) become a single ``<unk>``, so every example
    keeps its place (evaluation counts stay exact) and has length >= 1. ``data.max_length`` (if
    > 0) keeps the first ``max_length`` tokens of each example; it is applied after the cache, so
    changing it does not re-tokenise.
    """
    settings = _tokenizer_settings(cfg)
    max_length = C.number(cfg, "max_length", int, 0)
    name = f"classify-{cache.cache_key(_key_parts(cfg, 'classify', settings))}"
    cache_dir = C.cache_dir(cfg)
    hit = cache.load(cache_dir, name)
    if hit is not None:
        meta, arrays = hit
        log.info("data: loaded tokenised splits from cache %s/%s", cache_dir, name)
        tokenizer = tokenizer_from_json(meta["tokenizer"])
    else:
        rows = labelled_rows(cfg)
        names, where = rows.names, rows.where
        tokenizer = _fit(settings, rows.texts["train"], "classify")
        arrays, split_meta = {}, {}
        for split, texts in rows.texts.items():
            labels = rows.labels[split]
            encoded = tokenizer.encode_batch(texts)
            empty = sum(len(e) == 0 for e in encoded)
            if empty:
                log.warning("data: %d empty %s texts encoded as a single <unk>", empty, split)
            unk = np.array([tokenizer.unk_id], np.int32)
            encoded = [e if len(e) else unk for e in encoded]
            offsets = np.zeros(len(encoded) + 1, np.int64)
            np.cumsum([len(e) for e in encoded], out=offsets[1:])
            arrays[f"{split}.tokens"] = np.concatenate(encoded).astype(np.int32)
            arrays[f"{split}.offsets"] = offsets
            arrays[f"{split}.labels"] = labels
            counts = np.bincount(labels, minlength=len(names))
            split_meta[split] = {
                "examples": len(labels),
                "tokens": int(offsets[-1]),
                "empty_texts": int(empty),
                "label_counts": {n: int(c) for n, c in zip(names, counts)},
                "source": where[split],
                "rows_digest": rows.digests[split],
            }
        meta = {
            "task": "classify",
            "tokenizer": tokenizer.to_json(),
            "vocab_size": tokenizer.vocab_size,
            "labels": list(names),
            "splits": split_meta,
            "cache_entry": name,
        }
        cache.save(cache_dir, name, meta, arrays)
    splits = {}
    for split in C.SPLITS:
        if f"{split}.labels" not in arrays:
            continue
        offsets = arrays[f"{split}.offsets"]
        lengths = np.diff(offsets).astype(np.int32)
        if max_length:
            lengths = np.minimum(lengths, max_length)
        splits[split] = ClassifySplit(
            arrays[f"{split}.tokens"], offsets[:-1], lengths, arrays[f"{split}.labels"]
        )
    meta["max_length"] = max_length
    return ClassifyData(tokenizer, tuple(meta["labels"]), splits, meta)
