"""Named crash points, for the tests that a run killed anywhere (kill -9) loses nothing.

`PFD_CRASH_AT=<name>` makes the process kill itself with SIGKILL when it reaches that point:
no cleanup, no exception handlers, no flushing, exactly like `kill -9`. Unset, it costs one
environment lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "PFD_CRASH_AT"
POINTS = (
    "after_ingest",  # a source's rows committed, nothing allocated yet
    "mid_allocation",  # one month allocated, the others not
    "after_marts",  # customer profitability rebuilt, tiers and the rest not
    "before_duckdb_switch",  # next file written, not yet renamed over the published one
    "after_duckdb_switch",  # renamed, but not yet recorded as published
    "before_previous_recorded",  # full publication: its copy for the next run made, not recorded
    "before_parquet_switch",  # new Parquet folder written, symlink not switched
)
# Reached only when the DuckDB file is published in full (a first build, a schema change).
FULL_PUBLICATION_ONLY = frozenset({"before_previous_recorded"})


def crash_point(name: str) -> None:
    if name not in POINTS:
        raise ValueError(f"unknown crash point {name!r}")
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
