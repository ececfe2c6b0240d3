"""Every config under configs/ resolves to the values it had before the config schema existed.

``tests/golden/configs.json`` was written by ``tests/golden/make_configs_golden.py`` at the commit
before the schema refactor (issue 17): each config file and each of its bool presets, flattened
key by key. Now every config starts from its task's schema defaults, so it holds more keys; each
new key must be one that was a hidden default then, with the value the code used when the key was
absent (``HIDDEN`` below, read off the old code), or a key the config's other values make unused.
Config files added since are recorded as they were added (``make_configs_golden.py FILE ...``:
``configs/classify/*``, ``configs/sweeps/folds.py``, issue 21).
"""

import json
import math
import pathlib

import pytest

from seqjax.models import common
from seqjax.train import config as config_lib
from seqjax.train.cmdline import load_config_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOLDEN = json.loads((ROOT / "tests" / "golden" / "configs.json").read_text())

_CELL = {  # the cell factories' keyword defaults (seqjax/cells/*.py before the schema)
    "model.forget_bias": 1.0,
    "model.chrono_t_max": None,
    "model.activation": "tanh",
    "model.reset_after": True,
    "model.log_space": True,
    "model.r_min": 0.0,
    "model.r_max": 1.0,
    "model.max_phase": 2 * math.pi,
    "model.kernel_init": "glorot_uniform",
    "model.recurrent_init": "orthogonal",
    "model.bias_init": "zeros",
}
_COMMON = {
    **_CELL,
    "workdir": "",  # commands.train: config.get("workdir") or --workdir
    "train.report": False,  # config.train.get("report")
    "train.early_stop_patience": 0,  # tc.get("early_stop_patience", 0)
    "train.diagnostics_every": 0,  # tc.get("diagnostics_every", 0)
    "train.stop_when": "",  # added with the sweep engine: off
    "mesh.data": 1,  # parallel._get(config, "mesh.data", 1)
    "distributed.coordinator_address": "",
    "distributed.num_processes": None,
    "distributed.process_id": None,
    "model.compute_dtype": "float32",  # only synthetic read it; lm/classify ran float32
    "optim.momentum": 0.0,  # optim_cfg.get("momentum", 0.0)
    "optim.nesterov": False,
    "optim.weight_decay": 0.0,
    "optim.warmup_steps": 0,
    "optim.ema_decay": 0.0,
    "optim.decay_start": 0,
}
_DATA = {  # seqjax.data.config.DEFAULTS before the schema
    "data.source": "auto",
    "data.hub_id": "",
    "data.hub_config": "",
    "data.train_split": "train",
    "data.validation_split": "validation",
    "data.test_split": "",
    "data.train_files": "",
    "data.validation_files": "",
    "data.test_files": "",
    "data.format": "auto",
    "data.validation_fraction": 0.1,
    "data.test_fraction": 0.0,
    "data.text_column": "text",
    "data.encoding_errors": "strict",
    "data.tokenizer": "char",
    "data.vocab_size": 0,
    "data.min_freq": 1,
    "data.lowercase": False,
    "data.cache_dir": "~/.cache/seqjax",
    "data.split_seed": 0,
    "data.label_column": "label",
    "data.labels": "",
    "data.max_length": 0,
    "data.encoding": "utf-8",  # added with issue 21: UTF-8 (a byte-order mark dropped), as before
}
HIDDEN = {
    "synthetic": {
        **_COMMON,
        "data.variable_length": False,  # the generators' keyword defaults
        "data.form": "hochreiter",
        "data.permutation_seed": 0,
    },
    "lm": {**_COMMON, **_DATA, "data.name": "", "sample.length": 0},  # no sample group: none
    "classify": {
        **_COMMON,
        **_DATA,
        "data.label_names": "",
        "model.pooling": "last",  # classify.model_from's _field defaults
        "model.attention_size": 0,  # added after the refactor; 0 = the old fixed size D
        "model.mlp_hidden": [],
        "model.mlp_activation": "relu",
        "model.encoder_dropout": 0.0,
        "model.variational": False,
        "model.word_dropout": 0.0,
        "model.init_scale": 0.1,
        "model.bidirectional": False,
        "model.embeddings_file": "",
        "train.eval_batch_size": 256,
        "train.label_smoothing": 0.0,
        "train.adversarial_eps": 0.0,
        "train.adversarial_start": 0,
        # issue 21: the other labelled layouts, cross-validation and the baseline, all off
        "data.class_files": "",
        "data.label_regex": r"(?P<label>\S+)\s+(?P<text>.*)",  # read only by format prefixed
        "data.label_level": "full",
        "data.folds": 0,
        "data.fold": 0,
        "train.baseline": False,
    },
}


def unused(key: str, c: dict) -> bool:
    """Keys the rest of the config makes irrelevant, whatever their value, or whose value means
    exactly what the key's absence meant (None for a per-cell option: the factory's default)."""
    option = key.removeprefix("model.")
    if option in common.PER_CELL and c[key] is None:
        return True
    if key.startswith("model.") and option in common.CELL_OPTIONS and key not in _CELL:
        # an option of a cell added after the snapshot, at its default: no old config used it
        return c[key] == common.CELL_OPTIONS[option].default
    if key in ("optim.decay_factor", "optim.decay_every"):
        return c["optim.schedule"] != "step"
    if key.startswith("sample.") and key != "sample.length":
        return c.get("sample.length", 0) == 0
    if key == "data.seq_len":  # the digits problems have 64 pixels, no seq_len option
        return c["data.name"].startswith("digits")
    return False


def resolved(name: str) -> dict:
    path, _, preset = name.partition(":")
    c = load_config_file(str(ROOT / path) + (f":{preset}" if preset else ""))
    flat = config_lib.flatten(config_lib.to_dict(c))
    return json.loads(json.dumps(flat, sort_keys=True).replace(str(ROOT.parent), "<PARENT>"))


def test_every_config_file_of_the_snapshot_still_exists():
    for name in GOLDEN:
        assert (ROOT / name.partition(":")[0]).is_file(), name


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_config_resolves_as_before(name):
    old, new = GOLDEN[name], resolved(name)
    changed = {
        k: (v, new.get(k, "<absent>")) for k, v in old.items() if new.get(k, "<absent>") != v
    }
    assert not changed, changed
    hidden = HIDDEN[new["task"]]
    added = {k: new[k] for k in set(new) - set(old) if not unused(k, new)}
    wrong = {k: (v, hidden.get(k, "<not a hidden default>")) for k, v in added.items()}
    wrong = {k: v for k, v in wrong.items() if v[0] != v[1]}
    assert not wrong, wrong


def test_the_check_can_fail():
    name = "configs/synthetic/adding.py"
    assert resolved(name)["model.hidden_size"] == GOLDEN[name]["model.hidden_size"] == 128
    assert "optim.decay_factor" not in HIDDEN["synthetic"]  # only unused, never a hidden value
