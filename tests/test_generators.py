"""Synthetic task generators: shapes, targets recomputed from the inputs, published baselines."""

import math
import sys

import numpy as np
import pytest

from seqjax.errors import UserError
from seqjax.tasks import generators as gen

# Adding problem (Hochreiter & Schmidhuber 1997) --------------------------------------------------


@pytest.mark.parametrize("T", [4, 7, 30, 100])
def test_adding_hochreiter_structure_and_targets(T):
    d = gen.adding_problem(np.random.default_rng(T), batch_size=2000, length=T)
    assert d.inputs.shape == (2000, T, 2) and d.inputs.dtype == np.float32
    assert d.targets.shape == (2000,) and d.targets.dtype == np.float32
    assert d.loss == "mse" and d.lengths is None
    values, markers = d.inputs[..., 0], d.inputs[..., 1]
    assert np.all(np.abs(values) <= 1.0)
    assert set(np.unique(markers)) <= {-1.0, 0.0, 1.0}
    marked = markers == 1.0
    assert (marked.sum(1) == 2).all()
    # Target recomputed from the inputs alone.
    np.testing.assert_allclose(d.targets, 0.5 + (values * marked).sum(1) / 4, atol=1e-6)
    # End pairs are -1 unless marked; all other unmarked pairs 0.
    for pos in (0, T - 1):
        assert (markers[~marked[:, pos], pos] == -1.0).all()
    assert (markers[:, 1 : T - 1][~marked[:, 1 : T - 1]] == 0.0).all()
    # One mark among the first ten pairs, the other among the first T/2 - 1 still unmarked ones.
    pos = np.sort(np.nonzero(marked)[1].reshape(-1, 2), axis=1)
    assert (pos[:, 0] < min(10, T)).all() and (pos[:, 1] <= max(min(10, T) - 1, T // 2 - 1)).all()
    if T >= 30:
        assert (np.unique(pos[:, 0]) == np.arange(10)).all()
        assert np.unique(pos[:, 1]).max() == T // 2 - 1
        # X1 = 0 when X1 sits on the first pair (P = 1/10); X2 lands there with P = 9/10 * 1/(T/2-1)
        # and keeps its value. So the share of zero values at a marked first pair is known.
        p1, p2 = 0.1, 0.9 / (T // 2 - 1)
        zero = values[marked[:, 0], 0] == 0.0
        sd = np.sqrt(p1 / (p1 + p2) * (1 - p1 / (p1 + p2)) / zero.size)
        assert abs(zero.mean() - p1 / (p1 + p2)) < 4 * sd


def test_adding_hochreiter_variable_lengths_and_solved():
    d = gen.adding_problem(3, batch_size=500, length=100, variable_length=True)
    assert d.inputs.shape[1] == d.lengths.max() and d.lengths.dtype == np.int32
    assert d.lengths.min() == 100 and d.lengths.max() == 110  # [T, T + T/10]
    pad = np.arange(d.inputs.shape[1]) >= d.lengths[:, None]
    assert (d.inputs[pad] == 0).all()
    last = d.inputs[np.arange(500), d.lengths - 1, 1]
    assert set(np.unique(last)) <= {-1.0, 1.0}  # the last valid pair is an end marker
    assert gen.fraction_solved(d.targets + 0.03, d.targets) == 1.0
    assert gen.fraction_solved(d.targets - 0.05, d.targets) == 0.0


def test_adding_le_targets_and_constant_baseline():
    T = 12
    d = gen.adding_problem_le(np.random.default_rng(0), batch_size=200_000, length=T)
    assert d.inputs.shape == (200_000, T, 2) and d.loss == "mse"
    values, mask = d.inputs[..., 0], d.inputs[..., 1]
    assert values.min() >= 0 and values.max() <= 1
    assert (mask[:, : T // 2].sum(1) == 1).all() and (mask[:, T // 2 :].sum(1) == 1).all()
    np.testing.assert_allclose(d.targets, (values * mask).sum(1), atol=1e-6)
    # The best constant predictor (the mean) has MSE Var(X1 + X2) = 1/6 (Arjovsky et al. 2016).
    t = d.targets.astype(np.float64)
    assert abs(np.mean((t - t.mean()) ** 2) - 1 / 6) < 3e-3
    assert abs(np.mean((t - 1.0) ** 2) - gen.ADDING_LE_BASELINE_MSE) < 3e-3


# Copy memory (Arjovsky et al. 2016) --------------------------------------------------------------


@pytest.mark.parametrize("T", [1, 5, 50])
def test_copy_memory_structure(T):
    d = gen.copy_memory(np.random.default_rng(T), batch_size=64, length=T)
    assert d.inputs.shape == d.targets.shape == (64, T + 20) and d.inputs.dtype == np.int32
    assert d.loss == "cross_entropy_per_step" and d.num_classes == 10
    x, y = d.inputs, d.targets
    assert x[:, :10].max() <= 7
    assert (x[:, 10 : 10 + T - 1] == 8).all() and (x[:, 9 + T] == 9).all()
    assert (x[:, T + 10 :] == 8).all()
    assert (y[:, : T + 10] == 8).all() and (y[:, T + 10 :] == x[:, :10]).all()
    one_hot = gen.copy_memory(np.random.default_rng(T), 64, T, one_hot=True).inputs
    assert one_hot.shape == (64, T + 20, 10) and (one_hot.argmax(-1) == x).all()


def cross_entropy(probs, targets):
    """Mean over examples and steps of -log p(target); probs (T, C) per position."""
    p = probs[np.arange(targets.shape[1]), targets]  # (B, T)
    return float(np.mean(-np.log(p)))


@pytest.mark.parametrize("T", [10, 100])
def test_copy_memory_memoryless_baseline(T):
    baseline = 10 * math.log(8) / (T + 20)
    assert gen.copy_memory_baseline(T) == pytest.approx(baseline)
    test = gen.copy_memory(1, batch_size=20_000, length=T).targets
    # The strategy in the paper: blank for T + 10 steps, then uniform over the 8 symbols.
    probs = np.zeros((T + 20, 10))
    probs[: T + 10, 8] = 1.0
    probs[T + 10 :, :8] = 1 / 8
    assert cross_entropy(probs, test) == pytest.approx(baseline, rel=1e-12)
    # The best memoryless predictor estimated from data (per-position frequencies) is no better.
    train = gen.copy_memory(2, batch_size=20_000, length=T).targets
    freq = np.stack([np.bincount(train[:, t], minlength=10) for t in range(T + 20)]) + 1e-9
    learned = cross_entropy(freq / freq.sum(1, keepdims=True), test)
    assert learned == pytest.approx(baseline, rel=2e-3)


# Temporal order (Hochreiter & Schmidhuber 1997, experiment 6a) -----------------------------------


@pytest.mark.parametrize("variable_length", [False, True])
def test_temporal_order_hochreiter(variable_length):
    T, B = 100, 4000
    d = gen.temporal_order(0, B, T, variable_length=variable_length)
    assert d.loss == "cross_entropy" and d.num_classes == 4 and d.targets.dtype == np.int32
    lengths = d.lengths if variable_length else np.full(B, T)
    assert d.inputs.shape == (B, lengths.max(), 8)
    if variable_length:
        assert lengths.min() == T and lengths.max() == T + 10
    valid = np.arange(d.inputs.shape[1]) < lengths[:, None]
    assert (d.inputs.sum(-1) == valid).all()  # one-hot where valid, zero padding
    sym = np.where(valid, d.inputs.argmax(-1), -1)
    assert (sym[:, 0] == 7).all() and (sym[np.arange(B), lengths - 1] == 6).all()  # E ... B
    inner = valid.copy()
    inner[:, 0] = inner[np.arange(B), lengths - 1] = False
    assert not np.isin(sym[inner], [6, 7]).any()  # markers only at the ends
    xy = np.nonzero(np.isin(sym, [4, 5]))
    pos = xy[1].reshape(B, 2)
    assert pos[:, 0].min() == 10 and pos[:, 0].max() == 20  # t1 in [10, 20]
    assert pos[:, 1].min() == 50 and pos[:, 1].max() == 60  # t2 in [50, 60]
    first, second = sym[np.arange(B), pos[:, 0]], sym[np.arange(B), pos[:, 1]]
    names = {(4, 4): "Q", (4, 5): "R", (5, 4): "S", (5, 5): "U"}
    expect = [gen.TEMPORAL_ORDER_CLASSES.index(names[f, s]) for f, s in zip(first, second)]
    np.testing.assert_array_equal(d.targets, expect)
    assert np.bincount(d.targets).min() > 0.2 * B  # the four classes are balanced


def test_temporal_order_pascanu_form():
    T, B = 50, 2000
    d = gen.temporal_order(np.random.default_rng(1), B, T, form="pascanu")
    assert d.inputs.shape == (B, T, 6) and (d.inputs.sum(-1) == 1).all() and d.lengths is None
    sym = d.inputs.argmax(-1)
    pos = np.nonzero(sym < 2)[1].reshape(B, 2)
    assert pos[:, 0].min() == 5 and pos[:, 0].max() == 9  # [T/10, 2T/10)
    assert pos[:, 1].min() == 25 and pos[:, 1].max() == 29  # [T/2, 6T/10)
    v = sym[np.arange(B)[:, None], pos]
    np.testing.assert_array_equal(d.targets, v[:, 0] + 2 * v[:, 1])


def test_generators_are_deterministic_in_the_seed():
    for make in (
        lambda r: gen.adding_problem(r, 8, 20, variable_length=True),
        lambda r: gen.adding_problem_le(r, 8, 20),
        lambda r: gen.copy_memory(r, 8, 20),
        lambda r: gen.temporal_order(r, 8, 20),
    ):
        a, b, c = make(7), make(np.random.default_rng(7)), make(8)
        np.testing.assert_array_equal(a.inputs, b.inputs)
        np.testing.assert_array_equal(a.targets, b.targets)
        assert not np.array_equal(a.inputs, c.inputs)


def test_bad_arguments_name_the_value():
    with pytest.raises(UserError, match="length=3"):
        gen.adding_problem(0, 4, 3)
    with pytest.raises(UserError, match="batch_size=0"):
        gen.copy_memory(0, 0, 10)
    with pytest.raises(UserError, match="length=9"):
        gen.temporal_order(0, 4, 9)
    with pytest.raises(UserError, match="form='martens'"):
        gen.temporal_order(0, 4, 20, form="martens")
    with pytest.raises(UserError, match="split='valid'"):
        gen.sequential_digits("valid")


# Sequential digits (scikit-learn's 8x8 digits) ---------------------------------------------------


def test_sequential_digits_splits_and_targets():
    from sklearn.datasets import load_digits

    ref = load_digits()
    train, test = gen.sequential_digits("train"), gen.sequential_digits("test")
    assert train.inputs.shape == (1500, 64, 1) and test.inputs.shape == (297, 64, 1)
    assert train.inputs.dtype == np.float32 and train.targets.dtype == np.int32
    assert train.loss == "cross_entropy" and train.num_classes == 10
    assert train.inputs.min() == 0.0 and train.inputs.max() == 1.0
    # Together the splits are the whole data set, each image row-major with its own label.
    both = np.concatenate([train.inputs[..., 0], test.inputs[..., 0]]) * 16
    labels = np.concatenate([train.targets, test.targets])
    ref_rows = ref.images.reshape(-1, 64)
    key = lambda a, y: np.lexsort(np.c_[a, y].T)  # noqa: E731
    i, j = key(both, labels), key(ref_rows, ref.target)
    np.testing.assert_allclose(both[i], ref_rows[j], atol=1e-5)
    np.testing.assert_array_equal(labels[i], ref.target[j])


def test_permuted_digits_is_a_fixed_permutation():
    plain = gen.sequential_digits("test").inputs
    perm = gen.digits_permutation(3)
    assert sorted(perm) == list(range(64)) and (perm != np.arange(64)).any()
    permuted = gen.sequential_digits("test", permute=True, permutation_seed=3).inputs
    np.testing.assert_array_equal(permuted[:, :, 0], plain[:, perm, 0])
    again = gen.sequential_digits("test", permute=True, permutation_seed=3).inputs
    np.testing.assert_array_equal(again, permuted)
    assert not np.array_equal(gen.digits_permutation(4), perm)


def test_missing_scikit_learn_is_a_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import raises ImportError
    with pytest.raises(UserError, match=r"pip install 'seqjax\[tasks\]'"):
        gen.sequential_digits()
