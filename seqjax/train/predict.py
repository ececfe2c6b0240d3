"""``seqjax predict``: label new texts with a classification run's best checkpoint.

seqjax predict --workdir DIR "a gorgeous, witty, seductive movie." "dull." ...
seqjax predict --workdir DIR --file texts.txt        (one text per line; ``-``: stdin)

Prints one line per input, in order: the predicted label, each class's probability and the text,
separated by tabs, e.g. ``positive<TAB>negative=0.0213 positive=0.9787<TAB>a gorgeous, ...``.
Everything comes from the workdir: the config, the tokenizer and the label names are in the
checkpoint's metadata, so the training files need not exist any more. Texts are encoded, truncated
to the run's ``data.max_length``, padded to a multiple of 8 and run through one jitted function
in batches of ``--batch_size``.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Iterable, Sequence

import numpy as np
from absl import flags

from seqjax.errors import UserError
from seqjax.train import cmdline


class Predictor:
    """Class probabilities of texts from a workdir's best (or latest) checkpoint.

    Attributes:
      labels: the label names in id order.
      step: the checkpoint's step.
    """

    def __init__(self, workdir, which: str = "best"):
        import jax

        from seqjax import data as data_lib
        from seqjax.tasks.base import Task
        from seqjax.tasks.classify import model_from
        from seqjax.train import checkpoint
        from seqjax.train import config as config_lib
        from seqjax.train.loop import restore
        from seqjax.train.step import eval_params

        ckpt_dir, meta, first = checkpoint.open_workdir(
            workdir, which, train_hint="--config configs/sentiment/sst2.py"
        )
        task_meta = meta["task"]
        if task_meta.get("task") != "classify":
            raise UserError(
                f"--workdir={workdir}: is a {task_meta.get('task')!r} run; seqjax predict needs "
                "a classification run (task='classify')"
            )
        config = config_lib.validate(meta["config"])
        self.tokenizer = data_lib.tokenizer_from_json(task_meta["tokenizer"])
        self.labels = tuple(task_meta["labels"])
        self.max_length = int(task_meta.get("max_length") or 0)
        self.pad_batch = data_lib.pad_batch
        model = model_from(
            config.model, self.tokenizer.vocab_size, len(self.labels), self.tokenizer.unk_id
        )
        shell = Task(model.init, lambda p: (), None, None, None, (), "accuracy", "max", {})
        self.step, state = restore(ckpt_dir, meta, first, shell)
        self.params = eval_params(state)  # the evaluated weights (the average, if kept)
        self._probs = jax.jit(
            lambda params, tokens, lengths: jax.nn.softmax(
                model.apply(params, tokens, lengths=lengths)[0].astype(np.float32), axis=-1
            )
        )

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each text (truncated like the training data; empty -> one ``<unk>``)."""
        out = []
        for ids in self.tokenizer.encode_batch(list(texts)):
            if len(ids) == 0:
                ids = np.array([self.tokenizer.unk_id], np.int32)
            out.append(ids[: self.max_length] if self.max_length else ids)
        return out

    def probabilities(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """``(len(texts), C)`` class probabilities, in the order of ``texts``."""
        if batch_size <= 0:
            raise UserError(f"--batch_size={batch_size}: must be a positive integer")
        encoded = self.encode(texts)
        rows = []
        for start in range(0, len(encoded), batch_size):
            tokens, lengths = self.pad_batch(encoded[start : start + batch_size])
            rows.append(np.asarray(self._probs(self.params, tokens, lengths)))
        if not rows:
            return np.zeros((0, len(self.labels)), np.float32)
        return np.concatenate(rows)


def format_line(labels: Sequence[str], probs: np.ndarray, text: str) -> str:
    """``label<TAB>name=p name=p<TAB>text`` for one input.

    Example:
      >>> format_line(["neg", "pos"], np.array([0.25, 0.75]), "fine.")
      'pos\\tneg=0.2500 pos=0.7500\\tfine.'
    """
    shown = " ".join(f"{n}={p:.4f}" for n, p in zip(labels, probs))
    return f"{labels[int(np.argmax(probs))]}\t{shown}\t{text}"


def _read_texts(file: str | None, positional: Iterable[str]) -> list[str]:
    texts = list(positional)
    if file:
        if file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            path = pathlib.Path(file)
            if not path.is_file():
                raise UserError(f"--file={file}: no such file; give a text file, one text a line")
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        texts += [line for line in lines if line.strip()]
    if texts == ["-"]:
        texts = [line for line in sys.stdin.read().splitlines() if line.strip()]
    if not texts:
        raise UserError(
            'no texts: give them as arguments (seqjax predict --workdir DIR "text" ...), '
            "with --file FILE (one a line) or - for stdin"
        )
    return texts


def main(argv: list[str]) -> int:
    """``seqjax predict``: prints the label and class probabilities of each text."""
    fv = flags.FlagValues()
    flags.DEFINE_string("workdir", None, "run directory written by seqjax train", flag_values=fv)
    flags.DEFINE_string("file", None, "texts, one a line ('-': stdin)", flag_values=fv)
    flags.DEFINE_string("checkpoint", "best", "best | latest", flag_values=fv)
    flags.DEFINE_integer("batch_size", 64, "texts per jitted call", flag_values=fv)
    if any(a in ("-h", "--help", "-help", "--helpfull") for a in argv[1:]):
        cmdline.parse(fv, argv[:1] + ["--help"])
    try:
        rest = fv(argv)
    except flags.Error as e:
        raise UserError(f"{str(e).splitlines()[0]} (flags: --workdir, --file, ...)") from None
    if not fv.workdir:
        raise UserError("--workdir: missing; give the run's directory, e.g. --workdir runs/sst2")
    texts = _read_texts(fv.file, rest[1:])
    predictor = Predictor(fv.workdir, fv.checkpoint)
    probs = predictor.probabilities(texts, fv.batch_size)
    for text, p in zip(texts, probs):
        print(format_line(predictor.labels, p, text))
    return 0


__all__ = ["Predictor", "format_line", "main"]
