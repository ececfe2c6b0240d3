r"""Study 3: exploding gradients and clipping (Pascanu, Mikolov & Bengio 2013), 3 seeds.

A tanh Elman network (100 units) on the adding problem at T=50, trained with SGD and momentum 0.9
at learning rates where its gradient explodes, with clipping off, by global norm (1) or by value
(each element to [-1, 1]). The per-step gradient diagnostics (every 50 steps: ||dL/dh|| by
distance, the recurrent matrix's largest singular value) show the explosion; a run whose loss goes
non-finite is recorded as failed with its step.

Presets: ``smoke``; ``steps=N``; ``lrs=0.01/0.1/1`` (the learning rates, slash-separated);
``threshold=C`` (``optim.clip_value``, default 1).

Launch:
  seqjax sweep --config configs/study/clipping.py --workdir runs/study/clipping --jobs 2
  seqjax sweep --config configs/study/clipping.py:lrs=0.1,threshold=0.1 --workdir runs/study/clip01
  seqjax sweep --config configs/study/clipping.py:smoke --workdir /tmp/study_clip   # seconds
"""

import pathlib
import runpy

from seqjax.train.config import parse_arg

common = runpy.run_path(str(pathlib.Path(__file__).resolve().parent / "common.py"))


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, steps=1000, lrs="0.01/0.1/1", threshold=1.0)
    lrs = tuple(float(x) for x in arg.lrs.split("/"))
    table = common["variants"](50)
    c = common["base"](100)
    c.data.name = "adding"
    c.data.seq_len = 50
    for key, value in table["elman"]:
        parent, _, leaf = key.rpartition(".")
        c[parent][leaf] = value
    c.optim.name = "sgd"
    c.optim.momentum = 0.9
    c.optim.clip_value = arg.threshold
    c.train.num_steps = arg.steps
    c.train.eval_every = 100
    c.train.checkpoint_every = 500
    c.train.log_every = 10
    c.train.diagnostics_every = 50
    c.sweep = dict(
        grid=(
            ("optim.learning_rate", lrs),
            ("optim.clip", ("none", "global_norm", "value")),
            ("seed", (0, 1, 2)),
        ),
        x="optim.learning_rate",
        group="optim.clip",
    )
    if arg.smoke:
        common["smoke"](c)
        c.train.diagnostics_every = 2
        c.sweep["grid"] = (
            ("optim.learning_rate", (0.01, 100.0)),
            ("optim.clip", ("none", "global_norm")),
            ("seed", (0,)),
        )
    return c
