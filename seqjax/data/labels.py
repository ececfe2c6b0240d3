"""Class labels -> ids ``0..K-1``, for any number of classes.

The label set comes from ``data.labels`` (its order gives the ids) or, when unset, from the
distinct labels of the training split, sorted (numerically when all are integers). Matching:

* when every name in the set is an integer (``"0,1"``, ``[1, 2, 3, 4, 5]``), a row's label is
  matched by integer value, so ``1``, ``"1"`` and ``1.0`` are the same label;
* otherwise by its text, stripped of surrounding spaces (``"positive"``, ``"neutral"``).

A label outside the set is a :class:`~seqjax.errors.UserError` that names it and the set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seqjax.errors import UserError


def _as_int(value) -> int | None:
    """``value`` as an int when it is one (``3``, ``"3"``, ``3.0``), else ``None``."""
    if isinstance(value, bool):
        return None
    try:
        f = float(str(value).strip())
    except ValueError:
        return None
    return int(f) if f.is_integer() else None


def infer_label_set(values: Sequence) -> list[str]:
    """The distinct labels of ``values``, sorted numerically when all are integers.

    >>> infer_label_set([2, 0, 1, 0])
    ['0', '1', '2']
    >>> infer_label_set(["pos", "neg", "pos"])
    ['neg', 'pos']
    """
    distinct = {str(v).strip() for v in values if v is not None}
    ints = {s: _as_int(s) for s in distinct}
    if all(i is not None for i in ints.values()):
        return [str(i) for i in sorted(set(ints.values()))]
    return sorted(distinct)


def map_labels(values: Sequence, names: Sequence[str], where: str) -> np.ndarray:
    """Ids (int32) of ``values`` in the label set ``names``; ``where`` names the data in errors.

    >>> map_labels(["neutral", "positive", "negative"], ["negative", "neutral", "positive"], "x")
    array([1, 2, 0], dtype=int32)
    >>> map_labels([1, 0, 1.0], ["0", "1"], "x")
    array([1, 0, 1], dtype=int32)
    """
    by_int = all(_as_int(n) is not None for n in names)
    index = {(_as_int(n) if by_int else n): i for i, n in enumerate(names)}
    ids = np.empty(len(values), np.int32)
    for row, value in enumerate(values):
        key = _as_int(value) if by_int else (None if value is None else str(value).strip())
        i = index.get(key)
        if i is None:
            shown = "a missing label" if value is None or str(value).strip() == "" else repr(value)
            raise UserError(
                f"{where}, row {row}: unknown label {shown}; the label set is "
                f"{', '.join(names)} (set data.labels to the full set, in order)"
            )
        ids[row] = i
    return ids
