"""Labelled-text layouts (one file per class, one folder per class, label-prefixed lines), text
encodings, and stratified k-fold cross-validation.

Checked against independent readings of the same files (Python's own decoding and line
splitting, ``sklearn.datasets.load_files``), scikit-learn's ``StratifiedKFold`` fold sizes per
class, and the partition properties the protocol needs; the shared corpora (MR, TREC) when
``../shared/data`` is there.
"""

import collections
import pathlib

import numpy as np
import pytest
from sklearn.datasets import load_files
from sklearn.model_selection import StratifiedKFold

from seqjax.data import folds as folds_lib
from seqjax.data import load_classification, load_labelled
from seqjax.data.pipeline import labelled_rows
from seqjax.errors import UserError
from seqjax.train import config as config_lib
from seqjax.train.cmdline import load_config_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
LATIN1 = "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e na\u00efve"  # bytes 0xe9 ... in Latin-1


def _lines(path: pathlib.Path, encoding="utf-8") -> list[str]:
    """The non-blank lines of a file, read by Python (universal newlines)."""
    return [ln for ln in path.read_text(encoding=encoding).splitlines() if ln.strip()]


def _class_file(path, texts, *, newline="\n", encoding="utf-8"):
    path.write_bytes(newline.join(texts).encode(encoding) + newline.encode())
    return path


def test_one_file_per_class_reads_every_line_with_its_files_label(tmp_path):
    pos = _class_file(tmp_path / "a.pos", ["a gorgeous film", "", "  witty  ", "superb"])
    neg = _class_file(tmp_path / "b.neg", ["dull", "boring and long"], newline="\r\n")
    more = _class_file(tmp_path / "c.neg", ["awful"])
    cfg = {"class_files": f"positive={pos},negative={tmp_path}/*.neg", "validation_fraction": 0}
    rows, where = load_labelled(cfg)
    expected = [(t, "positive") for t in _lines(pos)]
    expected += [(t, "negative") for t in _lines(neg) + _lines(more)]  # the glob, sorted
    assert list(zip(rows["train"].texts, rows["train"].labels)) == expected
    assert "positive=" in where["train"] and str(more) in where["train"]
    data = load_classification({**cfg, "cache_dir": str(tmp_path / "cache")})
    assert data.labels == ("negative", "positive")  # sorted, as for any labels
    assert data.metadata["splits"]["train"]["label_counts"] == {"negative": 3, "positive": 3}


@pytest.mark.parametrize(
    "value,match",
    [
        ("positive:a.txt", r"item 'positive:a.txt' is not LABEL=PATH"),
        ("positive=a.txt", r"needs at least two classes"),
        ("pos=a.txt,pos=b.txt", r"names a label twice"),
    ],
)
def test_class_files_syntax_is_checked_before_data_loads(value, match):
    c = load_config_file(str(ROOT / "configs/classify/mr.py:smoke"))
    c.data.class_files = value
    with pytest.raises(UserError, match=rf"data.class_files='.*': {match}"):
        config_lib.validate(c)


def test_class_files_errors_name_the_value(tmp_path):
    a = _class_file(tmp_path / "a.txt", ["good"])
    empty = _class_file(tmp_path / "e.txt", ["", "  "])
    with pytest.raises(UserError, match=r"no such file '.*missing.txt'"):
        load_labelled({"class_files": f"x={a},y={tmp_path}/missing.txt"})
    with pytest.raises(UserError, match=r"the files of class 'y' .* hold no text"):
        load_labelled({"class_files": f"x={a},y={empty}"})
    with pytest.raises(UserError, match=r"is a folder; give the file of class 'y'"):
        load_labelled({"class_files": f"x={a},y={tmp_path}"})


