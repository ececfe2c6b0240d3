"""Sources: formats, columns per split, labels, fractions, the embedded corpus, and user errors."""

import json

import numpy as np
import pytest

from seqjax.data import embedded_corpus, load_classification, load_labelled, load_text, sources
from seqjax.data.sources import join_texts
from seqjax.errors import UserError

ROWS = [
    ("a fine, moving film", "positive"),
    ("dull and far too long", "negative"),
    ("it is a film", "neutral"),
    ("the best of the year", "positive"),
    ("never again", "negative"),
]
NAMES = ["negative", "neutral", "positive"]
BAD_CSV = b"text,label\nok,1\nh\xe9llo,0\n"  # Latin-1 "é": not UTF-8


def write(path, text, newline="\n"):
    path.write_bytes(text.replace("\n", newline).encode())
    return str(path)


def labelled(tmp_path, **cfg):
    rows, _ = load_labelled({"cache_dir": str(tmp_path / "cache"), **cfg})
    return rows


def check_rows(rows, expected):
    assert rows.texts == [t for t, _ in expected]
    assert [str(y) for y in rows.labels] == [str(y) for _, y in expected]


def test_csv_with_string_labels_three_classes(tmp_path):
    lines = ["text,label"] + [f'"{t}",{y}' for t, y in ROWS]
    path = write(tmp_path / "train.csv", "\n".join(lines) + "\n")
    rows = labelled(tmp_path, train_files=path, validation_fraction=0)
    check_rows(rows["train"], ROWS)
    data = load_classification(
        {"train_files": path, "validation_fraction": 0, "tokenizer": "word", "cache_dir": ""}
    )
    assert data.labels == tuple(NAMES)  # inferred: sorted
    ids = {n: i for i, n in enumerate(NAMES)}
    assert data.splits["train"].labels.tolist() == [ids[y] for _, y in ROWS]
    data = load_classification(
        {
            "train_files": path,
            "validation_fraction": 0,
            "labels": "positive,negative,neutral",
            "cache_dir": "",
        }
    )
    order = {"positive": 0, "negative": 1, "neutral": 2}
    assert data.splits["train"].labels.tolist() == [order[y] for _, y in ROWS]
    assert data.metadata["splits"]["train"]["label_counts"] == {
        "positive": 2,
        "negative": 2,
        "neutral": 1,
    }


def test_tsv_with_crlf_and_per_split_columns(tmp_path):
    train = write(
        tmp_path / "train.tsv",
        "label\tsentence\n" + "".join(f"{i % 2}\t{t}\n" for i, (t, _) in enumerate(ROWS)),
        newline="\r\n",
    )
    dev = write(tmp_path / "dev.tsv", 'label\tcontent\n1\tsays "hello" , twice\n0\tno\n')
    cfg = dict(train_files=train, validation_files=dev, text_column="sentence,validation=content")
    rows = labelled(tmp_path, **cfg)
    check_rows(rows["train"], [(t, i % 2) for i, (t, _) in enumerate(ROWS)])  # no stray "\r"
    check_rows(rows["validation"], [('says "hello" , twice', 1), ("no", 0)])  # quotes kept
    rows = labelled(
        tmp_path, **{**cfg, "text_column": {"train": "sentence", "validation": "content"}}
    )
    check_rows(rows["validation"], [('says "hello" , twice', 1), ("no", 0)])
    with pytest.raises(
        UserError, match=r"no column 'sentence' \(the columns are 'label', 'content'\)"
    ):
        labelled(tmp_path, train_files=train, validation_files=dev, text_column="sentence")


def test_jsonl_json_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [{"review": t, "stars": i + 1} for i, (t, _) in enumerate(ROWS)]
    jsonl = write(tmp_path / "a.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    js = write(tmp_path / "a.json", json.dumps(records))
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "a.parquet")
    expected = [(r["review"], r["stars"]) for r in records]
    for path in (jsonl, js, str(tmp_path / "a.parquet")):
        rows = labelled(
            tmp_path,
            train_files=path,
            text_column="review",
            label_column="stars",
            validation_fraction=0,
        )
        check_rows(rows["train"], expected)
    data = load_classification(
        {
            "train_files": jsonl,
            "text_column": "review",
            "label_column": "stars",
            "labels": [5, 4, 3, 2, 1],
            "validation_fraction": 0,
            "cache_dir": "",
        }
    )
    assert data.splits["train"].labels.tolist() == [4, 3, 2, 1, 0]  # integer labels by value


def test_integer_labels_match_by_value(tmp_path):
    path = write(tmp_path / "t.csv", "text,label\na,1\nb,0\nc,1\n")
    data = load_classification(
        {"train_files": path, "labels": "0,1", "validation_fraction": 0, "cache_dir": ""}
    )
    assert data.splits["train"].labels.tolist() == [1, 0, 1]


