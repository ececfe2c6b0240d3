"""Reading the ``data.*`` config: defaults, per-split values, file lists, label sets.

The data layer accepts any ``Mapping``-like config (a dict, an ml_collections ``ConfigDict``): it
only calls ``cfg.get(key)``. A missing key, ``None`` and ``""`` mean "use the default"
(:data:`DEFAULTS`), except for the hub split names and ``cache_dir``, where ``""`` means "none".
Bad values raise :class:`seqjax.errors.UserError` naming the field.
"""

from __future__ import annotations

import codecs
import glob
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from seqjax import schema
from seqjax.errors import UserError

SPLITS = ("train", "validation", "test")

SOURCES = ("auto", "embedded", "files", "hub")
TOKENIZERS = ("char", "word", "bpe")
#: File formats; ``folders`` (one folder per class, one text per file) and ``prefixed`` (one
#: labelled text per line, ``LABEL text``) hold labelled texts in layouts of their own.
FORMATS = ("auto", "text", "csv", "tsv", "json", "jsonl", "parquet", "folders", "prefixed")
ENCODING_ERRORS = ("strict", "replace", "ignore", "backslashreplace")
LABEL_LEVELS = ("full", "coarse")
#: The default ``data.label_regex``: the label is a line's first word, the text what follows.
LABEL_REGEX = r"(?P<label>\S+)\s+(?P<text>.*)"


def _check_encoding(value: str) -> str | None:
    try:
        codecs.lookup(value)
    except LookupError:
        return "is not a text encoding Python knows; e.g. utf-8, latin-1, cp1252, utf-16"
    return None


def _check_regex(value: str) -> str | None:
    try:
        groups = re.compile(value).groupindex
    except re.error as e:
        return f"is not a regular expression ({e})"
    if not {"label", "text"} <= set(groups):
        return "needs the named groups (?P<label>...) and (?P<text>...)"
    return None


def class_file_items(value: str) -> list[tuple[str, str]]:
    """``"positive=a.txt,negative=b.txt"`` as ``[("positive", "a.txt"), ("negative", "b.txt")]``;
    ``ValueError`` saying what is wrong (checked again by the schema, before any data loads).

    >>> class_file_items("pos=rt.pos, neg = rt.neg")
    [('pos', 'rt.pos'), ('neg', 'rt.neg')]
    """
    items = []
    for item in (s.strip() for s in str(value).split(",")):
        if not item:
            continue
        label, eq, path = (s.strip() for s in item.partition("="))
        if not eq or not label or not path:
            raise ValueError(f"item {item!r} is not LABEL=PATH")
        items.append((label, path))
    labels = [label for label, _ in items]
    if len(set(labels)) != len(labels):
        raise ValueError("names a label twice; give each label once (a glob may match many files)")
    if value and len(items) < 2:
        raise ValueError("needs at least two classes, e.g. positive=a.txt,negative=b.txt")
    return items


def _check_class_files(value: str) -> str | None:
    try:
        class_file_items(value)
    except ValueError as e:
        return f"{e} (e.g. positive=a.txt,negative=b.txt)"
    return None


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
        "auto",
        FORMATS,
        "file format; auto: from the extension (.txt .csv .tsv .jsonl .parquet), folders for "
        "directories",
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
    "data.encoding": schema.text(
        "utf-8",
        "the text files' encoding, e.g. latin-1 (utf-8 also drops a byte-order mark)",
        check=_check_encoding,
    ),
    "data.encoding_errors": schema.choice(
        "strict",
        ENCODING_ERRORS,
        "how bytes data.encoding cannot decode are read (strict: an error)",
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
    "data.class_files": schema.text(
        "",
        "one file per class, one text a line: 'positive=a.txt,negative=b.txt' (the training "
        "data; then validation_files/test_files take the same form)",
        check=_check_class_files,
    ),
    "data.label_regex": schema.text(
        LABEL_REGEX,
        "format prefixed: how a line splits into (?P<label>...) and (?P<text>...)",
        check=_check_regex,
    ),
    "data.label_level": schema.choice(
        "full",
        LABEL_LEVELS,
        "coarse: keep a label's part before its first ':' (TREC's 6 classes of COARSE:fine)",
    ),
    "data.folds": schema.integer(
        0,
        "k-fold cross-validation: the test split is fold data.fold of k (stratified); 0: off",
        low=0,
        hint="0: off, or at least 2",
    ),
    "data.fold": schema.integer(0, "which fold is the test split, 0 .. data.folds - 1", low=0),
}


def _fold_rule(folds, fold):
    if folds == 1:
        return "data.folds", "must be 0 (off) or at least 2"
    if folds and fold >= folds:
        return "data.fold", f"must be below data.folds={folds}; choose 0 .. {folds - 1}"
    return None


