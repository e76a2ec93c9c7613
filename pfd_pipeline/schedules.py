"""The daily schedule: one run for what is new in the landing folder, or a skip saying why not."""

from __future__ import annotations

import dagster as dg
import duckdb

from pfd_pipeline.planning import Plan, PlanError, make_plan
from pfd_pipeline.settings import Settings


def selection_for(plan: Plan, unpartitioned: list[dg.AssetKey]) -> list[dg.AssetKey] | None:
    """All assets when a daily source has new files; otherwise only the unpartitioned ones."""
    return None if plan.daily_days is not None else unpartitioned


def build_schedule(
    settings: Settings, job: dg.UnresolvedAssetJobDefinition, unpartitioned: list[dg.AssetKey]
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_refresh",
        cron_schedule=settings.schedule_cron,
        execution_timezone=settings.schedule_timezone,
        job=job,
        description="Each day: ingest every new landing file, then refresh what depends on it.",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def daily_refresh(context: dg.ScheduleEvaluationContext):
        try:
            plan = make_plan(settings)
        except PlanError as exc:
            return dg.SkipReason(f"landing folder cannot be scheduled: {exc}")
        except duckdb.IOException as exc:  # a run holds the work store
            return dg.SkipReason(f"the warehouse is busy (a run is in progress?): {exc}")
        if not plan.has_work:
            return dg.SkipReason(f"no new files in {settings.landing_dir}")
        return dg.RunRequest(
            run_key=f"{context.scheduled_execution_time:%Y-%m-%dT%H:%M}",
            tags=plan.run_tags(),
            asset_selection=selection_for(plan, unpartitioned),
        )

    return daily_refresh
