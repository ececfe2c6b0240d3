r"""Batches as pure NumPy functions of ``(seed, step)``, so a resumed run replays exactly.

Language modelling (truncated BPTT, Zaremba et al. 2014, sec. 4 and their PTB reader): the
training stream :math:`w_0 \dots w_{N-1}` is cut into ``B`` contiguous rows of length
``L = N // B`` (the tail ``N mod B`` tokens are dropped), and step ``s`` of epoch ``e`` reads the
window ``i = s mod S`` of ``T`` steps, with ``S = (L - 1) // T`` windows per epoch:

.. math::
    \mathrm{inputs}_{b,t} = w_{bL + iT + t}, \qquad
    \mathrm{targets}_{b,t} = w_{bL + iT + t + 1}, \qquad t = 0 \dots T-1.

The model carries its recurrent state from one window to the next (with the gradient stopped);
``reset`` is true at the first window of every epoch, where the carry starts afresh. Every batch
also has ``mask`` (ones in training), so that one loss function serves training and evaluation.

Classification: each epoch shuffles the examples with ``default_rng([seed, epoch])``, sorts
pools of ``pool`` batches by length and cuts them into batches (bucketing, as torchtext's
``BucketIterator`` and AllenNLP's bucket sampler do, so that a batch holds sequences of similar
length and little padding), then shuffles the order of the batches. Tokens are right-padded with
id 0 (``<pad>``) to the batch's longest length rounded up to a multiple of ``pad_multiple``
(fewer distinct shapes, fewer jit compilations), with the true ``lengths`` beside them.

Measured on SST-2 train (word level, B=64, one epoch; ``python experiments/bench_data.py``):
a plain shuffle pads 73.5% of the tokens of a batch, bucketing 2.9% with ``pad_multiple=1``
(43 distinct batch shapes) and 31.2% with the default ``pad_multiple=8`` (8 shapes, so 8 jit
compilations of a training step instead of 43). A batch takes about 0.5 ms to build.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import numpy as np

from seqjax.errors import UserError

PAD_ID = 0

# ----------------------------------------------------------------------------- language modelling


def lm_rows(stream: np.ndarray, batch_size: int) -> np.ndarray:
    """The stream as ``(B, L)`` contiguous rows, ``L = len(stream) // B`` (Zaremba et al. 2014).

    >>> lm_rows(np.arange(10), 3)
    array([[0, 1, 2],
           [3, 4, 5],
           [6, 7, 8]])
    """
    length = len(stream) // batch_size
    if length < 2:
        raise UserError(
            f"batch_size={batch_size}: the training stream has only {len(stream)} tokens, too few "
            "for that many rows of at least 2 tokens; use a smaller batch size or more data"
        )
    return np.asarray(stream[: batch_size * length]).reshape(batch_size, length)


def lm_steps_per_epoch(rows: np.ndarray, seq_len: int) -> int:
    """Windows of ``seq_len`` steps per pass over the rows: ``(L - 1) // T``.

    >>> lm_steps_per_epoch(np.zeros((4, 101)), 10)
    10
    """
    steps = (rows.shape[1] - 1) // seq_len
    if steps < 1:
        raise UserError(
            f"seq_len={seq_len}: longer than the training rows ({rows.shape[1]} tokens each, "
            f"minus one for the target); use a shorter seq_len or a smaller batch size"
        )
    return steps


def lm_batch(rows: np.ndarray, seq_len: int, step: int) -> dict[str, np.ndarray]:
    """The training window for global step ``step`` (epochs repeat the same windows in order).

    Returns:
      ``inputs``, ``targets``: ``(B, T)`` int32, targets one token ahead of inputs; ``reset``:
      bool scalar, true at the first window of an epoch; ``mask``: ``(B, T)`` float32 ones.

    >>> rows = lm_rows(np.arange(20), 2)          # [[0..9], [10..19]]
    >>> b = lm_batch(rows, 4, step=3)             # 2 windows per epoch: step 3 is window 1
    >>> b["inputs"].tolist(), b["targets"].tolist(), bool(b["reset"])
    ([[4, 5, 6, 7], [14, 15, 16, 17]], [[5, 6, 7, 8], [15, 16, 17, 18]], False)
    """
    i = step % lm_steps_per_epoch(rows, seq_len)
    start = i * seq_len
    inputs = rows[:, start : start + seq_len]
    return {
        "inputs": inputs.astype(np.int32),
        "targets": rows[:, start + 1 : start + seq_len + 1].astype(np.int32),
        "reset": np.asarray(i == 0),
        "mask": np.ones(inputs.shape, np.float32),
    }


def lm_eval_batches(
    stream: np.ndarray, batch_size: int, seq_len: int
) -> Iterator[dict[str, np.ndarray]]:
    """Windows that predict every token of ``stream`` after the first exactly once, in order.

    The ``n - 1`` (input, target) pairs are laid out in ``B`` contiguous rows of
    ``L = ceil(ceil((n - 1) / B) / T) * T`` and cut into windows of ``T``; pairs past the end are
    padding with ``mask == 0``. Carry the state across windows (``reset`` is true only at the
    first); loss = sum(mask * nll) / sum(mask). With ``batch_size=1`` every token is predicted
    from the whole text before it.

    >>> [b["inputs"].tolist() for b in lm_eval_batches(np.arange(8), 2, 2)]
    [[[0, 1], [4, 5]], [[2, 3], [6, 0]]]
    >>> [b["mask"].tolist() for b in lm_eval_batches(np.arange(8), 2, 2)][1]
    [[1.0, 1.0], [1.0, 0.0]]
    """
    pairs = len(stream) - 1
    if pairs < 1:
        raise UserError(f"an evaluation stream of {len(stream)} tokens has nothing to predict")
    per_row = -(-pairs // batch_size)
    length = -(-per_row // seq_len) * seq_len
    inputs = np.zeros(batch_size * length, np.int32)
    targets = np.zeros(batch_size * length, np.int32)
    mask = np.zeros(batch_size * length, np.float32)
    inputs[:pairs], targets[:pairs], mask[:pairs] = stream[:-1], stream[1:], 1.0
    inputs, targets, mask = (a.reshape(batch_size, length) for a in (inputs, targets, mask))
    for i, start in enumerate(range(0, length, seq_len)):
        window = slice(start, start + seq_len)
        yield {
            "inputs": inputs[:, window],
            "targets": targets[:, window],
            "reset": np.asarray(i == 0),
            "mask": mask[:, window],
        }


# ----------------------------------------------------------------------------- classification


def pad_batch(
    seqs: Sequence[np.ndarray], pad_multiple: int = 8, pad_id: int = PAD_ID
) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad sequences to a common length (rounded up to ``pad_multiple``).

    Returns ``(tokens (B, L) int32, lengths (B,) int32)``. For new texts at prediction time,
    after ``tokenizer.encode`` (and truncation to ``max_length``).

    >>> tokens, lengths = pad_batch([np.array([5, 6, 7]), np.array([8])], pad_multiple=4)
    >>> tokens.tolist(), lengths.tolist()
    ([[5, 6, 7, 0], [8, 0, 0, 0]], [3, 1])
    """
    lengths = np.array([len(s) for s in seqs], np.int32)
    width = _round_up(int(lengths.max(initial=1)), pad_multiple)
    tokens = np.full((len(seqs), width), pad_id, np.int32)
    for row, s in enumerate(seqs):
        tokens[row, : len(s)] = s
    return tokens, lengths


