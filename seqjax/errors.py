"""The one exception type for a user's mistake.

Anything that is the user's to fix (a bad config value, a missing file, a wrong column, no network
for a hub id, a checkpoint of another architecture) raises :class:`UserError` with one line that
names the value and the fix. The command line prints that line and exits with status 2; every
other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit status 2."""


class Interrupted(Exception):
    """A run stopped by a signal (SIGTERM from a scheduler's preemption, SIGINT from Ctrl-C) after
    saving its state: printed as one line, exit status ``128 + signal number`` (143, 130)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + int(signum)