def test_classification_fraction_split_is_a_seeded_partition(tmp_path):
    path = write(
        tmp_path / "t.csv", "text,label\n" + "".join(f"row {i},{i % 3}\n" for i in range(100))
    )
    rows = labelled(tmp_path, train_files=path, validation_fraction=0.2, test_fraction=0.1)
    sizes = {s: len(r.texts) for s, r in rows.items()}
    assert sizes == {"train": 70, "validation": 20, "test": 10}
    allrows = sorted(t for r in rows.values() for t in r.texts)
    assert allrows == sorted(f"row {i}" for i in range(100))
    for r in rows.values():  # labels stay with their texts
        assert all(int(t.split()[1]) % 3 == y for t, y in zip(r.texts, r.labels))
    again = labelled(tmp_path, train_files=path, validation_fraction=0.2, test_fraction=0.1)
    other = labelled(
        tmp_path, train_files=path, validation_fraction=0.2, test_fraction=0.1, split_seed=1
    )
    assert again["validation"].texts == rows["validation"].texts
    assert other["validation"].texts != rows["validation"].texts


def test_lm_text_fraction_split_is_contiguous_like_nanogpt(tmp_path):
    text = "".join(f"line {i} of the corpus\n" for i in range(300))
    path = write(tmp_path / "corpus.txt", text)
    texts, _ = load_text({"train_files": path})
    n = len(text)
    assert texts == {"train": text[: int(n * 0.9)], "validation": text[int(n * 0.9) :]}
    texts, _ = load_text({"train_files": path, "validation_fraction": 0.2, "test_fraction": 0.1})
    assert texts["train"] + texts["validation"] + texts["test"] == text
    assert len(texts["test"]) == n - int(n * 0.9)
    valid = write(tmp_path / "valid.txt", "held out\r\ntext\r\n")  # CRLF becomes "\n"
    texts, _ = load_text({"train_files": path, "validation_files": valid})
    assert texts == {"train": text, "validation": "held out\ntext\n"}
    texts, _ = load_text({"train_files": [path, valid], "validation_fraction": 0})
    assert texts["train"] == text + "held out\ntext\n"


def test_embedded_corpus_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from pydoc_data.topics import topics

    ds = embedded_corpus()
    assert ds["topic"] == sorted(topics)
    texts, where = load_text({"source": "embedded"})
    assert texts["train"] + texts["validation"] == join_texts([topics[k] for k in sorted(topics)])
    assert "pydoc_data" in where["train"]
    with pytest.raises(UserError, match="embedded corpus has no labels"):
        load_labelled({"source": "embedded"})
    with pytest.raises(UserError, match="data.source=embedded but data.train_files is set"):
        load_text({"source": "embedded", "train_files": "x.txt"})


def test_offline_hub_id_is_one_clear_error(monkeypatch):
    import datasets.config

    before = datasets.config.HF_HUB_OFFLINE
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as e:
        load_text({"hub_id": "seqjax-tests/no-such-dataset"})
    message = str(e.value)
    assert "'seqjax-tests/no-such-dataset'" in message and "no network" in message
    assert "data.train_files=" in message and "\n" not in message
    assert datasets.config.HF_HUB_OFFLINE == before  # the library's setting is restored


@pytest.mark.parametrize(
    "files,cfg,match",
    [
        ({}, {"train_files": "{tmp}/missing.csv"}, r"no such file '.*missing.csv'; fix the path"),
        ({"e.txt": b""}, {}, r"file '.*e.txt' is empty"),
        ({"h.csv": b"text,label\n"}, {}, r"h.csv: the data set has no rows"),
        (
            {"c.csv": b"text,label\ngood,positive\nbad,sideways\n"},
            {"labels": "negative,positive"},
            r"row 1: unknown label 'sideways'; the label set is negative, positive",
        ),
        (
            {"c.csv": b"body,label\ngood,1\n"},
            {},
            r"no column 'text' \(the columns are 'body', 'label'\); set data.text_column",
        ),
        (
            {"c.csv": b"text,y\ngood,1\n"},
            {},
            r"no column 'label' \(the columns are 'text', 'y'\); set data.label_column",
        ),
        (
            {"b.csv": BAD_CSV},
            {},
            rf"b.csv: not valid UTF-8 at byte {BAD_CSV.index(0xE9)} \(line 3\); "
            r".* set data.encoding_errors=replace",
        ),
        ({"w.csv": b"text,label\n,1\n  ,0\n"}, {}, r"w.csv: all texts are empty"),
        ({"u.dat": b"hello\n"}, {}, r"cannot tell the format of '.*u.dat'.*set data.format"),
        ({"c.csv": b"text,label\na,1\n"}, {"labels": "x"}, r"data.labels='x': needs at least two"),
        ({"c.csv": b"text,label\na,1\n"}, {"source": "web"}, r"data.source='web': unknown value"),
        (
            {"c.csv": b"text,label\na,1\nb,0\n"},
            {"validation_fraction": 0.8, "test_fraction": 0.3},
            r"validation_fraction \+ data.test_fraction = 1.1",
        ),
    ],
)
def test_user_errors(tmp_path, files, cfg, match):
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    if "train_files" not in cfg:
        cfg = {**cfg, "train_files": str(tmp_path / next(iter(files)))}
    cfg = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in cfg.items()}
    with pytest.raises(UserError, match=match):
        load_classification({"validation_fraction": 0, "cache_dir": "", **cfg})


