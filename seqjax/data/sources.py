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

When a split has no file / hub split of its own, it is carved out of the training data by
``data.validation_fraction`` / ``data.test_fraction``: for text, contiguous tail portions
(``train | validation | test``, the nanoGPT convention: first 90% train, last 10% validation); for
labelled rows, a shuffle seeded by ``data.split_seed``.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from seqjax.data import config as C
from seqjax.errors import UserError

_BUILDERS = {
    "text": ("text", {"sample_by": "document"}),
    "csv": ("csv", {"na_filter": False}),
    "tsv": ("csv", {"sep": "\t", "quoting": csv.QUOTE_NONE, "na_filter": False}),
    "json": ("json", {}),
    "jsonl": ("json", {}),
    "parquet": ("parquet", {}),
}


class Labelled(NamedTuple):
    """Classification rows of one split."""

    texts: list  # list[str], one per row
    labels: list  # the raw label values (ints or strings), one per row
    class_names: Any  # list[str] when the source declares its label names (hub ClassLabel)


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
    files, hub_id = C.get(cfg, "train_files"), C.get(cfg, "hub_id")
    if source == "auto":
        return "files" if files else "hub" if hub_id else "embedded"
    if source == "files" and not files:
        raise UserError("data.source=files: data.train_files is empty; set it to a path")
    if source == "hub" and not hub_id:
        raise UserError("data.source=hub: data.hub_id is empty; set it, e.g. stanfordnlp/sst2")
    if source == "embedded" and (files or hub_id):
        field = "train_files" if files else "hub_id"
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
    files = {}
    for split in C.SPLITS:
        paths = C.file_list(cfg, f"{split}_files")
        files[split] = [(p, os.path.getsize(p), os.stat(p).st_mtime_ns) for p in paths]
    return {"source": "files", "format": C.get(cfg, "format"), "files": files}


# --------------------------------------------------------------------------- reading datasets


@contextlib.contextmanager
def _quiet():
    """Hide ``datasets``' per-split progress bars for local files (they take milliseconds)."""
    import datasets

    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def _first_bad_utf8(paths: Sequence[str]) -> tuple[str, int, int] | None:
    """``(path, byte offset, line)`` of the first bytes that are not UTF-8, or ``None``."""
    for path in paths:
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset, line = 0, 1
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as e:
                    return path, offset + e.start, line + chunk[: e.start].count(b"\n")
                offset, line = offset + len(chunk), line + chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return path, offset, line
    return None


def _root_cause(e: BaseException) -> BaseException:
    while e.__cause__ is not None or e.__context__ is not None:
        e = e.__cause__ or e.__context__
    return e


def read_files(paths: Sequence[str], fmt: str, encoding_errors: str, key: str):
    """Local files read by the ``datasets`` builder for ``fmt``, as a ``datasets.Dataset``."""
    import datasets
    import pyarrow as pa

    builder, kwargs = _BUILDERS[fmt]
    if fmt != "parquet":
        kwargs = {**kwargs, "encoding": "utf-8-sig", "encoding_errors": encoding_errors}
    try:
        with tempfile.TemporaryDirectory(prefix="seqjax-datasets-") as tmp, _quiet():
            return datasets.load_dataset(
                builder,
                data_files=list(paths),
                split="train",
                cache_dir=tmp,
                keep_in_memory=True,
                **kwargs,
            )
    except (datasets.exceptions.DatasetsError, pa.ArrowException, UnicodeError, ValueError) as e:
        if fmt != "parquet" and encoding_errors == "strict":
            bad = _first_bad_utf8(paths)
            if bad is not None:
                path, offset, line = bad
                raise UserError(
                    f"{path}: not valid UTF-8 at byte {offset} (line {line}); re-encode the file "
                    "as UTF-8 or set data.encoding_errors=replace"
                ) from None
        cause = str(_root_cause(e)).strip().splitlines()
        if "corresponds to no data" in str(e):  # a header and no rows
            raise UserError(
                f"data.{key}={', '.join(paths)}: the data set has no rows; point it at data"
            ) from None
        raise UserError(
            f"data.{key}={', '.join(paths)}: cannot be read as {fmt} "
            f"({cause[0] if cause else type(e).__name__}); fix the file or set data.format"
        ) from None


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
    """Where one split comes from: a dataset to read, or ``None`` (carve it by fraction)."""

    dataset: Any
    where: str


def _plans(cfg: Mapping) -> dict[str, _Plan]:
    source = resolve_source(cfg)
    errors = C.choice(cfg, "encoding_errors", C.ENCODING_ERRORS)
    plans = {}
    for split in C.SPLITS:
        if source == "embedded":
            ds = embedded_corpus() if split == "train" else None
            where = f"embedded corpus (pydoc_data.topics, Python {sys.version.split()[0]})"
        elif source == "files":
            paths = C.file_list(cfg, f"{split}_files")
            key = f"{split}_files"
            ds = read_files(paths, C.file_format(cfg, key, paths), errors, key) if paths else None
            where = ", ".join(paths)
        else:
            hub_id, name = C.get(cfg, "hub_id"), C.get(cfg, f"{split}_split")
            if split == "train" and not name:
                raise UserError("data.train_split is empty; set the hub split to train on")
            ds = (
                read_hub(hub_id, C.get(cfg, "hub_config"), name, f"{split}_split") if name else None
            )
            where = f"{hub_id}[{name}]"
        plans[split] = _Plan(ds, where)
    return plans


def _fractions(cfg: Mapping, plans: Mapping[str, _Plan]) -> dict[str, float]:
    """The fractions of the training data to carve out for splits that have no data of their own."""
    out = {}
    for split in ("validation", "test"):
        f = C.number(cfg, f"{split}_fraction", float, 0.0, 1.0)
        out[split] = f if plans[split].dataset is None else 0.0
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
        if plan.dataset is None:
            continue
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
        if plan.dataset is None:
            continue
        ds = plan.dataset
        texts = _texts(_column(ds, text_columns[split], "text_column", plan.where), plan.where)
        labels = _column(ds, label_columns[split], "label_column", plan.where)
        feature = ds.features[label_columns[split]]
        names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None
        rows[split] = Labelled(texts, list(labels), names)
        where[split] = plan.where
    fractions = _fractions(cfg, plans)
    if any(fractions.values()):
        seed = C.number(cfg, "split_seed", int, 0)
        train = rows["train"]
        parts = split_rows(len(train.texts), fractions["validation"], fractions["test"], seed)
        _check_carved(parts, where["train"])
        for split, idx in parts.items():
            rows[split] = Labelled(
                [train.texts[i] for i in idx], [train.labels[i] for i in idx], train.class_names
            )
            if split != "train":
                where[split] = f"{fractions[split]:.0%} of train (shuffle seed {seed})"
    return rows, where
