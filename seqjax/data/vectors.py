"""Pretrained word vectors from a local text file (GloVe format), matched to a tokenizer.

The GloVe format (Pennington et al. 2014; also word2vec's text output and fastText's ``.vec``) is
one word per line followed by its ``D`` space-separated components::

    the 0.418 0.24968 -0.41242 ...

A first line of exactly two integers (``N D``, the word2vec/fastText header) is skipped. Only the
rows of words in the tokenizer's vocabulary are kept, so reading a large file costs one pass and
little memory. Mistakes (a missing file, a line with the wrong number of components or a
non-number, vectors of another size than the model's embedding, no word in common with the
vocabulary) raise :class:`seqjax.errors.UserError` naming the file and line.
"""

from __future__ import annotations

import os

import numpy as np

from seqjax.data.tokenizers import Tokenizer
from seqjax.errors import UserError


def load_vectors(path: str, tokenizer: Tokenizer, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Reads the vectors of ``tokenizer``'s words from the text file ``path``.

    Args:
      path: a GloVe-format text file (``~`` is expanded).
      tokenizer: its ``token_to_id`` maps a file's word to a row (words it lacks are skipped).
      dim: the expected number of components, the model's embedding size.

    Returns:
      ``(vectors (N, dim) float32, rows (N,) int64)``: the vectors and the vocabulary ids they
      belong to, for :func:`seqjax.models.classifier.init_embedding_from`. A word listed twice
      keeps its first vector.

    Example:
      >>> import tempfile, os
      >>> from seqjax.data.tokenizers import WordTokenizer
      >>> tok = WordTokenizer(["<pad>", "<unk>", "good", "bad"], ["<pad>", "<unk>"])
      >>> f = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
      >>> _ = f.write("good 1 2\\nzebra 3 4\\nbad 5 6\\n"); f.close()
      >>> vectors, rows = load_vectors(f.name, tok, 2); os.unlink(f.name)
      >>> rows.tolist(), vectors.tolist()
      ([2, 3], [[1.0, 2.0], [5.0, 6.0]])
    """
    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise UserError(
            f"model.embeddings_file={path!r}: no such file; give a GloVe-format text file "
            "(word v1 ... vD per line) or '' for random initialisation"
        )
    vectors, rows, seen = [], [], set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            parts = line.rstrip("\n").rstrip("\r").split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec / fastText header "N D"
            if not line.strip():
                continue
            if len(parts) != dim + 1:
                raise UserError(
                    f"{path}:{number}: {len(parts) - 1} components where model.embed_size={dim} "
                    "needs that many; give vectors of the embedding's size (or change "
                    "model.embed_size), one 'word v1 ... vD' per line"
                )
            row = tokenizer.token_to_id(parts[0])
            if row is None or row in seen:
                continue
            try:
                vectors.append(np.asarray(parts[1:], np.float32))
            except ValueError:
                raise UserError(
                    f"{path}:{number}: a component is not a number; each line must be "
                    "'word v1 ... vD' separated by single spaces"
                ) from None
            rows.append(row)
            seen.add(row)
    if not rows:
        raise UserError(
            f"model.embeddings_file={path!r}: no word of the {tokenizer.vocab_size}-word "
            "vocabulary is in it (check data.lowercase and the file's language)"
        )
    return np.stack(vectors), np.asarray(rows, np.int64)


__all__ = ["load_vectors"]
