r"""The contenders of the benchmarks: one training (or inference) step per library, same weights.

One training step = the recurrent layer over ``xs (B, T, I)`` (``I = H``), a linear readout to
``CLASSES = 256`` classes at every step, mean softmax cross-entropy, backward, and an Adam update
(optax for JAX, ``torch.optim.Adam`` for PyTorch), float32 unless the contender says otherwise.
Inference = the same forward pass and loss, no gradient.

Every contender starts from the same weights, drawn once in PyTorch's layout (:func:`weights`:
``W_ih (G H, I)``, ``W_hh (G H, H)``, ``b_ih``, ``b_hh``, gate orders ``i, f, g, o`` and
``r, z, n``, PyTorch's ``U(-1/sqrt(H), 1/sqrt(H))``) and mapped into each library's parameters,
so the first step's loss agrees across contenders (``tests/test_bench.py`` checks it).

:func:`build` returns ``run(n) -> float``: ``n`` steps, blocking until the last one is done,
returning the last step's loss (a training step returns the loss before its update, so the first
call's value is the loss of the initial weights).

Matmul FLOPs (:func:`flops`), with ``G`` the gate blocks (LSTM 4, GRU 3, Elman 1) and ``V`` the
classes: a forward pass does

.. math::
    F = 2BT\,(I\,GH + H\,GH + H\,V)

(input projection, recurrent matmul, readout). Its backward does two matmuls of the same size for
each (the gradients of both operands) except the input projection, whose data ``xs`` needs no
gradient: a training step counts :math:`3F - 2BT\,I\,GH`; inference counts :math:`F`. Elementwise
work (gates, softmax, Adam) is not counted. The GRU's ``reset_after`` form has the same matmuls.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np

CLASSES = 256
GATES = {"lstm": 4, "gru": 3, "elman": 1}
FLAX_CELLS = {
    "lstm": ("LSTMCell", "OptimizedLSTMCell"),
    "gru": ("GRUCell",),
    "elman": ("SimpleCell",),
}


def flops(cell: str, B: int, T: int, H: int, mode: str) -> float:
    """Matmul FLOPs of one step (see the module docstring); ``I = H``."""
    G, I, V = GATES[cell], H, CLASSES
    projection, recurrent, readout = 2 * B * T * I * G * H, 2 * B * T * H * G * H, 2 * B * T * H * V
    forward = projection + recurrent + readout
    return float(forward if mode == "infer" else 3 * forward - projection)


def weights(cell: str, B: int, T: int, H: int, seed: int = 0) -> dict:
    """Weights in PyTorch's layout, inputs and labels, as float32/int NumPy arrays."""
    rng = np.random.default_rng(seed)
    G, k = GATES[cell], 1 / np.sqrt(H)
    u = lambda *shape: rng.uniform(-k, k, shape).astype(np.float32)  # noqa: E731
    return {
        "W_ih": u(G * H, H),
        "W_hh": u(G * H, H),
        "b_ih": u(G * H),
        "b_hh": u(G * H),
        "W_out": u(CLASSES, H),
        "b_out": u(CLASSES),
        "xs": rng.standard_normal((B, T, H), dtype=np.float32),
        "labels": rng.integers(0, CLASSES, (B, T)).astype(np.int32),
    }


# JAX ---------------------------------------------------------------------------------------------


def seqjax_params(cell: str, w: dict) -> dict:
    """PyTorch's weights as seqjax's ``lstm`` / ``gru`` (``reset_after``) / ``elman`` params."""
    import jax.numpy as jnp

    H = w["W_hh"].shape[1]
    p = {"w_x": w["W_ih"].T, "w_h": w["W_hh"].T, "b": w["b_ih"] + w["b_hh"]}
    if cell == "gru":  # b_hn stays inside the reset: n = tanh(x W_in + b_in + r (h W_hn + b_hn))
        p["b"] = w["b_ih"] + np.concatenate([w["b_hh"][: 2 * H], np.zeros(H, np.float32)])
        p["b_hn"] = w["b_hh"][2 * H :]
    return {k: jnp.asarray(v) for k, v in p.items()}