def _folds_test_rule(folds, test_fraction, test_files, test_split):
    if not folds:
        return None
    if test_fraction:
        return (
            "data.test_fraction",
            "must be 0 with data.folds: the held-out fold is the test split",
        )
    if test_files:
        return "data.test_files", "must be '' with data.folds: the held-out fold is the test split"
    if test_split:
        return "data.test_split", "must be '' with data.folds: the held-out fold is the test split"
    return None


def _class_files_rule(class_files, train_files, hub_id):
    if class_files and train_files:
        return "data.train_files", "must be '' when data.class_files names the training files"
    if class_files and hub_id:
        return "data.hub_id", "must be '' when data.class_files names the training files"
    return None


#: Checks across the labelled fields (:class:`seqjax.schema.Rule`), before any data loads.
LABELLED_RULES = (
    schema.Rule(("data.folds", "data.fold"), _fold_rule),
    schema.Rule(
        ("data.folds", "data.test_fraction", "data.test_files", "data.test_split"),
        _folds_test_rule,
    ),
    schema.Rule(("data.class_files", "data.train_files", "data.hub_id"), _class_files_rule),
)

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


def _expand(key: str, item: str) -> list[str]:
    """The files or folders one item of ``data.<key>`` names (a path or a glob), checked."""
    expanded = os.path.expanduser(item)
    if glob.has_magic(expanded):
        matches = sorted(glob.glob(expanded))
        if not matches:
            raise UserError(f"data.{key}={item!r}: no file matches this pattern; fix the path")
    else:
        matches = [expanded]
    paths = []
    for path in matches:
        if os.path.isdir(path):
            paths.append(os.path.abspath(path))
            continue
        if not os.path.isfile(path):
            raise UserError(f"data.{key}={item!r}: no such file {path!r}; fix the path")
        if os.path.getsize(path) == 0:
            raise UserError(f"data.{key}: file {path!r} is empty; point it at a file with data")
        paths.append(os.path.abspath(path))
    return paths


def _items(value, key: str) -> list[str]:
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    if isinstance(value, Sequence):
        return [str(s).strip() for s in value if str(s).strip()]
    raise UserError(f"data.{key}={value!r}: not a path; set a path or a list of paths")


def file_list(cfg: Mapping, key: str) -> list[str]:
    """Absolute paths from a path, a glob, ``"a,b"`` or a list; checked: exist, files non-empty
    (a folder is kept as it is: the ``folders`` layout reads it)."""
    return [p for item in _items(get(cfg, key), key) for p in _expand(key, item)]


def uses_class_files(cfg: Mapping) -> bool:
    """Whether the training data are one file per class (``data.class_files``)."""
    return bool(get(cfg, "class_files"))


def class_files(cfg: Mapping, key: str) -> list[tuple[str, list[str]]]:
    """``[(label, files)]`` of ``data.<key>`` in the ``LABEL=PATH,...`` form (a path or a glob per
    label), checked like :func:`file_list`; ``[]`` when the field is empty."""
    try:
        items = class_file_items(get(cfg, key))
    except ValueError as e:
        raise UserError(
            f"data.{key}={get(cfg, key)!r}: {e} (e.g. positive=a.txt,negative=b.txt)"
        ) from None
    out = []
    for label, item in items:
        paths = _expand(key, item)
        folders = [p for p in paths if os.path.isdir(p)]
        if folders:
            raise UserError(
                f"data.{key}: {folders[0]!r} is a folder; give the file of class {label!r} "
                "(one text a line), or use data.format=folders for one folder per class"
            )
        out.append((label, paths))
    return out


def file_format(cfg: Mapping, key: str, paths: Sequence[str]) -> str:
    """The format of a split's files: ``data.format`` or, for ``auto``, their common extension
    (``folders`` when every path is a folder)."""
    fmt = choice(cfg, "format", FORMATS)
    folders = [p for p in paths if os.path.isdir(p)]
    if fmt == "folders" or (fmt == "auto" and folders):
        files = [p for p in paths if not os.path.isdir(p)]
        if files:
            raise UserError(
                f"data.{key}: {files[0]!r} is a file, but the folders layout needs folders (one "
                "subfolder per class); name the folders, or set data.format to the files' format"
            )
        return "folders"
    if folders:
        raise UserError(
            f"data.{key}: {folders[0]!r} is a folder; set data.format=folders (one subfolder "
            "per class, one text per file) or name the files in it"
        )
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


def encoding(cfg: Mapping) -> str:
    """The codec that reads the text files: ``data.encoding``, with UTF-8 read as ``utf-8-sig``
    (a leading byte-order mark is dropped).

    >>> encoding({}), encoding({"encoding": "Latin-1"})
    ('utf-8-sig', 'iso8859-1')
    """
    value = str(get(cfg, "encoding"))
    problem = _check_encoding(value)
    if problem:
        raise UserError(f"data.encoding={value!r}: {problem}")
    name = codecs.lookup(value).name
    return "utf-8-sig" if name == "utf-8" else name


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
