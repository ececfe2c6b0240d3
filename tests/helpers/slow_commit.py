"""Runs ``seqjax`` with every checkpoint save slowed before its commit (fault injection).

``python tests/helpers/slow_commit.py SECONDS train --config ...``: orbax writes each checkpoint
into a temporary directory and renames it when complete (``AtomicRenameTemporaryPath``); here the
rename waits ``SECONDS`` after all files are written, so a test can kill the process in the middle
of a save (``tests/test_crash_safety.py``). The library itself has no such hook.
"""

import sys
import time


def main(argv: list[str]) -> int:
    delay = float(argv[0])
    from orbax.checkpoint._src.path import atomicity  # test code: a private module is fine here

    finalize = atomicity.AtomicRenameTemporaryPath.finalize

    async def slow_finalize(self, *args, **kwargs):
        time.sleep(delay)  # every file is written; the rename has not happened
        return await finalize(self, *args, **kwargs)

    atomicity.AtomicRenameTemporaryPath.finalize = slow_finalize
    from seqjax.cli import main as seqjax_main

    return seqjax_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
