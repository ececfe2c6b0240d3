"""Mixed precision (seqjax.models.precision, ``model.compute_dtype``): float32 parameters, loss and
gradients, bfloat16 compute; checked against the float32 model and by training the smoke config."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqjax import tasks
from seqjax.errors import UserError
from seqjax.train import config as config_lib
from seqjax.train import loop
from seqjax.train.cmdline import load_config_file

CONFIG = str(Path(__file__).resolve().parent.parent / "configs" / "synthetic" / "adding.py")


def smoke(**overrides):
    c = load_config_file(f"{CONFIG}:smoke")
    for key, value in overrides.items():
        parent, _, leaf = key.rpartition(".")
        config_lib.lookup(c, parent)[leaf] = value
    return c


def _loss_and_grads(config):
    task = tasks.build(config)
    params = task.init(jax.random.key(0))
    batch = task.batch(0)
    fn = lambda p: task.loss(p, (), batch, jax.random.key(1), True)  # noqa: E731
    (loss, (_, metrics)), grads = jax.jit(jax.value_and_grad(fn, has_aux=True))(params)
    return fn, params, loss, metrics, grads


def test_bfloat16_compute_keeps_float32_loss_and_gradients():
    # two LSTM layers with dropout between them: every dtype-sensitive path of the model
    c = {"model.compute_dtype": "bfloat16", "model.num_layers": 2}
    fn, params, loss, metrics, grads = _loss_and_grads(smoke(**c, **{"model.dropout": 0.25}))
    assert loss.dtype == jnp.float32 and metrics["mse"].dtype == jnp.float32
    for g, p in zip(jax.tree.leaves(grads), jax.tree.leaves(params), strict=True):
        assert g.dtype == p.dtype == jnp.float32
        assert np.all(np.isfinite(np.asarray(g)))
    # the model really computes in bfloat16: its matmuls take bfloat16 operands
    jaxpr = str(jax.make_jaxpr(fn)(params))
    assert "dot_general" in jaxpr and "bf16[" in jaxpr

    # ... and agrees with the float32 model to bfloat16's precision (8 bits of mantissa)
    c32 = {**c, "model.compute_dtype": "float32"}
    _, _, loss32, _, grads32 = _loss_and_grads(smoke(**c32, **{"model.dropout": 0.25}))
    assert float(loss) == pytest.approx(float(loss32), rel=3e-2)
    g, g32 = (np.concatenate([np.ravel(x) for x in jax.tree.leaves(t)]) for t in (grads, grads32))
    cos = float(g @ g32 / np.linalg.norm(g) / np.linalg.norm(g32))
    assert cos > 0.99


def test_bfloat16_trains_the_smoke_config(tmp_path):
    c = smoke(**{"model.compute_dtype": "bfloat16", "train.num_steps": 30})
    result = loop.train_and_evaluate(c, tmp_path)
    # the adding problem's trivial predictor (the constant mean) scores Var(y) = 1/6
    assert np.isfinite(result["validation"]["mse"])
    first = tasks.build(c).evaluate(tasks.build(c).init(jax.random.key(0)), "validation")["mse"]
    assert result["validation"]["mse"] < first


def test_bad_compute_dtype_names_the_key():
    with pytest.raises(UserError, match=r"^model\.compute_dtype='float8': choose one of"):
        config_lib.validate(smoke(**{"model.compute_dtype": "float8"}))
