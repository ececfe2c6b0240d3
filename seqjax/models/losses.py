r"""The losses and metrics every task shares, in float32 whatever the model's dtype.

.. math::
    \ell_i = -\sum_k q_{ik} \log \mathrm{softmax}(z_i)_k, \qquad
    q_i = (1 - \alpha)\,\mathrm{onehot}(y_i) + \alpha / C

(the plain cross-entropy :math:`-\log \mathrm{softmax}(z_i)_{y_i}` for :math:`\alpha = 0`; label
smoothing, Szegedy et al. 2016, sec. 7, for :math:`\alpha > 0`), averaged over the positions where
a mask is true: :math:`L = \sum_i m_i \ell_i / \max(1, \sum_i m_i)`.

The log-softmax runs in float32: in bfloat16 (8 bits of mantissa) the log-sum-exp over a large
vocabulary loses the small differences the loss is made of. Written with ``jax.nn`` rather than
optax so that this module (and the models) import no side-effect library (optax loads absl).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp


def cross_entropy_terms(logits: jax.Array, labels: jax.Array, smoothing: float = 0.0) -> jax.Array:
    """Per-position cross-entropy ``(*batch)`` of ``logits (*batch, C)`` against integer labels,
    with label smoothing ``alpha = smoothing`` (see the module docstring).

    Example:
      >>> z = jnp.array([[2.0, 0.0], [0.0, 0.0]])
      >>> [round(float(v), 4) for v in cross_entropy_terms(z, jnp.array([0, 1]))]
      [0.1269, 0.6931]
    """
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    labels = jnp.asarray(labels)
    picked = jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    if not smoothing:
        return -picked
    return -(1.0 - smoothing) * picked - smoothing * jnp.mean(logp, axis=-1)


def masked_mean(values: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
    """``sum(values * mask) / max(sum(mask), 1)`` in float32 (the plain mean without a mask)."""
    values = values.astype(jnp.float32)
    if mask is None:
        return jnp.mean(values)
    m = jnp.asarray(mask).astype(jnp.float32)
    return jnp.sum(values * m) / jnp.maximum(jnp.sum(m), 1.0)


def cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    mask: Optional[jax.Array] = None,
    *,
    smoothing: float = 0.0,
) -> jax.Array:
    """The mean cross-entropy over the positions where ``mask`` is true (all without a mask).

    Args:
      logits: ``(*batch, C)`` unnormalised scores (``(*batch, T, V)`` for a language model).
      labels: ``(*batch)`` integer classes.
      mask: optional ``(*batch)``; positions where it is 0/False are left out (padding).
      smoothing: label smoothing ``alpha`` in ``[0, 1)``.

    Returns:
      A float32 scalar; ``exp`` of it is the perplexity, it over ``ln 2`` bits per symbol.
    """
    return masked_mean(cross_entropy_terms(logits, labels, smoothing), mask)


def accuracy(logits: jax.Array, labels: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
    """Fraction of (masked) positions whose argmax is the label."""
    correct = (jnp.argmax(logits, axis=-1) == jnp.asarray(labels)).astype(jnp.float32)
    return masked_mean(correct, mask)


def squared_error(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean squared error in float32 of a scalar prediction ``(*batch, 1)`` against ``(*batch)``."""
    pred = predictions[..., 0].astype(jnp.float32)
    return jnp.mean(jnp.square(pred - jnp.asarray(targets, jnp.float32)))


__all__ = ["accuracy", "cross_entropy", "cross_entropy_terms", "masked_mean", "squared_error"]