def test_one_folder_per_class_matches_sklearn_load_files(tmp_path):
    rng = np.random.default_rng(0)
    words = ["good", "bad", "plot", "actor", "scene", "caf\u00e9"]
    for split, n in (("train", 7), ("test", 3)):
        for label in ("neg", "pos", "unsup"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(n):  # multi-line documents, Latin-1
                text = " ".join(rng.choice(words, 5)) + "\n" + " ".join(rng.choice(words, 3))
                (folder / f"{i}_{rng.integers(10)}.txt").write_bytes(text.encode("latin-1"))
    (tmp_path / "train" / "pos" / ".DS_Store").write_bytes(b"\x00\x01")  # hidden: skipped
    (tmp_path / "train" / "README").write_text("not a class")  # a file beside the classes
    cfg = {
        "train_files": str(tmp_path / "train"),  # a folder: the folders layout (data.format auto)
        "test_files": str(tmp_path / "test"),
        "labels": "neg,pos",  # as load_files(categories=...): unsup is left out
        "encoding": "latin-1",
        "validation_fraction": 0,
    }
    rows, _ = load_labelled(cfg)
    for split in ("train", "test"):
        (tmp_path / split / "pos" / ".DS_Store").unlink(missing_ok=True)
        ref = load_files(
            tmp_path / split, categories=["neg", "pos"], encoding="latin-1", shuffle=False
        )
        assert rows[split].texts == ref.data
        assert rows[split].labels == [ref.target_names[t] for t in ref.target]
    everything, _ = load_labelled({**cfg, "labels": ""})  # every subfolder is a class
    assert set(everything["train"].labels) == {"neg", "pos", "unsup"}


def test_folders_layout_errors(tmp_path):
    (tmp_path / "c" / "pos").mkdir(parents=True)
    (tmp_path / "c" / "pos" / "1.txt").write_text("good")
    (tmp_path / "c" / "neg").mkdir()
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "1.txt").write_text("good")
    with pytest.raises(UserError, match=r"class folder '.*neg' holds no files"):
        load_labelled({"train_files": str(tmp_path / "c"), "validation_fraction": 0})
    with pytest.raises(UserError, match=r"has no subfolder 'mixed' for that label"):
        load_labelled({"train_files": str(tmp_path / "c"), "labels": "pos,mixed"})
    with pytest.raises(UserError, match=r"'.*flat' has no subfolders"):
        load_labelled({"train_files": str(flat)})
    with pytest.raises(UserError, match=r"is a folder; set data.format=folders"):
        load_labelled({"train_files": str(tmp_path / "c"), "format": "csv"})


TREC_LINES = [
    "NUM:dist How far is it from Denver to Aspen ?",
    "LOC:city What county is Modesto , California in ?",
    "HUM:ind Who was Galileo ?",
    "",
    "NUM:date When did Hawaii become a state ?",
    "DESC:def What is an atom ?",
]


def test_label_prefixed_lines_coarse_and_full(tmp_path):
    path = _class_file(tmp_path / "train.label", TREC_LINES, encoding="latin-1")
    cfg = {"train_files": str(path), "format": "prefixed", "validation_fraction": 0}
    rows, _ = load_labelled(cfg)
    expected = [ln.split(None, 1) for ln in _lines(path)]  # Python's own split
    assert rows["train"].labels == [label for label, _ in expected]
    assert rows["train"].texts == [text for _, text in expected]
    coarse = labelled_rows({**cfg, "label_level": "coarse", "cache_dir": ""})
    assert coarse.names == ("DESC", "HUM", "LOC", "NUM")
    got = [coarse.names[i] for i in coarse.labels["train"]]
    assert got == [label.split(":")[0] for label, _ in expected]
    full = labelled_rows({**cfg, "cache_dir": ""})
    assert len(full.names) == 5


def test_label_regex_reads_other_prefixes(tmp_path):
    path = _class_file(tmp_path / "ft.txt", ["__label__pos\tgreat stuff", "__label__neg\tmeh"])
    cfg = {
        "train_files": str(path),
        "format": "prefixed",
        "label_regex": r"__label__(?P<label>\w+)\t(?P<text>.*)",  # fastText's layout
        "validation_fraction": 0,
    }
    rows, _ = load_labelled(cfg)
    assert rows["train"].labels == ["pos", "neg"] and rows["train"].texts == ["great stuff", "meh"]
    with pytest.raises(UserError, match=r"ft.txt, line 1: .* does not match data.label_regex"):
        load_labelled({**cfg, "label_regex": r"(?P<label>\d+) (?P<text>.*)"})
    c = load_config_file(str(ROOT / "configs/classify/trec.py:smoke"))
    c.data.label_regex = r"(?P<label>\S+) (.*)"
    with pytest.raises(UserError, match=r"data.label_regex=.*needs the named groups"):
        config_lib.validate(c)


def test_latin1_is_an_error_in_utf8_and_reads_with_data_encoding(tmp_path):
    texts = [LATIN1, "plain ascii", "\u00c0 bient\u00f4t"]
    pos = _class_file(tmp_path / "p.txt", texts, encoding="latin-1")
    neg = _class_file(tmp_path / "n.txt", ["nothing special"], encoding="latin-1")
    cfg = {"class_files": f"pos={pos},neg={neg}", "validation_fraction": 0}
    with pytest.raises(UserError) as e:
        load_labelled(cfg)
    message = str(e.value)
    offset = pos.read_bytes().index(b"\xe9")
    assert f"p.txt: not valid UTF-8 at byte {offset} (line 1)" in message
    assert "set data.encoding to its encoding (e.g. latin-1)" in message and "\n" not in message
    rows, _ = load_labelled({**cfg, "encoding": "latin-1"})
    assert rows["train"].texts[:3] == _lines(pos, "latin-1") == texts
    csv = tmp_path / "t.csv"
    csv.write_bytes(f"text,label\n{LATIN1},1\nok,0\n".encode("latin-1"))
    rows, _ = load_labelled(
        {"train_files": str(csv), "encoding": "latin-1", "validation_fraction": 0}
    )
    assert rows["train"].texts == [LATIN1, "ok"]
    c = load_config_file(str(ROOT / "configs/classify/mr.py:smoke"))
    c.data.encoding = "latin-9000"
    with pytest.raises(UserError, match=r"data.encoding='latin-9000': is not a text encoding"):
        config_lib.validate(c)


