"""Stopping cleanly on SIGTERM and SIGINT: finish the step, save it, exit with one line.

Schedulers preempt jobs with SIGTERM and a grace period before SIGKILL (Slurm's ``--signal``,
Kubernetes' ``terminationGracePeriodSeconds``, cloud spot instances); Ctrl-C sends SIGINT. Inside
:func:`stop_requests` either signal only sets :attr:`StopRequest.signum`; the training loop looks
at it after every step, saves a checkpoint at that step and raises
:class:`seqjax.errors.Interrupted`, so a restart loses no step. Further signals while it saves
change nothing (the save completes; orbax commits it by an atomic rename, so even a SIGKILL
then leaves the previous checkpoint as the newest).

A run of several processes (``jax.distributed``) must save the same step everywhere: there the
loop asks orbax (``CheckpointManager.reached_preemption``, JAX's preemption sync point) instead,
which agrees on one step across processes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator, Optional

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """What the handlers saw: ``signum`` of the first signal (``None``: keep going)."""

    def __init__(self):
        self.signum: Optional[int] = None

    def handle(self, signum, frame) -> None:
        del frame
        if self.signum is None:
            self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


_active: list = []  # the request of the outermost stop_requests() in force


@contextlib.contextmanager
def stop_requests(signals: tuple = SIGNALS) -> Iterator[StopRequest]:
    """Installs the handlers of ``signals`` for the body (nested uses share the outer request).
    Outside the main thread, where Python cannot handle signals, the request never fires."""
    if _active:
        yield _active[0]
        return
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {s: signal.signal(s, request.handle) for s in signals}
    _active.append(request)
    try:
        yield request
    finally:
        _active.pop()
        for s, handler in previous.items():
            signal.signal(s, handler)


__all__ = ["SIGNALS", "StopRequest", "stop_requests"]
