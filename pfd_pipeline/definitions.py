"""The single Dagster entry point: assets by stage, checks, the pipeline job and its daily schedule.

`dagster dev -w workspace.yaml` loads `defs` from here, with paths from the environment
(PFD_LANDING_DIR, PFD_WAREHOUSE_DIR, PFD_CONFIG) or the defaults under data/.
The CLI builds the same definitions for the settings it was given.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from pfd_pipeline.assets.allocate import build_allocate_assets
from pfd_pipeline.assets.ingest import build_ingest_assets
from pfd_pipeline.assets.marts import build_mart_assets
from pfd_pipeline.assets.publish import build_publish_assets
from pfd_pipeline.assets.validate import build_validate_assets
from pfd_pipeline.partitions import daily_partitions
from pfd_pipeline.schedules import build_schedule
from pfd_pipeline.settings import Settings
from pfd_pipeline.warehouse import attach_marts

PIPELINE_JOB = "pfd_pipeline"

# A backfill of daily partitions runs as one run; without this Dagster also writes one
# "materialisation planned" event per partition before the run starts (about 30 ms each: a
# two-year first load spent 30 of its 60 s on them). With it, one event per asset carries the
# whole partition range. Dagster's documented trade-off: if such a run fails, its partitions
# are not marked failed one by one (the run is, and `pfd run` exits 1 naming the file).
os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")


# The write-ahead log's size that makes DuckDB checkpoint at a commit (its default is 16 MB). A
# daily run at L logs about 34 MB: with the default it checkpointed in the middle of the marts
# (about 1 s), with this it checkpoints once, beside the report (publish/report). A full build
# checkpoints less often; its peak memory did not change (4.56 GiB at L, against 4.62).
CHECKPOINT_THRESHOLD = "256MB"

# Row groups DuckDB may merge at a checkpoint (its default is 100 per table). Every insert of a
# month leaves a partly filled row group; at the next checkpoint DuckDB merged each such group
# with its neighbours, reading and compressing them again. A full build at L inserts each month
# of customer_profitability, customer_months and customer_documents apart (two at a time) and
# its sources in batches: its last checkpoint rewrote all three tables and 8 million raw rows,
# 14.6 s at one core (the work store's 7 MB log, checkpointed alone). A daily run's merged the
# month it rebuilt with the one before. Without merges a month's rows stay in row groups of
# their own: a row group whose rows are all deleted is still dropped, so a rewritten month
# leaves nothing behind; the store keeps at most a partly filled row group per month and table.
MAX_VACUUM_TASKS = 0


class WorkStore(DuckDBResource):
    """The work store with the marts file attached to every connection (warehouse.attach_marts)."""

    storage_version: str

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with super().get_connection() as con:
            # closed here too: Dagster's closes it only when the block ends without an error,
            # and a connection left to the garbage collector keeps the work store open in this
            # process with its settings (a next run in it then cannot open it read-only)
            try:
                attach_marts(con, Path(self.database), self.storage_version)
                yield con
            finally:
                con.close()


def duckdb_resource(settings: Settings) -> WorkStore:
    """The work store, with the memory cap and threads from the config."""
    config: dict[str, str | int | bool] = {
        "memory_limit": settings.duckdb_memory_limit,
        "threads": settings.duckdb_threads,
        "preserve_insertion_order": False,
        "checkpoint_threshold": CHECKPOINT_THRESHOLD,
        "max_vacuum_tasks": MAX_VACUUM_TASKS,
    }
    if settings.duckdb_temp_directory is not None:
        config["temp_directory"] = str(settings.duckdb_temp_directory)
    return WorkStore(
        database=str(settings.work_db),
        connection_config=config,
        storage_version=settings.publish.storage_version,
    )


def asset_keys(assets: list[dg.AssetsDefinition]) -> list[dg.AssetKey]:
    return [key for a in assets for key in a.keys]


def build_definitions(settings: Settings) -> dg.Definitions:
    daily = daily_partitions(settings)
    with warnings.catch_warnings():
        # BackfillPolicy is marked beta; single-run backfills are what this pipeline needs.
        warnings.simplefilter("ignore", dg.BetaWarning)
        assets = [
            *build_ingest_assets(settings, daily),
            *build_validate_assets(settings),
            *build_allocate_assets(settings),
            *build_mart_assets(settings),
            *build_publish_assets(settings),
        ]
    job = dg.define_asset_job(
        PIPELINE_JOB,
        selection=dg.AssetSelection.all(),
        description="Ingest and validate what is new in the landing folder, then its dependents.",
    )
    return dg.Definitions(
        assets=assets,
        jobs=[job],
        schedules=[build_schedule(settings, job, asset_keys(assets))],
        resources={"duckdb": duckdb_resource(settings)},
        # One process: DuckDB allows a single writer, and backfills must not pay process start-up.
        executor=dg.in_process_executor,
    )


defs = build_definitions(Settings.load())
