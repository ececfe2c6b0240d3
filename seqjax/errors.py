"""The one exception type for a user's mistake.

Anything that is the user's to fix (a bad config value, a missing file, a wrong column, no network
for a hub id, a checkpoint of another architecture) raises :class:`UserError` with one line that
names the value and the fix. The command line prints that line and exits with status 2; every
other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit status 2."""
