"""Whether a process still runs, for the sweeps that clear what killed ones left.

Two stages name their leftovers by the process that writes them: the crawl's
temp files (:func:`synset_builder.crawl.store.sweep_temp`) and ``synset
consensus``'s scratch folders (:func:`synset_builder.consensus.scratch.
sweep_orphans`). A SIGKILL gives neither a chance to clean up, so the next run
removes the leftovers of every writer that no longer runs, and must not mistake
a zombie for a live writer: an orphaned worker whose parent was killed stays a
zombie until its new parent reaps it, and in a container whose PID 1 does not
reap, it stays one for good. Kept apart from both stages so that neither imports
the other (the consensus command starts without the crawl's image libraries).
"""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """Whether ``pid`` runs on this host; a zombie does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it runs
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):  # no /proc here: trust the signal check
        return True
