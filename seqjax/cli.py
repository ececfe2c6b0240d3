"""The ``seqjax`` command: ``seqjax SUBCOMMAND [flags]``.

Subcommands live in their own modules and are imported only when used, so ``seqjax --help`` is
instant. Each entry of ``COMMANDS`` maps a name to ``(module:function, one-line help)``; the
function takes the remaining ``argv`` (subcommand name first) and returns an exit status.
A :class:`seqjax.errors.UserError` anywhere ends in one line on stderr and exit status 2; a run
stopped by SIGTERM or SIGINT after saving (:class:`seqjax.errors.Interrupted`) in one line and
status 143 or 130.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings

COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("seqjax.train.commands:train", "train (or resume) an experiment config in a workdir"),
    "eval": ("seqjax.train.commands:evaluate", "evaluate a workdir's best or latest checkpoint"),
    "report": ("seqjax.train.commands:report", "draw a workdir's (or a sweep's) results"),
    "sweep": ("seqjax.train.commands:sweep", "run a config's grid of runs, then tables and plots"),
    "sample": ("seqjax.train.commands:sample", "generate text from a language model's checkpoint"),
    "predict": ("seqjax.train.predict:main", "label texts with a classifier's best checkpoint"),
    "baseline": ("seqjax.train.baseline:main", "TF-IDF + logistic regression on a config's split"),
    "config": ("seqjax.train.commands:config", "show a config's every field, doc and changes"),
}


def _usage() -> str:
    lines = [
        "usage: seqjax COMMAND [flags]   (seqjax COMMAND --help for its flags)",
        "",
        "commands:",
    ]
    if not COMMANDS:
        lines.append("  (none yet)")
    for name, (_, help_) in COMMANDS.items():
        lines.append(f"  {name:<9} {help_}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from seqjax.errors import Interrupted, UserError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(
            f"seqjax: unknown command {name!r}: choose one of {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    target, _ = COMMANDS[name]
    module, func = target.split(":")
    # A warning (e.g. a damaged checkpoint skipped) is one line too, not Python's two.
    formatwarning = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"seqjax {name}: warning: {message}\n"
    try:
        return int(getattr(importlib.import_module(module), func)(argv) or 0)
    except UserError as e:
        print(f"seqjax {name}: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:  # SIGTERM / SIGINT: the state is saved, the run can resume
        print(f"seqjax {name}: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # `seqjax config show ... | head`: the reader left, nothing is wrong
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (Python flushes it at exit)
        return 0
    finally:
        warnings.formatwarning = formatwarning


if __name__ == "__main__":
    sys.exit(main())
