r"""Study 2: copy memory at T=100 and 200 for five cells, 3 seeds, against the memoryless baseline.

Copy memory (Arjovsky et al. 2016, sec. 4.1): ten symbols from 8, T-1 blanks, a delimiter, and
ten more steps in which the model must repeat the symbols; per-step cross-entropy over all T+20
steps. The memoryless strategy scores ``10 ln 8 / (T + 20)`` (``baseline``). A run ends once its
validation loss is below a tenth of the baseline (its time to solve), or after 4000 steps. Every
cell has 128 units (Arjovsky et al.'s LSTM), Adam 1e-3 with global-norm clipping at 1, batch 32.

Launch:
  seqjax sweep --config configs/study/copy.py --workdir runs/study/copy --jobs 2
  seqjax sweep --config configs/study/copy.py:smoke --workdir /tmp/study_copy   # seconds

Reference points: the orthogonal family (uRNN; expRNN) solves long copies where the LSTM sits at
the baseline (Arjovsky et al. 2016, Fig. 1; Lezcano-Casado & Martinez-Rubio 2019); chrono init
leaves the baseline sooner than standard init (Tallec & Ollivier 2018, Fig. 3).
"""

import pathlib
import runpy

from seqjax.train.config import parse_arg

common = runpy.run_path(str(pathlib.Path(__file__).resolve().parent / "common.py"))

CELLS = ("lstm", "lstm_chrono", "exprnn", "gru", "mingru")


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, seq_lens="100/200", steps=4000)
    seq_lens = tuple(int(t) for t in arg.seq_lens.split("/"))
    table = common["variants"](1.5 * (max(seq_lens) + 20))
    c = common["base"](128)
    c.data.name = "copy"
    c.data.seq_len = seq_lens[0]
    c.train.batch_size = 32
    c.train.num_steps = arg.steps
    c.train.eval_every = 100
    c.train.checkpoint_every = 500
    c.train.log_every = 100
    c.train.stop_when = "loss<baseline*0.1"
    c.sweep = dict(
        variants=common["pick"](table, CELLS),
        grid=(("data.seq_len", seq_lens), ("seed", (0, 1, 2))),
        x="data.seq_len",
    )
    if arg.smoke:
        common["smoke"](c)
        c.sweep["grid"] = (("data.seq_len", (5,)), ("seed", (0,)))
        c.sweep["variants"] = common["pick"](table, ("lstm", "exprnn"))
    return c
