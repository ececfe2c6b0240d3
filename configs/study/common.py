r"""The cells of the vanishing-gradient study, each as its paper sets it up (shared by the study's
sweep configs; loaded by path, so it is a module of this folder, not of seqjax).

Every variant is ``(name, ((dotted key, value), ...))``: the cell and the options that make it
the paper's model. Initialisers not named here are each cell's own (the study base sets
``model.kernel_init`` and friends to None). ``T_MAX`` is the longest dependency of a study (its
largest T): chrono (Tallec & Ollivier 2018, sec. 3) and IndRNN's recurrent range (Li et al. 2018,
sec. 3.1) are set up for it.
"""

from seqjax.train.config import defaults


def base(hidden_size: int = 100):
    """The synthetic task's defaults with the study's shared settings: Adam 1e-3 with global-norm
    clipping at 1, batch 50, one layer of ``hidden_size`` units, each cell's own initialisers."""
    c = defaults("synthetic")
    c.model.hidden_size = hidden_size
    c.optim.learning_rate = 1e-3
    c.train.batch_size = 50
    c.train.keep = 1
    c.data.eval_size = 1000
    c.train.diagnostics_every = 0
    return c


def variants(t_max: float) -> dict:
    """The cells by name (``t_max``: the study's longest dependency)."""
    return {
        # tanh Elman network (Elman 1990), orthogonal recurrent init (Saxe et al. 2014)
        "elman": (("model.cell", "elman"), ("model.activation", "tanh"),
                  ("model.recurrent_init", "orthogonal")),
        # LSTM with forget-gate bias 1 (Gers et al. 2000; Jozefowicz et al. 2015)
        "lstm": (("model.cell", "lstm"), ("model.forget_bias", 1.0)),
        # LSTM with chrono init for dependencies up to t_max steps (Tallec & Ollivier 2018)
        "lstm_chrono": (("model.cell", "lstm"), ("model.chrono_t_max", float(t_max))),
        "gru": (("model.cell", "gru"),),
        # IRNN: ReLU, identity recurrent init, SGD with clipping (Le et al. 2015, sec. 2, 4.1)
        "irnn": (("model.cell", "elman"), ("model.activation", "relu"),
                 ("model.recurrent_init", "identity"), ("model.bias_init", "zeros"),
                 ("optim.name", "sgd"), ("optim.momentum", 0.9)),
        # IndRNN, |u| in [2^(-1/T), 2^(1/T)] for a memory of t_max steps (Li et al. 2018)
        "indrnn": (("model.cell", "indrnn"), ("model.activation", "relu"),
                   ("model.u_init", "memory"), ("model.memory_length", float(t_max))),
        # expRNN with modReLU (Lezcano-Casado & Martinez-Rubio 2019)
        "exprnn": (("model.cell", "exprnn"),),
        # coRNN (Rusch & Mishra 2021), its published defaults
        "cornn": (("model.cell", "cornn"),),
        # LRU with eigenvalue moduli in [0.9, 0.999] (Orvieto et al. 2023, long-range setting)
        "lru": (("model.cell", "lru"), ("model.r_min", 0.9), ("model.r_max", 0.999)),
        # minGRU (Feng et al. 2024)
        "mingru": (("model.cell", "mingru"),),
    }  # fmt: skip


def pick(table: dict, names) -> tuple:
    """The variants ``names`` of ``table`` as a sweep's ``variants`` tuple."""
    return tuple((n, table[n]) for n in names)


def smoke(c):
    """Seconds per run: the test suite runs every study this way."""
    c.model.hidden_size = 8
    c.data.eval_size = 32
    c.train.num_steps, c.train.batch_size, c.train.log_every = 4, 8, 2
    c.train.eval_every = c.train.checkpoint_every = 2
    return c
