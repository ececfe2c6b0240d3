"""Import boundaries (DESIGN.md) and the README's code, run as a user would."""

import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PURE = ["seqjax.cells", "seqjax.scan", "seqjax.layers", "seqjax.models", "seqjax.analysis"]
SIDE_EFFECT_LIBS = ["absl", "orbax", "tqdm", "datasets", "ml_collections"]


def run_python(code: str) -> str:
    """Runs ``code`` in a fresh interpreter with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("module", PURE)
def test_pure_layers_import_no_side_effect_libraries(module):
    spec = importlib.util.find_spec(module)
    if spec is None or not str(spec.origin).startswith(str(ROOT)):
        # (An editable install elsewhere can lend a package this checkout does not have yet.)
        pytest.skip(f"{module} does not exist in this checkout yet")
    code = (
        "import json, sys\n"
        f"import {module}\n"
        f"print(json.dumps([m for m in {SIDE_EFFECT_LIBS!r} if m in sys.modules]))\n"
    )
    assert json.loads(run_python(code)) == [], f"{module} imports them"


def test_boundary_check_sees_an_import():
    """The check above can fail: ``seqjax.flax`` imports flax, which imports absl."""
    code = "import sys, seqjax.flax; print('absl' in sys.modules)"
    assert run_python(code) == "True"


def readme_block(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, f"README section {title!r} should hold one python block"
    return blocks[0]


def test_readme_reuse_a_cell_block_runs():
    code = readme_block("Reuse a cell in plain JAX")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    grads, params = namespace["grads"], namespace["params"]
    assert set(grads) == set(params) == {"w_x", "w_h", "b"}
    assert namespace["ys"].shape == (8, 100, 128)


def test_readme_flax_block_runs():
    namespace: dict = {}
    exec(compile(readme_block("Use a cell inside Flax"), "README.md", "exec"), namespace)
    assert namespace["ys"].shape == (8, 100, 128)
    assert namespace["variables"]["params"]["cell"].keys() == {"w_x", "w_h", "b", "b_hn"}
