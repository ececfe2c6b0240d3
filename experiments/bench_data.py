"""Data-layer figures quoted in ``seqjax/data`` docstrings: load times and padding.

Run from the repository root (needs ``../shared/data``)::

    PYTHONPATH=$PWD python experiments/bench_data.py

It loads Tiny Shakespeare (char, word, bpe) and SST-2 (word) twice each into a fresh cache
folder (first: read + fit + encode; second: the cache), and compares the padding of one epoch of
SST-2 training batches (B=64) under a plain shuffle and under ``classify_batch``'s bucketing.
"""

import pathlib
import tempfile
import time

import numpy as np

import seqjax.data as D

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


def timed(fn, cfg):
    start = time.perf_counter()
    out = fn(cfg)
    return out, time.perf_counter() - start


def padding_fraction(batches):
    pad = sum(b["tokens"].size - b["lengths"].sum() for b in batches)
    return pad / sum(b["tokens"].size for b in batches)


def main():
    with tempfile.TemporaryDirectory(prefix="seqjax-bench-") as cache:
        run(cache)


def run(cache):
    shakespeare = str(SHARED / "tinyshakespeare" / "input.txt")
    for kind in ("char", "word", "bpe"):
        cfg = {"train_files": shakespeare, "tokenizer": kind, "cache_dir": cache}
        data, first = timed(D.load_lm, cfg)
        _, second = timed(D.load_lm, cfg)
        tokens = {s: len(a) for s, a in data.splits.items()}
        print(
            f"tinyshakespeare {kind:4s} vocab {data.tokenizer.vocab_size:6d} tokens {tokens} "
            f"first load {first:.2f} s, cached {second:.3f} s"
        )
    cfg = {
        "train_files": str(SHARED / "sst2" / "train.tsv"),
        "validation_files": str(SHARED / "sst2" / "dev.tsv"),
        "text_column": "sentence,validation=content",
        "tokenizer": "word",
        "cache_dir": cache,
    }
    data, first = timed(D.load_classification, cfg)
    _, second = timed(D.load_classification, cfg)
    print(
        f"sst2 word vocab {data.tokenizer.vocab_size} first load {first:.2f} s, "
        f"cached {second:.3f} s"
    )
    train, B = data.splits["train"], 64
    steps = D.classify_steps_per_epoch(train, B)
    for multiple in (1, 8):
        perm = np.random.default_rng(0).permutation(train.num_examples)
        plain = [D.gather_batch(train, perm[i : i + B], multiple) for i in range(0, len(perm), B)]
        bucketed = [D.classify_batch(train, B, 0, s, pad_multiple=multiple) for s in range(steps)]
        start = time.perf_counter()
        for s in range(steps):
            D.classify_batch(train, B, 0, s, pad_multiple=multiple)
        per_batch = (time.perf_counter() - start) / steps
        shapes = len({b["tokens"].shape for b in bucketed})
        print(
            f"sst2 train B={B} pad_multiple={multiple}: padding {padding_fraction(plain):.1%} "
            f"(plain shuffle) vs {padding_fraction(bucketed):.1%} (bucketed), {shapes} distinct "
            f"batch shapes; {per_batch * 1e3:.2f} ms per batch"
        )


if __name__ == "__main__":
    main()
