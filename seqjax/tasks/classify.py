r"""Text classification (sentiment and any labelled text) as a training task.

Data: :func:`seqjax.data.load_classification` on ``config.data`` (local files, a hub id or the
embedded corpus; a tokenizer fitted on the training split; label names in id order). Model:
:func:`seqjax.models.classifier.sequence_classifier`, an embedding, a (bidirectional) recurrent
stack of ``model.cell`` (any cell, options via :func:`seqjax.models.build_cell`), pooling over
each text's valid steps (``model.pooling``: last, mean, max, attention) and an MLP head. The
embedding can start from pretrained word vectors, ``model.embeddings_file`` (GloVe text format,
read by :func:`seqjax.data.vectors.load_vectors`).

Loss: the mean cross-entropy :math:`-\frac1B\sum_i \log p_\theta(y_i \mid x_i)`, in float32.
With ``train.label_smoothing`` :math:`= \alpha > 0` (Szegedy et al. 2016) the training target is
:math:`(1-\alpha)\,\mathrm{onehot}(y) + \alpha/C` over the :math:`C` classes
(:func:`seqjax.models.losses.cross_entropy_terms`), i.e. the loss
:math:`-\sum_k q_k \log p_\theta(k \mid x)`; the evaluated loss stays the plain cross-entropy,
so validation losses compare across settings.

With ``train.adversarial_eps`` :math:`= \epsilon > 0` (adversarial training, Miyato et al. 2017,
"Adversarial training methods for semi-supervised text classification") the training loss is
:math:`L(x) + L(x + r)`, where :math:`x` are the looked-up word vectors of a batch and
:math:`r = \epsilon\, g/\lVert g\rVert_2` per example, :math:`g = \nabla_x L(x)` held constant
(:func:`adversarial_delta`): the worst perturbation of norm :math:`\epsilon` to first order. Both
terms use the same dropout masks; the step costs about twice the clean one. The second term counts
from step ``train.adversarial_start`` on (before it the step computes it with weight 0): from
scratch, a random embedding carries too little signal, and even :math:`\epsilon = 0.05` kept the
SST-2 BiLSTM at chance (docs/results.md); Miyato et al. start from a pretrained model. The logged
``loss`` is the weighted sum, ``clean_loss`` and ``adversarial_loss`` its terms.

Metrics on a held-out split, from its confusion matrix :math:`M_{jk}` (examples of true class
:math:`j` predicted as :math:`k`):

.. math::
    \mathrm{accuracy} = \frac{\sum_j M_{jj}}{\sum_{jk} M_{jk}}, \quad
    P_k = \frac{M_{kk}}{\sum_j M_{jk}}, \quad R_k = \frac{M_{kk}}{\sum_j M_{kj}}, \quad
    F_k = \frac{2 P_k R_k}{P_k + R_k}, \quad \mathrm{macro\text{-}F1} = \frac1C \sum_k F_k

(a class never predicted, or absent, scores 0 where the ratio is 0/0, as scikit-learn's
``zero_division=0``). :func:`evaluate` returns ``loss``, ``accuracy``, ``macro_f1``,
``precision/<label>``, ``recall/<label>`` and the counts ``confusion/<true>/<predicted>``
(:func:`seqjax.train.confusion.confusion_from_metrics` turns them back into the matrix). The best
checkpoint is the one with the highest validation accuracy.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import data as data_lib
from seqjax import schema
from seqjax.data import config as data_config
from seqjax.data.vectors import load_vectors
from seqjax.errors import UserError
from seqjax.models import build_cell, losses
from seqjax.models.base import Model
from seqjax.models.classifier import (
    ACTIVATIONS,
    POOLINGS,
    init_embedding_from,
    sequence_classifier,
)
from seqjax.models.precision import with_compute_dtype
from seqjax.tasks import diagnostics as diagnostics_lib
from seqjax.tasks.base import Task, accumulate, check_split

log = logging.getLogger(__name__)

_RATE = dict(low=0.0, high=1.0, high_open=True)

#: The fields of this task besides those every task has (seqjax.train.config).
FIELDS: dict[str, schema.Field] = {
    "data.name": schema.text("", "a label for logs and checkpoints"),
    **data_config.FIELDS,
    **data_config.LABELLED_FIELDS,
    "data.label_names": schema.text(
        "", "names shown for the labels, one per label in id order; '' = the labels themselves"
    ),
    "model.embed_size": schema.integer(128, "D_e, the word-vector size", low=1),
    "model.bidirectional": schema.flag(False, "each layer also reads the text backwards"),
    "model.pooling": schema.choice(
        "last", POOLINGS, "how the steps are summarised: " + " | ".join(POOLINGS)
    ),
    "model.attention_size": schema.integer(
        0, "attention pooling: size of its hidden layer; 0: the encoder's output size", low=0
    ),
    "model.mlp_hidden": schema.ints((), "hidden layer sizes of the head; () = linear", low=1),
    "model.mlp_activation": schema.choice("relu", tuple(ACTIVATIONS), "the head's activation"),
    "model.dropout": schema.number(
        0.0, "dropout on the embedding output, between layers and before each dense layer", **_RATE
    ),
    "model.variational": schema.flag(False, "one dropout mask per text for every step"),
    "model.word_dropout": schema.number(0.0, "probability of replacing a token by <unk>", **_RATE),
    "model.encoder_dropout": schema.number(
        0.0, "dropout on the top layer's outputs before pooling", **_RATE
    ),
    "model.init_scale": schema.number(
        0.1, "a random embedding starts U(-s, s)", low=0.0, low_open=True
    ),
    "model.embeddings_file": schema.text(
        "", "GloVe-format word vectors to start the embedding from ('' = random)"
    ),
    "train.eval_batch_size": schema.integer(256, "examples per evaluation batch", low=1),
    "train.label_smoothing": schema.number(
        0.0, "train on (1 - a) onehot + a / classes (Szegedy et al. 2016)", **_RATE
    ),
    "train.adversarial_eps": schema.number(
        0.0, "> 0: also train on word vectors moved by eps (Miyato et al. 2017)", low=0.0
    ),
    "train.adversarial_start": schema.integer(
        0, "the step from which the adversarial term counts", low=0
    ),
    # Read by seqjax.train.baseline (the loop runs it; declared here, with the task's fields,
    # because the task layer does not import seqjax.train).
    "train.baseline": schema.run_control(
        schema.flag(
            False,
            "first fit TF-IDF + logistic regression on the same split and log it beside the "
            "results (seqjax baseline; needs scikit-learn)",
        )
    ),
}

#: Checks across this task's fields, before any data loads.
RULES = data_config.LABELLED_RULES


def model_from(model_cfg: Mapping, vocab_size: int, num_classes: int, unk_id: int | None) -> Model:
    """The classifier a (complete, valid) ``model.*`` config describes, in its compute dtype (the
    same for training and ``predict``)."""
    model = sequence_classifier(
        build_cell(model_cfg),
        vocab_size,
        num_classes,
        embed_size=model_cfg["embed_size"],
        num_layers=model_cfg["num_layers"],
        bidirectional=model_cfg["bidirectional"],
        pooling=model_cfg["pooling"],
        attention_size=model_cfg["attention_size"] or None,
        mlp_hidden=tuple(model_cfg["mlp_hidden"]),
        mlp_activation=model_cfg["mlp_activation"],
        dropout=model_cfg["dropout"],
        variational=model_cfg["variational"],
        word_dropout=model_cfg["word_dropout"],
        unk_id=unk_id,
        encoder_dropout=model_cfg["encoder_dropout"],
        init_scale=model_cfg["init_scale"],
    )
    return with_compute_dtype(model, model_cfg["compute_dtype"])


def display_names(labels: Sequence[str], names) -> tuple[str, ...]:
    """The names that metrics and ``predict`` show for ``labels`` (``data.label_names``: one per
    label, in the same order, e.g. ``"negative,positive"`` for labels ``0,1``; ``""``: the labels).

    Example:
      >>> display_names(("0", "1"), "negative, positive")
      ('negative', 'positive')
    """
    if not names:
        return tuple(str(label) for label in labels)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    names = tuple(str(n) for n in names)
    if len(names) != len(labels) or len(set(names)) != len(names) or not all(names):
        raise UserError(
            f"data.label_names={','.join(names)!r}: give {len(labels)} distinct names, one for "
            f"each label of {','.join(map(str, labels))!r} in that order"
        )
    return names


# ----------------------------------------------------------------------------- metrics


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``M[j, k]``: the number of examples of class ``j`` predicted as ``k`` (int64).

    Example:
      >>> confusion_matrix(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2).tolist()
      [[1, 1], [0, 2]]
    """
    flat = np.asarray(labels, np.int64) * num_classes + np.asarray(predictions, np.int64)
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.where(den > 0, num / np.maximum(den, 1), 0.0)


