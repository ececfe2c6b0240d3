"""The `Cell` contract: a recurrent cell is a NamedTuple of pure functions.

Like optax's ``GradientTransformation(init, update)``, a cell is built by a small factory that
closes over its hyper-parameters and returns plain functions over a params pytree::

    cell = seqjax.cells.lstm(hidden_size=256, forget_bias=1.0)
    params = cell.init(key, input_size)               # dict of jax.Arrays
    carry = cell.initial_carry(params, batch_shape)   # zeros, e.g. LSTMCarry(h, c)
    carry, y = cell.step(params, carry, x)            # x: (*batch, input_size)

``step == recur . project``: ``project`` computes the input-dependent part of a step (one matmul,
which a driver can run for all time steps at once) and ``recur`` consumes it.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

Params = Any  # a pytree of jax.Arrays
Carry = Any  # a pytree of jax.Arrays with leading batch axes


class Cell(NamedTuple):
    """A recurrent cell: pure functions over a params pytree.

    Attributes:
      init: ``(key, input_size) -> params``.
      initial_carry: ``(params, batch_shape) -> carry`` (zeros; ``batch_shape=()`` is unbatched).
      step: ``(params, carry, x) -> (carry, y)`` for one time step, ``x: (*batch, input_size)``.
      project: ``(params, xs) -> ps``, the input-dependent part of ``step`` for any leading axes.
      recur: ``(params, carry, p) -> (carry, y)``; ``step(params, c, x) == recur(params, c,
        project(params, x))``.
      hidden_size: size of the output ``y`` (and of the hidden state).
      name: the family name (``"lstm"``, ``"gru"``, ...).
      parallel: for cells whose recurrence is linear in the carry, ``(params, carry, xs, *,
        resets=None, return_carries=False) -> (ys, carry[, carries])`` over a whole batch-major
        sequence ``xs: (*batch, T, input)`` computed with an associative scan (or chunkwise);
        ``None`` for cells that must run step by step. It may also accept ``valid: (*batch, T)``
        booleans, false on right padding, where the step must hold the state exactly (a decay
        of 1 and no input); :func:`seqjax.parallel` then takes the final carry as returned
        instead of asking for every step's carry to pick each sequence's last one.
      fused: a :class:`seqjax.cells.fused.Form`: the step after its two matmuls with its
        hand-written linearisation, which :func:`seqjax.cells.fused.sequence` runs over a whole
        sequence with cheap derivatives (``backend="fused"``), and, for the LSTM, the mapping to
        cuDNN's weights (``backend="cudnn"``); ``None`` for cells without one.
      gates: ``(params, carry, p) -> {name: (*batch, H)}``, the activations of the cell's gates
        in the step ``recur(params, carry, p)`` would take (sigmoid gates in ``[0, 1]``); ``None``
        for cells without gates. Gate statistics (:mod:`seqjax.analysis.gates`) use only this.
      recurrent_blocks: ``params -> {name: (H, H)}``, the matrices that multiply ``h_{t-1}`` in
        the step (one per gate block, in the cell's order); ``None`` for cells without a dense
        recurrent matrix (element-wise or matrix-state recurrences). Spectra use only this.
      activation_bound: for an Elman-type recurrence ``h_t = f(x_t W_x + h_{t-1} W_h + b)``, a bound
        ``gamma >= |f'|`` (Pascanu et al. 2013, sec. 2.1), which makes the bound
        ``(gamma * lambda_1)^(T-t)`` on ``||dh_T/dh_t||`` apply; ``None`` where it does not.
      prepare: ``params -> params``, the params with the matrices the step derives from them
        added (expRNN's ``W = expm(A - A^T)``, AntisymmetricRNN's ``M``) under extra keys, which
        ``step``, ``recur`` and ``recurrent_blocks`` use when present and compute otherwise:
        ``step(prepare(params), c, x) == step(params, c, x)``, but the derived matrices are then
        computed (and differentiated) once per sequence instead of once per step. Drivers and
        diagnostics that run ``step`` in a loop apply it once per call (:func:`prepared`).
        ``None`` for cells that derive nothing.
      output: ``(params, carry, p) -> y``, the output of the step that ends in ``carry``, from that
        carry and the step's projected input ``p``: ``recur(params, c, p) == (c2, output(params,
        c2, p))``. The gradient diagnostics (:mod:`seqjax.analysis.gradients`) perturb the carry
        and read the output through it. ``None`` means the output is the carry itself (cells
        whose carry is one array ``h`` and whose output is ``h``: Elman, GRU, minGRU...); cells
        with any other carry or output declare it (LSTM ``carry.h``, LRU ``Re(h C) + x D``).
    """

    init: Callable[..., Params]
    initial_carry: Callable[..., Carry]
    step: Callable[..., tuple]
    project: Callable[..., Any]
    recur: Callable[..., tuple]
    hidden_size: int
    name: str
    parallel: Optional[Callable[..., tuple]] = None
    fused: Optional[Any] = None  # seqjax.cells.fused.Form
    gates: Optional[Callable[..., dict]] = None
    recurrent_blocks: Optional[Callable[..., dict]] = None
    activation_bound: Optional[float] = None
    prepare: Optional[Callable[[Params], Params]] = None
    output: Optional[Callable[..., jax.Array]] = None


def prepared(cell: Cell, params: Params) -> Params:
    """``cell.prepare(params)`` for cells that have it, else ``params``: call it once before a loop
    over ``cell.step`` or ``cell.recur``."""
    return params if cell.prepare is None else cell.prepare(params)


def accepts_keyword(fn: Callable, name: str) -> bool:
    """Whether ``fn`` takes a keyword argument called ``name`` (by its signature)."""
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins and some wrapped callables have no signature
        return False


def step_output(cell: Cell, params: Params, carry: Carry, p: Any) -> jax.Array:
    """The output of ``cell``'s step that ends in ``carry`` (``p``: the step's projected input):
    ``cell.output`` where the cell declares it, else the carry itself (one array)."""
    if cell.output is not None:
        return cell.output(params, carry, p)
    if isinstance(carry, jax.Array):
        return carry
    raise ValueError(
        f"cell {cell.name!r}: its carry is a {type(carry).__name__}, not one array, and the cell "
        "declares no output; set Cell.output to (params, carry, p) -> the step's output"
    )


def derived(params: Params, name: str, compute: Callable[[Params], jax.Array]) -> jax.Array:
    """``params[name]`` where :attr:`Cell.prepare` has put it, else ``compute(params)``."""
    return params[name] if name in params else compute(params)


def make_step(project: Callable, recur: Callable) -> Callable:
    """``step = recur . project``: the one definition every cell shares."""

    def step(params, carry, x):
        return recur(params, carry, project(params, x))

    return step


def zeros_carry(hidden_size: int, dtype_of: str = "w_h") -> Callable:
    """``initial_carry`` for cells whose carry is one hidden vector ``h``."""

    def initial_carry(params, batch_shape=()):
        dtype = params[dtype_of].dtype
        return jnp.zeros((*tuple(batch_shape), hidden_size), dtype)

    return initial_carry


def linear_projection(w: str = "w_x", b: str = "b") -> Callable:
    """``project(params, x) = x W + b`` with ``W = params[w]``, ``b = params[b]`` (``x`` cast to
    ``W``'s dtype): the input part of most cells' steps."""

    def project(params, x):
        return x.astype(params[w].dtype) @ params[w] + params[b]

    return project


def uniform_params(key: jax.Array, shapes: dict, bound: float, dtype) -> dict:
    """``{name: U(-bound, bound)}`` of the given shapes, drawn in float32 and cast to ``dtype``
    (PyTorch's ``nn.Linear`` initialisation, which several papers' code uses)."""
    keys = jax.random.split(key, len(shapes))
    return {
        name: jax.random.uniform(k, shape, jnp.float32, -bound, bound).astype(dtype)
        for k, (name, shape) in zip(keys, shapes.items())
    }


def zeros_pair(carry_type: Callable, hidden_size: int, dtype_of: str = "w") -> Callable:
    """``initial_carry`` for cells whose carry is two ``H``-vectors (``carry_type(a, b)``)."""

    def initial_carry(params, batch_shape=()):
        zeros = jnp.zeros((*tuple(batch_shape), hidden_size), params[dtype_of].dtype)
        return carry_type(zeros, zeros)

    return initial_carry


def split_blocks(w: jax.Array, names: tuple) -> dict:
    """``{name: (rows, H)}``: the gate blocks of a ``(rows, G*H)`` matrix, in the order of ``names``
    (for :attr:`Cell.recurrent_blocks`)."""
    parts = jnp.split(w, len(names), axis=-1)
    return dict(zip(names, parts))


def check_size(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name}={value!r}: must be a positive integer")
    return value


def split_keys(key: jax.Array, n: int):
    return jax.random.split(key, n)
