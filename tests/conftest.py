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


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drops JAX's compiled programs after each test file.

    Each XLA:CPU executable holds a few memory mappings for its machine code until it is freed, and
    JAX's caches keep every executable alive: one process running the whole suite (thousands of
    compilations) reached Linux's default ``vm.max_map_count`` (65530) and LLVM crashed with a
    segmentation fault in the next compilation. ``jax.clear_caches()`` releases them.
    """
    yield
    jax.clear_caches()


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