def metrics_from_confusion(confusion: np.ndarray, label_names: Sequence[str]) -> dict:
    """Accuracy, macro-F1, per-class precision and recall and the counts, from ``M`` (see the
    module docstring for the formulas).

    Example:
      >>> m = metrics_from_confusion(np.array([[1, 1], [0, 2]]), ["neg", "pos"])
      >>> m["accuracy"], m["precision/pos"], m["recall/neg"], round(m["macro_f1"], 4)
      (0.75, 0.6666666666666666, 0.5, 0.7333)
    """
    m = np.asarray(confusion, np.float64)
    tp = np.diag(m)
    precision = _ratio(tp, m.sum(axis=0))
    recall = _ratio(tp, m.sum(axis=1))
    f1 = _ratio(2 * precision * recall, precision + recall)
    out = {
        "accuracy": float(tp.sum() / max(m.sum(), 1.0)),
        "macro_f1": float(f1.mean()),
    }
    for name, p, r in zip(label_names, precision, recall):
        out[f"precision/{name}"] = float(p)
        out[f"recall/{name}"] = float(r)
    for j, true in enumerate(label_names):
        for k, pred in enumerate(label_names):
            out[f"confusion/{true}/{pred}"] = float(m[j, k])
    return out


# ----------------------------------------------------------------------------- the task


