"""Reading the ``data.*`` config: defaults, per-split values, file lists, label sets.

The data layer accepts any ``Mapping``-like config (a dict, an ml_collections ``ConfigDict``): it
only calls ``cfg.get(key)``. A missing key, ``None`` and ``""`` mean "use the default"
(:data:`DEFAULTS`), except for the hub split names and ``cache_dir``, where ``""`` means "none".
Bad values raise :class:`seqjax.errors.UserError` naming the field.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from typing import Any

from seqjax import schema
from seqjax.errors import UserError

SPLITS = ("train", "validation", "test")

SOURCES = ("auto", "embedded", "files", "hub")
TOKENIZERS = ("char", "word", "bpe")
FORMATS = ("auto", "text", "csv", "tsv", "json", "jsonl", "parquet")
ENCODING_ERRORS = ("strict", "replace", "ignore", "backslashreplace")

#: The ``data.*`` fields every text task reads (language modelling and classification), declared
#: once (:mod:`seqjax.schema`). Strings rather than ``None`` so that ml_collections' command-line
#: overrides know each field's type.
FIELDS: dict[str, schema.Field] = {
    "data.source": schema.choice(
        "auto",
        SOURCES,
        "where the data come from; auto: files if train_files, hub if hub_id, "
        "else the embedded corpus",
    ),
    "data.hub_id": schema.text("", "Hugging Face hub dataset id, e.g. stanfordnlp/sst2"),
    "data.hub_config": schema.text("", "the hub dataset's config name, e.g. wikitext-2-raw-v1"),
    "data.train_split": schema.text("train", "hub split name of the training data"),
    "data.validation_split": schema.text(
        "validation", "hub split name of the validation data; '' = carve validation_fraction"
    ),
    "data.test_split": schema.text("", "hub split name of the test data; '' = carve test_fraction"),
    "data.train_files": schema.text("", "training file(s): a path, a glob or 'a.txt,b.txt'"),
    "data.validation_files": schema.text(
        "", "validation file(s); '' = carve data.validation_fraction from the training data"
    ),
    "data.test_files": schema.text(
        "", "test file(s); '' = carve data.test_fraction from the training data"
    ),
    "data.format": schema.choice(
        "auto", FORMATS, "file format; auto: from the extension (.txt .csv .tsv .jsonl .parquet)"
    ),
    "data.validation_fraction": schema.number(
        0.1,
        "share of the training data held out for validation when no split is given",
        low=0.0,
        high=1.0,
        high_open=True,
    ),
    "data.test_fraction": schema.number(
        0.0,
        "share of the training data held out for testing when no split is given",
        low=0.0,
        high=1.0,
        high_open=True,
    ),
    "data.text_column": schema.text(
        "text", "the text column, or per split: 'sentence,validation=content'"
    ),
    "data.encoding_errors": schema.choice(
        "strict", ENCODING_ERRORS, "how bytes that are not valid UTF-8 are read (strict: an error)"
    ),
    "data.tokenizer": schema.choice("char", TOKENIZERS, "char | word | bpe"),
    "data.vocab_size": schema.integer(
        0, "vocabulary size incl. special symbols; 0: no cap (char, word), 4096 for bpe", low=0
    ),
    "data.min_freq": schema.integer(1, "word/bpe: rarer symbols become <unk>", low=1),
    "data.lowercase": schema.flag(False, "lowercase the text before tokenising"),
    "data.cache_dir": schema.text(
        "~/.cache/seqjax", "where tokenised arrays are cached; '' disables the cache"
    ),
}

#: Fields only classification reads (labelled rows).
LABELLED_FIELDS: dict[str, schema.Field] = {
    "data.split_seed": schema.integer(
        0, "seed of the shuffle that carves validation/test fractions from the rows", low=0
    ),
    "data.label_column": schema.text("label", "the label column (same syntax as text_column)"),
    "data.labels": schema.text(
        "", "the label set in id order, e.g. 'negative,positive'; '' = the sorted training labels"
    ),
    "data.max_length": schema.integer(
        0, "keep the first max_length tokens of each text; 0 = no truncation", low=0
    ),
}

#: Every field the data layer reads, with its default (``seqjax.data.DEFAULTS``). Dict configs
#: can start from it: ``config.data = ml_collections.ConfigDict(seqjax.data.DEFAULTS)``.
DEFAULTS: dict[str, Any] = {
    key.split(".", 1)[1]: f.default for key, f in {**FIELDS, **LABELLED_FIELDS}.items()
}

EXTENSIONS = {
    ".txt": "text",
    ".text": "text",
    ".raw": "text",
    ".tokens": "text",
    ".csv": "csv",
    ".tsv": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


#: Fields where ``""`` is a value of its own ("no such split", "no cache"), not "the default".
EMPTY_IS_A_VALUE = ("train_split", "validation_split", "test_split", "cache_dir")


def get(cfg: Mapping, key: str) -> Any:
    """``cfg[key]``, or ``DEFAULTS[key]`` when the key is missing, ``None`` or ``""``.

    ``""`` is kept for the fields in :data:`EMPTY_IS_A_VALUE`.

    >>> get({"validation_split": ""}, "validation_split"), get({"tokenizer": ""}, "tokenizer")
    ('', 'char')
    """
    getter = getattr(cfg, "get", None)
    value = getter(key, None) if getter is not None else None
    if isinstance(value, str):
        value = value.strip()
        if value == "" and key in EMPTY_IS_A_VALUE:
            return value
    if value is None or (isinstance(value, str) and value == ""):
        return DEFAULTS[key]
    return value


def choice(cfg: Mapping, key: str, allowed: Sequence[str]) -> str:
    value = str(get(cfg, key)).lower()
    if value not in allowed:
        raise UserError(f"data.{key}={value!r}: unknown value; choose one of {', '.join(allowed)}")
    return value


def number(cfg: Mapping, key: str, kind: type, low: float, high: float | None = None):
    """A number in ``[low, high)`` (``high=None``: unbounded)."""
    value = get(cfg, key)
    try:
        if isinstance(value, bool) or float(value) != kind(value):
            raise ValueError
        value = kind(value)
    except (TypeError, ValueError):
        raise UserError(f"data.{key}={value!r}: not a {kind.__name__}; set a number") from None
    if value < low or (high is not None and value >= high):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise UserError(f"data.{key}={value!r}: out of range; set a value {bound}")
    return value


def flag(cfg: Mapping, key: str) -> bool:
    value = get(cfg, key)
    if isinstance(value, str):
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise UserError(f"data.{key}={value!r}: not a boolean; set true or false")
    return bool(value)


def per_split(cfg: Mapping, key: str) -> dict[str, str]:
    """A column name for each split, from ``"name"``, ``"name,validation=other"`` or a mapping.

    A bare name is the default for every split; ``split=name`` items override it for one split.

    >>> per_split({"text_column": "sentence,validation=content"}, "text_column")
    {'train': 'sentence', 'validation': 'content', 'test': 'sentence'}
    """
    value = get(cfg, key)
    if isinstance(value, Mapping):
        items = [f"{k}={v}" for k, v in value.items()]
    else:
        items = [s.strip() for s in str(value).split(",") if s.strip()]
    default = DEFAULTS[key]
    named: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            default = item
            continue
        split, name = (s.strip() for s in item.split("=", 1))
        if split not in SPLITS:
            raise UserError(
                f"data.{key}={value!r}: unknown split {split!r}; use {', '.join(SPLITS)} "
                f"(e.g. data.{key}=sentence,validation=content)"
            )
        named[split] = name
    return {s: named.get(s, default) for s in SPLITS}


def file_list(cfg: Mapping, key: str) -> list[str]:
    """Absolute paths from a path, a glob, ``"a,b"`` or a list; checked: exist, non-empty."""
    value = get(cfg, key)
    if isinstance(value, str):
        items = [s.strip() for s in value.split(",") if s.strip()]
    elif isinstance(value, Sequence):
        items = [str(s).strip() for s in value if str(s).strip()]
    else:
        raise UserError(f"data.{key}={value!r}: not a path; set a path or a list of paths")
    paths: list[str] = []
    for item in items:
        expanded = os.path.expanduser(item)
        if glob.has_magic(expanded):
            matches = sorted(glob.glob(expanded))
            if not matches:
                raise UserError(f"data.{key}={item!r}: no file matches this pattern; fix the path")
        else:
            matches = [expanded]
        for path in matches:
            if not os.path.isfile(path):
                raise UserError(f"data.{key}={item!r}: no such file {path!r}; fix the path")
            if os.path.getsize(path) == 0:
                raise UserError(f"data.{key}: file {path!r} is empty; point it at a file with data")
            paths.append(os.path.abspath(path))
    return paths


def file_format(cfg: Mapping, key: str, paths: Sequence[str]) -> str:
    """The format of a split's files: ``data.format`` or, for ``auto``, their common extension."""
    fmt = choice(cfg, "format", FORMATS)
    if fmt != "auto":
        return fmt
    found = set()
    for path in paths:
        ext = os.path.splitext(path)[1].lower()
        if ext not in EXTENSIONS:
            raise UserError(
                f"data.{key}: cannot tell the format of {path!r} from its extension; set "
                f"data.format to one of {', '.join(FORMATS[1:])}"
            )
        found.add(EXTENSIONS[ext])
    if len(found) > 1:
        raise UserError(
            f"data.{key}: files of different formats ({', '.join(sorted(found))}); use one format "
            "per split or set data.format"
        )
    return found.pop()


def label_set(cfg: Mapping) -> list[str] | None:
    """``data.labels`` as a list of names (``None``: infer from the training split)."""
    value = get(cfg, "labels")
    if isinstance(value, str):
        names = [s.strip() for s in value.split(",") if s.strip()]
    elif isinstance(value, Sequence):
        names = [str(s).strip() for s in value]
    else:
        raise UserError(
            f"data.labels={value!r}: not a list; set e.g. data.labels=negative,positive"
        )
    if not names:
        return None
    if len(set(names)) != len(names) or len(names) < 2:
        raise UserError(
            f"data.labels={value!r}: needs at least two distinct labels; e.g. "
            "data.labels=negative,positive"
        )
    return names


def cache_dir(cfg: Mapping) -> str | None:
    """The cache folder, or ``None`` when ``data.cache_dir`` is set to ``""`` (no cache)."""
    value = get(cfg, "cache_dir")
    return os.path.abspath(os.path.expanduser(str(value))) if value else None
