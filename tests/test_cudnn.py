"""cuDNN's LSTM (``seqjax.cudnn``) and ``unroll(..., backend="cudnn")``, checked on CPU.

The flat layout that :func:`seqjax.cudnn.pack` writes is read back by JAX's own code
(``jax.experimental.rnn.unpack_lstm_weights`` inside the ``"reference"`` kernel,
``jax.experimental.rnn.lstm_ref``), and the result is compared with a Python loop over
``seqjax.cells.lstm``'s ``step``, layer by layer: the packing, the LSTM cell's mapping
(``cell.fused.cudnn_lstm``) and the kernel are three pieces of code written apart.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqjax
from seqjax import cudnn
from seqjax.cells.lstm import LSTMCarry
from seqjax.errors import UserError

B, T, I, H, L = 3, 7, 5, 6, 2


def _stack():
    keys = jax.random.split(jax.random.key(0), 8)
    cell = seqjax.cells.lstm(H)
    layers = [cell.init(keys[0], I), cell.init(keys[1], H)]
    # a non-zero bias, so that a bias mapped into the wrong slot shows
    layers = [
        {**p, "b": p["b"] + 0.1 * jax.random.normal(keys[2 + i], p["b"].shape)}
        for i, p in enumerate(layers)
    ]
    xs = jax.random.normal(keys[4], (B, T, I))
    carries = [
        LSTMCarry(*(0.5 * jax.random.normal(k, (2, B, H)))) for k in jax.random.split(keys[5], L)
    ]
    return cell, layers, xs, carries


def _python_loop(cell, layers, xs, carries, lengths):
    """Each layer stepped in Python; past a sequence's end the carry is held, the output zero."""
    ys = xs
    finals = []
    for p, c in zip(layers, carries):
        out = []
        for t in range(T):
            new, y = cell.step(p, c, ys[:, t])
            keep = (t < lengths)[:, None]
            c = LSTMCarry(jnp.where(keep, new.h, c.h), jnp.where(keep, new.c, c.c))
            out.append(jnp.where(keep, y, 0.0))
        ys = jnp.stack(out, 1)
        finals.append(c)
    return ys, finals


@pytest.mark.parametrize("lengths", [None, [7, 4, 1]])
def test_reference_kernel_on_the_packed_layout_equals_stepping_the_cell(lengths):
    cell, layers, xs, carries = _stack()
    lengths = None if lengths is None else jnp.array(lengths, jnp.int32)
    h0 = jnp.stack([c.h for c in carries])
    c0 = jnp.stack([c.c for c in carries])
    packed = [cell.fused.cudnn_lstm(p) for p in layers]
    ys, h, c = cudnn.lstm(packed, xs, h0, c0, lengths, kernel="reference")
    full = jnp.full((B,), T) if lengths is None else lengths
    ys_ref, finals = _python_loop(cell, layers, xs, carries, full)
    np.testing.assert_allclose(ys, ys_ref, rtol=1e-5, atol=1e-5)
    for i, f in enumerate(finals):
        np.testing.assert_allclose(h[i], f.h, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(c[i], f.c, rtol=1e-5, atol=1e-5)


def test_pack_unpack_round_trip_and_size():
    from jax.experimental import rnn

    cell, layers, _, _ = _stack()
    packed = [cell.fused.cudnn_lstm(p) for p in layers]
    flat = cudnn.pack(packed)
    assert flat.shape == (rnn.get_num_params_in_lstm(I, H, L, False),)
    for a, b in zip(cudnn.unpack(flat, I, H, L), packed, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_cudnn_module_is_a_leaf():
    """``seqjax.cudnn`` imports no other seqjax module (``unroll`` is the one dispatcher)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(cudnn))
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert imported and not [m for m in imported if m and m.startswith("seqjax")]
    assert not hasattr(cudnn, "BACKENDS")


def test_bad_layers_and_kernel_are_named():
    cell, layers, xs, carries = _stack()
    h0 = jnp.stack([c.h for c in carries])
    packed = [cell.fused.cudnn_lstm(p) for p in layers]
    with pytest.raises(ValueError, match=r"^kernel='cuda': choose one of cudnn, reference"):
        cudnn.lstm(packed, xs, h0, h0, kernel="cuda")
    with pytest.raises(ValueError, match=r"layers\[1\]: shapes"):
        cudnn.lstm([packed[0], packed[0]], xs, h0, h0, kernel="reference")


@pytest.mark.parametrize("reverse", [False, True])
def test_unroll_backend_cudnn_plumbing_through_the_reference(monkeypatch, reverse):
    """``seqjax.unroll(..., backend="cudnn")`` with cuDNN's kernel replaced by JAX's pure-JAX
    reference of it (no GPU here): same outputs and final carry as the sequential scan, with
    lengths, reverse and an initial carry."""
    from jax.experimental import rnn

    def lstm_via_ref(x, h0, c0, weights, seq_lengths, input_size, hidden_size, num_layers, *a):
        w = rnn.unpack_lstm_weights(weights, input_size, hidden_size, num_layers, False)
        return rnn.lstm_ref(x, h0, c0, *w, seq_lengths, input_size, hidden_size, num_layers, *a)

    monkeypatch.setattr(cudnn, "available", lambda: True)
    monkeypatch.setattr(rnn, "lstm", lstm_via_ref)
    cell, layers, xs, carries = _stack()
    kw = dict(lengths=jnp.array([7, 4, 1]), reverse=reverse)
    ys, c = seqjax.unroll(cell, layers[0], xs, carries[0], backend="cudnn", **kw)
    ys_ref, c_ref = seqjax.unroll(cell, layers[0], xs, carries[0], backend="sequential", **kw)
    np.testing.assert_allclose(ys, ys_ref, rtol=1e-5, atol=1e-5)
    assert isinstance(c, LSTMCarry)
    np.testing.assert_allclose(c.h, c_ref.h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(c.c, c_ref.c, rtol=1e-5, atol=1e-5)
    ys0, _ = seqjax.unroll(cell, layers[0], xs, backend="cudnn")  # zero initial carry
    np.testing.assert_allclose(ys0, seqjax.unroll(cell, layers[0], xs)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "make, kw, match",
    [
        (lambda: seqjax.cells.gru(H), {}, "cuDNN runs only LSTM cells"),
        (lambda: seqjax.cells.mingru(H), {}, "has no fused form"),
        (lambda: seqjax.cells.lstm(H), {"resets": jnp.zeros((B, T), bool)}, "not take resets"),
    ],
)
def test_unroll_backend_cudnn_refuses_what_it_cannot_run(make, kw, match):
    cell = make()
    params = cell.init(jax.random.key(0), I)
    with pytest.raises(ValueError, match=f"^backend='cudnn': .*{match}"):
        seqjax.unroll(cell, params, jnp.ones((B, T, I)), backend="cudnn", **kw)


@pytest.mark.skipif(cudnn.available(), reason="checks the error on a machine without a GPU")
def test_unroll_backend_cudnn_without_gpu_is_a_clear_error():
    cell, layers, xs, _ = _stack()
    with pytest.raises(UserError, match=r"^backend='cudnn': needs an NVIDIA GPU"):
        seqjax.unroll(cell, layers[0], xs, backend="cudnn")
