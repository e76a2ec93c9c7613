"""Stage `ingest`: one asset per landing source, loading new files into the raw tables."""

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from pfd_pipeline.cost_model import CostModelError, load_cost_model
from pfd_pipeline.faults import crash_point
from pfd_pipeline.ingest import (
    IngestError,
    SourceOutcome,
    ingest_source,
    key_match,
    known_customers,
    overlapping_files,
    repeated_keys_sql,
    run_key_range,
)
from pfd_pipeline.landing import FileRejected, discover
from pfd_pipeline.planning import today
from pfd_pipeline.settings import Settings
from pfd_pipeline.sources import ACTIVITIES, CUSTOMERS, FEEDBACK, SALES_LEDGER, SOURCES, Source
from pfd_pipeline.validation import ValidationContext
from pfd_pipeline.warehouse import ensure_schema, release_cached_blocks, table_metadata

GROUP = "ingest"


def asset_key(source: Source) -> dg.AssetKey:
    """The asset key is the table name: raw.sales_ledger -> raw/sales_ledger."""
    return dg.AssetKey(source.table.split("."))


def contract_schema(source: Source) -> dg.TableSchema:
    """The raw table's columns as the landing contract defines them, shown before any run."""
    not_null = dg.TableColumnConstraints(nullable=False)
    columns = [
        dg.TableColumn(
            col.name,
            sql_type(col.kind.dtype),
            description=col.kind.description + ("" if col.required else " (optional)"),
            # an absent optional value with a default is stored as the default, never null
            constraints=dg.TableColumnConstraints(
                nullable=not col.required and col.default is None
            ),
        )
        for col in source.columns
    ]
    columns += [
        dg.TableColumn(name, "BIGINT", description=text, constraints=not_null)
        for name, text in (
            ("_file_id", "audit.ingested_files.file_id of the file the row came from"),
            ("_row_number", "row in that file (1 = first data row)"),
        )
    ]
    return dg.TableSchema(columns=columns)


def sql_type(dtype: pl.DataType) -> str:
    """The DuckDB type a parsed landing column is stored as."""
    if isinstance(dtype, pl.Decimal):
        return f"DECIMAL({dtype.precision},{dtype.scale})"
    return {pl.String: "VARCHAR", pl.Date: "DATE", pl.Int16: "SMALLINT"}[dtype]


def _checks(source: Source) -> list[dg.AssetCheckSpec]:
    key = asset_key(source)
    specs = [
        dg.AssetCheckSpec(
            "key_unique",
            asset=key,
            blocking=True,
            description=f"Each {', '.join(source.key)} appears once in {source.table} (checked "
            "for the keys each run loads, so a daily run does not re-read the history).",
        ),
    ]
    if source in (SALES_LEDGER, ACTIVITIES):
        specs.append(
            dg.AssetCheckSpec(
                "customer_known",
                asset=key,
                blocking=source is SALES_LEDGER,
                description=(
                    "Every row loaded in the run has its customer_id in the customer master. "
                    "Ledger rows for unknown "
                    "customers are rejected; activity events are kept and their cost is later "
                    "reported as unassigned (a warning here)."
                ),
            )
        )
    return specs


def _check_results(con, source: Source, outcome: SourceOutcome) -> list[dg.AssetCheckResult]:
    """The checks on the rows this run loaded (earlier rows were checked when they were loaded),
    so that a daily run does not re-read the whole history."""
    loaded = [o.file_id for o in outcome.files if o.status == "loaded"]
    first = min(loaded, default=None)  # file ids only grow: this run's rows have _file_id >= first
    duplicated = 0
    if first is not None:  # keys repeated among the run's rows, or also loaded by an earlier run
        # keys in more than one of the run's files (validation kept one row per key in a
        # file); only files whose key ranges overlap are grouped: 1.3 s instead of 5.2 s for
        # the 50 million lines of a first load at L. The merge has found those files and the
        # key range (it only deletes rows, so neither can have grown since).
        overlapping = outcome.overlapping
        if overlapping is None:
            overlapping = overlapping_files(con, source, first)
        if overlapping:
            duplicated = con.execute(
                f"SELECT count(*) FROM ({repeated_keys_sql(source)})",
                {"first": first, "files": overlapping},
            ).fetchall()[0][0]
        earlier = con.execute(
            f"SELECT EXISTS (FROM {source.table} WHERE _file_id < $first)", {"first": first}
        ).fetchall()[0][0]
        if earlier:  # a first load has no earlier rows, and skips the join
            key_range = outcome.key_range or run_key_range(con, source, first)
            duplicated += con.execute(
                f"SELECT count(*) FROM {source.table} AS t WHERE t._file_id < $first "
                f"AND t.{source.key[0]} BETWEEN $low AND $high AND EXISTS ("
                f"SELECT 1 FROM {source.table} AS s WHERE s._file_id >= $first "
                f"AND {key_match(source)})",
                {"first": first, **key_range},
            ).fetchall()[0][0]
    results = [
        dg.AssetCheckResult(
            check_name="key_unique",
            passed=duplicated == 0,
            metadata={"duplicated_keys": duplicated, "files_checked": len(loaded)},
        ),
    ]
    if source in (SALES_LEDGER, ACTIVITIES):
        unknown = 0
        if first is not None:
            unknown = con.execute(
                f"SELECT count(*) FROM {source.table} AS t "
                "ANTI JOIN raw.customers AS c ON c.customer_id = t.customer_id "
                "WHERE t._file_id >= $first",
                {"first": first},
            ).fetchall()[0][0]
        results.append(
            dg.AssetCheckResult(
                check_name="customer_known",
                passed=unknown == 0,
                severity=dg.AssetCheckSeverity.ERROR
                if source is SALES_LEDGER
                else dg.AssetCheckSeverity.WARN,
                metadata={"rows_with_unknown_customer": unknown, "files_checked": len(loaded)},
            )
        )
    return results


