"""The single Dagster entry point: assets by stage, checks, the pipeline job and its daily schedule.

`dagster dev -w workspace.yaml` loads `defs` from here, with paths from the environment
(PFD_LANDING_DIR, PFD_WAREHOUSE_DIR, PFD_CONFIG) or the defaults under data/.
The CLI builds the same definitions for the settings it was given.
"""

from __future__ import annotations

import warnings

import dagster as dg
import duckdb as duckdb_lib
from dagster_duckdb import DuckDBResource

from pfd_pipeline.assets.ingest import build_ingest_assets
from pfd_pipeline.assets.validate import build_validate_assets
from pfd_pipeline.planning import Plan, PlanError, make_plan
from pfd_pipeline.settings import Settings

PIPELINE_JOB = "pfd_pipeline"


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """One partition per landing day, from partitions_start up to and including today."""
    return dg.DailyPartitionsDefinition(
        start_date=settings.partitions_start.isoformat(),
        timezone=settings.schedule_timezone,
        end_offset=1,
    )


def duckdb_resource(settings: Settings) -> DuckDBResource:
    return DuckDBResource(
        database=str(settings.work_db),
        connection_config={
            "memory_limit": settings.duckdb_memory_limit,
            "threads": settings.duckdb_threads,
            "preserve_insertion_order": False,
        },
    )


def build_schedule(settings: Settings, job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_refresh",
        cron_schedule=settings.schedule_cron,
        execution_timezone=settings.schedule_timezone,
        job=job,
        description="Each day: ingest every landing file that is new, then refresh what depends on it.",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def daily_refresh(context: dg.ScheduleEvaluationContext):
        try:
            plan = make_plan(settings)
        except PlanError as exc:
            return dg.SkipReason(f"landing folder cannot be scheduled: {exc}")
        except duckdb_lib.IOException as exc:  # a run holds the work store
            return dg.SkipReason(f"the warehouse is busy (a run is in progress?): {exc}")
        if not plan.has_work:
            return dg.SkipReason(f"no new files in {settings.landing_dir}")
        return dg.RunRequest(
            run_key=f"{context.scheduled_execution_time:%Y-%m-%dT%H:%M}",
            tags=plan.run_tags(),
            asset_selection=selection_for(plan),
        )

    return daily_refresh


def selection_for(plan: Plan) -> list[dg.AssetKey] | None:
    """All assets when a daily source has new files; otherwise only the unpartitioned ones."""
    if plan.daily_days is not None:
        return None
    return [dg.AssetKey(name) for name in UNPARTITIONED_ASSETS]


UNPARTITIONED_ASSETS = ("raw_customers", "raw_resource_costs", "ingest_audit", "rejected_rows")


def build_definitions(settings: Settings) -> dg.Definitions:
    daily = daily_partitions(settings)
    with warnings.catch_warnings():
        # BackfillPolicy is marked beta; single-run backfills are what this pipeline needs.
        warnings.simplefilter("ignore", dg.BetaWarning)
        assets = [*build_ingest_assets(settings, daily), *build_validate_assets(settings)]
    job = dg.define_asset_job(
        PIPELINE_JOB,
        selection=dg.AssetSelection.all(),
        description="Ingest and validate everything new in the landing folder, then what depends on it.",
    )
    return dg.Definitions(
        assets=assets,
        jobs=[job],
        schedules=[build_schedule(settings, job)],
        resources={"duckdb": duckdb_resource(settings)},
        executor=dg.in_process_executor,
    )


defs = build_definitions(Settings.load())