def _round_up(n: int, multiple: int) -> int:
    return -(-max(n, 1) // multiple) * multiple


def gather_batch(split, index: np.ndarray, pad_multiple: int = 8) -> dict[str, np.ndarray]:
    """``tokens`` (padded with 0), ``lengths``, ``labels`` of the examples ``index`` of ``split``.

    ``split`` is a :class:`seqjax.data.ClassifySplit` (flat ``tokens``, ``starts``, ``lengths``,
    ``labels``).
    """
    lengths = split.lengths[index].astype(np.int32)
    width = _round_up(int(lengths.max(initial=1)), pad_multiple)
    cols = np.arange(width)
    valid = cols[None, :] < lengths[:, None]
    pos = np.where(valid, split.starts[index][:, None] + cols[None, :], 0)
    return {
        "tokens": np.where(valid, split.tokens[pos], PAD_ID).astype(np.int32),
        "lengths": lengths,
        "labels": split.labels[index].astype(np.int32),
    }


def classify_steps_per_epoch(split, batch_size: int, drop_remainder: bool = False) -> int:
    """Batches per epoch: ``ceil(N / B)`` (the last one smaller), or ``N // B`` if dropped."""
    n = len(split.labels)
    steps = n // batch_size if drop_remainder else -(-n // batch_size)
    if steps < 1:
        raise UserError(
            f"batch_size={batch_size}: larger than the {n} training examples; use a smaller batch"
        )
    return steps


_PLANS: dict = {}


def epoch_plan(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, pool: int = 100
) -> list[np.ndarray]:
    """The example indices of each batch of epoch ``epoch``, bucketed by length.

    Every example appears exactly once; only the last batch of the last pool can be smaller than
    ``batch_size``. A pure function of its arguments (memoised for the current epoch).
    """
    digest = hashlib.blake2b(np.ascontiguousarray(lengths).tobytes(), digest_size=16).digest()
    key = (digest, batch_size, seed, epoch, pool)
    if key not in _PLANS:
        rng = np.random.default_rng([seed, epoch])
        perm = rng.permutation(len(lengths))
        batches = []
        for start in range(0, len(perm), batch_size * pool):
            chunk = perm[start : start + batch_size * pool]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        order = rng.permutation(len(batches))
        if len(_PLANS) >= 4:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = [batches[i] for i in order]
    return _PLANS[key]


def classify_batch(
    split,
    batch_size: int,
    seed: int,
    step: int,
    *,
    drop_remainder: bool = False,
    pool: int = 100,
    pad_multiple: int = 8,
) -> dict[str, np.ndarray]:
    """The training batch for global step ``step``: a bucketed, seeded shuffle per epoch.

    Args:
      split: a :class:`seqjax.data.ClassifySplit`.
      batch_size: B.
      seed: the data seed; epoch ``e`` is shuffled by ``default_rng([seed, e])``.
      step: the global step; epoch ``step // steps_per_epoch``.
      drop_remainder: drop the one smaller batch of each epoch (a different set of examples each
        epoch), so that every batch has exactly ``B`` rows.
      pool: batches per pool sorted by length; larger pools: less padding, less randomness.
      pad_multiple: pad the time axis to a multiple of this.

    Returns:
      ``tokens (B, L) int32`` (0-padded), ``lengths (B,) int32``, ``labels (B,) int32``.
    """
    steps = classify_steps_per_epoch(split, batch_size, drop_remainder)
    epoch, i = divmod(step, steps)
    plan = epoch_plan(split.lengths, batch_size, seed, epoch, pool)
    if drop_remainder:
        plan = [b for b in plan if len(b) == batch_size]
    return gather_batch(split, plan[i], pad_multiple)


def classify_eval_batches(
    split, batch_size: int, pad_multiple: int = 8
) -> Iterator[dict[str, np.ndarray]]:
    """Every example exactly once, sorted by length (little padding), with its ``index``.

    Batches are ``classify_batch``'s keys plus ``index (B,) int64``: the examples' positions in
    the split, to put predictions back in the data's order. The last batch may be smaller.
    """
    order = np.argsort(split.lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield {**gather_batch(split, index, pad_multiple), "index": index}