def adversarial_delta(g: jax.Array, eps: float) -> jax.Array:
    r"""The adversarial perturbation :math:`r = \epsilon\, g / \lVert g \rVert_2` of word vectors.

    ``g: (*batch, T, D_e)`` is the loss's gradient with respect to the word vectors; the norm is
    taken over each example's ``T x D_e`` entries (Miyato et al. 2017, eq. 7). Padded steps have
    zero gradient and stay unperturbed, and so does an example whose gradient is zero.
    """
    norm = jnp.sqrt(jnp.sum(jnp.square(g), axis=(-2, -1), keepdims=True))
    return eps * g / jnp.maximum(norm, jnp.finfo(g.dtype).tiny)


def confusion_counts(labels: jax.Array, predictions: jax.Array, num_classes: int) -> jax.Array:
    """The confusion matrix ``M[j, k]`` of a batch, on the device (float32 counts)."""
    return jnp.zeros((num_classes, num_classes), jnp.float32).at[labels, predictions].add(1.0)


def build(config) -> Task:
    """The classification task of a complete, valid ``config`` (``config.data``: see
    :mod:`seqjax.data`)."""
    data = data_lib.load_classification(config.data)
    if "validation" not in data.splits:
        raise UserError(
            "data.validation_files: the task needs a validation split (give a file or keep "
            "data.validation_fraction > 0)"
        )
    labels = display_names(data.labels, config.data.label_names)
    if len(labels) < 2:
        raise UserError(f"data.labels={list(labels)!r}: a classifier needs at least two labels")
    tokenizer = data.tokenizer
    num_classes = len(labels)
    model = model_from(config.model, tokenizer.vocab_size, num_classes, tokenizer.unk_id)
    vectors_file = config.model.embeddings_file
    pretrained = None
    if vectors_file:
        pretrained = load_vectors(vectors_file, tokenizer, config.model.embed_size)
        log.info(
            "classify: %d of %d vocabulary words start from %s",
            len(pretrained[1]),
            tokenizer.vocab_size,
            vectors_file,
        )
    tc = config.train
    seed, batch_size = config.seed, tc.batch_size
    smoothing, adversarial_eps = tc.label_smoothing, tc.adversarial_eps
    train_split = data.splits["train"]
    data_lib.classify_steps_per_epoch(train_split, batch_size)  # batch larger than the data

    def init(key):
        params = model.init(key)
        if pretrained is not None:
            params = init_embedding_from(params, *pretrained)
        return params

    def nll_of(params, batch, key, train, delta=None):  # per example, and the logits
        logits, _ = model.apply(
            params,
            batch["tokens"],
            lengths=batch["lengths"],
            key=key,
            train=train,
            embed_delta=delta,
        )
        terms = losses.cross_entropy_terms(logits, batch["labels"], smoothing if train else 0.0)
        return terms, logits

    def loss(params, state, batch, key, train):
        if not (train and adversarial_eps > 0.0):
            nll, logits = nll_of(params, batch, key, train)
            nll, metrics = jnp.mean(nll), {}
        else:
            nll, logits, adv = adversarial_loss(params, batch, key)
            metrics = {"clean_loss": nll, "adversarial_loss": jnp.mean(adv)}
            nll = nll + jnp.mean(batch["adversarial"] * adv)  # 0 before train.adversarial_start
        return nll, (state, {"accuracy": losses.accuracy(logits, batch["labels"]), **metrics})

    def adversarial_loss(params, batch, key):
        # One forward pass serves both the clean loss (differentiated by the trainer) and the
        # gradient with respect to the word vectors that sets the perturbation's direction.
        def clean(delta):
            nll, logits = nll_of(params, batch, key, True, delta)
            return jnp.mean(nll), logits

        zeros = jnp.zeros((*batch["tokens"].shape, params["embed"].shape[-1]), jnp.float32)
        nll, vjp, logits = jax.vjp(clean, zeros, has_aux=True)
        (g,) = vjp(jnp.ones_like(nll))
        r = jax.lax.stop_gradient(adversarial_delta(g, adversarial_eps))
        adv, _ = nll_of(params, batch, key, True, r)  # the same dropout masks
        return nll, logits, adv

    def batch(step: int) -> dict:
        b = data_lib.classify_batch(train_split, batch_size, seed, int(step))
        if adversarial_eps > 0.0:  # the weight of the adversarial term, per example
            weight = float(step >= tc.adversarial_start)
            b["adversarial"] = np.full(len(b["labels"]), weight, np.float32)
        return b

    @jax.jit
    def eval_batch(params, b):
        logits, _ = model.apply(params, b["tokens"], lengths=b["lengths"])
        predictions = jnp.argmax(logits, axis=-1)
        return {
            "count": b["labels"].shape[0],
            "loss": jnp.sum(losses.cross_entropy_terms(logits, b["labels"])),
            "confusion": confusion_counts(b["labels"], predictions, num_classes),
        }

    eval_splits = tuple(s for s in ("validation", "test", "train") if s in data.splits)

    def evaluate(params, split: str = "validation") -> dict:
        check_split(split, eval_splits)
        batches = (
            {k: b[k] for k in ("tokens", "lengths", "labels")}
            for b in data_lib.classify_eval_batches(data.splits[split], tc.eval_batch_size)
        )
        totals, _ = accumulate(lambda c, b: (c, eval_batch(params, b)), batches)
        loss_mean = float(totals["loss"]) / float(totals["count"])
        return {"loss": loss_mean, **metrics_from_confusion(totals["confusion"], labels)}

    def example_losses(logits, b):
        return losses.cross_entropy_terms(logits, b["labels"])

    probe = diagnostics_lib.probe(model, example_losses, "tokens") if model.top else None

    def diagnose(params, batch=None) -> dict:
        if batch is None:  # the first training-batch-sized batch of the validation split
            b = next(iter(data_lib.classify_eval_batches(data.splits["validation"], batch_size)))
            batch = {k: b[k] for k in ("tokens", "lengths", "labels")}
        return probe(params, batch)

    metadata = {
        **data.metadata,
        "task": "classify",
        "labels": list(labels),
        "raw_labels": list(data.labels),
        "problem": config.data.name,
        "num_classes": num_classes,
        "embeddings_rows": 0 if pretrained is None else len(pretrained[1]),
    }
    return Task(
        init=init,
        initial_state=lambda params: (),
        loss=loss,
        batch=batch,
        evaluate=evaluate,
        eval_splits=eval_splits,
        best_metric="accuracy",
        best_mode="max",
        metadata=metadata,
        units="examples",
        units_per_batch=batch_size,
        diagnose=diagnose if probe is not None else None,
    )


__all__ = [
    "FIELDS",
    "RULES",
    "adversarial_delta",
    "build",
    "confusion_counts",
    "confusion_matrix",
    "display_names",
    "metrics_from_confusion",
    "model_from",
]