def flax_params(cell: str, w: dict, init: dict) -> dict:
    """PyTorch's weights in the tree of Flax's ``nn.RNN(<cell>)`` (``init`` from ``model.init``)."""
    import jax.numpy as jnp

    H = w["W_hh"].shape[1]
    blk = lambda a, i: a[i * H : (i + 1) * H]  # noqa: E731
    if cell == "lstm":  # input denses without bias, recurrent denses with b_ih + b_hh
        new = {}
        for i, g in enumerate("ifgo"):
            new["i" + g] = {"kernel": blk(w["W_ih"], i).T}
            new["h" + g] = {"kernel": blk(w["W_hh"], i).T, "bias": blk(w["b_ih"] + w["b_hh"], i)}
    elif cell == "gru":
        new = {"hn": {"kernel": blk(w["W_hh"], 2).T, "bias": blk(w["b_hh"], 2)}}
        for i, g in enumerate("rz"):
            bias = blk(w["b_ih"], i) + blk(w["b_hh"], i)
            new["i" + g] = {"kernel": blk(w["W_ih"], i).T, "bias": bias}
            new["h" + g] = {"kernel": blk(w["W_hh"], i).T}
        new["in"] = {"kernel": blk(w["W_ih"], 2).T, "bias": blk(w["b_ih"], 2)}
    else:
        new = {
            "i": {"kernel": w["W_ih"].T, "bias": w["b_ih"] + w["b_hh"]},
            "h": {"kernel": w["W_hh"].T},
        }
    got = {k: {n: jnp.asarray(v) for n, v in d.items()} for k, d in new.items()}
    want = {k: set(d) for k, d in init["cell"].items()}
    assert {k: set(d) for k, d in got.items()} == want, (got.keys(), want)
    return {"cell": got}


def _readout_loss(forward: Callable, compute_dtype=None) -> Callable:
    """``loss(params, xs, labels)``: ``forward``, the readout and the mean cross-entropy."""
    import jax.numpy as jnp
    import optax

    def loss_fn(p, xs, labels):
        if compute_dtype is not None:  # float32 master weights, low-precision compute, float32 loss
            from seqjax.models.precision import cast_floating

            p, xs = cast_floating(p, compute_dtype), xs.astype(compute_dtype)
        ys = forward(p["rnn"], xs)
        logits = (ys @ p["w_out"] + p["b_out"]).astype(jnp.float32)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    return loss_fn


def _jax_run(loss_fn: Callable, rnn_params, w: dict, mode: str) -> Callable:
    """``run(n)`` for a JAX ``loss_fn(params, xs, labels)`` with ``params = {"rnn": rnn_params,
    "w_out", "b_out"}``: jitted, with the Adam state donated between steps."""
    import jax
    import jax.numpy as jnp
    import optax

    params = {
        "rnn": rnn_params,
        "w_out": jnp.asarray(w["W_out"].T),
        "b_out": jnp.asarray(w["b_out"]),
    }
    xs, labels = jnp.asarray(w["xs"]), jnp.asarray(w["labels"])
    if mode == "infer":
        infer = jax.jit(loss_fn)

        def run_infer(n: int) -> float:
            for _ in range(n):
                loss = infer(params, xs, labels)
            return float(loss)

        return run_infer

    opt = optax.adam(1e-3)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def train_step(p, s, xs, labels):
        loss, g = jax.value_and_grad(loss_fn)(p, xs, labels)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    state = [params, opt.init(params)]

    def run(n: int) -> float:
        p, s = state
        for _ in range(n):
            p, s, loss = train_step(p, s, xs, labels)
        state[:] = [p, s]
        return float(loss)

    return run


SEQJAX = {  # contender -> keyword arguments of seqjax.unroll; "hoist": the input projection
    "seqjax": {},  # the default: what a user gets
    "seqjax sequential": {"backend": "sequential", "hoist": False},
    "seqjax sequential hoist": {"backend": "sequential", "hoist": True},
    "seqjax fused": {"backend": "fused", "hoist": False},
    "seqjax fused hoist": {"backend": "fused", "hoist": True},
    "seqjax unroll=2": {"backend": "sequential", "unroll": 2, "hoist": False},
    "seqjax unroll=4": {"backend": "sequential", "unroll": 4, "hoist": False},
    "seqjax bf16": {},  # the default path computing in bfloat16
    "seqjax cudnn": {"backend": "cudnn"},  # the LSTM only, NVIDIA GPUs only
}


