r"""Language modelling as a training task: truncated BPTT over contiguous rows of a token stream.

Data (Zaremba, Sutskever & Vinyals 2014, sec. 4.1): the training stream is cut into ``B``
contiguous rows (:func:`seqjax.data.lm_rows`) and each row is read left to right in windows of
``T = data.seq_len`` steps; training batch ``step`` is window ``step mod (windows per epoch)``
(:func:`seqjax.data.lm_batch`). The recurrent carry is the task's ``state``: it passes from one
window to the next with the gradient stopped at the boundary (truncated BPTT, Williams & Peng
1990), and is reset to zeros at the first window of every epoch (the batch's ``reset`` flag).
Evaluation carries the state across the whole validation (or test) stream, laid out in
``data.eval_batch_size`` rows (:func:`seqjax.data.lm_eval_batches`), so every token after the
first is predicted exactly once from all the text before it in its row.

Loss and metrics: the mean negative log-likelihood per token in nats,
:math:`\ell = -\frac{1}{N}\sum_t \log p(w_{t+1} \mid w_{\le t})`; for characters also bits per
character :math:`\mathrm{bpc} = \ell / \ln 2`, for words and sub-words the perplexity
:math:`e^{\ell}`. The best checkpoint is the one with the lowest validation ``loss``.

Model (``model.*``): :func:`seqjax.models.lm.language_model` on the cell that
:func:`seqjax.models.build_cell` makes from ``model.cell``, ``model.hidden_size`` and the cell's
options, with ``model.num_layers``, ``model.embed_size``, ``model.dropout``, ``model.variational``,
``model.embed_dropout``, ``model.tie_embeddings`` and ``model.init_scale``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from seqjax import data as data_lib
from seqjax.errors import UserError
from seqjax.models import build_cell
from seqjax.models.lm import LanguageModel, language_model, nll
from seqjax.tasks.base import Task

LN2 = math.log(2.0)

#: ``model.*`` fields of the language model besides the cell's own (with their defaults).
MODEL_DEFAULTS: dict[str, Any] = {
    "embed_size": 0,  # 0: the hidden size
    "dropout": 0.0,
    "variational": False,
    "embed_dropout": 0.0,
    "tie_embeddings": False,
    "init_scale": 0.1,
}


def _model_option(model_cfg: Mapping, key: str) -> Any:
    value = model_cfg.get(key)
    return MODEL_DEFAULTS[key] if value is None else value


def build_model(model_cfg: Mapping, vocab_size: int) -> LanguageModel:
    """The language model of ``config.model`` for a vocabulary of ``vocab_size`` ids.

    Needs no data, so ``seqjax sample`` rebuilds it from a checkpoint's config and vocabulary size.

    Example:
      >>> m = build_model({"cell": "lstm", "hidden_size": 8, "num_layers": 2}, vocab_size=30)
      >>> m.vocab_size, m.embed_size, m.hidden_size
      (30, 8, 8)
    """
    embed_size = _model_option(model_cfg, "embed_size") or model_cfg["hidden_size"]
    try:
        return language_model(
            build_cell(model_cfg),
            vocab_size,
            embed_size=embed_size,
            num_layers=model_cfg["num_layers"],
            dropout=_model_option(model_cfg, "dropout"),
            variational=_model_option(model_cfg, "variational"),
            embed_dropout=_model_option(model_cfg, "embed_dropout"),
            tie_embeddings=_model_option(model_cfg, "tie_embeddings"),
            init_scale=_model_option(model_cfg, "init_scale"),
        )
    except ValueError as e:  # "dropout=1.5: must be in [0, 1)", "tie_embeddings=True: ..."
        raise UserError(f"model.{e}") from None


def token_metrics(mean_nll: jax.Array, unit: str) -> dict:
    """``{"bpc": nll / ln 2}`` for characters, ``{"perplexity": exp(nll)}`` otherwise.

    Example:
      >>> {k: round(float(v), 4) for k, v in token_metrics(jnp.log(2.0), "char").items()}
      {'bpc': 1.0}
    """
    if unit == "char":
        return {"bpc": mean_nll / LN2}
    return {"perplexity": jnp.exp(mean_nll)}


def _reset(carry, initial, reset):
    """``initial`` where ``reset`` (a boolean scalar) else ``carry``, leaf by leaf."""
    return jax.tree.map(lambda c, z: jnp.where(reset, z, c), carry, initial)


def build(config) -> Task:
    """The language-modelling task of ``config`` (``task="lm"``)."""
    dcfg, model_cfg = config.data, config.model
    seq_len = dcfg.get("seq_len")
    batch_size = config.train.batch_size
    eval_batch_size = dcfg.get("eval_batch_size") or batch_size
    for key, value in (("data.seq_len", seq_len), ("data.eval_batch_size", eval_batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise UserError(f"{key}={value!r}: must be a positive integer")

    data = data_lib.load_lm(dcfg)
    if "validation" not in data.splits:
        raise UserError(
            "data.validation_fraction=0: the language-modelling task needs a validation split; "
            "give data.validation_files, a hub validation split, or a fraction > 0"
        )
    unit = data.tokenizer.to_json().get("kind", "char")
    vocab_size = data.tokenizer.vocab_size
    model = build_model(model_cfg, vocab_size)
    rows = data_lib.lm_rows(data.splits["train"], batch_size)
    steps_per_epoch = data_lib.lm_steps_per_epoch(rows, seq_len)

    def initial_state(params):
        # Distinct buffers per leaf: a cell may share one zeros array between h and c, and the
        # training step donates its state.
        return jax.tree.map(jnp.copy, model.initial_carry(params, (batch_size,)))

    def loss(params, state, batch, key, train):
        inputs = jnp.asarray(batch["inputs"])
        carry = _reset(state, model.initial_carry(params, inputs.shape[:1]), batch["reset"])
        carry = jax.lax.stop_gradient(carry)  # truncated BPTT: no gradient into earlier windows
        logits, carry = model.apply(params, inputs, carry, key=key, train=train)
        value = nll(logits, batch["targets"], batch.get("mask"))
        return value, (carry, token_metrics(value, unit))

    def batch(step: int) -> dict:
        return data_lib.lm_batch(rows, seq_len, int(step))

    @jax.jit
    def eval_window(params, carry, batch):
        """Summed NLL and token count of one evaluation window, and the carry after it."""
        carry = _reset(carry, model.initial_carry(params, (eval_batch_size,)), batch["reset"])
        logits, carry = model.apply(params, batch["inputs"], carry)
        mask = batch["mask"]
        n = jnp.sum(mask)
        return carry, nll(logits, batch["targets"], mask) * n, n

    splits = tuple(s for s in ("validation", "test") if s in data.splits)

    def evaluate(params, split: str = "validation") -> dict:
        if split not in splits:
            raise UserError(f"split={split!r}: choose one of {', '.join(splits)}")
        carry = model.initial_carry(params, (eval_batch_size,))
        total, count = 0.0, 0.0
        for b in data_lib.lm_eval_batches(data.splits[split], eval_batch_size, seq_len):
            carry, s, n = eval_window(params, carry, b)
            total, count = total + float(s), count + float(n)  # sums in float64 on the host
        mean = total / max(count, 1.0)
        metrics = {"bpc": mean / LN2} if unit == "char" else {"perplexity": math.exp(mean)}
        return {"loss": mean, **metrics, "tokens": count}

    metadata = {
        **data.metadata,
        "task": "lm",
        "problem": dcfg.get("name", ""),
        "unit": unit,
        "vocab_size": vocab_size,
        "steps_per_epoch": steps_per_epoch,
    }
    return Task(
        init=model.init,
        initial_state=initial_state,
        loss=loss,
        batch=batch,
        evaluate=evaluate,
        eval_splits=splits,
        best_metric="loss",
        best_mode="min",
        metadata=metadata,
        units="tokens",
        units_per_batch=batch_size * seq_len,
    )


__all__ = ["LN2", "MODEL_DEFAULTS", "build", "build_model", "token_metrics"]