def test_non_utf8_text_names_the_file_and_replace_reads_it(tmp_path):
    path = str(tmp_path / "bad.txt")
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 au lait\n" * 20)
    with pytest.raises(UserError, match=r"bad.txt: not valid UTF-8 at byte 3 \(line 1\)"):
        load_text({"train_files": path})
    texts, _ = load_text({"train_files": path, "encoding_errors": "replace"})
    assert texts["train"].startswith("caf\ufffd au lait\n")
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_bytes(b'{"text": "caf\xe9", "label": 1}\n{"text": "ok", "label": 0}\n')
    with pytest.raises(UserError, match=r"bad.jsonl: not valid UTF-8"):
        load_labelled({"train_files": str(jsonl), "validation_fraction": 0})
    rows, _ = load_labelled(
        {"train_files": str(jsonl), "validation_fraction": 0, "encoding_errors": "replace"}
    )
    assert rows["train"].texts == ["caf\ufffd", "ok"]


def test_empty_text_rows_become_one_unk(tmp_path):
    path = write(tmp_path / "t.csv", "text,label\ngood film,1\n,0\n")
    data = load_classification({"train_files": path, "validation_fraction": 0, "cache_dir": ""})
    split = data.splits["train"]
    assert split.lengths.tolist() == [9, 1]
    assert split.tokens[split.starts[1]] == data.tokenizer.unk_id
    assert data.metadata["splits"]["train"]["empty_texts"] == 1
    assert np.all(split.lengths >= 1)


def test_offline_env_set_after_import_makes_no_request(monkeypatch):
    """``datasets`` reads HF_HUB_OFFLINE at import; set later, it still means no network request,
    and seqjax changes no setting of the library to get there."""
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    seen = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: seen.append(a))
    with pytest.raises(UserError, match="HF_HUB_OFFLINE is set but was set after datasets"):
        load_text({"hub_id": "stanfordnlp/sst2"})
    assert seen == []
    assert not datasets.config.HF_HUB_OFFLINE and not huggingface_hub.constants.HF_HUB_OFFLINE


def test_hub_splits_and_classlabel_names(monkeypatch):
    """The hub path without a network: read_hub replaced by in-memory datasets."""
    import datasets

    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    hub = {
        "train": datasets.Dataset.from_dict(
            {"sentence": ["good", "bad", "fine", "awful"], "label": [1, 0, 1, 0]}, features
        ),
        "validation": datasets.Dataset.from_dict(
            {"sentence": ["great", "poor"], "label": [1, 0]}, features
        ),
    }
    calls = []

    def fake_read_hub(hub_id, hub_config, split, key):
        calls.append((hub_id, hub_config, split, key))
        return hub[split]

    monkeypatch.setattr(sources, "read_hub", fake_read_hub)
    cfg = {"hub_id": "stanfordnlp/sst2", "text_column": "sentence", "cache_dir": ""}
    data = load_classification(cfg)
    assert calls == [
        ("stanfordnlp/sst2", "", "train", "train_split"),
        ("stanfordnlp/sst2", "", "validation", "validation_split"),
    ]
    assert data.labels == ("neg", "pos")  # the ClassLabel's names
    assert data.splits["validation"].labels.tolist() == [1, 0]
    data = load_classification({**cfg, "labels": "pos,neg"})  # names, in another order
    assert data.splits["train"].labels.tolist() == [0, 1, 0, 1]
    data = load_classification({**cfg, "labels": "0,1"})  # or the stored ids
    assert data.splits["train"].labels.tolist() == [1, 0, 1, 0]
    with pytest.raises(
        UserError,
        match=r"\[train\], row 0: unknown label 'pos'; the label set is negative, positive",
    ):
        load_classification({**cfg, "labels": "negative,positive"})
    calls.clear()
    data = load_classification({**cfg, "validation_split": "", "validation_fraction": 0.5})
    assert calls == [("stanfordnlp/sst2", "", "train", "train_split")]  # validation carved
    assert [data.splits[s].num_examples for s in ("train", "validation")] == [2, 2]
