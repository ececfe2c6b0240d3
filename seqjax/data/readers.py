r"""Reading local files through Hugging Face ``datasets``, in every layout labelled text comes in.

Tables (:func:`read_files`): one row per record of a CSV, TSV (no quoting), JSON / JSON Lines or
parquet file, or one row per file of plain text (``text``, what language modelling reads). The
layouts of labelled text that are not tables, each read with ``datasets``' ``text`` builder:

* **one file per class** (:func:`read_class_files`; the MR / Subj / MPQA / CR layout):
  ``data.class_files = "positive=rt-polarity.pos,negative=rt-polarity.neg"``, one text a line;
* **one folder per class** (:func:`read_folders`; the IMDB and ``sklearn.datasets.load_files``
  layout): ``data.train_files = "aclImdb/train"`` names a folder whose subfolders are the classes
  (the subfolder's name is the label), one text per file. Hidden entries (``.name``) are skipped;
  with ``data.labels`` set only the subfolders it names are read (IMDB's ``unsup`` is left out by
  ``data.labels=neg,pos``, as ``load_files(categories=...)`` does);
* **label-prefixed lines** (:func:`read_prefixed`, ``data.format=prefixed``): each line is
  matched whole by ``data.label_regex`` (default ``(?P<label>\S+)\s+(?P<text>.*)``: the first word
  is the label), e.g. TREC's ``NUM:dist How far is it from Denver to Aspen ?``.

Blank lines are no texts in the line layouts and are skipped. Files are decoded with
``data.encoding`` (UTF-8 by default, a byte-order mark dropped; TREC's training file is Latin-1)
and ``data.encoding_errors``; with ``strict`` errors, undecodable bytes end in one line naming the
file, the byte offset and the line, and the fields that fix it.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from typing import Any, NamedTuple

from seqjax.errors import UserError

log = logging.getLogger(__name__)

_BUILDERS = {
    "text": ("text", {"sample_by": "document"}),
    "csv": ("csv", {"na_filter": False}),
    "tsv": ("csv", {"sep": "\t", "quoting": csv.QUOTE_NONE, "na_filter": False}),
    "json": ("json", {}),
    "jsonl": ("json", {}),
    "parquet": ("parquet", {}),
    "lines": ("text", {"sample_by": "line"}),  # the line layouts: one row per line
}


class Labelled(NamedTuple):
    """Classification rows of one split."""

    texts: list  # list[str], one per row
    labels: list  # the raw label values (ints or strings), one per row
    class_names: Any  # list[str] when the source declares its label names (hub ClassLabel)


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


def first_undecodable(paths: Sequence[str], encoding: str) -> tuple[str, int, int] | None:
    """``(path, byte offset, line)`` of the first bytes that ``encoding`` cannot decode, or
    ``None``."""
    for path in paths:
        decoder = codecs.getincrementaldecoder(encoding)()
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


def _shown(encoding: str) -> str:
    return "UTF-8" if encoding.startswith("utf-8") else encoding


def read_files(paths: Sequence[str], fmt: str, key: str, *, encoding: str, errors: str):
    """Local files read by the ``datasets`` builder for ``fmt``, as a ``datasets.Dataset``.

    Args:
      paths: the files, in order.
      fmt: a key of ``_BUILDERS`` (``text``, ``csv``, ..., ``lines``).
      key: the config field that named the files (for errors), e.g. ``train_files``.
      encoding: the codec (:func:`seqjax.data.config.encoding`; parquet is binary and ignores it).
      errors: ``data.encoding_errors``.
    """
    import datasets
    import pyarrow as pa

    builder, kwargs = _BUILDERS[fmt]
    if fmt != "parquet":
        kwargs = {**kwargs, "encoding": encoding, "encoding_errors": errors}
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
        if fmt != "parquet" and errors == "strict":
            bad = first_undecodable(paths, encoding)
            if bad is not None:
                path, offset, line = bad
                raise UserError(
                    f"{path}: not valid {_shown(encoding)} at byte {offset} (line {line}); "
                    "re-encode the file as UTF-8, set data.encoding to its encoding (e.g. "
                    "latin-1) or set data.encoding_errors=replace"
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


def _lines(path: str, key: str, encoding: str, errors: str) -> list[str]:
    """Every line of one file (line breaks removed; universal newlines)."""
    return read_files([path], "lines", key, encoding=encoding, errors=errors)["text"]


def read_class_files(
    classes: Sequence[tuple[str, Sequence[str]]], key: str, *, encoding: str, errors: str
) -> Labelled:
    """One file (or several) per class, one text a line: ``[(label, paths), ...]`` -> rows, class
    by class in the given order, lines in file order; blank lines are skipped."""
    texts, labels, blank = [], [], 0
    for label, paths in classes:
        found = 0
        for path in paths:
            for line in _lines(path, key, encoding, errors):
                if line.strip():
                    texts.append(line)
                    labels.append(label)
                    found += 1
                else:
                    blank += 1
        if not found:
            raise UserError(
                f"data.{key}: the files of class {label!r} ({', '.join(paths)}) hold no text; "
                "point the label at a file with one text a line"
            )
    if blank:
        log.info("data: skipped %d blank lines of data.%s", blank, key)
    return Labelled(texts, labels, None)


def _visible(folder: str) -> list[str]:
    return sorted(n for n in os.listdir(folder) if not n.startswith("."))


def class_folders(
    containers: Sequence[str], labels: Sequence[str] | None, key: str
) -> list[tuple[str, list[str]]]:
    """``[(label, files), ...]`` of the folders layout: the (visible) subfolders of each container
    are the classes, the (visible) files directly inside a subfolder its texts, sorted by name.
    With ``labels`` only those subfolders are read, and each must exist."""
    out: dict[str, list[str]] = {}
    for container in containers:
        subfolders = [n for n in _visible(container) if os.path.isdir(os.path.join(container, n))]
        if not subfolders:
            raise UserError(
                f"data.{key}: {container!r} has no subfolders; the folders layout needs one "
                "subfolder per class, one text per file (e.g. aclImdb/train/pos/0_9.txt)"
            )
        chosen = subfolders
        if labels is not None:
            missing = [str(n) for n in labels if str(n) not in subfolders]
            if missing:
                raise UserError(
                    f"data.{key}: {container!r} has no subfolder {missing[0]!r} for that label "
                    f"of data.labels (its subfolders: {', '.join(subfolders)}); fix data.labels"
                )
            chosen = [str(n) for n in labels]
        for name in chosen:
            folder = os.path.join(container, name)
            files = [
                os.path.join(folder, n)
                for n in _visible(folder)
                if os.path.isfile(os.path.join(folder, n))
            ]
            if not files:
                raise UserError(
                    f"data.{key}: class folder {folder!r} holds no files; put one text per file "
                    "in it, or leave the label out of data.labels"
                )
            out.setdefault(name, []).extend(files)
    return list(out.items())


def read_folders(
    containers: Sequence[str],
    labels: Sequence[str] | None,
    key: str,
    *,
    encoding: str,
    errors: str,
) -> Labelled:
    """The folders layout (see :func:`class_folders`) as rows: one text per file, read in one
    pass of ``datasets``' text builder (one row per file, in order)."""
    classes = class_folders(containers, labels, key)
    paths = [p for _, files in classes for p in files]
    texts = read_files(paths, "text", key, encoding=encoding, errors=errors)["text"]
    if len(texts) != len(paths):  # the builder yields exactly one row per file
        raise AssertionError(f"{len(texts)} texts from {len(paths)} files")
    names = [label for label, files in classes for _ in files]
    return Labelled(list(texts), names, None)


