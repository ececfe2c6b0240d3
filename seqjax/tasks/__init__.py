"""Tasks: what to learn, as a :class:`seqjax.tasks.base.Task` the training loop drives.

``config.task`` names a module here; ``build(config)`` imports it (only when asked, so each task's
dependencies load only for it) and calls its ``build(config) -> Task``. A new task is one module
with a ``build`` function and one line in ``TASKS``.
"""

from __future__ import annotations

import importlib

from seqjax.errors import UserError
from seqjax.tasks.base import Task

TASKS: dict[str, str] = {
    "lm": "seqjax.tasks.lm",  # language modelling: truncated BPTT over a token stream
    "synthetic": "seqjax.tasks.synthetic",  # adding problem and other long-range problems
    "classify": "seqjax.tasks.classify",  # text classification: sentiment, any labelled text
}


def names() -> tuple:
    """The task names ``config.task`` accepts."""
    return tuple(TASKS)


def build(config) -> Task:
    """Builds the task ``config.task`` from the whole experiment config."""
    if config.task not in TASKS:
        raise UserError(f"task={config.task!r}: choose one of {', '.join(TASKS)}")
    return importlib.import_module(TASKS[config.task]).build(config)


__all__ = ["TASKS", "Task", "build", "names"]
