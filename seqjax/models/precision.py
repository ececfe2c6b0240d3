r"""Mixed precision at the model's seam: float32 parameters, bfloat16 compute, float32 outputs.

Micikevicius et al. 2018 ("Mixed precision training", sec. 3): keep a float32 master copy of the
weights, run the forward and backward passes in half precision, and compute the loss and the
weight update in float32. With bfloat16 (Kalamkar et al. 2019), which has float32's exponent
range, no loss scaling is needed. Here

.. math::
    \hat y = \mathrm{f32}\big(f(\mathrm{bf16}(\theta), \mathrm{bf16}(x))\big), \qquad
    \nabla_\theta L = \mathrm{f32}\big(\nabla_{\mathrm{bf16}(\theta)} L\big)

since the transpose of a cast is the cast back: the parameters, the optimizer state, the loss
and the gradients the optimizer sees are float32, while every matmul and the recurrence inside
the model run in bfloat16 (cells compute in their parameters' dtype). Integer inputs (token ids,
lengths) pass through unchanged.

Tasks wrap their model once with :func:`with_compute_dtype` (``model.compute_dtype`` in the
config: ``"float32"``, the default, or ``"bfloat16"``).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from seqjax.models.base import Model

COMPUTE_DTYPES = ("float32", "bfloat16")


def cast_floating(tree, dtype):
    """Every floating-point leaf of ``tree`` cast to ``dtype``; other leaves unchanged.

    Example:
      >>> t = cast_floating({"w": jnp.ones(2), "n": jnp.arange(2)}, jnp.bfloat16)
      >>> t["w"].dtype, t["n"].dtype
      (dtype(bfloat16), dtype('int32'))
    """

    def cast(x):
        x = jnp.asarray(x)
        return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x

    return jax.tree.map(cast, tree)


def with_compute_dtype(model: Model, compute_dtype: Optional[str]) -> Model:
    """``model`` computing in ``compute_dtype``, with float32 outputs and carries.

    ``apply``, ``features`` and ``readout`` cast the parameters, floating inputs, the carry and
    ``embed_delta`` to ``compute_dtype`` and their results back to float32; ``init``,
    ``initial_carry`` and ``top`` (diagnostics) stay float32. ``None`` or ``"float32"`` returns
    ``model`` itself.

    Example:
      >>> import seqjax
      >>> from seqjax.models import sequence_model
      >>> model = sequence_model(seqjax.cells.lstm(8), input_size=2, output_size=1)
      >>> params = model.init(jax.random.key(0))
      >>> mixed = with_compute_dtype(model, "bfloat16")
      >>> outputs, carry = mixed.apply(params, jnp.ones((4, 10, 2)))
      >>> outputs.dtype, carry[0].h.dtype
      (dtype('float32'), dtype('float32'))
    """
    if compute_dtype in (None, "float32"):
        return model
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype={compute_dtype!r}: choose one of {COMPUTE_DTYPES}")
    dtype = jnp.dtype(compute_dtype)

    def low(fn):
        def run(params, inputs, carry=None, **kwargs):
            if kwargs.get("embed_delta") is not None:
                kwargs["embed_delta"] = cast_floating(kwargs["embed_delta"], dtype)
            out = fn(
                cast_floating(params, dtype),
                cast_floating(inputs, dtype),
                cast_floating(carry, dtype),
                **kwargs,
            )
            return cast_floating(out, jnp.float32)

        return run

    def readout(params, hs, **kwargs):
        out = model.readout(cast_floating(params, dtype), cast_floating(hs, dtype), **kwargs)
        return cast_floating(out, jnp.float32)

    return model._replace(features=low(model.features), apply=low(model.apply), readout=readout)


__all__ = ["COMPUTE_DTYPES", "cast_floating", "with_compute_dtype"]
