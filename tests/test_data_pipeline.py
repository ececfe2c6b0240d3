"""load_lm / load_classification: the cache, metadata, and the real corpora in ../shared/data."""

import json
import os

import numpy as np
import pytest

import seqjax.data
from seqjax.data import (
    classify_eval_batches,
    lm_eval_batches,
    load_classification,
    load_lm,
    pipeline,
    sources,
    tokenizer_from_json,
)


def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"the {i % 7} cat sat on mat {i % 5}\n" for i in range(400)))
    return str(path)


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_second_load_hits_the_cache(tmp_path, monkeypatch, kind):
    cfg = {
        "train_files": corpus(tmp_path),
        "tokenizer": kind,
        "vocab_size": 300 if kind == "bpe" else 0,
        "cache_dir": str(tmp_path / "cache"),
    }
    first = load_lm(cfg)
    assert sorted(os.listdir(tmp_path / "cache")) == [first.metadata["cache_entry"]]  # no tmp left

    def must_not_run(*args, **kwargs):
        raise AssertionError("re-read or re-tokenised despite the cache")

    monkeypatch.setattr(pipeline, "fit_tokenizer", must_not_run)
    monkeypatch.setattr(sources, "load_text", must_not_run)
    second = load_lm(cfg)
    for split in first.splits:
        np.testing.assert_array_equal(first.splits[split], second.splits[split])
    assert second.tokenizer.to_json() == first.tokenizer.to_json()
    assert second.metadata == first.metadata
    with pytest.raises(AssertionError, match="despite the cache"):  # other settings: a miss
        load_lm({**cfg, "lowercase": True})
    os.utime(cfg["train_files"], ns=(0, 0))  # the file changed (mtime): a miss
    with pytest.raises(AssertionError, match="despite the cache"):
        load_lm(cfg)


@pytest.mark.parametrize("damage", ["truncate", "alter"])
def test_a_damaged_cache_entry_is_never_loaded_but_rebuilt(tmp_path, damage):
    """A truncated file fails to parse; an altered one would load silently: both are caught by
    the checksum, warned about, and rebuilt from the source."""
    cfg = {"train_files": corpus(tmp_path), "tokenizer": "char", "cache_dir": str(tmp_path / "c")}
    first = load_lm(cfg)
    folder = tmp_path / "c" / first.metadata["cache_entry"]
    target = sorted(folder.glob("*.npy"))[0]
    raw = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(raw[: len(raw) // 2])
    else:  # flip one byte of the data (the .npy header stays valid)
        target.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.warns(UserWarning, match="damaged data cache entry"):
        second = load_lm(cfg)
    for split in first.splits:
        np.testing.assert_array_equal(first.splits[split], second.splits[split])
    assert target.read_bytes() == raw  # rebuilt whole
    load_lm(cfg)  # and now a clean hit, no warning (warnings are errors in this suite)


def test_classification_cache_hit_and_max_length_applies_after_it(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_text(
        "text,label\n" + "".join(f"{'word ' * (i % 9 + 1)},{i % 2}\n" for i in range(60))
    )
    cfg = {"train_files": str(path), "tokenizer": "word", "cache_dir": str(tmp_path / "c")}
    first = load_classification(cfg)
    monkeypatch.setattr(pipeline, "fit_tokenizer", lambda *a, **k: 1 / 0)
    short = load_classification({**cfg, "max_length": 4})  # cache hit: no tokenizer fit
    for split in first.splits:
        a, b = first.splits[split], short.splits[split]
        np.testing.assert_array_equal(b.lengths, np.minimum(a.lengths, 4))
        np.testing.assert_array_equal(a.labels, b.labels)


def test_metadata_is_json_and_restores_the_tokenizer(tmp_path):
    data = load_lm({"train_files": corpus(tmp_path), "tokenizer": "word", "cache_dir": ""})
    meta = json.loads(json.dumps(data.metadata))
    tok = tokenizer_from_json(meta["tokenizer"])
    np.testing.assert_array_equal(tok.encode("the 3 cat\n"), data.tokenizer.encode("the 3 cat\n"))
    assert meta["vocab_size"] == tok.vocab_size
    assert {s: v["tokens"] for s, v in meta["splits"].items()} == {
        s: len(a) for s, a in data.splits.items()
    }


def test_defaults_fit_an_ml_collections_config(tmp_path):
    import ml_collections

    cfg = ml_collections.ConfigDict(seqjax.data.DEFAULTS)
    cfg.train_files = corpus(tmp_path)
    cfg.cache_dir = ""
    data = load_lm(cfg)
    assert set(data.splits) == {"train", "validation"}
    assert isinstance(data.tokenizer, seqjax.data.CharTokenizer)


def test_quickstart_corpus_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = load_lm({"cache_dir": ""})  # the defaults: embedded corpus, char level
    text = sources.join_texts(list(sources.embedded_corpus()["text"]))
    assert sum(len(s) for s in data.splits.values()) == len(text)
    assert data.tokenizer.decode(data.splits["train"]) == text[: int(len(text) * 0.9)]


def test_tiny_shakespeare(shared_data, tmp_path):
    path = shared_data / "tinyshakespeare" / "input.txt"
    text = path.read_text()
    assert len(text) == 1_115_394 and len(set(text)) == 65
    data = load_lm({"train_files": str(path), "tokenizer": "char", "cache_dir": ""})
    n = int(len(text) * 0.9)  # nanoGPT's split
    assert [len(data.splits[s]) for s in ("train", "validation")] == [n, len(text) - n]
    assert data.tokenizer.vocab_size == 65 + 1  # the 65 characters and <unk>
    assert data.tokenizer.symbols[1:] == sorted(set(text))
    assert data.tokenizer.decode(data.splits["validation"]) == text[n:]
    assert data.tokenizer.unk_id not in data.splits["validation"]
    pairs = sum(b["mask"].sum() for b in lm_eval_batches(data.splits["validation"], 16, 256))
    assert pairs == len(text) - n - 1


def test_sst2(shared_data):
    cfg = {
        "train_files": str(shared_data / "sst2" / "train.tsv"),
        "validation_files": str(shared_data / "sst2" / "dev.tsv"),
        "text_column": "sentence,validation=content",
        "labels": "0,1",
        "tokenizer": "word",
        "cache_dir": "",
    }
    data = load_classification(cfg)
    train, dev = data.splits["train"], data.splits["validation"]
    assert (train.num_examples, dev.num_examples) == (67_349, 872)
    assert np.bincount(train.labels).tolist() == [29_780, 37_569]
    assert np.bincount(dev.labels).tolist() == [428, 444]
    assert data.metadata["splits"]["validation"]["label_counts"] == {"0": 428, "1": 444}
    first = data.tokenizer.decode(dev.tokens[dev.starts[0] : dev.starts[0] + dev.lengths[0]])
    assert first == "one long string of cliches ."
    seen = np.concatenate([b["index"] for b in classify_eval_batches(dev, 128)])
    assert sorted(seen.tolist()) == list(range(872))
