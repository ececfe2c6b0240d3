"""The cuDNN LSTM path (seqjax.cudnn): seqjax's LSTM parameters mapped into cuDNN's flat layout,
checked on CPU against JAX's own pure-JAX reference of the cuDNN LSTM
(``jax.experimental.rnn.lstm_ref``), which reads that layout independently."""

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


@pytest.mark.parametrize("lengths", [None, [7, 4, 1]])
def test_reference_of_cudnn_layout_matches_seqjax_unroll(lengths):
    cell, layers, xs, carries = _stack()
    lengths = None if lengths is None else jnp.array(lengths, jnp.int32)
    ys_ref, finals_ref = cudnn.lstm_stack(
        layers, xs, lengths=lengths, carries=carries, backend="reference"
    )
    # independent: seqjax.unroll layer by layer, written out here
    ys, finals = xs, []
    for p, c0 in zip(layers, carries):
        ys, c = seqjax.unroll(cell, p, ys, c0, lengths=lengths)
        finals.append(c)
    np.testing.assert_allclose(ys_ref, ys, rtol=1e-5, atol=1e-5)
    for a, b in zip(finals_ref, finals, strict=True):
        np.testing.assert_allclose(a.h, b.h, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(a.c, b.c, rtol=1e-5, atol=1e-5)
    scan_ys, _ = cudnn.lstm_stack(layers, xs, lengths=lengths, carries=carries, backend="scan")
    np.testing.assert_allclose(scan_ys, ys, rtol=1e-6, atol=1e-6)


def test_pack_unpack_round_trip_and_size():
    from jax.experimental import rnn

    _, layers, _, _ = _stack()
    flat = cudnn.pack_lstm(layers)
    assert flat.shape == (rnn.get_num_params_in_lstm(I, H, L, False),)
    for a, b in zip(cudnn.unpack_lstm(flat, I, H, L), layers, strict=True):
        for k in ("w_x", "w_h", "b"):
            np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.skipif(cudnn.available(), reason="checks the error on a machine without a GPU")
def test_cudnn_without_gpu_is_a_clear_error_and_auto_never_picks_it():
    _, layers, xs, _ = _stack()
    with pytest.raises(UserError, match=r"^backend='cudnn': needs an NVIDIA GPU"):
        cudnn.lstm_stack(layers, xs, backend="cudnn")
    ys, _ = cudnn.lstm_stack(layers, xs, backend="auto")  # scan here
    ys_scan, _ = cudnn.lstm_stack(layers, xs, backend="scan")
    np.testing.assert_array_equal(ys, ys_scan)
    with pytest.raises(UserError, match=r"^backend='cuda': choose one of"):
        cudnn.lstm_stack(layers, xs, backend="cuda")


@pytest.mark.parametrize("reverse", [False, True])
def test_unroll_backend_cudnn_plumbing_through_the_reference(monkeypatch, reverse):
    """``seqjax.unroll(..., backend="cudnn")`` with cuDNN's kernel replaced by JAX's pure-JAX
    reference of it (no GPU here): same outputs and final carry as the scan, with lengths,
    reverse and an initial carry."""
    from jax.experimental import rnn

    def lstm_via_ref(
        x, h0, c0, weights, seq_lengths, input_size, hidden_size, num_layers, dropout, bidirectional
    ):
        w = rnn.unpack_lstm_weights(weights, input_size, hidden_size, num_layers, bidirectional)
        return rnn.lstm_ref(
            x, h0, c0, *w, seq_lengths, input_size, hidden_size, num_layers, dropout, bidirectional
        )

    monkeypatch.setattr(cudnn, "available", lambda: True)
    monkeypatch.setattr(rnn, "lstm", lstm_via_ref)
    cell, layers, xs, carries = _stack()
    lengths = jnp.array([7, 4, 1])
    kw = dict(lengths=lengths, reverse=reverse)
    ys, c = seqjax.unroll(cell, layers[0], xs, carries[0], backend="cudnn", **kw)
    ys_ref, c_ref = seqjax.unroll(cell, layers[0], xs, carries[0], backend="sequential", **kw)
    np.testing.assert_allclose(ys, ys_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(c.h, c_ref.h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(c.c, c_ref.c, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="backend='cudnn': runs only the LSTM"):
        gru = seqjax.cells.gru(H)
        seqjax.unroll(gru, gru.init(jax.random.key(0), I), xs, backend="cudnn")
    with pytest.raises(ValueError, match="does not take resets"):
        seqjax.unroll(cell, layers[0], xs, resets=jnp.zeros((B, T), bool), backend="cudnn")


@pytest.mark.skipif(cudnn.available(), reason="checks the error on a machine without a GPU")
def test_unroll_backend_cudnn_without_gpu_is_a_clear_error():
    cell, layers, xs, _ = _stack()
    with pytest.raises(UserError, match=r"^backend='cudnn': needs an NVIDIA GPU"):
        seqjax.unroll(cell, layers[0], xs, backend="cudnn")
