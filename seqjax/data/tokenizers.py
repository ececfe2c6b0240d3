"""Tokenizers: character level, word level, byte-level BPE; all saved as JSON-serialisable dicts.

Every tokenizer has ``encode(text) -> int32 array``, ``encode_batch(texts)``, ``decode(ids)``,
``vocab_size``, ``to_json() -> dict`` (stored in checkpoint metadata) and the ids of its special
symbols (``pad_id``, ``unk_id``, ``eos_id``; ``None`` when absent). :func:`fit_tokenizer` builds
one from training text; :func:`tokenizer_from_json` restores it.

Special symbols depend on the task (``"lm"`` or ``"classify"``) and come first, so their ids are
fixed:

==========  ======================  ===================================================
task        kind                    specials (ids 0, 1, ...)
==========  ======================  ===================================================
lm          char, bpe               ``<unk>``
lm          word                    ``<unk>``, ``<eos>``
classify    char, word, bpe         ``<pad>`` (id 0, what batches are padded with), ``<unk>``
==========  ======================  ===================================================

* ``char``: one id per Unicode character seen in training (nanoGPT / char-rnn; code-point order),
  optionally capped to the most frequent ones; others map to ``<unk>``.
* ``word``: whitespace-separated words, by descending count (ties alphabetical), at least
  ``min_freq`` occurrences, at most ``vocab_size`` ids in all; others map to ``<unk>``. For
  language modelling every newline becomes ``<eos>``, as in the Penn Treebank reader of
  Zaremba et al. (2014; ``text.replace("\\n", "<eos>").split()``), and decodes back to a newline.
* ``bpe``: byte-level BPE (GPT-2's scheme, Radford et al. 2019, sec. 2.2) trained with the Hugging
  Face ``tokenizers`` library. Its base alphabet is the 256 bytes, so every text encodes without
  ``<unk>`` and decodes back exactly; ``vocab_size`` (default 4096) includes the 256 bytes.

The vocabularies of ``char`` and ``word`` are frequency counts (``collections.Counter``) kept in
plain Python so that ids are a deterministic function of the training text.

Example:
  >>> tok = fit_tokenizer("word", ["the cat\\nthe dog\\n"], task="lm")
  >>> tok.encode("the cat\\nthe bird\\n").tolist()
  [2, 3, 1, 2, 0, 1]
  >>> tok.decode(tok.encode("the cat\\nthe bird\\n"))
  'the cat\\nthe <unk>\\n'
  >>> tokenizer_from_json(tok.to_json()).vocab_size
  5
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from seqjax.errors import UserError

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"
KINDS = ("char", "word", "bpe")
TASKS = ("lm", "classify")
BPE_DEFAULT_VOCAB = 4096


def specials_for(kind: str, task: str) -> list[str]:
    """The special symbols of a ``kind`` tokenizer for ``task``, in id order."""
    if task == "classify":
        return [PAD, UNK]
    return [UNK, EOS] if kind == "word" else [UNK]


class Tokenizer:
    """What every tokenizer offers (subclasses implement ``encode``, ``decode``, ``to_json``)."""

    kind: str
    specials: list[str]
    lowercase: bool

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def token_to_id(self, token: str) -> int | None:
        raise NotImplementedError

    def encode(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """``[encode(t) for t in texts]`` (BPE does it in parallel, in Rust)."""
        return [self.encode(t) for t in texts]

    def _special(self, name: str) -> int | None:
        return self.specials.index(name) if name in self.specials else None

    @property
    def pad_id(self) -> int | None:
        return self._special(PAD)

    @property
    def unk_id(self) -> int | None:
        return self._special(UNK)

    @property
    def eos_id(self) -> int | None:
        return self._special(EOS)

    def _strip_pad(self, ids: Iterable[int]) -> list[int]:
        pad = self.pad_id
        return [int(i) for i in np.asarray(ids).reshape(-1) if int(i) != pad]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, specials={self.specials})"


def _select(counts: Counter, specials: list[str], vocab_size: int, min_freq: int) -> list[str]:
    """Symbols by descending count (ties by symbol), ``count >= min_freq``, capped to fit."""
    for s in specials:
        counts.pop(s, None)
    ranked = sorted((c for c in counts.items() if c[1] >= min_freq), key=lambda c: (-c[1], c[0]))
    if vocab_size:
        ranked = ranked[: vocab_size - len(specials)]
    return [s for s, _ in ranked]


class CharTokenizer(Tokenizer):
    """One id per character; unknown characters map to ``<unk>``."""

    kind = "char"

    def __init__(self, symbols: Sequence[str], specials: Sequence[str], lowercase: bool = False):
        self.symbols, self.specials, self.lowercase = list(symbols), list(specials), lowercase
        chars = self.symbols[len(self.specials) :]
        codes = np.array([ord(c) for c in chars], np.uint32)
        order = np.argsort(codes)
        self._codes = codes[order]
        self._ids = (order + len(self.specials)).astype(np.int32)

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    def token_to_id(self, token: str) -> int | None:
        return self.symbols.index(token) if token in self.symbols else None

    def encode(self, text: str) -> np.ndarray:
        if self.lowercase:
            text = text.lower()
        codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
        ids = np.full(len(codes), self.unk_id, np.int32)
        if len(self._codes):
            pos = np.minimum(np.searchsorted(self._codes, codes), len(self._codes) - 1)
            found = self._codes[pos] == codes
            ids[found] = self._ids[pos[found]]
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.symbols[i] for i in self._strip_pad(ids))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "char",
            "specials": self.specials,
            "symbols": self.symbols,
            "lowercase": self.lowercase,
        }

    @classmethod
    def fit(cls, texts, specials, vocab_size=0, min_freq=1, lowercase=False) -> CharTokenizer:
        counts: Counter = Counter()
        for t in texts:
            counts.update(t.lower() if lowercase else t)
        chars = sorted(_select(counts, [], vocab_size and vocab_size - len(specials), min_freq))
        return cls(list(specials) + chars, specials, lowercase)


class WordTokenizer(Tokenizer):
    """Whitespace-separated words; ``<eos>`` per newline when the specials include it (PTB)."""

    kind = "word"

    def __init__(self, symbols: Sequence[str], specials: Sequence[str], lowercase: bool = False):
        self.symbols, self.specials, self.lowercase = list(symbols), list(specials), lowercase
        self._index = {s: i for i, s in enumerate(self.symbols)}

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    def token_to_id(self, token: str) -> int | None:
        return self._index.get(token)

    def words(self, text: str) -> list[str]:
        """The words of ``text`` (lower-cased if set); newlines become ``<eos>`` when it exists."""
        if self.lowercase:
            text = text.lower()
        if EOS in self.specials:
            text = text.replace("\n", f" {EOS} ")
        return text.split()

    def encode(self, text: str) -> np.ndarray:
        index, unk = self._index, self.unk_id
        return np.array([index.get(w, unk) for w in self.words(text)], np.int32)

    def decode(self, ids: Iterable[int]) -> str:
        out, line_start = [], True
        for i in self._strip_pad(ids):
            word = self.symbols[i]
            if word == EOS:
                out.append("\n")
                line_start = True
            else:
                out.append(word if line_start else " " + word)
                line_start = False
        return "".join(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "word",
            "specials": self.specials,
            "symbols": self.symbols,
            "lowercase": self.lowercase,
        }

    @classmethod
    def fit(cls, texts, specials, vocab_size=0, min_freq=1, lowercase=False) -> WordTokenizer:
        probe = cls(list(specials), specials, lowercase)
        counts: Counter = Counter()
        for t in texts:
            counts.update(probe.words(t))
        return cls(
            list(specials) + _select(counts, specials, vocab_size, min_freq), specials, lowercase
        )


class BpeTokenizer(Tokenizer):
    """Byte-level BPE, a thin wrapper around a Hugging Face ``tokenizers.Tokenizer``."""

    kind = "bpe"

    def __init__(self, hf_tokenizer, specials: Sequence[str], lowercase: bool = False):
        self.hf, self.specials, self.lowercase = hf_tokenizer, list(specials), lowercase

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def token_to_id(self, token: str) -> int | None:
        return self.hf.token_to_id(token)

    def _encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        batch = getattr(self.hf, "encode_batch_fast", self.hf.encode_batch)  # fast: no offsets
        return [np.asarray(e.ids, np.int32) for e in batch(texts, add_special_tokens=False)]

    def encode(self, text: str) -> np.ndarray:
        # Line by line, in parallel. The same ids as encoding the whole text: the ByteLevel
        # pre-tokenizer splits at "\n" and training (on lines) learns no merge across one.
        ids = self._encode_batch(text.splitlines(keepends=True))
        return np.concatenate(ids) if ids else np.zeros(0, np.int32)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        return self._encode_batch(list(texts))

    def decode(self, ids: Iterable[int]) -> str:
        return self.hf.decode(self._strip_pad(ids), skip_special_tokens=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "bpe",
            "specials": self.specials,
            "lowercase": self.lowercase,
            "tokenizer": json.loads(self.hf.to_str()),
        }

    @classmethod
    def fit(cls, texts, specials, vocab_size=0, min_freq=1, lowercase=False) -> BpeTokenizer:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

        vocab_size = vocab_size or BPE_DEFAULT_VOCAB
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        if vocab_size < len(alphabet) + len(specials) + 1:
            raise UserError(
                f"data.vocab_size={vocab_size}: byte-level BPE needs more than the 256 bytes and "
                f"{len(specials)} special symbols; set data.vocab_size of at least "
                f"{len(alphabet) + len(specials) + 1} (e.g. 4096)"
            )
        hf = HFTokenizer(models.BPE(unk_token=UNK))
        if lowercase:
            hf.normalizer = normalizers.Lowercase()
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_freq,
            special_tokens=list(specials),
            initial_alphabet=alphabet,
            show_progress=False,
        )
        pieces = (line for t in texts for line in t.splitlines(keepends=True))
        hf.train_from_iterator(pieces, trainer=trainer)
        return cls(hf, specials, lowercase)


_CLASSES = {"char": CharTokenizer, "word": WordTokenizer, "bpe": BpeTokenizer}


def fit_tokenizer(
    kind: str,
    texts: Sequence[str],
    *,
    task: str,
    vocab_size: int = 0,
    min_freq: int = 1,
    lowercase: bool = False,
) -> Tokenizer:
    """Build a ``kind`` tokenizer (char, word, bpe) for ``task`` (lm, classify) from ``texts``.

    Args:
      kind: ``"char"``, ``"word"`` or ``"bpe"``.
      texts: the training texts (for language modelling, usually one long string).
      task: ``"lm"`` or ``"classify"``: decides the special symbols (module docstring).
      vocab_size: total number of ids including special symbols; 0: no cap (char, word) or
        4096 (bpe).
      min_freq: minimum count of a character / word, or of a pair for a BPE merge.
      lowercase: lower-case text before fitting and encoding.

    Returns:
      A :class:`Tokenizer`.
    """
    if kind not in _CLASSES:
        raise UserError(f"data.tokenizer={kind!r}: unknown tokenizer; choose one of {KINDS}")
    if task not in TASKS:
        raise ValueError(f"task={task!r}: expected one of {TASKS}")
    specials = specials_for(kind, task)
    if vocab_size and kind != "bpe" and vocab_size <= len(specials):
        raise UserError(
            f"data.vocab_size={vocab_size}: leaves no room beside the {len(specials)} special "
            f"symbols {specials}; set a larger data.vocab_size (or 0 for no cap)"
        )
    return _CLASSES[kind].fit(texts, specials, vocab_size, min_freq, lowercase)


def tokenizer_from_json(data: dict[str, Any] | str) -> Tokenizer:
    """The tokenizer saved by ``Tokenizer.to_json()`` (a dict, or its JSON text).

    A missing or damaged vocabulary (e.g. a checkpoint's metadata without one) raises
    :class:`UserError`."""
    try:
        if isinstance(data, str):
            data = json.loads(data)
        kind = data["kind"]
        if kind == "bpe":
            from tokenizers import Tokenizer as HFTokenizer

            hf = HFTokenizer.from_str(json.dumps(data["tokenizer"]))
            return BpeTokenizer(hf, data["specials"], data["lowercase"])
        return _CLASSES[kind](data["symbols"], data["specials"], data["lowercase"])
    except Exception as e:  # a vocabulary that is absent, truncated or of another format
        what = f"missing {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        raise UserError(
            f"tokenizer vocabulary: missing or damaged ({what.splitlines()[0] if what else ''}); "
            "the checkpoint's metadata must hold the tokenizer its run trained with: use the "
            "workdir that run wrote, or retrain"
        ) from None