def seqjax_cell(cell: str, H: int):
    import seqjax

    return seqjax.cells.get(cell, H)


def _seqjax(name: str, cell: str, w: dict, mode: str) -> Callable:
    import seqjax

    c = seqjax_cell(cell, w["W_hh"].shape[1])
    kw = SEQJAX[name]
    forward = lambda p, xs: seqjax.unroll(c, p, xs, **kw)[0]  # noqa: E731
    dtype = "bfloat16" if name.endswith("bf16") else None
    return _jax_run(_readout_loss(forward, dtype), seqjax_params(cell, w), w, mode)


def seqjax_any(cell: str, unroll_kw: dict, B: int, T: int, H: int, mode: str) -> Callable:
    """``run(n)`` for any registered seqjax cell (``seqjax.cells.names()``) with its own
    initialisation; readout, inputs and labels as in :func:`weights`."""
    import jax

    import seqjax

    c = seqjax.cells.get(cell, H)
    w = weights("elman", B, T, H)  # its readout, inputs and labels
    forward = lambda p, xs: seqjax.unroll(c, p, xs, **unroll_kw)[0]  # noqa: E731
    return _jax_run(_readout_loss(forward), c.init(jax.random.key(0), H), w, mode)


def _fused_vjp(cell: str, w: dict, mode: str) -> Callable:
    """The LSTM through seqjax's previous ``custom_vjp`` fused form (:mod:`fused_vjp`)."""
    import fused_vjp
    import jax.numpy as jnp

    H = w["W_hh"].shape[1]

    def forward(p, xs):
        zeros = jnp.zeros((xs.shape[0], H), xs.dtype)
        ys, _, _ = fused_vjp.lstm_sequence(p, jnp.swapaxes(xs, 0, 1), zeros, zeros)
        return jnp.swapaxes(ys, 0, 1)

    return _jax_run(_readout_loss(forward), seqjax_params(cell, w), w, mode)


