"""Where the raw data come from: a hub id, local files, or the embedded corpus.

All reading goes through Hugging Face ``datasets`` (``load_dataset``); this module turns the
``data.*`` config into, per split (``train``, ``validation``, ``test``):

* for language modelling, one string of text (:func:`load_text`);
* for classification, a list of texts and a list of raw labels (:func:`load_labelled`).

Sources (``data.source``; ``auto`` picks ``files`` when ``data.train_files`` is set, ``hub`` when
``data.hub_id`` is set, else ``embedded``):

* ``embedded``: the documentation text CPython ships (``pydoc_data.topics``; 79 topics, 464,970
  characters in Python 3.11.7), so that a quickstart runs on any machine, offline
  (:func:`embedded_corpus`). Text only: it has no labels.
* ``files``: ``data.train_files`` / ``validation_files`` / ``test_files``, read with the ``text``
  (one row per file, universal newlines), ``csv``, ``csv`` with ``sep="\\t"`` and no quoting
  (``tsv``), ``json`` (JSON Lines or a JSON list) or ``parquet`` builder. Files are decoded as UTF-8
  (a leading byte-order mark is dropped) with ``data.encoding_errors``. The Arrow copy that
  ``datasets`` makes is written to a temporary folder and dropped: the tokenised arrays are what
  seqjax caches (:mod:`seqjax.data.cache`).
* ``hub``: ``datasets.load_dataset(data.hub_id, data.hub_config, split=data.<split>_split)``,
  cached by ``datasets`` as usual. Without network (or with ``HF_HUB_OFFLINE=1``, honoured even
  when set after ``datasets`` was imported) a dataset that is not in the local cache ends in one
  ``UserError`` line saying how to point the config at local files.

  Labelled text that is not a table (one file per class, ``data.class_files``; one folder per
  class, ``data.format=folders``; label-prefixed lines, ``data.format=prefixed``) and encodings
  other than UTF-8 (``data.encoding``): :mod:`seqjax.data.readers`.

When a split has no file / hub split of its own, it is carved out of the training data by
``data.validation_fraction`` / ``data.test_fraction``: for text, contiguous tail portions
(``train | validation | test``, the nanoGPT convention: first 90% train, last 10% validation); for
labelled rows, a shuffle seeded by ``data.split_seed``. With ``data.folds = k`` labelled rows are
cross-validated instead: the test split is fold ``data.fold`` of ``k`` stratified folds and
validation a stratified share of the others (:mod:`seqjax.data.folds`).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from seqjax.data import config as C
from seqjax.data import folds as folds_lib
from seqjax.data import readers
from seqjax.data.readers import Labelled, read_files
from seqjax.errors import UserError


def embedded_corpus():
    """CPython's documentation topics as a ``datasets.Dataset`` with columns ``topic``, ``text``.

    Every Python ships this text (``pydoc_data.topics.topics``), so it needs no download.

    >>> ds = embedded_corpus()
    >>> ds.column_names
    ['topic', 'text']
    >>> len(ds) > 50 and sum(len(t) for t in ds["text"]) > 300_000
    True
    """
    from pydoc_data.topics import topics

    import datasets

    names = sorted(topics)
    return datasets.Dataset.from_dict({"topic": names, "text": [topics[n] for n in names]})


def resolve_source(cfg: Mapping) -> str:
    """``data.source`` with ``auto`` resolved, checked against the fields it needs."""
    source = C.choice(cfg, "source", C.SOURCES)
    files = C.get(cfg, "train_files") or C.get(cfg, "class_files")
    hub_id = C.get(cfg, "hub_id")
    if source == "auto":
        return "files" if files else "hub" if hub_id else "embedded"
    if source == "files" and not files:
        raise UserError(
            "data.source=files: data.train_files is empty; set it to a path (or data.class_files)"
        )
    if source == "hub" and not hub_id:
        raise UserError("data.source=hub: data.hub_id is empty; set it, e.g. stanfordnlp/sst2")
    if source == "embedded" and (files or hub_id):
        field = (
            ("train_files" if C.get(cfg, "train_files") else "class_files") if files else "hub_id"
        )
        raise UserError(
            f"data.source=embedded but data.{field} is set; set data.source=auto (or files/hub)"
        )
    return source


def source_identity(cfg: Mapping) -> dict:
    """What identifies the raw data (for cache keys): paths with size and mtime, hub id, text hash.

    Cheap: it reads no file, so a cache hit skips reading the data entirely.
    """
    source = resolve_source(cfg)
    if source == "embedded":
        from pydoc_data.topics import topics

        digest = hashlib.sha256()
        for name in sorted(topics):
            digest.update(name.encode() + b"\0" + topics[name].encode() + b"\0")
        return {"source": "embedded", "sha256": digest.hexdigest()}
    if source == "hub":
        return {
            "source": "hub",
            "hub_id": C.get(cfg, "hub_id"),
            "hub_config": C.get(cfg, "hub_config"),
            "splits": {s: C.get(cfg, f"{s}_split") for s in C.SPLITS},
        }
    files: dict = {}
    for split, key in _file_keys(cfg).items():
        if C.uses_class_files(cfg):
            files[split] = [
                (label, [readers.identity(p) for p in paths])
                for label, paths in C.class_files(cfg, key)
            ]
        else:
            files[split] = [readers.identity(p) for p in C.file_list(cfg, key)]
    return {"source": "files", "format": C.get(cfg, "format"), "files": files}


def _file_keys(cfg: Mapping) -> dict[str, str]:
    """The field that names each split's files: ``class_files`` for the training split of the
    one-file-per-class layout, else ``<split>_files``."""
    keys = {s: f"{s}_files" for s in C.SPLITS}
    if C.uses_class_files(cfg):
        keys["train"] = "class_files"
    return keys


# --------------------------------------------------------------------------- reading datasets


def _offline_env() -> bool:
    truthy = ("1", "ON", "YES", "TRUE")
    return any(
        os.environ.get(v, "").upper() in truthy for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def read_hub(hub_id: str, hub_config: str, split: str, key: str):
    """``datasets.load_dataset(hub_id, hub_config, split=split)`` with clear errors."""
    import datasets

    if _offline_env() and not datasets.config.HF_HUB_OFFLINE:
        # The variable was set after ``datasets`` read it at import: no request is made (seqjax
        # changes no library setting), and the user learns how to make offline mode take effect.
        raise UserError(
            f"data.hub_id={hub_id!r}: HF_HUB_OFFLINE is set but was set after datasets was "
            "imported, so datasets would go online; set it before Python starts, or point the "
            "config at local files: data.source=files data.train_files=PATH"
        )
    try:
        return datasets.load_dataset(hub_id, hub_config or None, split=split)
    except ConnectionError:
        raise UserError(
            f"data.hub_id={hub_id!r}: no network / hub access (or HF_HUB_OFFLINE=1) and it is "
            "not in the local datasets cache; point the config at local files instead: "
            "data.source=files data.train_files=PATH data.validation_files=PATH"
        ) from None
    except (datasets.exceptions.DatasetsError, FileNotFoundError, ValueError) as e:
        what = str(e).strip().splitlines()
        raise UserError(
            f"data.hub_id={hub_id!r} (data.hub_config={hub_config!r}, data.{key}={split!r}): "
            f"{what[0] if what else type(e).__name__}; fix the id, config or split name"
        ) from None


def _column(ds, name: str, key: str, where: str) -> list:
    if name not in ds.column_names:
        raise UserError(
            f"{where}: no column {name!r} (the columns are "
            f"{', '.join(map(repr, ds.column_names))}); set data.{key} "
            f"(per split: data.{key}=NAME,validation=OTHER)"
        )
    return ds[name]


def _texts(values: list, where: str) -> list[str]:
    texts = ["" if v is None else v if isinstance(v, str) else str(v) for v in values]
    if not texts:
        raise UserError(f"{where}: the dataset has no rows; point the config at data")
    if not any(t.strip() for t in texts):
        raise UserError(f"{where}: all texts are empty; check data.text_column and the file")
    return texts


class _Plan(NamedTuple):
    """Where one split comes from: a dataset to read (columns named by the config) or rows of a
    layout (:mod:`seqjax.data.readers`), or neither (carve it out of train), and its name."""

    dataset: Any
    where: str
    rows: Any = None  # Labelled, from a labelled layout (one file / folder per class, prefixed)

    @property
    def empty(self) -> bool:
        return self.dataset is None and self.rows is None


def _label_regex(cfg: Mapping) -> str:
    regex = str(C.get(cfg, "label_regex"))
    problem = C._check_regex(regex)
    if problem:
        raise UserError(f"data.label_regex={regex!r}: {problem}")
    return regex


def _file_plan(cfg: Mapping, key: str) -> _Plan:
    """The plan of a split whose data are local files named by ``data.<key>``."""
    read = {
        "encoding": C.encoding(cfg),
        "errors": C.choice(cfg, "encoding_errors", C.ENCODING_ERRORS),
    }
    if C.uses_class_files(cfg):
        classes = C.class_files(cfg, key)
        where = ", ".join(f"{label}={','.join(paths)}" for label, paths in classes)
        rows = readers.read_class_files(classes, key, **read) if classes else None
        return _Plan(None, where, rows)
    paths = C.file_list(cfg, key)
    where = ", ".join(paths)
    if not paths:
        return _Plan(None, where)
    fmt = C.file_format(cfg, key, paths)
    if fmt == "folders":
        return _Plan(None, where, readers.read_folders(paths, C.label_set(cfg), key, **read))
    if fmt == "prefixed":
        return _Plan(None, where, readers.read_prefixed(paths, _label_regex(cfg), key, **read))
    return _Plan(read_files(paths, fmt, key, **read), where)


def _plans(cfg: Mapping) -> dict[str, _Plan]:
    source = resolve_source(cfg)
    keys = _file_keys(cfg)
    plans = {}
    for split in C.SPLITS:
        if source == "embedded":
            ds = embedded_corpus() if split == "train" else None
            where = f"embedded corpus (pydoc_data.topics, Python {sys.version.split()[0]})"
            plans[split] = _Plan(ds, where)
        elif source == "files":
            plans[split] = _file_plan(cfg, keys[split])
        else:
            hub_id, name = C.get(cfg, "hub_id"), C.get(cfg, f"{split}_split")
            if split == "train" and not name:
                raise UserError("data.train_split is empty; set the hub split to train on")
            ds = (
                read_hub(hub_id, C.get(cfg, "hub_config"), name, f"{split}_split") if name else None
            )
            plans[split] = _Plan(ds, f"{hub_id}[{name}]")
    return plans


def _fractions(cfg: Mapping, plans: Mapping[str, _Plan]) -> dict[str, float]:
    """The fractions of the training data to carve out for splits that have no data of their own."""
    out = {}
    for split in ("validation", "test"):
        f = C.number(cfg, f"{split}_fraction", float, 0.0, 1.0)
        out[split] = f if plans[split].empty else 0.0
    if out["validation"] + out["test"] >= 1.0:
        raise UserError(
            f"data.validation_fraction + data.test_fraction = "
            f"{out['validation'] + out['test']}: leaves no training data; make them sum below 1"
        )
    return out


def join_texts(texts: Sequence[str]) -> str:
    """Rows of text as one stream, a newline between rows that do not end in one.

    >>> join_texts(["a b\\n", "c", "d"])
    'a b\\nc\\nd'
    """
    parts = []
    for i, t in enumerate(texts):
        parts.append(t)
        if i + 1 < len(texts) and not t.endswith("\n"):
            parts.append("\n")
    return "".join(parts)


def split_text(text: str, validation_fraction: float, test_fraction: float) -> dict[str, str]:
    """Contiguous portions ``train | validation | test`` (nanoGPT: ``text[: int(n * 0.9)]``).

    >>> split_text("abcdefghij", 0.2, 0.1)
    {'train': 'abcdefg', 'validation': 'hi', 'test': 'j'}
    """
    n = len(text)
    train_end = int(n * (1.0 - validation_fraction - test_fraction))
    validation_end = int(n * (1.0 - test_fraction))
    parts = {"train": text[:train_end]}
    if validation_fraction > 0:
        parts["validation"] = text[train_end:validation_end]
    if test_fraction > 0:
        parts["test"] = text[validation_end:]
    return parts


def split_rows(
    n: int, validation_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Row indices of a seeded shuffle: the first ``round(n * f_val)`` go to validation, then test.

    >>> parts = split_rows(10, 0.2, 0.1, seed=0)
    >>> [len(parts[s]) for s in ("train", "validation", "test")]
    [7, 2, 1]
    >>> sorted(np.concatenate(list(parts.values())).tolist()) == list(range(10))
    True
    """
    perm = np.random.default_rng(seed).permutation(n)
    n_val, n_test = round(n * validation_fraction), round(n * test_fraction)
    parts = {"train": np.sort(perm[n_val + n_test :])}
    if validation_fraction > 0:
        parts["validation"] = np.sort(perm[:n_val])
    if test_fraction > 0:
        parts["test"] = np.sort(perm[n_val : n_val + n_test])
    return parts


