"""Writes tests/golden/configs.json: every config under configs/ (and its bool presets) resolved
to flat key -> value, before the schema refactor.

``python tests/golden/make_configs_golden.py configs/x.py ...`` adds (or rewrites) the entries of
the files named and keeps every other entry as it is: a config added after the refactor is
recorded as it was added, so that later changes to what it resolves to are seen.
"""

import json
import pathlib
import re
import sys


def entries(path: pathlib.Path, root: pathlib.Path) -> dict:
    from seqjax.train import config as config_lib
    from seqjax.train.cmdline import load_config_file

    rel = path.relative_to(root).as_posix()
    m = re.search(r"parse_arg\((.*?)\)\n", path.read_text(), re.S)
    bools = re.findall(r"(\w+)=False", m.group(1)) if m else []
    out = {}
    for preset in ["", *bools]:
        c = load_config_file(str(path) + (":" + preset if preset else ""))
        flat = config_lib.flatten(config_lib.to_dict(c))
        s = json.dumps(flat, sort_keys=True)
        s = s.replace(str(root.parent), "<PARENT>")
        out[rel + (":" + preset if preset else "")] = json.loads(s)
    return out


def main():
    sys.path.insert(0, ".")  # run from the repository root, at the commit that wrote the file
    root = pathlib.Path(".").resolve()
    golden = pathlib.Path("tests/golden/configs.json")
    if len(sys.argv) > 1:  # add these files, keep the rest
        out = json.loads(golden.read_text())
        for arg in sys.argv[1:]:
            rel = pathlib.Path(arg).resolve().relative_to(root).as_posix()
            out = {k: v for k, v in out.items() if k.partition(":")[0] != rel}
            out.update(entries(root / rel, root))
    else:
        out = {}
        for p in sorted((root / "configs").rglob("*.py")):
            out.update(entries(p, root))
    golden.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(len(out), "configs")


if __name__ == "__main__":
    main()