def _fused_chains(cell: str, w: dict, mode: str, k: int = 2) -> Callable:
    """The fused form run as ``k`` independent recurrences over slices of the batch (XLA may run
    the ``k`` loops concurrently, one per core)."""
    import jax.numpy as jnp

    from seqjax.cells import fused

    c = seqjax_cell(cell, w["W_hh"].shape[1])
    B = w["xs"].shape[0]

    def forward(p, xs):
        xs_tm = jnp.swapaxes(xs, 0, 1)
        parts = [
            fused.sequence(c.fused, p, c.initial_carry(p, (B // k,)), xs_tm[:, i::k])[0]
            for i in range(k)
        ]  # strided slices: each chain gets every k-th sequence
        ys = jnp.stack(parts, 2).reshape(xs_tm.shape[0], B, -1)
        return jnp.swapaxes(ys, 0, 1)

    return _jax_run(_readout_loss(forward), seqjax_params(cell, w), w, mode)


def _time_major(w: dict) -> dict:
    tm = lambda a: np.ascontiguousarray(np.swapaxes(a, 0, 1))  # noqa: E731
    return {**w, "xs": tm(w["xs"]), "labels": tm(w["labels"])}


def _seqjax_time_major(cell: str, w: dict, mode: str) -> Callable:
    """The fused form on time-major data end to end: no transposes of inputs or outputs."""
    from seqjax.cells import fused

    c = seqjax_cell(cell, w["W_hh"].shape[1])
    B = w["xs"].shape[0]

    def forward(p, xs_tm):
        return fused.sequence(c.fused, p, c.initial_carry(p, (B,)), xs_tm)[0]

    return _jax_run(_readout_loss(forward), seqjax_params(cell, w), _time_major(w), mode)


def _scan_readout_in_loop(cell: str, w: dict, mode: str) -> Callable:
    """A ``lax.scan`` over ``cell.step`` whose body also does the readout and cross-entropy."""
    import jax
    import optax

    c = seqjax_cell(cell, w["W_hh"].shape[1])
    B, T = w["labels"].shape

    def loss_fn(p, xs, labels):
        def body(carry, scanned):
            x, y = scanned
            carry, h = c.step(p["rnn"], carry, x)
            logits = h @ p["w_out"] + p["b_out"]
            return carry, optax.softmax_cross_entropy_with_integer_labels(logits, y).sum()

        _, losses = jax.lax.scan(body, c.initial_carry(p["rnn"], (B,)), (xs, labels))
        return losses.sum() / (T * B)

    return _jax_run(loss_fn, seqjax_params(cell, w), _time_major(w), mode)


def _flax(cls: str, cell: str, w: dict, mode: str) -> Callable:
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    model = nn.RNN(getattr(nn, cls)(w["W_hh"].shape[1]))
    init = model.init(jax.random.key(0), jnp.asarray(w["xs"][:, :1]))["params"]
    params = flax_params(cell, w, init)
    forward = lambda p, xs: model.apply({"params": p}, xs)  # noqa: E731
    return _jax_run(_readout_loss(forward), params, w, mode)


# PyTorch -----------------------------------------------------------------------------------------


TORCH_NAMES = {
    "W_ih": "weight_ih_l0",
    "W_hh": "weight_hh_l0",
    "b_ih": "bias_ih_l0",
    "b_hh": "bias_hh_l0",
}


def _pytorch(cell: str, w: dict, mode: str, device: str = "cpu", bf16: bool = False) -> Callable:
    import torch

    if device == "cpu":
        torch.set_num_threads(2)  # the machine's cores; OpenMP's wait policy stays its default
    H = w["W_hh"].shape[1]
    Module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "elman": torch.nn.RNN}[cell]
    rnn = Module(H, H, batch_first=True).to(device)
    head = torch.nn.Linear(H, CLASSES).to(device)
    with torch.no_grad():
        for ours, theirs in TORCH_NAMES.items():
            getattr(rnn, theirs).copy_(torch.from_numpy(w[ours]))
        head.weight.copy_(torch.from_numpy(w["W_out"]))
        head.bias.copy_(torch.from_numpy(w["b_out"]))
    x = torch.from_numpy(w["xs"]).to(device)
    y = torch.from_numpy(w["labels"].astype("int64")).reshape(-1).to(device)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=1e-3)
    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)
    autocast = lambda: torch.autocast(device.split(":")[0], torch.bfloat16, enabled=bf16)  # noqa: E731

    def loss_of():
        with autocast():
            out, _ = rnn(x)
            logits = head(out).reshape(-1, CLASSES)
        return torch.nn.functional.cross_entropy(logits.float(), y)

    if mode == "infer":

        def run_infer(n: int) -> float:
            with torch.inference_mode():
                for _ in range(n):
                    loss = loss_of()
                sync()
            return float(loss)

        return run_infer

    def run(n: int) -> float:
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            loss = loss_of()
            loss.backward()
            opt.step()
        sync()
        return float(loss.detach())

    return run


# Registry ----------------------------------------------------------------------------------------


def names(cell: str) -> list:
    """Every contender that can run ``cell``."""
    extra = ["seqjax time-major", "scan readout-in-loop", "PyTorch bf16", "seqjax fused chains=2"]
    if cell == "lstm":
        extra.append("seqjax fused-vjp")
    ours = [n for n in SEQJAX if cell == "lstm" or n != "seqjax cudnn"]
    return [*ours, *extra, "PyTorch", *(f"Flax {c}" for c in FLAX_CELLS[cell])]


def library(name: str) -> str:
    """``"torch"`` or ``"jax"``: which library a contender runs (its process's imports)."""
    return "torch" if name.startswith("PyTorch") else "jax"


def build(name: str, cell: str, w: dict, mode: str, device: str = "cpu") -> Callable:
    """``run(n) -> loss`` of contender ``name`` for ``cell`` on the weights ``w``."""
    if name not in names(cell):
        raise ValueError(f"contender {name!r}: choose one of {', '.join(names(cell))}")
    if name in SEQJAX:
        return _seqjax(name, cell, w, mode)
    if name == "seqjax fused chains=2":
        return _fused_chains(cell, w, mode)
    if name == "seqjax fused-vjp":
        return _fused_vjp(cell, w, mode)
    if name == "seqjax time-major":
        return _seqjax_time_major(cell, w, mode)
    if name == "scan readout-in-loop":
        return _scan_readout_in_loop(cell, w, mode)
    if name.startswith("Flax "):
        return _flax(name.split(" ", 1)[1], cell, w, mode)
    return _pytorch(cell, w, mode, device, bf16=name.endswith("bf16"))