def _check_carved(parts: Mapping[str, Any], where: str) -> None:
    for split, part in parts.items():
        if len(part) == 0:
            raise UserError(
                f"{where}: too little data to carve a non-empty {split} split from it; use more "
                f"data or a larger data.{split}_fraction (or give data.{split}_files)"
            )


def load_text(cfg: Mapping) -> tuple[dict[str, str], dict[str, str]]:
    """Language-modelling text per split, and where each split came from.

    Returns ``(texts, where)``: ``texts[split]`` is one string (rows joined by
    :func:`join_texts`) for ``train``, ``validation`` when it has data or a fraction, and ``test``
    likewise.
    """
    plans = _plans(cfg)
    columns = C.per_split(cfg, "text_column")
    texts, where = {}, {}
    for split, plan in plans.items():
        if plan.empty:
            continue
        if plan.rows is not None:  # a labelled layout: its texts, without the labels
            values = plan.rows.texts
        else:
            values = _column(plan.dataset, columns[split], "text_column", plan.where)
        texts[split] = join_texts(_texts(values, plan.where))
        where[split] = plan.where
    fractions = _fractions(cfg, plans)
    if any(fractions.values()):
        carved = split_text(texts["train"], fractions["validation"], fractions["test"])
        _check_carved(carved, where["train"])
        lo, hi = 1.0 - fractions["validation"] - fractions["test"], 1.0 - fractions["test"]
        spans = {"train": (0.0, lo), "validation": (lo, hi), "test": (hi, 1.0)}
        base = where["train"]
        for split in carved:
            a, b = spans[split]
            where[split] = f"{base} (characters {a:.0%} to {b:.0%})"
        texts.update(carved)
    for split, text in texts.items():
        if not text.strip():
            raise UserError(f"{where[split]}: the {split} text is empty; give it more data")
    return texts, where


