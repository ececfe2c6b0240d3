"""Named initialisers for recurrent cells.

Every initialiser has the ``jax.nn.initializers`` signature ``(key, shape, dtype) -> Array`` and
can be chosen by name in a config. A name may carry one number after a colon, its scale:

=====================  ===========================================================================
``"orthogonal"``       (semi-)orthogonal matrix, ``W W^T = I`` (Saxe et al. 2014). ``:g`` is a gain.
``"identity"``         the identity matrix, for IRNN (Le et al. 2015, sec. 2). ``:s`` scales it.
``"spectral"``         a Gaussian matrix rescaled to spectral radius ``rho`` (``"spectral:0.9"``;
                       default 1.0), as in echo-state networks (Jaeger 2001).
``"uniform"``          ``U(-1/sqrt(H), 1/sqrt(H))`` with ``H = shape[-1]``, PyTorch's RNN default.
``"glorot_uniform"``   Glorot & Bengio 2010 (Keras' and Flax's default input kernel).
``"lecun_normal"``     LeCun et al. 1998 (Flax's Dense default).
``"normal"``           ``N(0, s^2)`` with ``s`` given after the colon (default 0.001, as in IRNN).
``"zeros"``            zeros.
=====================  ===========================================================================

For gated cells the recurrent matrix ``(H, G*H)`` is initialised gate block by gate block, so each
``(H, H)`` block is orthogonal (or the identity, ...) on its own.

Gate biases:

* ``forget_bias``: a constant added to the LSTM forget gate's bias (Gers et al. 2000; Jozefowicz et
  al. 2015 recommend 1.0).
* :func:`chrono_bias`: chrono initialisation (Tallec & Ollivier 2018, sec. 3): forget bias
  ``log(U(1, T_max - 1))`` and input bias its negative, for dependencies up to ``T_max`` steps.
"""

from __future__ import annotations

from typing import Callable, Union

import jax
import jax.numpy as jnp
import numpy as np

Initializer = Callable[..., jax.Array]
InitSpec = Union[str, Initializer]


def orthogonal(gain: float = 1.0) -> Initializer:
    """(Semi-)orthogonal matrix scaled by ``gain`` (Saxe et al. 2014)."""
    return jax.nn.initializers.orthogonal(scale=gain)


def identity(scale: float = 1.0) -> Initializer:
    """``scale * I``: the IRNN recurrent initialisation (Le et al. 2015, sec. 2)."""

    def init(key, shape, dtype=jnp.float32):
        del key
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"identity init needs a square matrix, got shape {shape}")
        return scale * jnp.eye(shape[0], dtype=dtype)

    return init


def spectral(radius: float = 1.0) -> Initializer:
    """Gaussian matrix rescaled so that its spectral radius (largest |eigenvalue|) is ``radius``."""

    def init(key, shape, dtype=jnp.float32):
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"spectral init needs a square matrix, got shape {shape}")
        w = jax.random.normal(key, shape, jnp.float32) / np.sqrt(shape[0])
        # Eigenvalues are computed on the host: this runs once, at init time.
        rho = float(np.max(np.abs(np.linalg.eigvals(np.asarray(w, np.float64)))))
        return (w * (radius / rho)).astype(dtype)

    return init


def uniform_fan(scale: float = 1.0) -> Initializer:
    """``U(-k, k)`` with ``k = scale / sqrt(shape[-1])``: PyTorch's ``nn.RNN/LSTM/GRU`` default
    where ``shape[-1]`` is the hidden size of one gate block."""

    def init(key, shape, dtype=jnp.float32):
        k = scale / np.sqrt(shape[-1])
        return jax.random.uniform(key, shape, dtype, -k, k)

    return init


def normal(stddev: float = 1e-3) -> Initializer:
    return jax.nn.initializers.normal(stddev)


def _constant_zero(_: float = 0.0) -> Initializer:
    return jax.nn.initializers.zeros


_NAMED = {
    "orthogonal": orthogonal,
    "identity": identity,
    "spectral": spectral,
    "uniform": uniform_fan,
    "glorot_uniform": lambda s=1.0: jax.nn.initializers.variance_scaling(s, "fan_avg", "uniform"),
    "lecun_normal": lambda s=1.0: jax.nn.initializers.variance_scaling(
        s, "fan_in", "truncated_normal"
    ),
    "normal": normal,
    "zeros": _constant_zero,
}

NAMES = tuple(_NAMED)


def _in_float32(init: Initializer) -> Initializer:
    """Draws in float32 and casts: LAPACK has no bfloat16 QR (orthogonal) or eigvals (spectral)."""

    def apply(key, shape, dtype=jnp.float32):
        return init(key, shape, jnp.float32).astype(dtype)

    return apply


def get(spec: InitSpec) -> Initializer:
    """Resolves ``"name"`` or ``"name:scale"`` (see the module docstring) or a callable.

    Named initialisers draw in float32 and cast to the requested dtype, so ``param_dtype`` may be
    ``bfloat16``.
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"initialiser {spec!r}: give a name ({', '.join(NAMES)}) or a callable")
    name, _, arg = spec.partition(":")
    if name not in _NAMED:
        raise ValueError(f"initialiser {spec!r}: choose one of {', '.join(NAMES)}")
    if arg:
        try:
            value = float(arg)
        except ValueError:
            raise ValueError(f"initialiser {spec!r}: the part after ':' must be a number") from None
        return _in_float32(_NAMED[name](value))
    return _in_float32(_NAMED[name]())


def blockwise(init: Initializer, num_blocks: int) -> Initializer:
    """Applies ``init`` to each ``(rows, H)`` block of a ``(rows, G*H)`` matrix."""

    def apply(key, shape, dtype=jnp.float32):
        rows, cols = shape
        h = cols // num_blocks
        keys = jax.random.split(key, num_blocks)
        return jnp.concatenate([init(k, (rows, h), dtype) for k in keys], axis=-1)

    return apply


def chrono_bias(key: jax.Array, hidden_size: int, t_max: float, dtype=jnp.float32):
    """Chrono initialisation (Tallec & Ollivier 2018, eq. 16): returns ``(b_forget, b_input)`` with
    ``b_forget = log(U(1, t_max - 1))`` and ``b_input = -b_forget``."""
    if t_max <= 2:
        raise ValueError(f"chrono t_max={t_max!r}: must be > 2 (the longest dependency in steps)")
    b_f = jnp.log(jax.random.uniform(key, (hidden_size,), jnp.float32, 1.0, t_max - 1.0))
    return b_f.astype(dtype), (-b_f).astype(dtype)