def test_utf8_byte_order_mark_is_dropped(tmp_path):
    pos = tmp_path / "p.txt"
    pos.write_bytes("\ufeffgood film\nfine\n".encode())
    neg = _class_file(tmp_path / "n.txt", ["bad"])
    rows, _ = load_labelled({"class_files": f"p={pos},n={neg}", "validation_fraction": 0})
    assert rows["train"].texts[0] == "good film"


# ----------------------------------------------------------------------------- folds


def _labels(counts: dict) -> list:
    """Shuffled labels, each class first seen in sorted order (as scikit-learn orders classes)."""
    rest = [label for label, n in counts.items() for _ in range(n - 1)]
    return sorted(counts) + list(np.random.default_rng(1).permutation(rest))


def _per_fold(y: np.ndarray, folds) -> list:
    return sorted(sorted(collections.Counter(y[f].tolist()).items()) for f in folds)


@pytest.mark.parametrize("k", [2, 3, 10])
def test_folds_have_stratified_kfolds_class_counts(k):
    y = np.array(_labels({"neg": 53, "pos": 24, "neu": 11}))
    assigned = folds_lib.assign_folds(y, k, seed=0)
    ours = _per_fold(y, [assigned == f for f in range(k)])
    theirs = _per_fold(y, [test for _, test in StratifiedKFold(k).split(np.zeros(len(y)), y)])
    assert ours == theirs  # the same class counts in each fold as scikit-learn's
    for label, n in collections.Counter(y.tolist()).items():  # each class within one of n / k
        per_fold = np.bincount(assigned[y == label], minlength=k)
        assert per_fold.max() - per_fold.min() <= 1 and per_fold.sum() == n
    sizes = np.bincount(assigned, minlength=k)
    assert sizes.max() - sizes.min() <= 1


def test_folds_are_seeded():
    labels = _labels({"a": 40, "b": 40})
    same = folds_lib.assign_folds(labels, 5, seed=3)
    assert np.array_equal(same, folds_lib.assign_folds(labels, 5, seed=3))
    assert not np.array_equal(same, folds_lib.assign_folds(labels, 5, seed=4))


def test_stratified_take_keeps_each_class_share():
    labels = _labels({"a": 97, "b": 31, "c": 5})
    take = folds_lib.stratified_take(labels, 0.2, seed=0)
    assert take.sum() == round(133 * 0.2)
    y = np.array(labels)
    for label, n in collections.Counter(labels).items():
        assert abs(take[y == label].sum() - n * 0.2) <= 1


def _corpus(tmp_path, n_pos=37, n_neg=23):
    rng = np.random.default_rng(0)
    pos = [f"good {i} " + " ".join(rng.choice(["film", "plot", "cast"], 3)) for i in range(n_pos)]
    neg = [f"bad {i} " + " ".join(rng.choice(["film", "plot", "cast"], 3)) for i in range(n_neg)]
    p = _class_file(tmp_path / "pos.txt", pos)
    n = _class_file(tmp_path / "neg.txt", neg)
    return f"positive={p},negative={n}", {t: "positive" for t in pos} | {t: "negative" for t in neg}


def test_folds_partition_the_data_and_validation_comes_from_the_other_folds(tmp_path):
    class_files, truth = _corpus(tmp_path)
    seen_test = collections.Counter()
    for fold in range(5):
        cfg = {"class_files": class_files, "folds": 5, "fold": fold, "validation_fraction": 0.25}
        rows, where = load_labelled(cfg)
        parts = {s: rows[s].texts for s in ("train", "validation", "test")}
        for s, texts in parts.items():
            assert [truth[t] for t in texts] == rows[s].labels  # every text keeps its label
        everything = [t for texts in parts.values() for t in texts]
        assert sorted(everything) == sorted(truth)  # the three splits partition the data
        assert len(parts["test"]) == 12 and len(parts["validation"]) == 12  # 60 / 5; 25% of 48
        for s in ("test", "validation"):  # stratified: 37:23 in each
            pos = rows[s].labels.count("positive")
            assert abs(pos - 37 / 60 * len(parts[s])) <= 1
        assert f"fold {fold} of 5" in where["test"]
        seen_test.update(parts["test"])
    assert seen_test == collections.Counter(list(truth))  # every row is tested exactly once


