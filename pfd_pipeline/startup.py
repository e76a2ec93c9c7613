"""Python's garbage collector, kept away from the objects a run makes as it starts.

Starting `pfd run` imports Dagster (with SQLAlchemy and alembic for its instance), polars and
DuckDB and builds the Dagster definitions and instance: about 370,000 objects that live until
the run ends. The collector is triggered by allocations, and each of its full collections
traverses every object again: in a daily run at L, six full collections took 0.56 s of the
0.77 s the collector ran.

`startup()` turns the collector off while a run starts; `started()` then freezes what exists
(`gc.freeze`: the objects are moved where no collection looks) and turns it back on, so the
run's own garbage is collected as before, among far fewer objects: the collector's time in that
daily run 0.69-0.76 -> 0.17-0.21 s, in a full build at S 1.3 -> 0.46 s. Leaving the block thaws the
frozen objects, so that a process that runs the pipeline more than once (the tests) gets them
back to its collector. The CLI also wraps its import of the runner (Dagster) in a block, only to
keep the collector off while it imports; the run's block then freezes what the imports made.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def startup() -> Iterator[Callable[[], None]]:
    """The collector off until `started()` is called (or the block ends), the objects made so
    far frozen from then until the block ends."""
    enabled = gc.isenabled()
    gc.disable()
    done = False

    def started() -> None:
        nonlocal done
        if not done:
            done = True
            gc.freeze()
            if enabled:
                gc.enable()

    try:
        yield started
    finally:
        started()
        gc.unfreeze()
