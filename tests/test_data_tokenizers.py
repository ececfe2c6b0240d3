"""Tokenizers against independent references: Python sets/Counters, the PTB reader, round trips."""

import json
from collections import Counter

import numpy as np
import pytest

from seqjax.data import fit_tokenizer, tokenizer_from_json
from seqjax.data.tokenizers import EOS, UNK
from seqjax.errors import UserError

TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n"
)


def reload(tok):
    """Through JSON text and back, as a checkpoint's metadata does."""
    return tokenizer_from_json(json.loads(json.dumps(tok.to_json())))


def test_char_vocab_is_the_set_of_characters_and_round_trips():
    tok = fit_tokenizer("char", [TEXT], task="lm")
    assert tok.specials == [UNK] and tok.unk_id == 0
    assert tok.symbols[1:] == sorted(set(TEXT))  # code-point order, as nanoGPT
    ids = tok.encode(TEXT)
    assert ids.dtype == np.int32 and len(ids) == len(TEXT)
    assert [tok.symbols[i] for i in ids] == list(TEXT)
    assert tok.decode(ids) == TEXT
    assert np.array_equal(reload(tok).encode(TEXT), ids)


def test_char_unknowns_map_to_unk():
    tok = fit_tokenizer("char", ["abc"], task="lm")
    ids = tok.encode("abzé🙂c")
    assert ids.tolist() == [
        tok.token_to_id("a"),
        tok.token_to_id("b"),
        0,
        0,
        0,
        tok.token_to_id("c"),
    ]
    assert tok.decode(ids) == "ab<unk><unk><unk>c"


def test_char_cap_keeps_the_most_frequent():
    text = "aaaabbbcc d"
    tok = fit_tokenizer("char", [text], task="lm", vocab_size=3)
    assert tok.vocab_size == 3 and tok.symbols == [UNK, "a", "b"]
    tok = fit_tokenizer("char", [text], task="lm", min_freq=2)
    assert tok.symbols == [UNK, "a", "b", "c"]


def ptb_reader(text):
    """Zaremba et al.'s reader (tensorflow/models ptb/reader.py): newline -> <eos>, split."""
    return text.replace("\n", " <eos> ").split()


def test_word_lm_matches_the_ptb_reader():
    tok = fit_tokenizer("word", [TEXT], task="lm")
    words = ptb_reader(TEXT)
    counts = Counter(w for w in words if w not in (UNK, EOS))
    expected = [w for w, _ in sorted(counts.items(), key=lambda c: (-c[1], c[0]))]
    assert tok.symbols == [UNK, EOS] + expected
    ids = tok.encode(TEXT)
    assert [tok.symbols[i] for i in ids] == words
    assert tok.eos_id == 1 and int((ids == 1).sum()) == TEXT.count("\n")
    assert tok.decode(ids) == "\n".join(" ".join(line.split()) for line in TEXT.split("\n"))
    assert np.array_equal(reload(tok).encode(TEXT), ids)


def test_word_unknowns_cap_min_freq_and_lowercase():
    text = "the cat the dog The bird\nthe cat\n"
    tok = fit_tokenizer("word", [text], task="lm", vocab_size=4)
    assert tok.symbols == [UNK, EOS, "the", "cat"]
    assert tok.encode("the dog\n").tolist() == [2, 0, 1]
    tok = fit_tokenizer("word", [text], task="lm", min_freq=2)
    assert tok.symbols == [UNK, EOS, "the", "cat"]
    tok = fit_tokenizer("word", [text], task="lm", lowercase=True)
    assert "The" not in tok.symbols and tok.encode("THE")[0] == tok.token_to_id("the")
    # The PTB files contain <unk> itself: it must map to the special id, not a word of its own.
    tok = fit_tokenizer("word", ["a <unk> b <unk>\n"], task="lm")
    assert tok.symbols.count(UNK) == 1 and tok.encode("<unk>").tolist() == [0]


def test_classification_specials_pad_is_zero():
    for kind in ("char", "word", "bpe"):
        tok = fit_tokenizer(kind, ["good film", "bad film"], task="classify", vocab_size=300)
        assert (tok.pad_id, tok.unk_id, tok.eos_id) == (0, 1, None), kind
        assert 0 not in tok.encode("good film").tolist()
    tok = fit_tokenizer("word", ["good film", "bad film"], task="classify")
    good, film = tok.token_to_id("good"), tok.token_to_id("film")
    assert tok.encode("good awful\nfilm").tolist() == [good, 1, film]  # no <eos> in classification
    assert tok.decode([0, good, 0]) == "good"  # padding is dropped


def test_bpe_round_trips_any_text_and_respects_vocab_size():
    train = [TEXT * 3]
    tok = fit_tokenizer("bpe", train, task="lm", vocab_size=300)
    assert tok.vocab_size == 300 and tok.unk_id == 0
    for text in (TEXT, "unseen: héllo wörld 🙂 \t tabs\r\n  and spaces  ", ""):
        ids = tok.encode(text)
        assert ids.dtype == np.int32
        assert tok.decode(ids) == text  # byte-level: no <unk>, exact
        assert tok.unk_id not in ids.tolist()
    assert len(tok.encode(TEXT)) < len(TEXT)  # merges were learned
    # Line-by-line encoding equals the library's whole-text encoding.
    assert tok.encode(TEXT).tolist() == tok.hf.encode(TEXT, add_special_tokens=False).ids
    assert np.array_equal(reload(tok).encode(TEXT), tok.encode(TEXT))
    batch = tok.encode_batch(["First Citizen", "speak"])
    assert [b.tolist() for b in batch] == [
        tok.encode("First Citizen").tolist(),
        tok.encode("speak").tolist(),
    ]


def test_bpe_lowercase_and_errors():
    tok = fit_tokenizer("bpe", [TEXT], task="lm", vocab_size=300, lowercase=True)
    assert tok.decode(tok.encode("SPEAK")) == "speak"
    with pytest.raises(UserError, match="data.vocab_size=100"):
        fit_tokenizer("bpe", [TEXT], task="lm", vocab_size=100)
    with pytest.raises(UserError, match="data.vocab_size=2"):
        fit_tokenizer("word", [TEXT], task="lm", vocab_size=2)
    with pytest.raises(UserError, match="data.tokenizer='sentencepiece'"):
        fit_tokenizer("sentencepiece", [TEXT], task="lm")


def test_vocabulary_is_deterministic():
    a = fit_tokenizer("word", [TEXT], task="lm").to_json()
    b = fit_tokenizer("word", [TEXT], task="lm").to_json()
    assert a == b
    a = fit_tokenizer("bpe", [TEXT], task="lm", vocab_size=300).to_json()
    b = fit_tokenizer("bpe", [TEXT], task="lm", vocab_size=300).to_json()
    assert a == b
