"""One pipeline run through Dagster, as the CLI does it, and the summary it prints."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from importlib import import_module
from pathlib import Path
from threading import Thread

import dagster as dg
import duckdb

from pfd_pipeline.assets import FAILED_ASSET
from pfd_pipeline.errors import RunFailed
from pfd_pipeline.planning import PlanError, make_plan
from pfd_pipeline.settings import Settings
from pfd_pipeline.sources import SOURCES
from pfd_pipeline.startup import startup
from pfd_pipeline.summary import commercial_summary
from pfd_pipeline.warehouse import connect, table_exists

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def dagster_instance() -> dg.DagsterInstance:
    """The instance the run is recorded in: $DAGSTER_HOME when set, else an in-memory one.

    Recording in a persistent instance lets `dagster dev` (with the same DAGSTER_HOME) show the
    CLI's runs, but Dagster writes one event per daily partition: a two-year backfill costs about
    a minute more. So it is opt-in, by setting DAGSTER_HOME.
    """
    if os.environ.get("DAGSTER_HOME"):
        home = Path(os.environ["DAGSTER_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        config = home / "dagster.yaml"
        if not config.exists():  # without it Dagster prints a telemetry notice into our output
            config.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def run_pipeline(settings: Settings, *, instance: dg.DagsterInstance | None = None) -> str:
    """Materialise everything new in the landing folder in one Dagster run; return the summary."""
    # the collector is off until the run is started, and what the start made is frozen
    with startup() as started:
        return _run(settings, instance, started)


def _run(
    settings: Settings, instance: dg.DagsterInstance | None, started: Callable[[], None]
) -> str:
    from pfd_pipeline.definitions import (
        PIPELINE_JOB,
        asset_keys,
        build_definitions,
        duckdb_resource,
    )
    from pfd_pipeline.schedules import selection_for

    try:
        plan = make_plan(settings)
    except PlanError as exc:
        raise RunFailed(str(exc)) from exc
    if not plan.has_work:
        return (
            f"Nothing new in {settings.landing_dir}: every file was ingested before.\n"
            + warehouse_summary(settings, run_id=None)
            + "\n"
            + commercial_summary(settings.published_db)
            + report_line(settings)
        )
    # The report's charts import matplotlib (0.4 s of Python), first needed by whale_curve, and
    # the lifetime-value models scipy (0.5 s); imported on a thread of their own, they load
    # while the first steps wait on DuckDB and polars.
    Thread(target=_import_later_modules, daemon=True).start()
    defs = build_definitions(settings)
    job = defs.resolve_job_def(PIPELINE_JOB)
    keys = asset_keys(list(defs.assets))
    # An instance made here is disposed of here (an ephemeral one removes its temporary folder).
    with nullcontext(instance) if instance is not None else dagster_instance() as instance:
        started()
        began = time.perf_counter()
        # One connection held open for the whole run keeps the work store's database open
        # between the assets' own connections: otherwise each asset's close checkpoints it and
        # the next opens it again (about 35 ms each, 1.2 s of a daily run). Closed before the
        # summaries, which open the work store read-only.
        with duckdb_resource(settings).get_connection():
            result = job.execute_in_process(
                instance=instance,
                tags=plan.run_tags(),
                asset_selection=selection_for(plan, keys),
                run_config=QUIET_LOGS,
                raise_on_error=False,
            )
        elapsed = time.perf_counter() - began
        if not result.success:
            raise RunFailed(_failure_message(result))
        stages = stage_seconds(defs, instance, result)
        write_run_stats(
            settings,
            result.run_id,
            elapsed,
            stages,
            step_spans(instance, result),
            asset_seconds(result),
        )
    return (
        f"Run {result.run_id[:8]} finished in {elapsed:.1f} s; {plan.describe()}.\n"
        + "Stages: "
        + ", ".join(f"{stage} {stages[stage]:.1f} s" for stage in STAGES)
        + "\n"
        + warehouse_summary(settings, run_id=result.run_id)
        + "\n"
        + commercial_summary(settings.published_db)
        + report_line(settings)
    )


STAGES = ("ingest", "validate", "allocate", "marts", "publish")
RUN_STATS_FILE = "last_run_stats.json"


LATER_MODULES = ("pfd_pipeline.charts", "pfd_pipeline.clv")


def _import_later_modules() -> None:
    for module in LATER_MODULES:
        import_module(module)


def stage_seconds(
    defs: dg.Definitions, instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult
) -> dict[str, float]:
    """Wall seconds per stage of a run, from Dagster's step timings.

    A step's stage is its assets' group. Validation runs inside the ingest steps (each batch is
    validated as it is read), so the ingest assets report the seconds of each of their parts
    (`seconds_read`, `seconds_validate`, ...) and validation's share of them moves from ingest
    to validate (`validation_seconds`).
    """
    group_of_step = {
        assets.node_def.name: group
        for assets in defs.assets
        if isinstance(assets, dg.AssetsDefinition)
        for group in assets.group_names_by_key.values()
    }
    seconds = dict.fromkeys(STAGES, 0.0)
    for step in instance.get_run_step_stats(result.run_id):
        group = group_of_step.get(step.step_key)
        if group in seconds and step.start_time and step.end_time:
            seconds[group] += step.end_time - step.start_time
    ingest_steps: dict[tuple[dg.AssetKey, str], float] = {}
    source_seconds: dict[dg.AssetKey, float] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        parts = {n: e for n, e in materialization.metadata.items() if n.startswith("seconds_")}
        if parts:  # an ingest asset's; every partition carries the same figures
            asset = materialization.asset_key
            source_seconds[asset] = float(materialization.metadata["seconds"].value)
            for name, entry in parts.items():
                ingest_steps[asset, name] = float(entry.value)
    sources = [
        (
            wall,
            ingest_steps.get((asset, "seconds_validate"), 0.0),
            sum(v for (a, _), v in ingest_steps.items() if a == asset),
        )
        for asset, wall in source_seconds.items()
    ]
    moved = validation_seconds(seconds["ingest"], sources)
    seconds["ingest"] -= moved
    seconds["validate"] += moved
    for (asset, name), value in sorted(ingest_steps.items()):
        step = f"{asset.path[-1]}.{name.removeprefix('seconds_')}"
        seconds[step] = value
    return seconds


def validation_seconds(ingest_wall: float, sources: Iterable[tuple[float, float, float]]) -> float:
    """Validation's wall seconds in the ingest steps, from each source's (wall seconds,
    validate's busy seconds, the busy seconds of all its parts: hash, read, validate, load,
    merge).

    A source's parts overlap (a reader thread beside two workers), so where their busy seconds
    add up to more than the source took, validation gets its share of the source's wall time;
    where they add up to less (time outside the parts: the checks, the metadata), its own
    seconds. Sources ingested side by side (a daily run's ledger and events) overlap too, so
    their shares are scaled down to the steps' wall time when they add up to more. Scaled to
    the workers' loop alone, as before, validation took 40% of the ingest steps at L, its
    reader's share left out; this way 28%, close to the per-row costs measured in earlier
    rounds (validation about a third of a ledger line's ingest and a quarter of an event's).
    """
    sources = list(sources)
    walls = sum(wall for wall, _, _ in sources)
    validating = sum(
        validate * min(1.0, wall / parts) for wall, validate, parts in sources if parts > 0
    )
    return validating * min(1.0, ingest_wall / walls) if walls > 0 else 0.0


def step_spans(
    instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult
) -> dict[str, tuple[float, float]]:
    """(start, end) in Unix seconds of each Dagster step (an asset, or a group of checks)."""
    return {
        step.step_key: (step.start_time, step.end_time)
        for step in instance.get_run_step_stats(result.run_id)
        if step.start_time and step.end_time
    }


def asset_seconds(result: dg.ExecuteInProcessResult) -> dict[str, float]:
    """Seconds per asset that reports them (metadata `seconds`: each mart, each publication,
    the report), e.g. the marts that one Dagster step rebuilds, some of them two at a time."""
    return {
        event.materialization.asset_key.to_user_string(): float(
            event.materialization.metadata["seconds"].value
        )
        for event in result.get_asset_materialization_events()
        if "seconds" in event.materialization.metadata
    }


def write_run_stats(
    settings: Settings,
    run_id: str,
    elapsed: float,
    stages: dict[str, float],
    steps: dict[str, tuple[float, float]],
    assets: dict[str, float],
) -> None:
    """The last run's timings and volumes, as JSON beside the warehouse (read by the benchmark)."""
    con = connect(settings.work_db, read_only=True)
    try:
        rows = dict(
            con.execute(
                "SELECT source, coalesce(sum(rows_read), 0) FROM audit.ingested_files "
                "WHERE run_id = ? GROUP BY source",
                [run_id],
            ).fetchall()
        )
    finally:
        con.close()
    stats = {
        "run_id": run_id,
        "seconds": round(elapsed, 3),
        "stage_seconds": {stage: round(stages[stage], 3) for stage in STAGES},
        "ingest_step_seconds": {
            step: round(value, 3) for step, value in stages.items() if step not in STAGES
        },
        "rows_read": {name: int(rows.get(name, 0)) for name in SOURCES},
        "step_seconds": {
            step: round(end - start, 3)
            for step, (start, end) in sorted(
                steps.items(), key=lambda item: item[1][0] - item[1][1]
            )
        },
        "asset_seconds": {
            asset: round(seconds, 3)
            for asset, seconds in sorted(assets.items(), key=lambda item: -item[1])
        },
        # when each step ran (Unix seconds), so that a memory peak can be placed in its step
        "step_spans": {
            step: [round(start, 3), round(end, 3)] for step, (start, end) in steps.items()
        },
    }
    path = settings.warehouse_dir / RUN_STATS_FILE
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    temp.replace(path)


def report_line(settings: Settings) -> str:
    """Where the latest month's HTML report is (the run's report asset wrote it)."""
    from pfd_pipeline.report import current_report

    path = current_report(settings.published_db, settings.reports_dir)
    return f"\nReport (open in a browser): {path}" if path else ""


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    messages = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        user = data.user_failure_data
        if user and user.description:
            text = user.description
        elif data.error is not None:
            error = (
                data.error.cause or data.error
            )  # the user code's exception, not Dagster's wrapper
            text = error.message.strip()
        else:
            text = "unknown error"
        if user and FAILED_ASSET in user.metadata:  # one asset of a step of several
            asset = user.metadata[FAILED_ASSET].value
        else:
            asset = event.step_key.replace("__", "/")  # asset steps are named after the key path
        messages.append(f"{asset} failed: {text}")
    return " ".join(messages) or f"the Dagster run {result.run_id} failed"


def warehouse_summary(settings: Settings, run_id: str | None) -> str:
    """Per source: files and rows of this run (or of all runs), and where the warehouse is."""
    con = connect(settings.work_db, read_only=True)
    try:
        scope = "this run" if run_id else "all runs"
        rows = con.execute(
            """
            SELECT source,
                   count(*) FILTER (status = 'loaded'), count(*) FILTER (status = 'duplicate'),
                   coalesce(sum(rows_read), 0), coalesce(sum(rows_accepted), 0),
                   coalesce(sum(rows_rejected), 0)
            FROM audit.ingested_files
            WHERE $run_id IS NULL OR run_id = $run_id
            GROUP BY source
            """,
            {"run_id": run_id},
        ).fetchall()
        by_source = {r[0]: r[1:] for r in rows}
        tables = {
            s.name: con.execute(f"SELECT count(*) FROM {s.table}").fetchall()[0][0]
            for s in SOURCES.values()
        }
        rules = con.execute(
            """
            SELECT source, rule, count(*) FROM audit.rejected_rows
            WHERE $run_id IS NULL OR run_id = $run_id
            GROUP BY ALL ORDER BY 3 DESC, 1, 2
            """,
            {"run_id": run_id},
        ).fetchall()
        allocation = _allocation_lines(con, run_id) + _mart_lines(con, run_id)
    finally:
        con.close()
    widths = (8, 7, 13, 13, 10, 14)
    titles = ("files", "dupl.", "rows read", "accepted", "rejected", "in warehouse")
    header = "source".ljust(14) + "".join(t.rjust(w) for t, w in zip(titles, widths, strict=True))
    lines = [f"Ingested ({scope}):", "  " + header]
    for name in SOURCES:
        values = (*by_source.get(name, (0, 0, 0, 0, 0)), tables[name])
        cells = "".join(f"{v:,}".rjust(w) for v, w in zip(values, widths, strict=True))
        lines.append(f"  {name:<14}{cells}")
    if rules:
        lines.append("Rejected rows by rule (see audit.rejected_rows):")
        lines += [f"  {source:<14}{rule:<32}{n:>8,}" for source, rule, n in rules]
    lines += allocation
    lines.append(f"Work store: {settings.work_db}")
    lines.append(
        f"Published for BI: {settings.published_db} (schema marts) and {settings.parquet_dir}/"
    )
    return "\n".join(lines)


def _mart_lines(con: duckdb.DuckDBPyConnection, run_id: str | None) -> list[str]:
    """Months of each mart rebuilt by this run (downstream of new or late data)."""
    if run_id is None or not table_exists(con, "audit.mart_periods"):
        return []
    rows = con.execute(
        "SELECT table_name, count(*), min(period), max(period) FROM audit.mart_periods "
        "WHERE run_id = ? GROUP BY table_name ORDER BY min(build_id)",
        [run_id],
    ).fetchall()
    if not rows:
        return ["Marts: nothing to rebuild."]
    lines = ["Marts rebuilt in this run:"]
    for table, n, first, last in rows:
        span = first if n == 1 else f"{first} to {last}"
        lines.append(f"  {table:<24}{n:>4} month(s): {span}")
    return lines


def _allocation_lines(con: duckdb.DuckDBPyConnection, run_id: str | None) -> list[str]:
    """Months allocated by this run and why, and whether the books balance."""
    if not table_exists(con, "marts.allocation_reconciliation"):
        return []
    reasons = con.execute(
        "SELECT reason, count(*), string_agg(period, ', ' ORDER BY period) "
        "FROM audit.allocated_periods WHERE $run_id IS NULL OR run_id = $run_id "
        "GROUP BY reason ORDER BY reason",
        {"run_id": run_id},
    ).fetchall()
    rows, off, supplied, assigned, unused, unassigned = con.execute(
        "SELECT count(*), count(*) FILTER (difference <> 0), coalesce(sum(cost_supplied), 0), "
        "coalesce(sum(cost_assigned), 0), coalesce(sum(unused_capacity_cost), 0), "
        "coalesce(sum(unassigned_total), 0) FROM marts.allocation_reconciliation"
    ).fetchall()[0]
    months = sum(n for _, n, _ in reasons)
    lines = [f"Cost-to-serve: {months} month(s) allocated{' in this run' if run_id else ''}."]
    for reason, n, periods in reasons:
        shown = periods if n <= 6 else f"{n} months"
        lines.append(f"  {reason}: {shown}")
    status = "all balance to the cent" if off == 0 else f"{off} DO NOT BALANCE"
    lines.append(
        f"  Reconciliation: {rows:,} resource-months, {status}; supplied {supplied:,.2f} = "
        f"assigned {assigned:,.2f} + unused capacity {unused:,.2f} + unassigned {unassigned:,.2f}"
    )
    return lines