def test_fold_with_its_own_validation_file_trains_on_all_other_folds(tmp_path):
    class_files, truth = _corpus(tmp_path)
    val = _class_file(tmp_path / "v.pos", ["good extra"])
    val_neg = _class_file(tmp_path / "v.neg", ["bad extra"])
    rows, _ = load_labelled(
        {
            "class_files": class_files,
            "validation_files": f"positive={val},negative={val_neg}",  # the same layout
            "folds": 5,
            "fold": 1,
        }
    )
    assert rows["validation"].texts == ["good extra", "bad extra"]  # class by class, as given
    assert len(rows["train"].texts) == 48 and len(rows["test"].texts) == 12


def test_the_cache_keeps_folds_apart(tmp_path):
    class_files, _ = _corpus(tmp_path)
    cfg = {"class_files": class_files, "folds": 3, "cache_dir": str(tmp_path / "cache")}
    digests = [
        load_classification({**cfg, "fold": f}).metadata["splits"]["test"]["rows_digest"]
        for f in (0, 1, 0)
    ]
    assert digests[0] != digests[1] and digests[0] == digests[2]
    assert len(list((tmp_path / "cache").iterdir())) == 2


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"data.folds": 1}, r"data.folds=1: must be 0 \(off\) or at least 2"),
        ({"data.folds": 5, "data.fold": 5}, r"data.fold=5: must be below data.folds=5"),
        ({"data.folds": 5, "data.test_fraction": 0.1}, r"data.test_fraction=0.1: must be 0"),
        ({"data.folds": 5, "data.test_files": "t.csv"}, r"data.test_files='t.csv': must be ''"),
        ({"data.train_files": "t.csv"}, r"data.train_files='t.csv': must be '' when"),
    ],
)
def test_fold_and_layout_rules_are_checked_before_data_loads(changes, match):
    c = load_config_file(str(ROOT / "configs/classify/mr.py:smoke"))
    for key, value in changes.items():
        parent, _, leaf = key.rpartition(".")
        config_lib.lookup(c, parent)[leaf] = value
    with pytest.raises(UserError, match=match):
        config_lib.validate(c)


def test_too_few_rows_for_the_folds_is_one_clear_line(tmp_path):
    a = _class_file(tmp_path / "a.txt", ["good", "fine", "great"])
    b = _class_file(tmp_path / "b.txt", ["bad", "awful"])
    with pytest.raises(UserError, match=r"data.folds=3: a class of .* has only 2 rows"):
        load_labelled({"class_files": f"a={a},b={b}", "folds": 3})


# ----------------------------------------------------------------------------- shared corpora


def test_mr_ten_folds_on_the_shared_files(shared_data):
    cfg = load_config_file(str(ROOT / "configs/classify/mr.py:fold=3")).data
    everything, _ = load_labelled({**cfg, "folds": 0, "validation_fraction": 0})
    labels = everything["train"].labels
    assert collections.Counter(labels) == {"positive": 5331, "negative": 5331}
    assigned = folds_lib.assign_folds(labels, 10, seed=0)
    assert sorted(np.bincount(assigned).tolist()) == [1066] * 8 + [1067] * 2
    rows, _ = load_labelled(cfg)
    test = collections.Counter(rows["test"].texts)
    expected = collections.Counter(np.array(everything["train"].texts, dtype=object)[assigned == 3])
    assert test == expected  # the config's test split is fold 3 of that partition
    assert sum(len(rows[s].texts) for s in rows) == 10662


def test_trec_is_latin1_with_six_coarse_classes(shared_data):
    c = load_config_file(str(ROOT / "configs/classify/trec.py"))
    with pytest.raises(UserError, match=r"train_5500.label: not valid UTF-8 at byte \d+"):
        load_labelled({**c.data, "encoding": "utf-8"})
    rows = labelled_rows({**c.data, "cache_dir": ""})
    assert rows.names == ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
    assert len(rows.texts["train"]) + len(rows.texts["validation"]) == 5452
    assert len(rows.texts["test"]) == 500
    assert any("sister\u00f0city" in t for t in rows.texts["train"] + rows.texts["validation"])
    fine = load_config_file(str(ROOT / "configs/classify/trec.py:fine"))
    assert len(labelled_rows({**fine.data, "cache_dir": ""}).names) == 50
