r"""Independently recurrent neural network (Li, Li, Cook, Zhu & Gao 2018, "Independently Recurrent
Neural Network (IndRNN): Building A Longer and Deeper RNN", CVPR).

Each unit recurs only on itself, through one scalar weight (sec. 3, eq. 2):

.. math::  h_t = \sigma(x_t W + u \odot h_{t-1} + b)

Backpropagated over :math:`T - t` steps, unit :math:`n`'s gradient is multiplied by
:math:`\prod_k \sigma'_{n,k+1} u_n`, which for an active ReLU unit is :math:`u_n^{T-t}` (sec. 3.1,
eq. 4). Keeping it in :math:`[\epsilon, \gamma]` over a memory of :math:`T` steps needs
:math:`|u_n| \in [\epsilon^{1/T}, \gamma^{1/T}]` (sec. 3.1): below the upper end the gradient
does not explode, above the lower end it does not vanish. Initialisations from that range, as in
the authors' code for their experiments (``U_bound = MAG ** (1 / seq_len)``, ``MAG = 2``):

* ``"bounded"``: :math:`u \sim U(0, \gamma^{1/T})`, the range that cannot explode;
* ``"memory"``: :math:`u \sim U(\gamma^{-1/T}, \gamma^{1/T})`, every unit keeping a signal over
  ``memory_length`` steps within a factor :math:`\gamma` (the authors' ``u_lastlayer_ini``, with
  :math:`\epsilon = 1/\gamma`);
* or any named initialiser of :mod:`seqjax.cells.inits` (on a vector: ``"uniform"`` is
  :math:`U(\pm 1/\sqrt{H})`).

Parameters: ``w (input, H)``, ``u (H,)``, ``b (H,)``. Capabilities: no dense recurrent matrix
(``u`` is its diagonal), ``activation_bound`` 1 (ReLU, tanh and the identity).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from seqjax.cells import inits
from seqjax.cells.base import Cell, check_size, linear_projection, make_step, zeros_carry
from seqjax.cells.elman import ACTIVATIONS, DERIVATIVE_BOUND

RECURRENT_INITS = ("bounded", "memory")
MATRIX_ONLY = ("orthogonal", "identity", "spectral")  # named initialisers that need a matrix


def recurrent_range(memory_length: float, gradient_bound: float, init: str) -> tuple:
    """``(low, high)`` of the uniform draw of ``u``: ``(0, g^(1/T))`` or ``(g^(-1/T), g^(1/T))``."""
    high = gradient_bound ** (1.0 / memory_length)
    return (0.0 if init == "bounded" else 1.0 / high), high


def indrnn(
    hidden_size: int,
    activation: str = "relu",
    *,
    u_init: inits.InitSpec = "bounded",
    memory_length: float = 100.0,
    gradient_bound: float = 2.0,
    kernel_init: inits.InitSpec = "glorot_uniform",
    bias_init: inits.InitSpec = "zeros",
    param_dtype=jnp.float32,
) -> Cell:
    """IndRNN cell ``h_t = activation(x_t W + u * h_{t-1} + b)``.

    Args:
      hidden_size: H.
      activation: ``"relu"`` (the paper's), ``"tanh"`` or ``"identity"``.
      u_init: ``"bounded"`` or ``"memory"`` (the ranges of sec. 3.1 for
        ``memory_length`` and ``gradient_bound``, see the module docstring), or a named
        initialiser of :mod:`seqjax.cells.inits` applied to the vector ``u``.
      memory_length: T, the number of steps the range is computed for (the sequence length in
        the paper's experiments).
      gradient_bound: gamma > 1, the largest factor a gradient may grow by over T steps (the
        authors' ``MAG``, 2 in their experiments).
      kernel_init, bias_init: initialisers by name (:mod:`seqjax.cells.inits`).
      param_dtype: dtype of the parameters.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.indrnn(8, memory_length=1000)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> bool((params["u"] <= 2 ** (1 / 1000)).all())
      True
      >>> carry, y = cell.step(params, cell.initial_carry(params, (2,)), jnp.ones((2, 3)))
      >>> y.shape
      (2, 8)
    """
    check_size("hidden_size", hidden_size)
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    if not memory_length >= 1:
        raise ValueError(f"memory_length={memory_length!r}: must be >= 1 (a number of steps)")
    if not gradient_bound > 1:
        raise ValueError(f"gradient_bound={gradient_bound!r}: must be > 1 (the paper's MAG is 2)")
    if isinstance(u_init, str) and u_init.partition(":")[0] in MATRIX_ONLY:
        raise ValueError(
            f"u_init={u_init!r}: IndRNN's recurrent weight u is a vector; choose bounded, memory "
            "or a vector initialiser (uniform, normal, zeros)"
        )
    H = hidden_size
    act = ACTIVATIONS[activation]
    k_init, b_init = inits.get(kernel_init), inits.get(bias_init)
    if isinstance(u_init, str) and u_init in RECURRENT_INITS:
        low, high = recurrent_range(memory_length, gradient_bound, u_init)

        def draw_u(key, shape, dtype):
            return jax.random.uniform(key, shape, jnp.float32, low, high).astype(dtype)
    else:
        draw_u = inits.get(u_init)

    def init(key, input_size: int):
        check_size("input_size", input_size)
        kw, ku, kb = jax.random.split(key, 3)
        return {
            "w": k_init(kw, (input_size, H), param_dtype),
            "u": draw_u(ku, (H,), param_dtype),
            "b": b_init(kb, (H,), param_dtype),
        }

    project = linear_projection("w")

    def recur(params, h, p):
        h = act(p + params["u"] * h)
        return h, h

    return Cell(
        init=init,
        initial_carry=zeros_carry(H, "u"),
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="indrnn",
        activation_bound=DERIVATIVE_BOUND[activation],
    )
