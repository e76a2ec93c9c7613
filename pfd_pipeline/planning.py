"""What a run has to do: the landing files that are new since the last run, and their days.

The CLI and the daily schedule both plan the same way, so that one Dagster run materialises
exactly the daily partitions that received new files (a two-year backfill is one run), the
other sources with new files, and everything downstream.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pfd_pipeline.ingest import seen_fingerprints
from pfd_pipeline.landing import FileRejected, LandingFile, discover
from pfd_pipeline.settings import Settings
from pfd_pipeline.sources import SOURCES
from pfd_pipeline.warehouse import connect, marts_path, table_exists

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


class PlanError(Exception):
    """Landing files that no run can take (e.g. dated outside the partitions)."""


@dataclass(frozen=True)
class Plan:
    new_files: dict[str, list[LandingFile]]  # source name -> files not seen before
    months_to_reallocate: tuple[str, ...] = ()  # without new files: cost model or status changed
    to_refresh: tuple[str, ...] = ()  # without new files: marts or publication out of date

    @property
    def has_work(self) -> bool:
        return (
            any(self.new_files.values()) or bool(self.months_to_reallocate) or bool(self.to_refresh)
        )

    @property
    def daily_days(self) -> tuple[dt.date, dt.date] | None:
        """First and last day with a new file in a daily source, or None."""
        days = [
            f.day for name, files in self.new_files.items() for f in files if SOURCES[name].daily
        ]
        return (min(days), max(days)) if days else None

    def run_tags(self) -> dict[str, str]:
        """Dagster tags that make one run cover every daily partition with new files."""
        span = self.daily_days
        if span is None:
            return {}
        return {RANGE_START_TAG: span[0].isoformat(), RANGE_END_TAG: span[1].isoformat()}

    def describe(self) -> str:
        counts = ", ".join(f"{len(v)} {k}" for k, v in self.new_files.items() if v)
        span = self.daily_days
        days = f" for days {span[0]} to {span[1]}" if span else ""
        text = f"new files: {counts or 'none'}{days}"
        if self.months_to_reallocate and not counts:
            text += f"; {len(self.months_to_reallocate)} month(s) to re-allocate"
        if self.to_refresh and not counts:
            text += "; " + "; ".join(self.to_refresh)
        return text


def today(settings: Settings) -> dt.date:
    """Today in the schedule's timezone: the last daily partition."""
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(settings.schedule_timezone)).date()


def make_plan(settings: Settings) -> Plan:
    """Scan the landing folder and compare it with the audit of files already ingested."""
    if not settings.landing_dir.is_dir():
        raise PlanError(
            f"landing folder {settings.landing_dir} does not exist "
            "(set --landing or PFD_LANDING_DIR, or run `pfd generate --out DIR` first)"
        )
    found: dict[str, list[LandingFile]] = {}
    problems: list[str] = []
    for name, source in SOURCES.items():
        try:
            found[name] = discover(settings.landing_dir, source)
        except FileRejected as exc:
            problems.append(f"{exc.relpath}: {exc.message}")
    seen = _seen(settings)
    new = {
        name: [f for f in files if f.fingerprint not in seen.get(name, set())]
        for name, files in found.items()
    }
    last = today(settings)
    for name, files in new.items():
        if not SOURCES[name].daily:
            continue
        for f in files:
            if f.day < settings.partitions_start:
                problems.append(
                    f"{f.relpath}: dated {f.day}, before partitions_start "
                    f"{settings.partitions_start} in {settings.config_path.name}; "
                    "move partitions_start earlier to load it"
                )
            elif f.day > last:
                problems.append(f"{f.relpath}: dated {f.day}, after today ({last}); not loaded yet")
    if problems:
        raise PlanError(
            f"{len(problems)} landing file(s) cannot be scheduled: " + " | ".join(problems[:10])
        )
    months: tuple[str, ...] = ()
    refresh: tuple[str, ...] = ()
    if not any(new.values()):
        months = _months_to_reallocate(settings)
        refresh = _to_refresh(settings)
    return Plan(new, months, refresh)


def _months_to_reallocate(settings: Settings) -> tuple[str, ...]:
    """Months the allocation would rebuild although no file is new (cost model edited, or a
    month that closed since the last run)."""
    from pfd_pipeline.allocate import allocated_before_documents, pending_periods
    from pfd_pipeline.cost_model import CostModelError, load_cost_model

    if not settings.work_db.exists():
        return ()
    try:
        model = load_cost_model(settings.cost_model_path)
    except CostModelError as exc:
        raise PlanError(str(exc)) from exc
    con = connect(settings.work_db, read_only=True)
    try:
        needed = (
            "audit.changed_periods",
            "audit.allocated_periods",
            "marts.allocation_reconciliation",
        )
        if not all(table_exists(con, t) for t in needed):
            return ()
        if allocated_before_documents(con):
            return tuple(
                r[0]
                for r in con.execute(
                    "select period from audit.allocated_periods order by 1"
                ).fetchall()
            )
        pending = pending_periods(con, model, today(settings), settings.close_after_days)
    finally:
        con.close()
    return tuple(p.period for p in pending)


def _to_refresh(settings: Settings) -> tuple[str, ...]:
    """Marts built with other settings, or tables not yet published (e.g. a run was killed
    before publishing): what a run would do although no file is new."""
    from pfd_pipeline import marts, publish

    if not settings.work_db.exists():
        return ()
    con = connect(settings.work_db, read_only=True)
    try:
        if not table_exists(con, "audit.allocated_periods"):
            return ()
        if not marts_path(settings.work_db).exists():  # a store made before the marts file
            return ("move the marts to a file of their own (every month is built again, once)",)
        if not table_exists(con, "audit.mart_periods"):
            return ("build the marts",)
        reasons = [
            f"rebuild {len(months)} month(s) of {mart.name}"
            for mart in marts.marts(settings.marts)
            if (months := marts.pending(con, mart, settings.marts))
        ]
        if not table_exists(con, "audit.publications"):
            return (*reasons, "publish")
        fingerprint = publish.schema_fingerprint(settings)
        targets = {"duckdb": settings.published_db, "parquet": settings.parquet_dir}
        for target, path in targets.items():
            todo = publish.pending(con, target, fingerprint)
            if not path.exists() or todo is None or any(todo.values()):
                reasons.append(f"publish {path.name}")
    finally:
        con.close()
    return tuple(reasons)


def _seen(settings: Settings) -> dict[str, set[tuple[str, int, int]]]:
    if not settings.work_db.exists():
        return {}
    con = connect(settings.work_db, read_only=True)
    try:
        if not table_exists(con, "audit.ingested_files"):
            return {}
        return {name: seen_fingerprints(con, source) for name, source in SOURCES.items()}
    finally:
        con.close()
