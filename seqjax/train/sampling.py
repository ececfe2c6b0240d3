"""``seqjax sample``: text from a language model's checkpoint, with nothing but its workdir.

The checkpoint's ``meta`` holds the config and the tokenizer (``meta["task"]["tokenizer"]``), so
the model is rebuilt without reading any data, its parameters are restored from the best (or
latest) checkpoint, and :func:`seqjax.models.lm.sample` generates under ``jax.jit``: the prompt
runs through the model once, then each drawn token is fed back with the carried state. The same
seed gives the same text.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from seqjax.data import tokenizer_from_json
from seqjax.errors import UserError
from seqjax.models.lm import sample
from seqjax.tasks import lm as lm_task
from seqjax.tasks.base import Task
from seqjax.train import checkpoint
from seqjax.train import config as config_lib
from seqjax.train import step as step_lib
from seqjax.train.loop import restore


def load_language_model(workdir, which: str = "best") -> tuple:
    """``(model, params, tokenizer, step)`` of the ``"best"`` or ``"latest"`` checkpoint of an LM
    run in ``workdir``."""
    ckpt_dir, meta, first = checkpoint.open_workdir(
        workdir, which, train_hint="--config configs/quickstart.py"
    )
    task_meta = meta.get("task", {})
    if task_meta.get("task") != "lm" or "tokenizer" not in task_meta:
        raise UserError(
            f"--workdir={workdir}: holds a {task_meta.get('task', 'unknown')!r} run; sample needs "
            "a language model (config task='lm')"
        )
    config = config_lib.validate(meta["config"])
    tokenizer = tokenizer_from_json(task_meta["tokenizer"])
    model = lm_task.build_model(config.model, tokenizer.vocab_size)
    # The checkpoint's structure, without data: parameters, optimizer state and the carry.
    shell = Task(
        init=model.init,
        initial_state=lambda p: model.initial_carry(p, (config.train.batch_size,)),
        loss=None,
        batch=None,
        evaluate=None,
        eval_splits=(),
        best_metric=meta["best_metric"],
        best_mode=meta["best_mode"],
        metadata={},
    )
    step, state = restore(ckpt_dir, meta, first, shell)
    return model, step_lib.eval_params(state), tokenizer, step


def generate(
    workdir,
    prompt: str = "\n",
    length: int = 500,
    *,
    temperature: float = 0.8,
    top_k: Optional[int] = 40,
    seed: int = 0,
    which: str = "best",
) -> str:
    """``prompt`` followed by ``length`` tokens drawn from the checkpoint of ``workdir``.

    Args:
      workdir: a run of the ``lm`` task.
      prompt: text the generation continues; it must encode to at least one token.
      length: tokens to generate.
      temperature: divides the logits (0: greedy, always the most likely token).
      top_k: draw only among the ``top_k`` most likely tokens (``None`` or 0: all).
      seed: the PRNG seed; the same seed gives the same text.
      which: ``"best"`` (lowest validation loss) or ``"latest"`` checkpoint.
    """
    if not isinstance(length, int) or length <= 0:
        raise UserError(f"--length={length!r}: must be a positive integer")
    if not temperature >= 0:
        raise UserError(f"--temperature={temperature!r}: must be >= 0 (0: greedy)")
    model, params, tokenizer, _ = load_language_model(workdir, which)
    top_k = top_k or None
    if top_k is not None and not 1 <= top_k <= model.output_size:
        raise UserError(f"--top_k={top_k}: must be in [1, {model.output_size}] (0: no limit)")
    ids = np.asarray(tokenizer.encode(prompt), np.int32)
    if ids.size == 0:
        raise UserError(f"--prompt={prompt!r}: encodes to no token; give some text")
    draw = jax.jit(
        functools.partial(
            sample, model=model, length=length, temperature=float(temperature), top_k=top_k
        )
    )
    tokens = draw(params, prompt_tokens=jnp.asarray(ids)[None], key=jax.random.key(seed))
    text = tokenizer.decode(np.asarray(tokens[0]).tolist())
    if tokenizer.to_json()["kind"] == "word" and text[:1] not in ("", "\n") and prompt[-1:].strip():
        text = " " + text  # words are decoded without a space before the first one
    return prompt + text


__all__ = ["generate", "load_language_model"]
