"""Test settings: bugs should surface here, not in users' runs (as equinox does).

Strict dtype promotion: a float32/bfloat16 mix-up raises instead of silently upcasting.
"""

import os
import pathlib

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data():
    """Path of ``../shared/data``; skips the test when the folder is absent (a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"{SHARED_DATA} is absent: the shared corpora only exist on the project's machines"
        )
    return SHARED_DATA


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
