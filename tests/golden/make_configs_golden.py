"""Writes tests/golden/configs.json: every config under configs/ (and its bool presets) resolved
to flat key -> value, before the schema refactor."""

import json
import pathlib
import re
import sys


def main():
    sys.path.insert(0, ".")  # run from the repository root, at the commit that wrote the file
    from seqjax.train import config as config_lib
    from seqjax.train.cmdline import load_config_file

    ROOT = pathlib.Path(".").resolve()
    out = {}
    for p in sorted((ROOT / "configs").rglob("*.py")):
        rel = p.relative_to(ROOT).as_posix()
        text = p.read_text()
        m = re.search(r"parse_arg\((.*?)\)\n", text, re.S)
        bools = re.findall(r"(\w+)=False", m.group(1)) if m else []
        for preset in ["", *bools]:
            c = load_config_file(str(p) + (":" + preset if preset else ""))
            flat = config_lib.flatten(config_lib.to_dict(c))
            s = json.dumps(flat, sort_keys=True)
            s = s.replace(str(ROOT.parent), "<PARENT>")
            out[rel + (":" + preset if preset else "")] = json.loads(s)
    pathlib.Path("tests/golden/configs.json").write_text(
        json.dumps(out, indent=1, sort_keys=True) + "\n"
    )
    print(len(out), "configs")


if __name__ == "__main__":
    main()
