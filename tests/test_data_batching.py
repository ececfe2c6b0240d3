"""Batching: every token / example exactly once per epoch, deterministic in (seed, step)."""

from collections import Counter

import numpy as np
import pytest

from seqjax.data import (
    ClassifySplit,
    batching,
    classify_batch,
    classify_eval_batches,
    classify_steps_per_epoch,
    epoch_plan,
    lm_batch,
    lm_eval_batches,
    lm_rows,
    lm_steps_per_epoch,
    pad_batch,
)
from seqjax.errors import UserError


def ptb_iterator(raw, batch_size, num_steps):
    """Zaremba et al.'s reader (the original ptb_iterator), a Python loop: the reference."""
    data_len = len(raw)
    batch_len = data_len // batch_size
    data = np.zeros([batch_size, batch_len], dtype=np.int32)
    for i in range(batch_size):
        data[i] = raw[batch_len * i : batch_len * (i + 1)]
    epoch_size = (batch_len - 1) // num_steps
    for i in range(epoch_size):
        x = data[:, i * num_steps : (i + 1) * num_steps]
        y = data[:, i * num_steps + 1 : (i + 1) * num_steps + 1]
        yield x, y


@pytest.mark.parametrize("n,B,T", [(1000, 4, 7), (97, 3, 5), (64, 1, 63), (500, 8, 10)])
def test_lm_batches_equal_the_ptb_iterator_and_repeat_each_epoch(n, B, T):
    stream = np.random.default_rng(n).integers(0, 50, n).astype(np.int32)
    rows = lm_rows(stream, B)
    steps = lm_steps_per_epoch(rows, T)
    reference = list(ptb_iterator(stream, B, T))
    assert steps == len(reference)
    for step in range(3 * steps):
        b = lm_batch(rows, T, step)
        x, y = reference[step % steps]
        np.testing.assert_array_equal(b["inputs"], x)
        np.testing.assert_array_equal(b["targets"], y)
        assert bool(b["reset"]) == (step % steps == 0)
        assert b["inputs"].dtype == np.int32 and b["mask"].dtype == np.float32
        assert b["mask"].shape == (B, T) and b["mask"].all()


def test_lm_epoch_covers_each_row_contiguously_with_targets_shifted_by_one():
    stream = np.arange(10_000, dtype=np.int32)  # value == position, so coverage is readable
    B, T = 5, 9
    rows = lm_rows(stream, B)
    L = len(stream) // B
    steps = lm_steps_per_epoch(rows, T)
    inputs = np.concatenate([lm_batch(rows, T, s)["inputs"] for s in range(steps)], axis=1)
    targets = np.concatenate([lm_batch(rows, T, s)["targets"] for s in range(steps)], axis=1)
    for b in range(B):  # row b reads its own stretch of the stream, once, in order
        np.testing.assert_array_equal(inputs[b], np.arange(b * L, b * L + steps * T))
    np.testing.assert_array_equal(targets, inputs + 1)
    assert len(np.unique(inputs)) == inputs.size


@pytest.mark.parametrize("n,B,T", [(2, 1, 1), (100, 1, 10), (101, 4, 7), (1000, 7, 13), (9, 16, 4)])
def test_lm_eval_predicts_every_token_once_in_order(n, B, T):
    stream = np.random.default_rng(n).integers(1, 99, n).astype(np.int32)
    batches = list(lm_eval_batches(stream, B, T))
    assert [bool(b["reset"]) for b in batches] == [True] + [False] * (len(batches) - 1)
    assert all(b["inputs"].shape == (B, T) for b in batches)  # one shape: one compilation
    # Read rows in order, each row window by window: the masked pairs must be the stream's.
    x = np.concatenate([b["inputs"] for b in batches], axis=1).reshape(-1)
    y = np.concatenate([b["targets"] for b in batches], axis=1).reshape(-1)
    m = np.concatenate([b["mask"] for b in batches], axis=1).reshape(-1).astype(bool)
    assert m.sum() == n - 1
    np.testing.assert_array_equal(x[m], stream[:-1])
    np.testing.assert_array_equal(y[m], stream[1:])


def test_lm_errors_for_too_little_data():
    with pytest.raises(UserError, match="batch_size=8"):
        lm_rows(np.arange(10), 8)
    with pytest.raises(UserError, match="seq_len=50"):
        lm_steps_per_epoch(lm_rows(np.arange(100), 2), 50)


def make_split(lengths, seed=0):
    """A ClassifySplit whose example i has tokens [i*1000 + 1, ...] so rows are identifiable."""
    rng = np.random.default_rng(seed)
    seqs = [i * 1000 + 1 + np.arange(n) for i, n in enumerate(lengths)]
    starts = np.cumsum([0] + [len(s) for s in seqs[:-1]]).astype(np.int64)
    labels = rng.integers(0, 3, len(lengths)).astype(np.int32)
    split = ClassifySplit(
        np.concatenate(seqs).astype(np.int32), starts, np.asarray(lengths, np.int32), labels
    )
    return split, seqs


