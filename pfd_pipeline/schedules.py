"""The daily schedule: one run for what is new in the landing folder, or a skip saying why not."""

from __future__ import annotations

import dagster as dg
import duckdb

from pfd_pipeline.assets.ingest import asset_key
from pfd_pipeline.planning import Plan, PlanError, make_plan
from pfd_pipeline.settings import Settings
from pfd_pipeline.sources import SOURCES


def selection_for(plan: Plan, keys: list[dg.AssetKey]) -> list[dg.AssetKey] | None:
    """The assets a run materialises: all of `keys` but the raw tables of sources without new
    files (None: every source has some). A daily source without new files would need a
    partition; an unpartitioned one would list its folder, load the customer master for its
    rules and record an empty load (0.45 s of a daily run at L for feedback, customers and
    resource costs)."""
    idle = {asset_key(SOURCES[name]) for name, files in plan.new_files.items() if not files}
    return [key for key in keys if key not in idle] if idle else None


def build_schedule(
    settings: Settings, job: dg.UnresolvedAssetJobDefinition, keys: list[dg.AssetKey]
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
            asset_selection=selection_for(plan, keys),
        )

    return daily_refresh
