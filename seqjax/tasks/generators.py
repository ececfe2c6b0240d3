r"""Long-range synthetic tasks as NumPy arrays, drawn from a ``np.random.Generator`` (or a seed).

Each generator returns a :class:`TaskData`: inputs, targets and the kind of loss the paper used.
Loss kinds:

* ``"mse"``: a real-valued prediction read from the output at each sequence's last valid step,
  squared error against ``targets (B,)`` float32.
* ``"cross_entropy"``: a class predicted at the last valid step, ``targets (B,)`` int32 in
  ``[0, num_classes)``.
* ``"cross_entropy_per_step"``: a class predicted at every step, ``targets (B, T)`` int32,
  cross-entropy averaged over all ``T`` steps (the copy-memory task).

Inputs are ``(B, T, C)`` float32, or ``(B, T)`` int32 tokens where the task is symbolic
(copy memory, unless ``one_hot=True``). Where sequence lengths vary, sequences are right-padded with
zeros and ``lengths (B,)`` gives each valid length (the ``lengths`` of :func:`seqjax.unroll`).

Nothing here imports JAX: the training harness calls these once per batch on the host, with
``np.random.default_rng([seed, step])`` for batches that depend on the seed and step alone.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Union

import numpy as np

from seqjax.errors import UserError

LOSS_KINDS = ("mse", "cross_entropy", "cross_entropy_per_step")
RngLike = Union[np.random.Generator, int, None]


class TaskData(NamedTuple):
    inputs: np.ndarray  # (B, T, C) float32, or (B, T) int32 tokens
    targets: np.ndarray  # (B,) float32 for "mse", (B,) int32 / (B, T) int32 for cross-entropy
    loss: str  # one of LOSS_KINDS
    num_classes: int  # classes of the targets (and the token vocabulary); 0 for "mse"
    lengths: Optional[np.ndarray] = None  # (B,) int32 valid lengths if padded; None: all T


def _rng(rng: RngLike) -> np.random.Generator:
    return np.random.default_rng(rng)


def _positive(name: str, value: int, minimum: int = 1, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UserError(f"{name}={value!r}: must be an integer >= {minimum}{why}")
    return int(value)


def _lengths(rng: np.random.Generator, batch_size: int, length: int, variable: bool) -> np.ndarray:
    """``length`` for every sequence, or uniform in ``[length, length + length // 10]``."""
    if not variable:
        return np.full(batch_size, length, np.int32)
    return rng.integers(length, length + length // 10 + 1, size=batch_size).astype(np.int32)


# Adding problem ----------------------------------------------------------------------------------

ADDING_SOLVED_TOLERANCE = 0.04  # Hochreiter & Schmidhuber 1997, sec. 5.4: |error| < 0.04 is solved
ADDING_LE_BASELINE_MSE = 1.0 / 6.0  # Var(X1 + X2) for X1, X2 ~ U[0, 1]: the best constant's MSE


def adding_problem(
    rng: RngLike, batch_size: int, length: int, *, variable_length: bool = False
) -> TaskData:
    r"""The adding problem of Hochreiter & Schmidhuber (1997, sec. 5.4, experiment 4).

    Each step is a pair (value, marker). Values are uniform in :math:`[-1, 1]`. Exactly two pairs
    are marked with 1.0: one chosen uniformly among the first ten pairs (its value is
    :math:`X_1`), then one among the first :math:`\lfloor T/2 \rfloor - 1` pairs still unmarked
    (:math:`X_2`). The first and last pairs are marked -1.0 unless marked 1.0, all others 0.0.
    When the first pair itself carries :math:`X_1`, :math:`X_1` is set to zero (as in the paper).
    The target at the sequence's end is

    .. math::  y = 0.5 + \frac{X_1 + X_2}{4} \in [0, 1],

    and a sequence counts as solved when :math:`|\hat y - y| <` ``ADDING_SOLVED_TOLERANCE`` (0.04)
    (:func:`fraction_solved`). The paper used :math:`T \in \{100, 500, 1000\}` with lengths drawn
    between :math:`T` and :math:`T + T/10` (``variable_length=True``).

    Args:
      rng: a ``np.random.Generator`` or a seed.
      batch_size: B.
      length: the minimal sequence length T (at least 4).
      variable_length: draw each length uniformly in ``[T, T + T // 10]`` and right-pad with zeros.

    Returns:
      ``TaskData(inputs (B, T', 2) float32, targets (B,) float32, "mse", 0, lengths)`` with
      ``T' = T`` or ``T + T // 10``; ``lengths`` is ``None`` for fixed lengths.

    Example:
      >>> d = adding_problem(0, batch_size=3, length=20)
      >>> d.inputs.shape, d.targets.shape, d.loss, (d.inputs[..., 1] == 1).sum(-1).tolist()
      ((3, 20, 2), (3,), 'mse', [2, 2, 2])
    """
    rng = _rng(rng)
    B = _positive("batch_size", batch_size)
    T = _positive("length", length, 4, " (the second marker lies in the first T/2 - 1 pairs)")
    lengths = _lengths(rng, B, T, variable_length)
    T_max = int(lengths.max())
    valid = np.arange(T_max) < lengths[:, None]  # (B, T_max)

    values = np.where(valid, rng.uniform(-1.0, 1.0, size=(B, T_max)), 0.0)
    rows = np.arange(B)
    first = rng.integers(0, min(10, T), size=B)
    # The r-th pair (0-based) among those left unmarked, for r < T//2 - 1.
    rank = rng.integers(0, T // 2 - 1, size=B)
    second = rank + (rank >= first)
    values[rows, first] = np.where(first == 0, 0.0, values[rows, first])

    markers = np.zeros((B, T_max))
    markers[:, 0] = -1.0
    markers[rows, lengths - 1] = -1.0
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = 0.5 + (values[rows, first] + values[rows, second]) / 4.0
    inputs = np.stack([values, markers], axis=-1).astype(np.float32)
    return TaskData(
        inputs, targets.astype(np.float32), "mse", 0, lengths if variable_length else None
    )


def adding_problem_le(rng: RngLike, batch_size: int, length: int) -> TaskData:
    r"""The adding problem as in Le, Jaitly & Hinton (2015, sec. 4.1) and Arjovsky, Shah & Bengio
    (2016, sec. 4.2).

    Two input channels of length T: values uniform in :math:`[0, 1]` and a mask that is zero
    except at two positions, one uniform in the first half :math:`[0, \lfloor T/2 \rfloor)` and
    one in the second half. The target is the sum of the two marked values,
    :math:`y = X_1 + X_2`. Predicting the constant 1 has expected squared error
    :math:`\operatorname{Var}(X_1 + X_2) = 1/6 \approx 0.167` (``ADDING_LE_BASELINE_MSE``), the
    baseline a model must beat.

    Args:
      rng: a ``np.random.Generator`` or a seed.
      batch_size: B.
      length: T (at least 2).

    Returns:
      ``TaskData(inputs (B, T, 2) float32, targets (B,) float32, "mse", 0)``.

    Example:
      >>> d = adding_problem_le(0, batch_size=2, length=10)
      >>> d.inputs.shape, d.inputs[..., 1].sum(-1).tolist()
      ((2, 10, 2), [2.0, 2.0])
    """
    rng = _rng(rng)
    B = _positive("batch_size", batch_size)
    T = _positive("length", length, 2)
    values = rng.uniform(0.0, 1.0, size=(B, T))
    rows = np.arange(B)
    first = rng.integers(0, T // 2, size=B)
    second = rng.integers(T // 2, T, size=B)
    mask = np.zeros((B, T))
    mask[rows, first] = 1.0
    mask[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]
    inputs = np.stack([values, mask], axis=-1).astype(np.float32)
    return TaskData(inputs, targets.astype(np.float32), "mse", 0)


def fraction_solved(
    predictions: np.ndarray, targets: np.ndarray, tolerance: float = ADDING_SOLVED_TOLERANCE
) -> float:
    """Fraction of sequences with ``|prediction - target| < tolerance`` (Hochreiter & Schmidhuber
    1997, sec. 5.4: 0.04 for the adding problem)."""
    err = np.abs(np.asarray(predictions, np.float64) - np.asarray(targets, np.float64))
    return float(np.mean(err < tolerance))


# Copy memory -------------------------------------------------------------------------------------

COPY_SYMBOLS, COPY_BLANK, COPY_DELIMITER, COPY_VOCAB, COPY_RECALL = 8, 8, 9, 10, 10


def copy_memory_baseline(length: int) -> float:
    r"""Cross-entropy of the memoryless strategy on :func:`copy_memory` (Arjovsky et al. 2016,
    sec. 4.1): predict the blank for the first :math:`T + 10` steps, then a uniform guess over the
    8 symbols, :math:`10 \ln 8 / (T + 20)` per step."""
    return COPY_RECALL * math.log(COPY_SYMBOLS) / (length + 2 * COPY_RECALL)


def copy_memory(rng: RngLike, batch_size: int, length: int, *, one_hot: bool = False) -> TaskData:
    r"""The copy-memory task of Arjovsky, Shah & Bengio (2016, sec. 4.1).

    Symbols are ``0..7`` (data), ``8`` (blank) and ``9`` (delimiter). The input, of length
    :math:`T + 20`, is 10 symbols drawn uniformly with replacement from ``0..7``, then
    :math:`T - 1` blanks, the delimiter, and 10 blanks. The target is :math:`T + 10` blanks followed
    by the 10 data symbols in order: after the delimiter the model must reproduce what it saw
    :math:`T + 10` steps earlier. The loss is the cross-entropy at every step, averaged over the
    :math:`T + 20` steps; the memoryless baseline is :func:`copy_memory_baseline`,
    :math:`10 \ln 8 / (T + 20)`.

    Args:
      rng: a ``np.random.Generator`` or a seed.
      batch_size: B.
      length: T, the delay (at least 1).
      one_hot: return inputs one-hot ``(B, T + 20, 10)`` float32 instead of tokens.

    Returns:
      ``TaskData(inputs (B, T+20) int32 [or one-hot], targets (B, T+20) int32,
      "cross_entropy_per_step", 10)``.

    Example:
      >>> d = copy_memory(0, batch_size=1, length=3)
      >>> d.inputs[0].tolist()[10:], d.targets[0].tolist()[:13]
      ([8, 8, 9, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8], [8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8])
      >>> bool((d.targets[0, 13:] == d.inputs[0, :10]).all())
      True
    """
    rng = _rng(rng)
    B = _positive("batch_size", batch_size)
    T = _positive("length", length)
    R = COPY_RECALL
    data = rng.integers(0, COPY_SYMBOLS, size=(B, R))
    inputs = np.full((B, T + 2 * R), COPY_BLANK, np.int32)
    inputs[:, :R] = data
    inputs[:, R + T - 1] = COPY_DELIMITER
    targets = np.full((B, T + 2 * R), COPY_BLANK, np.int32)
    targets[:, T + R :] = data
    if one_hot:
        inputs = np.eye(COPY_VOCAB, dtype=np.float32)[inputs]
    return TaskData(inputs, targets, "cross_entropy_per_step", COPY_VOCAB)


# Temporal order ----------------------------------------------------------------------------------

TEMPORAL_ORDER_SYMBOLS = ("a", "b", "c", "d", "X", "Y", "B", "E")  # one-hot channel order
TEMPORAL_ORDER_CLASSES = ("Q", "R", "S", "U")  # XX, XY, YX, YY


def temporal_order(
    rng: RngLike,
    batch_size: int,
    length: int = 100,
    *,
    variable_length: bool = False,
    form: str = "hochreiter",
) -> TaskData:
    r"""The temporal-order task (Hochreiter & Schmidhuber 1997, sec. 5.6, experiment 6a), used by
    Pascanu, Mikolov & Bengio (2013, sec. 4.1) to measure how far gradients carry information.

    ``form="hochreiter"``: 8 one-hot symbols (:data:`TEMPORAL_ORDER_SYMBOLS`). A sequence starts
    with ``E``, ends with the trigger ``B`` and is otherwise random distractors ``a, b, c, d``,
    except at two positions :math:`t_1 \in [T/10, 2T/10]` and :math:`t_2 \in [T/2, 6T/10]`
    (the paper: :math:`T = 100`, :math:`t_1 \in [10, 20]`, :math:`t_2 \in [50, 60]`, lengths
    between 100 and 110 with ``variable_length=True``) that hold ``X`` or ``Y``. The class is the
    order: ``XX -> Q (0)``, ``XY -> R (1)``, ``YX -> S (2)``, ``YY -> U (3)``, i.e.
    ``2 [first is Y] + [second is Y]``, predicted at the sequence's end.

    ``form="pascanu"``: the variant in Pascanu et al.'s released code: 6 one-hot symbols (``A``,
    ``B`` carrying the information at channels 0 and 1, distractors ``c, d, e, f``), no start/end
    markers, fixed length, :math:`t_1 \in [T/10, 2T/10)`, :math:`t_2 \in [T/2, 6T/10)`, class
    ``[first is B] + 2 [second is B]``.

    Args:
      rng: a ``np.random.Generator`` or a seed.
      batch_size: B.
      length: the (minimal) sequence length T (at least 10).
      variable_length: ``"hochreiter"`` form only: lengths uniform in ``[T, T + T // 10]``,
        right-padded with zeros.
      form: ``"hochreiter"`` or ``"pascanu"``.

    Returns:
      ``TaskData(inputs (B, T', 8 or 6) float32 one-hot, targets (B,) int32, "cross_entropy",
      4, lengths)``.

    Example:
      >>> d = temporal_order(0, batch_size=2, length=20)
      >>> d.inputs.shape, d.inputs[:, 0].argmax(-1).tolist(), d.inputs[:, -1].argmax(-1).tolist()
      ((2, 20, 8), [7, 7], [6, 6])
    """
    rng = _rng(rng)
    B = _positive("batch_size", batch_size)
    T = _positive("length", length, 10, " (the relevant symbols sit at T/10..6T/10)")
    if form not in ("hochreiter", "pascanu"):
        raise UserError(f"form={form!r}: choose 'hochreiter' or 'pascanu'")
    rows = np.arange(B)
    v1, v2 = rng.integers(0, 2, size=B), rng.integers(0, 2, size=B)
    if form == "pascanu":
        if variable_length:
            raise UserError("variable_length=True: the 'pascanu' form has fixed lengths")
        t1 = rng.integers(T // 10, 2 * T // 10, size=B)
        t2 = rng.integers(T // 2, 6 * T // 10, size=B)
        symbols = rng.integers(2, 6, size=(B, T))
        symbols[rows, t1], symbols[rows, t2] = v1, v2
        inputs = np.eye(6, dtype=np.float32)[symbols]
        return TaskData(inputs, (v1 + 2 * v2).astype(np.int32), "cross_entropy", 4)

    lengths = _lengths(rng, B, T, variable_length)
    T_max = int(lengths.max())
    t1 = rng.integers(T // 10, 2 * T // 10 + 1, size=B)
    t2 = rng.integers(T // 2, 6 * T // 10 + 1, size=B)
    symbols = rng.integers(0, 4, size=(B, T_max))  # a, b, c, d
    symbols[:, 0] = 7  # E
    symbols[rows, lengths - 1] = 6  # B, the trigger
    symbols[rows, t1], symbols[rows, t2] = 4 + v1, 4 + v2  # X or Y
    inputs = np.eye(8, dtype=np.float32)[symbols]
    inputs[np.arange(T_max) >= lengths[:, None]] = 0.0  # padding
    targets = (2 * v1 + v2).astype(np.int32)
    return TaskData(inputs, targets, "cross_entropy", 4, lengths if variable_length else None)


# Sequential digits -------------------------------------------------------------------------------

DIGITS_TEST_SIZE = 297  # of scikit-learn's 1797 8x8 digits; the other 1500 are the training split
DIGITS_SPLIT_SEED = 0


def digits_permutation(seed: int) -> np.ndarray:
    """The fixed pixel order of the permuted task: a permutation of ``range(64)`` from ``seed``."""
    return np.random.default_rng(seed).permutation(64)


def sequential_digits(
    split: str = "train", *, permute: bool = False, permutation_seed: int = 0
) -> TaskData:
    r"""Digits read one pixel per step: a small, offline stand-in for pixel-by-pixel MNIST.

    Le, Jaitly & Hinton (2015, sec. 4.2) feed MNIST's 784 pixels one at a time (sequential MNIST)
    and, to make dependencies longer-ranged, in a fixed random order (permuted MNIST). Here the
    images are scikit-learn's bundled 8x8 handwritten digits (``sklearn.datasets.load_digits``,
    1797 images from the UCI ML hand-written digits set, no download): 64 steps of one pixel
    scaled to :math:`[0, 1]` (raw values are 0..16), the class predicted at the last step.

    Args:
      split: ``"train"`` (1500 images), ``"test"`` (297) or ``"all"``; the split is a fixed
        shuffle (seed ``DIGITS_SPLIT_SEED``), the same on every machine.
      permute: read the pixels in the order :func:`digits_permutation` ``(permutation_seed)``.
      permutation_seed: seed of that fixed permutation.

    Returns:
      ``TaskData(inputs (N, 64, 1) float32, targets (N,) int32, "cross_entropy", 10)``.

    Raises:
      UserError: scikit-learn is not installed (``pip install 'seqjax[tasks]'``).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError(
            "sequential_digits: scikit-learn is not installed; pip install 'seqjax[tasks]' "
            "(or scikit-learn)"
        ) from None
    if split not in ("train", "test", "all"):
        raise UserError(f"split={split!r}: choose 'train', 'test' or 'all'")
    digits = load_digits()
    images = np.asarray(digits.images, np.float32).reshape(-1, 64) / 16.0
    labels = np.asarray(digits.target, np.int32)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(labels))
    if split == "train":
        order = order[DIGITS_TEST_SIZE:]
    elif split == "test":
        order = order[:DIGITS_TEST_SIZE]
    images, labels = images[order], labels[order]
    if permute:
        images = images[:, digits_permutation(permutation_seed)]
    return TaskData(images[..., None], labels, "cross_entropy", 10)
