"""The config schema: every key exists, is documented and is overridable; errors come from it and
name keys that exist; ``seqjax config show``; no import cycles; the harness's file writer."""

import ast
import os
import pathlib
import re
import stat

import pytest

from seqjax import cli, schema
from seqjax.errors import UserError
from seqjax.train import config as config_lib
from seqjax.train import files
from seqjax.train.cmdline import load_config_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIGS = sorted(  # the config files (a folder's shared module has no get_config)
    p.relative_to(ROOT).as_posix()
    for p in (ROOT / "configs").rglob("*.py")
    if "def get_config" in p.read_text()
)
TASKS = ("synthetic", "lm", "classify")


@pytest.mark.parametrize("path", CONFIGS)
def test_every_config_file_holds_every_field_of_its_task(path):
    """Config files start from the schema defaults: every key exists, so every key can be set
    with --config.KEY=VALUE (ml_collections refuses keys a locked config does not have)."""
    c = load_config_file(str(ROOT / path))
    flat = config_lib.flatten(config_lib.to_dict(c))
    flat = {k: v for k, v in flat.items() if k.split(".")[0] not in config_lib.EXTRA_GROUPS}
    assert set(flat) == set(config_lib.fields(c.task)), path


@pytest.mark.parametrize("task", TASKS)
def test_every_field_has_a_doc_and_a_valid_default(task):
    for key, f in config_lib.fields(task).items():
        assert f.doc.strip() and "\n" not in f.doc, key
        assert f.kind in schema.KINDS, key
        assert schema.problem(f, f.default) is None, (key, f.default)
    config_lib.check(config_lib.defaults(task))


def test_cell_options_are_the_factories_own_defaults():
    """One config key per factory option, with the factory's default: a factory that gains an
    option without a schema entry fails here (and that option could not be set from a config)."""
    from seqjax import cells
    from seqjax.models import common

    for name, factory in cells._FACTORIES.items():
        for option, default in common.cell_options(factory).items():
            assert option in common.CELL_OPTIONS, f"{name}: option {option!r} is not in the schema"
            if option in common.PER_CELL:  # None in a config keeps the factory's own default
                assert common.CELL_OPTIONS[option].default is None
                continue
            assert common.CELL_OPTIONS[option].default == default, (name, option)


def test_a_per_cell_default_reaches_the_factory():
    from seqjax.models import build_cell

    base = {k.split(".", 1)[1]: f.default for k, f in config_lib.fields("synthetic").items()
            if k.startswith("model.")}  # fmt: skip
    slstm = build_cell({**base, "cell": "slstm", "hidden_size": 4})
    import jax

    params = slstm.init(jax.random.key(0), 3)
    assert all(float(abs(b).max()) == 0 for b in slstm.recurrent_blocks(params).values())
    lstm = build_cell({**base, "cell": "lstm", "hidden_size": 4, "recurrent_init": "identity"})
    w_h = lstm.init(jax.random.key(0), 3)["w_h"]
    assert float(w_h[:, :4].sum()) == 4.0  # the configured initialiser, not the default


@pytest.mark.parametrize(
    "key, value, message",
    [
        (
            "model.cel",
            "gru",
            r"config key model.cel: not a field of task 'synthetic' \(did you mean",
        ),
        (
            "optim.clip",
            "l2",
            r"^optim.clip='l2': choose one of none, global_norm, value, adaptive$",
        ),
        ("train.keep", 0, r"^train.keep=0: must be a positive integer$"),
        ("model.r_min", 0.9, r"^model.r_min=0.9: must be <= model.r_max=0.5$"),
        ("train.early_stop_patience", -1, r"must be a non-negative integer \(0: off\)$"),
    ],
)
def test_validation_names_the_key_the_value_and_what_it_accepts(key, value, message):
    c = config_lib.to_dict(load_config_file(str(ROOT / "configs/synthetic/adding.py:smoke")))
    c["model"]["r_max"] = 0.5
    parent, _, leaf = key.rpartition(".")
    node = c
    for part in parent.split("."):
        node = node[part]
    node[leaf] = value
    with pytest.raises(UserError, match=message):
        config_lib.validate(c)


def test_resolve_fills_what_an_old_checkpoint_lacks_with_the_defaults():
    saved = config_lib.to_dict(load_config_file(str(ROOT / "configs/sentiment/sst2.py:smoke")))
    del saved["train"]["adversarial_eps"], saved["model"]["compute_dtype"]
    c = config_lib.validate(saved)
    assert c.train.adversarial_eps == 0.0 and c.model.compute_dtype == "float32"
    assert config_lib.experiment_diff(saved, c) == []


def _message_strings(tree):
    """The literal text of every ``UserError(...)`` and ``warnings.warn(...)`` message."""
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
        if name not in ("UserError", "warn"):
            continue
        for node in ast.walk(call):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                yield node.value
            elif isinstance(node, ast.JoinedStr):  # an f-string: its literal parts, with holes
                yield "".join(v.value if isinstance(v, ast.Constant) else "\0" for v in node.values)


