"""Heads: cells whose state and gates are split into ``num_heads`` independent groups of units
(mLSTM, sLSTM, DeltaNet). ``H = num_heads * d_v``: the outputs of the heads are concatenated."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from seqjax.cells.base import check_size


def head_sizes(hidden_size: int, num_heads: int, key_size: Optional[int]):
    """``(d_k, d_v)`` per head: ``d_v = H / heads``, ``d_k = key_size or d_v``."""
    check_size("num_heads", num_heads)
    if hidden_size % num_heads:
        raise ValueError(
            f"num_heads={num_heads!r}: must divide hidden_size={hidden_size} (d_v = H / heads)"
        )
    d_v = hidden_size // num_heads
    d_k = d_v if key_size is None else check_size("key_size", key_size)
    return d_k, d_v


def per_unit(gate: jax.Array, d_v: int) -> jax.Array:
    """A per-head gate ``(..., heads)`` repeated over each head's ``d_v`` output units."""
    return jnp.repeat(gate, d_v, axis=-1)