def validation_context(settings: Settings, con, source: Source) -> ValidationContext:
    """What a source's rows are checked against: today, the date bounds, the customer master
    (ledger, feedback), the accepted currencies (ledger) and the cost model's activities
    (activities)."""
    return ValidationContext(
        as_of=today(settings),
        min_date=settings.validation.min_date,
        max_future_days=settings.validation.max_future_days,
        known_customers=known_customers(con) if source in (SALES_LEDGER, FEEDBACK) else None,
        currencies=frozenset(settings.validation.currencies),
        known_activities=known_activities(settings) if source is ACTIVITIES else None,
    )


def known_activities(settings: Settings) -> frozenset[str]:
    """The event activities the cost model drives (`driver: {events: <activity>}`), for the
    activities' activity_known rule. A cost model that cannot be loaded stops the ingest."""
    try:
        model = load_cost_model(settings.cost_model_path)
    except CostModelError as exc:
        raise dg.Failure(
            description=f"{exc} (activity events are checked against the cost model's "
            "activities, rule activity_known, so the model must load first)",
            allow_retries=False,
        ) from exc
    return frozenset(
        a.driver_name for a in model.activities.values() if a.driver_source == "events"
    )


def _run_metadata(outcome: SourceOutcome) -> dict[str, dg.MetadataValue]:
    return {
        "files_loaded": dg.MetadataValue.int(outcome.loaded),
        "files_duplicate": dg.MetadataValue.int(outcome.duplicates),
        "files_already_seen": dg.MetadataValue.int(outcome.skipped),
        "rows_read": dg.MetadataValue.int(outcome.rows_read),
        "rows_accepted": dg.MetadataValue.int(outcome.rows_accepted),
        "rows_rejected": dg.MetadataValue.int(outcome.rows_rejected),
        **{
            f"seconds_{step}": dg.MetadataValue.float(round(value, 3))
            for step, value in outcome.seconds.items()
        },
    }


def build_ingest_asset(
    source: Source, settings: Settings, partitions_def: dg.PartitionsDefinition | None
) -> dg.AssetsDefinition:
    """The asset that loads one source's new landing files into its raw table."""
    deps = [asset_key(CUSTOMERS)] if source in (SALES_LEDGER, ACTIVITIES, FEEDBACK) else []

    @dg.asset(
        key=asset_key(source),
        group_name=GROUP,
        description=f"{source.description} Loaded from landing/{source.name}/ (CSV or Parquet).",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions_def else None,
        deps=deps,
        check_specs=_checks(source),
        kinds={"duckdb", "polars"},
        metadata={
            "dagster/column_schema": contract_schema(source),
            "dagster/table_name": source.table,
        },
    )
    def _asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
        try:
            files = discover(settings.landing_dir, source)
        except FileRejected as exc:  # e.g. an impossible date in a file name
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        if source.daily:  # only the files of the days this run covers
            window = context.partition_key_range
            files = [f for f in files if window.start <= f.day.isoformat() <= window.end]
        settings.warehouse_dir.mkdir(parents=True, exist_ok=True)
        with duckdb.get_connection() as con:
            ensure_schema(con)
            ctx = validation_context(settings, con, source)
            try:
                outcome = ingest_source(
                    con,
                    source,
                    files,
                    ctx,
                    run_id=context.run.run_id,
                    batch_rows=settings.validation.batch_rows,
                    max_reject_share=settings.validation.max_reject_share,
                )
            except (IngestError, FileRejected) as exc:
                raise dg.Failure(description=str(exc), allow_retries=False) from exc
            crash_point("after_ingest")
            context.log.info(
                f"{source.name}: {outcome.loaded} file(s) loaded, {outcome.duplicates} duplicate, "
                f"{outcome.rows_accepted} rows accepted, {outcome.rows_rejected} rejected"
            )
            metadata = {**table_metadata(con, source.table), **_run_metadata(outcome)}
            checks = _check_results(con, source, outcome)
            if outcome.loaded:
                release_cached_blocks(con, settings.duckdb_memory_limit)
        yield dg.MaterializeResult(metadata=metadata)
        yield from checks

    return _asset


def build_ingest_assets(
    settings: Settings, daily: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    return [
        build_ingest_asset(source, settings, daily if source.daily else None)
        for source in SOURCES.values()
    ]