def load_labelled(cfg: Mapping) -> tuple[dict[str, Labelled], dict[str, str]]:
    """Classification rows per split (texts, raw labels), and where each split came from."""
    import datasets

    source = resolve_source(cfg)
    if source == "embedded":
        raise UserError(
            "data.source=embedded: the embedded corpus has no labels; for classification set "
            "data.train_files (and data.validation_files) or data.hub_id"
        )
    plans = _plans(cfg)
    text_columns = C.per_split(cfg, "text_column")
    label_columns = C.per_split(cfg, "label_column")
    rows, where = {}, {}
    for split, plan in plans.items():
        if plan.empty:
            continue
        where[split] = plan.where
        if plan.rows is not None:
            rows[split] = plan.rows._replace(texts=_texts(plan.rows.texts, plan.where))
            continue
        ds = plan.dataset
        texts = _texts(_column(ds, text_columns[split], "text_column", plan.where), plan.where)
        labels = _column(ds, label_columns[split], "label_column", plan.where)
        feature = ds.features[label_columns[split]]
        names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None
        rows[split] = Labelled(texts, list(labels), names)
    if C.number(cfg, "folds", int, 0):
        return _cross_validation(cfg, rows, where)
    fractions = _fractions(cfg, plans)
    if any(fractions.values()):
        seed = C.number(cfg, "split_seed", int, 0)
        parts = split_rows(
            len(rows["train"].texts), fractions["validation"], fractions["test"], seed
        )
        _check_carved(parts, where["train"])
        _take(rows, parts)
        for split in parts:
            if split != "train":
                where[split] = f"{fractions[split]:.0%} of train (shuffle seed {seed})"
    return rows, where


