"""pfd — Profit by Design: activity-based customer profitability as a Dagster + DuckDB pipeline."""

import os

# polars allocates through jemalloc, which hands freed pages back to the system within about a
# second by default; ingestion then faults every page of each batch in again. Keeping freed
# pages for 30 s cut a 36-file ingest from 14.0 to 13.1 s (system time 2.9 -> 1.3 s, page
# faults a third) at about 110 MB more resident memory. Read once, when polars is first
# imported; a value already in the environment wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:30000,muzzy_decay_ms:30000")