SUGGESTION = re.compile(
    r"(?:\bset |--config\.|\bgive |\bor |\braise |\blower |\bkeep |\buse )"
    r"((?:data|model|optim|train|sample|mesh|distributed)\.[a-z_]+)\b"
)


def test_every_key_an_error_message_suggests_is_a_field():
    """A message that tells the user to set a key names one that `seqjax config show` lists."""
    known = config_lib.all_keys()
    suggested = {}
    for path in (ROOT / "seqjax").rglob("*.py"):
        for text in _message_strings(ast.parse(path.read_text())):
            for key in SUGGESTION.findall(text):
                suggested.setdefault(key, path.relative_to(ROOT).as_posix())
    assert len(suggested) >= 10, suggested  # the scan finds them (it can fail)
    unknown = {k: where for k, where in suggested.items() if k not in known}
    assert not unknown, unknown


def test_the_csv_dead_end_is_open(tmp_path, capsys):
    """Issue 17's dead end, as a user meets it: a CSV with an invalid UTF-8 byte is refused with
    a message that suggests data.encoding_errors=replace, and that flag then trains."""
    rows = [
        f"tweet {i} {'good' if i % 2 else 'bad'},{'pos' if i % 2 else 'neg'}" for i in range(40)
    ]
    data = (
        ("text,sentiment\n" + "\n".join(rows) + "\n").encode().replace(b"tweet 3", b"tw\xffeet 3")
    )
    (tmp_path / "tweets.csv").write_bytes(data)
    spec = f"--config={ROOT / 'configs/sentiment/csv.py'}:train={tmp_path / 'tweets.csv'},"
    spec += "text=text,label=sentiment,smoke"
    argv = ["train", spec, f"--workdir={tmp_path / 'run'}"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "set data.encoding_errors=replace" in err
    assert cli.main([*argv, "--config.data.encoding_errors=replace"]) == 0


def test_config_show_lists_every_field_and_marks_the_changed_ones(capsys):
    spec = str(ROOT / "configs/synthetic/adding.py:smoke")
    assert cli.main(["config", "show", spec, "--config.model.cell=gru"]) == 0
    out = capsys.readouterr().out
    lines = {ln.split(" = ")[0].lstrip("* ").strip(): ln for ln in out.splitlines() if " = " in ln}
    assert set(config_lib.fields("synthetic")) <= set(lines)
    assert lines["model.cell"].startswith("*") and "(default 'lstm')" in lines["model.cell"]
    assert not lines["optim.name"].startswith("*")
    assert "# the recurrent cell" in lines["model.cell"]


def test_config_show_bad_input_is_one_line(capsys):
    spec = str(ROOT / "configs/synthetic/adding.py:smoke")
    assert cli.main(["config", "show", spec, "--config.model.cel=gru"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "model.cel" in err and "model.cell" in err
    assert cli.main(["config", "list"]) == 2


def _import_graph():
    root = ROOT / "seqjax"
    mods = {}
    for p in root.rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        mods[name] = p
    edges = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text())):  # function-level imports included
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m and mods[t].name != "__init__.py":
                    edges[m].add(t)
    return edges


def _cycles(edges):
    seen, stack, found = {}, [], []

    def visit(u):
        seen[u] = 1
        stack.append(u)
        for v in sorted(edges[u]):
            if seen.get(v) == 1:
                found.append(stack[stack.index(v) :] + [v])
            elif v not in seen:
                visit(v)
        seen[u] = 2
        stack.pop()

    for m in sorted(edges):
        if m not in seen:
            visit(m)
    return found


def test_seqjax_has_no_import_cycles():
    edges = _import_graph()
    assert len(edges) > 40 and edges["seqjax.train.loop"]  # the graph is really read
    assert _cycles(edges) == []


def test_the_cycle_check_can_fail():
    assert _cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]


def test_atomic_files_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        path = files.write_atomic(tmp_path / "done.json", "{}")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["done.json"]  # no temporary left


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = files.write_atomic(tmp_path / "results.md", "old")
    with pytest.raises(RuntimeError), files.atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.md"]


def test_metrics_reader_keeps_the_last_record_of_each_step(tmp_path):
    (tmp_path / files.METRICS).write_text(
        '{"step": 2, "split": "train", "loss": 1.0}\n{"step": 2, "split": "train", "loss": 0.5}\n'
        '{"step": 1, "split": "train", "loss": 2.0}\n{"step": 3, "split": "trai'
    )
    assert [(r["step"], r["loss"]) for r in files.read_metrics(tmp_path)] == [(1, 2.0), (2, 0.5)]


def test_an_option_added_to_the_schema_reaches_the_model():
    """model.attention_size was added by one field and one argument in seqjax/tasks/classify.py
    (the issue-17 demonstration): it is a key of every classify config and sets the shape."""
    import jax

    from seqjax.tasks import classify

    c = load_config_file(str(ROOT / "configs/sentiment/sst2.py:smoke"))
    c.model.attention_size = 5  # as --config.model.attention_size=5 does
    c = config_lib.validate(c)
    params = classify.model_from(c.model, 30, 2, None).init(jax.random.key(0))
    assert params["attention"]["w"].shape == (2 * c.model.hidden_size, 5)
