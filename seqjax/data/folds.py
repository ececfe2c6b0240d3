"""Stratified k-fold cross-validation of labelled rows: the MR / Subj / MPQA / CR protocol.

With ``data.folds = k`` and ``data.fold = i`` the rows of the training data are dealt to ``k``
folds (:func:`assign_folds`); fold ``i`` is the **test** split, and the other ``k - 1`` folds are
the training pool. Unless the config gives a validation split of its own, **validation** is a
stratified ``data.validation_fraction`` of that pool (:func:`stratified_take`; Kim 2014 likewise
holds out 10% of the training data as a development set), and training is the rest. So the ``k``
test splits partition the data, each model picks its best checkpoint on rows it neither trains
nor is tested on, and a sweep over ``data.fold = 0 .. k-1`` reproduces the published protocol.

Both are seeded by ``data.split_seed``: the assignment to folds by the seed alone (every fold of
one sweep sees the same partition), the validation carve by the seed and the fold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _classes(labels: Sequence) -> np.ndarray:
    """Each row's class as an index into the sorted distinct labels (compared as stripped text)."""
    keys = np.array([str(v).strip() for v in labels], dtype=object)
    return np.unique(keys, return_inverse=True)[1].reshape(-1)


def assign_folds(labels: Sequence, folds: int, seed: int) -> np.ndarray:
    """The fold (``0 .. folds-1``) of each row, stratified by label.

    Each class's rows, in an order shuffled by ``seed``, are dealt to the folds in turn, the next
    class continuing where the previous one ended. So every class has ``n_c // folds`` or one
    more row in each fold, and the folds' sizes differ by at most one.

    Args:
      labels: the rows' raw labels (compared as stripped text).
      folds: ``k >= 2``.
      seed: the shuffle's seed.

    Returns:
      ``(n,)`` int64.

    Example:
      >>> fold = assign_folds(["a"] * 6 + ["b"] * 3, 3, seed=0)
      >>> [np.bincount(fold[:6], minlength=3).tolist(), np.bincount(fold[6:], minlength=3).tolist()]
      [[2, 2, 2], [1, 1, 1]]
    """
    classes = _classes(labels)
    rng = np.random.default_rng(seed)
    out = np.empty(len(classes), np.int64)
    start = 0
    for c in range(int(classes.max(initial=-1)) + 1):
        rows = rng.permutation(np.flatnonzero(classes == c))
        out[rows] = (start + np.arange(len(rows))) % folds
        start = (start + len(rows)) % folds
    return out


def stratified_take(labels: Sequence, fraction: float, seed) -> np.ndarray:
    """Whether each row is among ``round(n * fraction)`` rows drawn with each class in proportion.

    Each class's rows are shuffled by ``seed`` and spread evenly over ``[0, 1)`` (row ``r`` of
    ``n_c`` at ``(r + 1/2) / n_c``); the rows at the smallest positions are taken. Any prefix of
    that order holds every class within one row of its share.

    Returns:
      ``(n,)`` bool.

    Example:
      >>> take = stratified_take(["a"] * 8 + ["b"] * 2, 0.5, seed=0)
      >>> int(take[:8].sum()), int(take[8:].sum())
      (4, 1)
    """
    classes = _classes(labels)
    rng = np.random.default_rng(seed)
    position = np.empty(len(classes))
    for c in range(int(classes.max(initial=-1)) + 1):
        rows = rng.permutation(np.flatnonzero(classes == c))
        position[rows] = (np.arange(len(rows)) + 0.5) / len(rows)
    order = np.lexsort((classes, position))  # ties: the class order
    take = np.zeros(len(classes), bool)
    take[order[: round(len(classes) * fraction)]] = True
    return take


def fold_split(
    labels: Sequence, folds: int, fold: int, validation_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Row indices (sorted) of ``train``, ``validation`` (when ``validation_fraction > 0``) and
    ``test`` for fold ``fold`` of ``folds`` (see the module docstring).

    Example:
      >>> parts = fold_split(["a", "b"] * 10, folds=5, fold=0, validation_fraction=0.25, seed=0)
      >>> {s: len(idx) for s, idx in parts.items()}
      {'train': 12, 'validation': 4, 'test': 4}
    """
    assigned = assign_folds(labels, folds, seed)
    test = np.flatnonzero(assigned == fold)
    pool = np.flatnonzero(assigned != fold)
    parts = {"train": pool, "test": test}
    if validation_fraction > 0:
        take = stratified_take([labels[i] for i in pool], validation_fraction, (seed, fold))
        parts = {"train": pool[~take], "validation": pool[take], "test": test}
    return parts


__all__ = ["assign_folds", "fold_split", "stratified_take"]