def read_prefixed(
    paths: Sequence[str], regex: str, key: str, *, encoding: str, errors: str
) -> Labelled:
    """Label-prefixed lines: each non-blank line must match ``regex`` as a whole; its groups
    ``label`` and ``text`` (stripped) are the row."""
    pattern = re.compile(regex)
    texts, labels = [], []
    for path in paths:
        for number, line in enumerate(_lines(path, key, encoding, errors), start=1):
            if not line.strip():
                continue
            m = pattern.fullmatch(line.strip())
            if m is None:
                raise UserError(
                    f"{path}, line {number}: {line[:60]!r} does not match "
                    f"data.label_regex={regex!r}; fix the line or the regex"
                )
            texts.append(m.group("text").strip())
            labels.append(m.group("label").strip())
    if not texts:
        raise UserError(f"data.{key}={', '.join(paths)}: no labelled lines; point it at data")
    return Labelled(texts, labels, None)


def identity(path: str) -> Any:
    """What identifies a file (path, size, modification time), or a folder of the folders
    layout (the same for each file of its class subfolders); cheap: nothing is read."""
    if not os.path.isdir(path):
        return (path, os.path.getsize(path), os.stat(path).st_mtime_ns)
    entries = []
    for root, dirs, names in os.walk(path):
        dirs.sort()
        for n in sorted(names):
            p = os.path.join(root, n)
            entries.append((os.path.relpath(p, path), os.path.getsize(p), os.stat(p).st_mtime_ns))
    return (path, entries)


__all__ = [
    "Labelled",
    "class_folders",
    "first_undecodable",
    "identity",
    "read_class_files",
    "read_files",
    "read_folders",
    "read_prefixed",
]
