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
from typing import Mapping

import jax
import jax.numpy as jnp

from seqjax import data as data_lib
from seqjax import schema
from seqjax.data import config as data_config
from seqjax.errors import UserError
from seqjax.models import build_cell, losses
from seqjax.models.base import Model
from seqjax.models.lm import language_model
from seqjax.models.precision import with_compute_dtype
from seqjax.tasks import diagnostics as diagnostics_lib
from seqjax.tasks.base import Task, accumulate, check_split

LN2 = math.log(2.0)

_RATE = dict(low=0.0, high=1.0, high_open=True)

#: The fields of this task besides those every task has (seqjax.train.config).
FIELDS: dict[str, schema.Field] = {
    "data.name": schema.text("", "a label for logs and checkpoints"),
    "data.seq_len": schema.integer(64, "T: the truncated-BPTT window", low=1),
    "data.eval_batch_size": schema.integer(
        0, "rows the evaluation stream is laid out in (state carried); 0: train.batch_size", low=0
    ),
    **data_config.FIELDS,
    "model.embed_size": schema.integer(0, "D_e, the word-vector size; 0: the hidden size", low=0),
    "model.dropout": schema.number(
        0.0, "dropout on the embedding output, between layers and before the readout", **_RATE
    ),
    "model.variational": schema.flag(False, "one dropout mask per window (Gal & Ghahramani 2016)"),
    "model.embed_dropout": schema.number(
        0.0, "drop whole word types (Gal & Ghahramani 2016)", **_RATE
    ),
    "model.tie_embeddings": schema.flag(
        False, "readout = embedding transposed (Press & Wolf 2017)"
    ),
    "model.init_scale": schema.number(
        0.1,
        "the embedding and readout start U(-s, s) (Zaremba et al. 2014)",
        low=0.0,
        low_open=True,
    ),
    "sample.length": schema.run_control(
        schema.integer(0, "tokens WORKDIR/sample.txt gets after training; 0: no sample", low=0)
    ),
    "sample.prompt": schema.run_control(schema.text("\n", "the text that sample continues")),
    "sample.temperature": schema.run_control(
        schema.number(0.8, "divides the logits; 0 = greedy", low=0.0)
    ),
    "sample.top_k": schema.run_control(
        schema.integer(40, "draw among the k likeliest tokens; 0 = all", low=0)
    ),
    "sample.seed": schema.run_control(schema.integer(0, "PRNG seed of the sample", low=0)),
}


def _tied(tie, embed_size, hidden_size):
    if tie and embed_size not in (0, hidden_size):
        return "model.tie_embeddings", (
            f"needs model.embed_size equal to model.hidden_size={hidden_size} (or 0); it is "
            f"{embed_size}"
        )
    return None


RULES = (schema.Rule(("model.tie_embeddings", "model.embed_size", "model.hidden_size"), _tied),)


def build_model(model_cfg: Mapping, vocab_size: int) -> Model:
    """The language model of a (valid, complete) ``config.model`` for ``vocab_size`` ids, in its
    compute dtype.

    Needs no data, so ``seqjax sample`` rebuilds it from a checkpoint's config and vocabulary size.

    Example:
      >>> from seqjax.train.config import defaults
      >>> cfg = defaults("lm").model
      >>> cfg.hidden_size, cfg.num_layers = 8, 2
      >>> m = build_model(cfg, vocab_size=30)
      >>> m.input_size, m.output_size, m.feature_size
      (30, 30, 8)
    """
    model = language_model(
        build_cell(model_cfg),
        vocab_size,
        embed_size=model_cfg["embed_size"] or model_cfg["hidden_size"],
        num_layers=model_cfg["num_layers"],
        dropout=model_cfg["dropout"],
        variational=model_cfg["variational"],
        embed_dropout=model_cfg["embed_dropout"],
        tie_embeddings=model_cfg["tie_embeddings"],
        init_scale=model_cfg["init_scale"],
    )
    return with_compute_dtype(model, model_cfg["compute_dtype"])


def token_metrics(mean_nll, unit: str, xp=jnp) -> dict:
    """``{"bpc": nll / ln 2}`` for characters, ``{"perplexity": exp(nll)}`` otherwise (``xp``:
    ``jnp`` inside jitted code, ``math`` for host floats in float64).

    Example:
      >>> {k: round(float(v), 4) for k, v in token_metrics(jnp.log(2.0), "char").items()}
      {'bpc': 1.0}
    """
    if unit == "char":
        return {"bpc": mean_nll / LN2}
    return {"perplexity": xp.exp(mean_nll)}


def _reset(carry, initial, reset):
    """``initial`` where ``reset`` (a boolean scalar) else ``carry``, leaf by leaf."""
    return jax.tree.map(lambda c, z: jnp.where(reset, z, c), carry, initial)


def nll_of(logits, batch) -> tuple:
    """The loss of a window: mean negative log-likelihood of the (masked) targets."""
    return losses.cross_entropy(logits, batch["targets"], batch.get("mask")), {}


def build(config) -> Task:
    """The language-modelling task of a complete, valid ``config`` (``task="lm"``)."""
    dcfg = config.data
    seq_len, batch_size = dcfg.seq_len, config.train.batch_size
    eval_batch_size = dcfg.eval_batch_size or batch_size
    data = data_lib.load_lm(dcfg)
    if "validation" not in data.splits:
        raise UserError(
            "data.validation_fraction=0: the language-modelling task needs a validation split; "
            "give data.validation_files, a hub validation split, or a fraction > 0"
        )
    unit = data.tokenizer.to_json().get("kind", "char")
    vocab_size = data.tokenizer.vocab_size
    model = build_model(config.model, vocab_size)
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
        value, _ = nll_of(logits, batch)
        return value, (carry, token_metrics(value, unit))

    def batch(step: int) -> dict:
        return data_lib.lm_batch(rows, seq_len, int(step))

    @jax.jit
    def eval_window(params, carry, batch):
        """Summed NLL and token count of one evaluation window, and the carry after it."""
        carry = _reset(carry, model.initial_carry(params, (eval_batch_size,)), batch["reset"])
        logits, carry = model.apply(params, batch["inputs"], carry)
        n = jnp.sum(batch["mask"])
        return carry, {"count": n, "loss": nll_of(logits, batch)[0] * n}

    splits = tuple(s for s in ("validation", "test") if s in data.splits)

    def evaluate(params, split: str = "validation") -> dict:
        check_split(split, splits)
        windows = data_lib.lm_eval_batches(data.splits[split], eval_batch_size, seq_len)
        carry = model.initial_carry(params, (eval_batch_size,))
        totals, _ = accumulate(lambda c, b: eval_window(params, c, b), windows, carry)
        mean = float(totals["loss"]) / max(float(totals["count"]), 1.0)
        return {"loss": mean, **token_metrics(mean, unit, math), "tokens": float(totals["count"])}

    probe = diagnostics_lib.probe(
        model, diagnostics_lib.per_example(nll_of, ("targets", "mask")), "inputs"
    )

    def diagnose(params, batch=None) -> dict:
        if batch is None:  # the first window of the validation stream, from a zero state
            b = next(
                iter(data_lib.lm_eval_batches(data.splits[splits[0]], eval_batch_size, seq_len))
            )
            batch = {k: b[k] for k in ("inputs", "targets", "mask")}
        return probe(params, batch)

    metadata = {
        **data.metadata,
        "task": "lm",
        "problem": dcfg.name,
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
        diagnose=diagnose if model.top is not None else None,
    )


__all__ = ["FIELDS", "LN2", "RULES", "build", "build_model", "nll_of", "token_metrics"]
