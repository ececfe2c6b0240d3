"""Every config file under configs/ loads, with and without its ``smoke`` preset, and passes the
harness's validation: a config that no other test trains (imdb, csv, ptb, wikitext) still
cannot rot unnoticed."""

import pathlib

import pytest

from seqjax.train import config as config_lib
from seqjax.train.cmdline import load_config_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIGS = sorted(  # the config files (a folder's shared module has no get_config)
    p.relative_to(ROOT).as_posix()
    for p in (ROOT / "configs").rglob("*.py")
    if "def get_config" in p.read_text()
)


def test_there_are_configs():
    assert len(CONFIGS) >= 10, CONFIGS


@pytest.mark.parametrize("path", CONFIGS)
@pytest.mark.parametrize("preset", ["", ":smoke"])
def test_config_loads_and_validates(path, preset):
    c = load_config_file(str(ROOT / path) + preset)
    config_lib.validate(c)
    assert c.task in ("synthetic", "lm", "classify"), c.task
    if preset:  # smoke runs in seconds: a handful of steps
        assert c.train.num_steps <= 50, (path, c.train.num_steps)


def test_validation_can_fail():
    c = load_config_file(str(ROOT / "configs/synthetic/adding.py:smoke"))
    c.model.hidden_size = 0
    with pytest.raises(Exception, match="hidden_size"):
        config_lib.validate(c)


def test_sst2_fast_preset_is_the_default_without_adversarial_training():
    """docs/results.md's tables before adversarial training were measured with what is now
    ``sst2.py:fast``: it may differ from the default only in these fields."""
    default = config_lib.flatten(
        config_lib.to_dict(load_config_file(str(ROOT / "configs/sentiment/sst2.py")))
    )
    fast = config_lib.flatten(
        config_lib.to_dict(load_config_file(str(ROOT / "configs/sentiment/sst2.py:fast")))
    )
    changed = {k: (default[k], fast[k]) for k in default if default[k] != fast[k]}
    assert changed == {
        "train.adversarial_eps": (0.1, 0.0),
        "train.adversarial_start": (2000, 0),
        "train.num_steps": (9000, 6000),
        "train.eval_every": (750, 500),
        "train.checkpoint_every": (750, 500),
    }
    assert default.keys() == fast.keys()
