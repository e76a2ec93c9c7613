"""Partitions: landing data by day (allocation and marts will add months)."""

from __future__ import annotations

import dagster as dg

from pfd_pipeline.settings import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """One partition per landing day, from partitions_start up to and including today."""
    return dg.DailyPartitionsDefinition(
        start_date=settings.partitions_start.isoformat(),
        timezone=settings.schedule_timezone,
        end_offset=1,
    )
