r"""Gated recurrent unit (Cho et al. 2014, sec. 2.3).

With ``reset_after=True`` (the cuDNN / PyTorch / Flax form) the reset gate multiplies the
recurrent matmul's result, so all three gates share one ``(H, 3H)`` matmul:

.. math::
    [r, z, n_x] &= x_t W_x + b \qquad [r_h, z_h, n_h] = h_{t-1} W_h \\
    r &= \sigma(r + r_h), \quad z = \sigma(z + z_h) \\
    n &= \tanh(n_x + r \odot (n_h + b_{hn})) \\
    h_t &= (1 - z) \odot n + z \odot h_{t-1}

With ``reset_after=False`` (the paper's form) ``n = tanh(n_x + (r \odot h_{t-1}) W_{hn})``, which
needs a second recurrent matmul after the gates. Parameters: ``w_x (input, 3H)``, ``b (3H,)``,
``w_h (H, 3H)`` and, for ``reset_after=True``, ``b_hn (H,)``. Gate order ``r, z, n``.

Capabilities: ``gates`` ``{"reset": r, "update": z}`` (an update gate near 1 keeps the state) and
``recurrent_blocks`` ``{"r", "z", "n"}``, the three ``(H, H)`` blocks of ``w_h``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from seqjax.cells import fused, inits
from seqjax.cells.base import Cell, check_size, make_step, split_blocks, zeros_carry


def gru(
    hidden_size: int,
    reset_after: bool = True,
    *,
    kernel_init: inits.InitSpec = "glorot_uniform",
    recurrent_init: inits.InitSpec = "orthogonal",
    bias_init: inits.InitSpec = "zeros",
    param_dtype=jnp.float32,
) -> Cell:
    """GRU cell.

    Args:
      hidden_size: H.
      reset_after: ``True`` for the cuDNN/PyTorch/Flax form (reset applied after the recurrent
        matmul), ``False`` for the original form of Cho et al. 2014.
      kernel_init, recurrent_init, bias_init: initialisers by name (:mod:`seqjax.cells.inits`);
        the recurrent one is applied to each ``(H, H)`` gate block.
      param_dtype: dtype of the parameters.

    Example:
      >>> import jax, jax.numpy as jnp, seqjax
      >>> cell = seqjax.cells.gru(8)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> sorted(params)
      ['b', 'b_hn', 'w_h', 'w_x']
    """
    check_size("hidden_size", hidden_size)
    H = hidden_size
    k_init = inits.get(kernel_init)
    r_init = inits.blockwise(inits.get(recurrent_init), 3)
    b_init = inits.get(bias_init)

    def init(key, input_size: int):
        check_size("input_size", input_size)
        kx, kh, kb, kn = jax.random.split(key, 4)
        params = {
            "w_x": k_init(kx, (input_size, 3 * H), param_dtype),
            "w_h": r_init(kh, (H, 3 * H), param_dtype),
            "b": b_init(kb, (3 * H,), param_dtype),
        }
        if reset_after:
            params["b_hn"] = b_init(kn, (H,), param_dtype)
        return params

    def project(params, x):
        return x.astype(params["w_x"].dtype) @ params["w_x"] + params["b"]

    def reset_update(params, h, p):
        """``(r, z, n_h)``: both gates, and ``h W_hn`` where one matmul gives it (reset_after)."""
        r_x, z_x, _ = jnp.split(p, 3, axis=-1)
        if reset_after:
            r_h, z_h, n_h = jnp.split(h @ params["w_h"], 3, axis=-1)
        else:
            r_h, z_h = jnp.split(h @ params["w_h"][:, : 2 * H], 2, axis=-1)
            n_h = None
        return jax.nn.sigmoid(r_x + r_h), jax.nn.sigmoid(z_x + z_h), n_h

    def recur(params, h, p):
        n_x = p[..., 2 * H :]
        r, z, n_h = reset_update(params, h, p)
        if reset_after:
            n = jnp.tanh(n_x + r * (n_h + params["b_hn"]))
        else:
            n = jnp.tanh(n_x + (r * h) @ params["w_h"][:, 2 * H :])
        h = (1.0 - z) * n + z * h
        return h, h

    def gates(params, h, p):
        r, z, _ = reset_update(params, h, p)
        return {"reset": r, "update": z}

    return Cell(
        init=init,
        initial_carry=zeros_carry(H),
        step=make_step(project, recur),
        project=project,
        recur=recur,
        hidden_size=H,
        name="gru",
        gates=gates,
        recurrent_blocks=lambda params: split_blocks(params["w_h"], ("r", "z", "n")),
        fused=fused.GRU if reset_after else None,
    )
