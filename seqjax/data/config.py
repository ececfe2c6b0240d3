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

from seqjax.errors import UserError

SPLITS = ("train", "validation", "test")

#: Every field the data layer reads, with its default. Configs can start from it:
#: ``config.data = ml_collections.ConfigDict(seqjax.data.DEFAULTS)``. Strings rather than ``None``
#: so that ml_collections' command-line overrides know each field's type.
DEFAULTS: dict[str, Any] = {
    "source": "auto",  # auto | embedded | files | hub (auto: files if train_files, hub if hub_id)
    "hub_id": "",  # e.g. "stanfordnlp/sst2" (datasets.load_dataset's path)
    "hub_config": "",  # the hub dataset's config name, e.g. "wikitext-2-raw-v1"
    "train_split": "train",  # hub split names; "" = none (validation, test: carved by fraction)
    "validation_split": "validation",
    "test_split": "",
    "train_files": "",  # a path, a glob, "a.txt,b.txt" or a list of them
    "validation_files": "",  # "" = carve data.validation_fraction from the training data
    "test_files": "",  # "" = carve data.test_fraction from the training data
    "format": "auto",  # auto (from the extension) | text | csv | tsv | json | jsonl | parquet
    "validation_fraction": 0.1,  # used only when no validation file / split is given
    "test_fraction": 0.0,  # used only when no test file / split is given
    "split_seed": 0,  # classification: the seed of the shuffle that carves fractions
    "text_column": "text",  # a name, or per split: "sentence,validation=content"
    "label_column": "label",  # same syntax as text_column
    "labels": "",  # the label set in order ("negative,positive" or [0, 1]); "" = inferred
    "encoding_errors": "strict",  # strict | replace | ignore (how undecodable bytes are read)
    "tokenizer": "char",  # char | word | bpe
    "vocab_size": 0,  # total size incl. special symbols; 0 = no cap (char, word), 4096 for bpe
    "min_freq": 1,  # word / bpe: drop rarer symbols (they become <unk> / are not merged)
    "lowercase": False,
    "max_length": 0,  # classification: keep the first max_length tokens; 0 = no truncation
    "cache_dir": "~/.cache/seqjax",  # tokenised arrays; "" disables the cache
}

SOURCES = ("auto", "embedded", "files", "hub")
TOKENIZERS = ("char", "word", "bpe")
FORMATS = ("auto", "text", "csv", "tsv", "json", "jsonl", "parquet")
ENCODING_ERRORS = ("strict", "replace", "ignore", "backslashreplace")
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
