"""The optimizer chain against NumPy formulas: clipping, schedules, weight decay, NaN skips."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from seqjax.train import optim


def cfg(**kw):
    base = dict(
        name="sgd",
        learning_rate=1.0,
        momentum=0.0,
        nesterov=False,
        weight_decay=0.0,
        clip="none",
        clip_value=1.0,
        schedule="constant",
        warmup_steps=0,
        decay_factor=0.5,
        decay_every=10,
        decay_start=0,
    )
    return {**base, **kw}


def tree(seed, scale):
    rng = np.random.default_rng(seed)
    return {
        "w": (scale * rng.normal(size=(4, 3))).astype(np.float32),
        "b": (scale * rng.normal(size=(3,))).astype(np.float32),
    }


def one_update(c, grads, params=None):
    """Plain SGD with learning rate 1: the update is minus the processed gradient."""
    params = params if params is not None else jax.tree.map(jnp.ones_like, grads)
    tx = optim.build(c, num_steps=100)
    updates, state = tx.update(jax.tree.map(jnp.asarray, grads), tx.init(params), params)
    return jax.tree.map(np.asarray, updates), optim.stats(state)


@pytest.mark.parametrize("scale", [0.01, 10.0])
def test_global_norm_clipping_matches_numpy(scale):
    g = tree(0, scale)
    c = 1.5
    norm = math.sqrt(sum(float(np.sum(np.square(v, dtype=np.float64))) for v in g.values()))
    expected = {k: v * min(1.0, c / norm) for k, v in g.items()}  # Pascanu et al. 2013, eq. 7
    updates, info = one_update(cfg(clip="global_norm", clip_value=c), g)
    for k in g:
        np.testing.assert_allclose(-updates[k], expected[k], rtol=1e-5, atol=1e-7)
    assert bool(info["clipped"]) == (norm > c)


def test_value_clipping_matches_numpy():
    g = tree(1, 2.0)
    updates, info = one_update(cfg(clip="value", clip_value=0.5), g)
    for k in g:
        np.testing.assert_array_equal(-updates[k], np.clip(g[k], -0.5, 0.5))
    assert bool(info["clipped"])


def test_adaptive_clipping_matches_unitwise_formula():
    g, p = tree(2, 3.0), tree(3, 1.0)
    lam, eps = 0.1, 1e-3

    def unit_norm(x):  # Brock et al. 2021: per output unit (column) for matrices
        return (
            np.sqrt(np.sum(x**2, axis=0, keepdims=True)) if x.ndim == 2 else np.sqrt(np.sum(x**2))
        )

    expected = {}
    for k in g:
        gn, pn = unit_norm(g[k]), unit_norm(p[k])
        max_norm = lam * np.maximum(pn, eps)
        expected[k] = np.where(gn < max_norm, g[k], g[k] * max_norm / gn)
    updates, info = one_update(
        cfg(clip="adaptive", clip_value=lam), g, jax.tree.map(jnp.asarray, p)
    )
    for k in g:
        np.testing.assert_allclose(-updates[k], expected[k], rtol=1e-5)
    assert bool(info["clipped"])


def test_no_clipping_never_flags():
    updates, info = one_update(cfg(clip="none"), tree(4, 100.0))
    assert not bool(info["clipped"])


def test_coupled_weight_decay_and_momentum():
    g, p = tree(5, 1.0), tree(6, 1.0)
    c = cfg(weight_decay=0.1, momentum=0.9, learning_rate=0.5)
    tx = optim.build(c, num_steps=10)
    params = jax.tree.map(jnp.asarray, p)
    state = tx.init(params)
    velocity = {k: np.zeros_like(v) for k, v in p.items()}
    for _ in range(3):  # heavy-ball SGD on g + wd * w (Sutskever et al. 2013, eq. 1-2)
        updates, state = tx.update(jax.tree.map(jnp.asarray, g), state, params)
        params = jax.tree.map(lambda a, u: a + u, params, updates)
        for k in p:
            velocity[k] = 0.9 * velocity[k] + (g[k] + 0.1 * p[k])
            p[k] = p[k] - 0.5 * velocity[k]
    for k in p:
        np.testing.assert_allclose(np.asarray(params[k]), p[k], rtol=1e-5, atol=1e-6)


def lr_at(c, step, num_steps=100):
    return float(optim.schedule(c, num_steps)(step))


def test_constant_schedule_with_warmup():
    c = cfg(learning_rate=0.2, warmup_steps=10)
    assert [lr_at(c, s) for s in (0, 5, 10, 50)] == pytest.approx([0.0, 0.1, 0.2, 0.2])


def test_cosine_schedule_matches_formula():
    lr, warm, n = 0.3, 20, 120
    c = cfg(learning_rate=lr, schedule="cosine", warmup_steps=warm)
    for s in (0, 10, 20, 45, 70, 119, 120):
        if s < warm:
            expected = lr * s / warm
        else:
            expected = lr * 0.5 * (1 + math.cos(math.pi * (s - warm) / (n - warm)))
        assert lr_at(c, s, n) == pytest.approx(expected, abs=1e-6), s


def test_step_schedule_is_zaremba_style():
    # Zaremba et al. 2014 (medium model): lr 1 for 6 epochs, then x 1/1.2 per epoch.
    epoch = 13
    c = cfg(
        schedule="step",
        learning_rate=1.0,
        decay_factor=1 / 1.2,
        decay_every=epoch,
        decay_start=5 * epoch,
    )
    for s in (0, 6 * epoch - 1, 6 * epoch, 7 * epoch + 3, 10 * epoch):
        expected = (1 / 1.2) ** max(0, (s - 5 * epoch) // epoch)
        assert lr_at(c, s) == pytest.approx(expected, rel=1e-6), s


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_learning_rate_is_reported(name):
    c = cfg(name=name, learning_rate=0.25, schedule="step", decay_every=1, decay_factor=0.5)
    tx = optim.build(c, num_steps=10)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    seen = []
    for _ in range(3):
        _, state = tx.update({"w": jnp.ones(3)}, state, params)
        seen.append(float(optim.stats(state)["learning_rate"]))
    assert seen == pytest.approx([0.25, 0.125, 0.0625])


def test_nonfinite_gradients_are_skipped_and_counted():
    tx = optim.build(cfg(clip="global_norm"), num_steps=10)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    updates, state = tx.update({"w": jnp.array([1.0, jnp.nan, 0.0])}, state, params)
    info = optim.stats(state)
    np.testing.assert_array_equal(np.asarray(updates["w"]), np.zeros(3))
    assert bool(info["nonfinite"]) and int(info["skipped"]) == 1
    updates, state = tx.update({"w": jnp.ones(3)}, state, params)
    info = optim.stats(state)
    assert not bool(info["nonfinite"]) and int(info["skipped"]) == 1
    assert float(jnp.abs(updates["w"]).sum()) > 0


def test_weight_average_matches_a_numpy_loop():
    # Heavy-ball SGD; the average follows w_avg <- b_n w_avg + (1 - b_n) w_n with
    # b_n = min(decay, (1 + n) / (10 + n)), starting from the initial weights.
    decay, lr, mu = 0.9, 0.3, 0.9
    p = tree(7, 1.0)
    tx = optim.build(cfg(ema_decay=decay, learning_rate=lr, momentum=mu), num_steps=50)
    params = jax.tree.map(jnp.asarray, p)
    state = tx.init(params)
    avg = {k: v.astype(np.float64) for k, v in p.items()}
    velocity = {k: np.zeros_like(v) for k, v in p.items()}
    for n in range(25):
        g = tree(100 + n, 1.0)
        updates, state = tx.update(jax.tree.map(jnp.asarray, g), state, params)
        params = optax.apply_updates(params, updates)
        beta = min(decay, (1 + n) / (10 + n))
        for k in p:
            velocity[k] = mu * velocity[k] + g[k]
            p[k] = p[k] - lr * velocity[k]
            avg[k] = beta * avg[k] + (1 - beta) * p[k]
    got = optim.averaged(state, params)
    for k in p:
        np.testing.assert_allclose(np.asarray(params[k]), p[k], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(got[k]), avg[k], rtol=1e-5, atol=1e-5)
        assert got[k].dtype == params[k].dtype
    # The average lags the weights: it is not just a copy of them.
    assert not np.allclose(np.asarray(got["w"]), np.asarray(params["w"]), atol=1e-3)


def test_weight_average_skips_nonfinite_steps_and_is_off_by_default():
    tx = optim.build(cfg(ema_decay=0.5), num_steps=10)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    _, state = tx.update({"w": jnp.ones(3)}, state, params)
    before = np.asarray(optim.averaged(state, params)["w"])
    _, state = tx.update({"w": jnp.array([1.0, jnp.nan, 0.0])}, state, params)
    np.testing.assert_array_equal(np.asarray(optim.averaged(state, params)["w"]), before)
    assert int(optim.stats(state)["skipped"]) == 1
    plain = optim.build(cfg(), num_steps=10)  # no ema_decay: the weights themselves
    assert optim.averaged(plain.init(params), params) is params
    with pytest.raises(ValueError, match="ema_decay=1.0"):
        optim.average_params(1.0)
