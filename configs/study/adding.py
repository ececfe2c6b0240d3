r"""Study 1: the adding problem against T for ten cells, 3 seeds, until solved (MSE < 0.01).

Two-channel adding problem (Le, Jaitly & Hinton 2015, sec. 4.1; Arjovsky et al. 2016, sec. 4.2):
predicting the constant 1 scores MSE 1/6. Every cell has 100 units and Adam 1e-3 with global-norm
clipping at 1, except IRNN, which trains with its paper's optimizer family (SGD with momentum and
clipping, two learning rates). A run ends at the first evaluation (every 100 steps, 1000
held-out sequences) with validation MSE below 0.01, which is its time to solve, or after 3000
steps.

Launch (T = 100 and 200: 54 min on 2 cores with --jobs 2; T = 400 for GRU and chrono: 23 min;
measured 2026-12-02, experiments/vanishing/README.md section 1):
  seqjax sweep --config configs/study/adding.py --workdir runs/study/adding --jobs 2
  seqjax sweep --config configs/study/adding.py:smoke --workdir /tmp/study_adding   # seconds

Presets: ``smoke``; ``seq_lens=100/200/400`` (the Ts, slash-separated); ``steps=N``;
``cells=gru/lstm_chrono`` (only these variants); ``t_max=N``, the longest dependency that
chrono and IndRNN are set up for (default: the largest T). A sweep cut into stages keeps its runs' configs with the full ``t_max``, so the later stage
adds runs instead of rewriting the earlier ones::

  seqjax sweep --config configs/study/adding.py:seq_lens=100/200,t_max=400 --workdir DIR --jobs 2
  seqjax sweep --config configs/study/adding.py --workdir DIR --jobs 2   # adds T=400

Reference points: Le et al. 2015 report IRNN and LSTM solving T up to 400; Arjovsky et al. 2016
report LSTM solving T=750 while the tanh RNN does not; chrono init speeds the LSTM up at T=200
and 750 (Tallec & Ollivier 2018).
"""

import pathlib
import runpy

from seqjax.errors import UserError
from seqjax.train.config import parse_arg

common = runpy.run_path(str(pathlib.Path(__file__).resolve().parent / "common.py"))

CELLS = (
    "elman",
    "lstm",
    "lstm_chrono",
    "gru",
    "irnn",
    "indrnn",
    "exprnn",
    "cornn",
    "lru",
    "mingru",
)
IRNN_RATES = (1e-2, 1e-3)


def get_config(arg=None):
    arg = parse_arg(arg, smoke=False, seq_lens="100/200/400", steps=3000, t_max=0, cells="")
    seq_lens = tuple(int(t) for t in arg.seq_lens.split("/"))
    table = common["variants"](arg.t_max or max(seq_lens))
    c = common["base"](100)
    c.data.name = "adding"
    c.data.seq_len = seq_lens[0]
    c.train.num_steps = arg.steps
    c.train.eval_every = 100
    c.train.checkpoint_every = 500
    c.train.log_every = 100
    c.train.stop_when = "mse<0.01"
    variants = []
    for name in CELLS:
        if name == "irnn":
            for lr in IRNN_RATES:
                variants.append((f"irnn_lr{lr:g}", (*table["irnn"], ("optim.learning_rate", lr))))
        else:
            variants.append((name, table[name]))
    if arg.cells:
        keep = arg.cells.split("/")
        unknown = [n for n in keep if n not in {v[0] for v in variants}]
        if unknown:
            raise UserError(f"preset cells={arg.cells!r}: {unknown[0]!r} is not one of "
                            f"{'/'.join(v[0] for v in variants)}")  # fmt: skip
        variants = [v for v in variants if v[0] in keep]
    c.sweep = dict(
        variants=tuple(variants),
        grid=(("data.seq_len", seq_lens), ("seed", (0, 1, 2))),
        x="data.seq_len",
    )
    if arg.smoke:
        common["smoke"](c)
        c.sweep["grid"] = (("data.seq_len", (6,)), ("seed", (0,)))
        c.sweep["variants"] = tuple(v for v in variants if v[0] in ("lstm", "irnn_lr0.01"))
    return c