def rows_of(batch):
    return [
        (tuple(batch["tokens"][r, : batch["lengths"][r]].tolist()), int(batch["labels"][r]))
        for r in range(len(batch["labels"]))
    ]


@pytest.mark.parametrize("N,B", [(1000, 32), (64, 64), (50, 7), (3, 8)])
def test_classify_epoch_has_every_example_exactly_once(N, B):
    lengths = np.random.default_rng(N).integers(1, 40, N)
    split, seqs = make_split(lengths)
    steps = classify_steps_per_epoch(split, B)
    assert steps == -(-N // B)
    expected = Counter((tuple(s.tolist()), int(y)) for s, y in zip(seqs, split.labels))
    for epoch in range(2):
        seen = Counter()
        for step in range(epoch * steps, (epoch + 1) * steps):
            b = classify_batch(split, B, seed=3, step=step, pool=4)
            assert b["tokens"].shape[1] % 8 == 0 and b["tokens"].dtype == np.int32
            width = b["tokens"].shape[1]
            assert (b["tokens"][np.arange(width)[None] >= b["lengths"][:, None]] == 0).all()
            seen.update(rows_of(b))
        assert seen == expected
    sizes = [len(b) for b in epoch_plan(split.lengths, B, 3, 0, 4)]
    assert sorted(sizes)[1:] == [B] * (len(sizes) - 1)  # at most one smaller batch


def test_classify_is_a_function_of_seed_and_step():
    split, _ = make_split(np.random.default_rng(0).integers(1, 30, 500))
    a = [classify_batch(split, 16, seed=1, step=s)["labels"] for s in range(70)]
    batching._PLANS.clear()  # a resumed process has no memo
    b = [classify_batch(split, 16, seed=1, step=s) for s in range(69, -1, -1)][::-1]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y["labels"])
    epoch1 = classify_batch(split, 16, seed=1, step=32)["tokens"]  # 32 steps per epoch
    assert not np.array_equal(classify_batch(split, 16, seed=1, step=0)["tokens"], epoch1)
    assert not np.array_equal(
        classify_batch(split, 16, seed=1, step=0)["tokens"],
        classify_batch(split, 16, seed=2, step=0)["tokens"],
    )


def test_bucketing_pads_less_than_a_plain_shuffle():
    lengths = np.random.default_rng(1).integers(1, 60, 4000)
    split, _ = make_split(lengths)
    B = 32

    def padding(index_batches):
        return sum(len(ix) * lengths[ix].max() - lengths[ix].sum() for ix in index_batches)

    perm = np.random.default_rng(0).permutation(len(lengths))
    plain = padding([perm[i : i + B] for i in range(0, len(perm), B)])
    bucketed = padding(epoch_plan(split.lengths, B, seed=0, epoch=0, pool=50))
    assert bucketed < 0.1 * plain


def test_drop_remainder_gives_full_batches():
    split, _ = make_split(np.full(50, 5))
    steps = classify_steps_per_epoch(split, 8, drop_remainder=True)
    assert steps == 6
    for s in range(2 * steps):
        assert classify_batch(split, 8, 0, s, drop_remainder=True)["tokens"].shape == (8, 8)


def test_classify_eval_covers_each_example_once_with_its_index():
    lengths = np.random.default_rng(2).integers(1, 25, 203)
    split, seqs = make_split(lengths)
    seen = []
    for b in classify_eval_batches(split, 16, pad_multiple=1):
        assert b["tokens"].shape[1] == b["lengths"].max()
        for r, i in enumerate(b["index"]):
            assert rows_of(b)[r] == (tuple(seqs[i].tolist()), int(split.labels[i]))
        seen += b["index"].tolist()
    assert sorted(seen) == list(range(len(lengths)))


def test_truncated_lengths_give_the_prefix_and_pad_batch():
    split, seqs = make_split([10, 3, 7])
    short = split._replace(lengths=np.minimum(split.lengths, 4))
    b = classify_batch(short, 3, 0, 0, pad_multiple=1)
    assert b["tokens"].shape == (3, 4)
    for tokens, n in zip(b["tokens"], b["lengths"]):
        i = (tokens[0] - 1) // 1000
        np.testing.assert_array_equal(tokens[:n], seqs[i][:n])
    tokens, lengths = pad_batch([np.array([5, 6, 7]), np.array([], np.int32)], pad_multiple=4)
    assert tokens.tolist() == [[5, 6, 7, 0], [0, 0, 0, 0]] and lengths.tolist() == [3, 0]