def _take(rows: dict[str, Labelled], parts: Mapping[str, np.ndarray]) -> None:
    """Replaces ``rows`` with the rows of the training data at each split's indices."""
    train = rows["train"]
    for split, idx in parts.items():
        rows[split] = Labelled(
            [train.texts[i] for i in idx], [train.labels[i] for i in idx], train.class_names
        )


def _cross_validation(cfg: Mapping, rows: dict, where: dict) -> tuple[dict, dict]:
    """Fold ``data.fold`` of ``data.folds`` (:mod:`seqjax.data.folds`): the test split, with
    validation carved (stratified) from the other folds unless it has data of its own."""
    folds, fold = C.number(cfg, "folds", int, 2), C.number(cfg, "fold", int, 0)
    if fold >= folds:
        raise UserError(f"data.fold={fold}: must be below data.folds={folds}")
    if "test" in rows or C.number(cfg, "test_fraction", float, 0.0, 1.0):
        raise UserError(
            "data.folds: the held-out fold is the test split; remove data.test_files / "
            "data.test_split and set data.test_fraction=0, or set data.folds=0"
        )
    fraction = (
        0.0 if "validation" in rows else C.number(cfg, "validation_fraction", float, 0.0, 1.0)
    )
    seed = C.number(cfg, "split_seed", int, 0)
    labels = rows["train"].labels
    smallest = min(np.unique([str(v).strip() for v in labels], return_counts=True)[1])
    if smallest < folds:
        raise UserError(
            f"data.folds={folds}: a class of {where['train']} has only {smallest} rows, too few "
            "for one in each fold; lower data.folds or use more data"
        )
    parts = folds_lib.fold_split(labels, folds, fold, fraction, seed)
    _check_carved(parts, where["train"])
    _take(rows, parts)
    base = where["train"]
    where["test"] = f"{base}: fold {fold} of {folds} (stratified, split seed {seed})"
    where["train"] = f"{base}: the other {folds - 1} folds"
    if fraction:
        where["train"] += f" less {fraction:.0%} held out for validation"
        where["validation"] = f"{fraction:.0%} of the other folds (stratified)"
    return rows, where
