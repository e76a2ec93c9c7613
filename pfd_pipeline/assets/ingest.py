"""Stage `ingest`: one asset per landing source, loading new files into the raw tables."""

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from threading import Event

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from pfd_pipeline.assets import FAILED_ASSET, failing_as
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
from pfd_pipeline.landing import FileRejected, LandingFile, discover
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
        # the 50 million lines of a first load at L. The merge only deletes rows, so no file's
        # range taken before it can have grown since.
        overlapping = overlapping_files(outcome.files)
        if overlapping:
            duplicated = con.execute(
                f"SELECT count(*) FROM ({repeated_keys_sql(source)})",
                {"first": first, "files": overlapping},
            ).fetchall()[0][0]
        earlier = con.execute(
            f"SELECT EXISTS (FROM {source.table} WHERE _file_id < $first)", {"first": first}
        ).fetchall()[0][0]
        if earlier:  # a first load has no earlier rows, and skips the join
            key_range = run_key_range(outcome.files)
            duplicated += con.execute(
                f"SELECT count(*) FROM {source.table} AS t WHERE t._file_id < $first "
                f"AND t.{source.key[0]} BETWEEN $low AND $high AND EXISTS ("
                f"SELECT 1 FROM {source.table} AS s WHERE s._file_id >= $first "
                f"AND {key_match(source)})",
                {"first": first, **key_range},
            ).fetchall()[0][0]
    results = [
        dg.AssetCheckResult(
            asset_key=asset_key(source),
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
                asset_key=asset_key(source),
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


# A few days' files of the two daily sources (a daily run's, about 10 MB each at L) are ingested
# side by side: reading and checking one file keeps about one core busy, so one after the other
# they left the second core idle. More than this (a backfill, a first load) go one after the
# other: each source's batches already keep both cores busy, and two at once would add up their
# memory.
SIDE_BY_SIDE_BYTES = 64 * 1024 * 1024


def _spec(source: Source) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=asset_key(source),
        group_name=GROUP,
        description=f"{source.description} Loaded from landing/{source.name}/ (CSV or Parquet).",
        deps=[asset_key(CUSTOMERS)] if source in (SALES_LEDGER, ACTIVITIES, FEEDBACK) else [],
        kinds={"duckdb", "polars"},
        metadata={
            "dagster/column_schema": contract_schema(source),
            "dagster/table_name": source.table,
        },
    )


def build_ingest_step(
    name: str,
    sources: list[Source],
    settings: Settings,
    partitions_def: dg.PartitionsDefinition | None,
) -> dg.AssetsDefinition:
    """One Dagster step that loads the new landing files of `sources` into their raw tables,
    side by side when they are few (SIDE_BY_SIDE_BYTES), else one source after the other."""

    @dg.multi_asset(
        name=name,
        specs=[_spec(source) for source in sources],
        check_specs=[spec for source in sources for spec in _checks(source)],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions_def else None,
        can_subset=len(sources) > 1,
    )
    def _step(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
        selected = [s for s in sources if asset_key(s) in context.selected_asset_keys]
        window = context.partition_key_range if partitions_def else None
        files = {
            source: failing_as(asset_key(source), partial(_landing_files, settings, source, window))
            for source in selected
        }
        settings.warehouse_dir.mkdir(parents=True, exist_ok=True)
        # here, once: two sources creating the schemas side by side in a new store would
        # conflict (DuckDB: "Catalog write-write conflict on create"; checked). Their turns
        # (`Turn`) keep that from happening today; this does not depend on it.
        with duckdb.get_connection() as con:
            ensure_schema(con)
        run_id = context.run.run_id

        def ingest(source: Source, turn: Turn | None = None) -> Ingested | dg.Failure:
            """The source's load, or its failure: each source is loaded whatever the others do,
            as when each was a step of its own."""
            try:
                return failing_as(
                    asset_key(source),
                    lambda: _ingest(
                        duckdb, settings, source, files[source], run_id, context.log, turn
                    ),
                )
            except dg.Failure as failure:
                return failure

        def release_blocks() -> None:
            with duckdb.get_connection() as con:
                release_cached_blocks(con, settings.duckdb_memory_limit)

        size = sum(f.size for listed in files.values() for f in listed)
        if len(selected) > 1 and size <= SIDE_BY_SIDE_BYTES:
            turns = Turn.chain(len(selected))
            with ThreadPoolExecutor(len(selected), thread_name_prefix="pfd-ingest") as pool:
                running = [pool.submit(ingest, s, t) for s, t in zip(selected, turns, strict=True)]
            done = [future.result() for future in running]
            if any(isinstance(d, Ingested) and d.loaded for d in done):
                release_blocks()  # once both are done: it lowers the memory limit a moment
        else:
            done = []
            for source in selected:
                done.append(ingest(source))
                if isinstance(done[-1], Ingested) and done[-1].loaded:
                    # before the next source: at L the ledger's load ran with about 1 GB of the
                    # events' blocks still cached, the build's peak (5.19 against 4.82 GiB)
                    release_blocks()
        loaded = [(s, d) for s, d in zip(selected, done, strict=True) if isinstance(d, Ingested)]
        checks = context.selected_asset_check_keys
        for source, ingested in loaded:
            key = asset_key(source)
            yield dg.MaterializeResult(asset_key=key, metadata=ingested.metadata)
            yield from (c for c in ingested.checks if dg.AssetCheckKey(key, c.check_name) in checks)
        failures = [d for d in done if isinstance(d, dg.Failure)]
        if failures:  # one failure for the step, naming each source that failed
            first, *others = failures
            raise dg.Failure(
                " ".join(
                    [
                        first.description or "",
                        *(f"{_named(f)} failed: {f.description}" for f in others),
                    ]
                ),
                first.metadata,
                allow_retries=False,
            )

    return _step


def _named(failure: dg.Failure) -> str:
    return str(failure.metadata[FAILED_ASSET].value)


def _landing_files(
    settings: Settings, source: Source, window: dg.PartitionKeyRange | None
) -> list[LandingFile]:
    """The source's landing files, of the days in `window` for a daily source."""
    try:
        files = discover(settings.landing_dir, source)
    except FileRejected as exc:  # e.g. an impossible date in a file name
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    if window is not None:  # only the files of the days this run covers
        files = [f for f in files if window.start <= f.day.isoformat() <= window.end]
    return files


@dataclass
class Ingested:
    metadata: dict[str, dg.MetadataValue]
    checks: list[dg.AssetCheckResult]
    loaded: bool  # any new file loaded


class Turn:
    """Sources ingested side by side draw their file ids in the order they are listed: each
    waits for the one before it to have its ids (or to have failed) before drawing its own."""

    def __init__(self, before: Event | None) -> None:
        self.before = before
        self.done = Event()

    @classmethod
    def chain(cls, count: int) -> list["Turn"]:
        turns: list[Turn] = []
        for _ in range(count):
            turns.append(cls(turns[-1].done if turns else None))
        return turns

    def wait(self) -> None:
        if self.before is not None:
            self.before.wait()


def _ingest(
    duckdb: DuckDBResource,
    settings: Settings,
    source: Source,
    files: list[LandingFile],
    run_id: str,
    log,
    turn: Turn | None = None,
) -> Ingested:
    """Load one source's new files; return its metadata, its checks and whether it loaded any.
    With a `turn`, its files take their ids after the source before it (`Turn`)."""
    started = time.perf_counter()
    if turn is not None:
        turn.wait()
    try:
        with duckdb.get_connection() as con:
            ctx = validation_context(settings, con, source)
            try:
                outcome = ingest_source(
                    con,
                    source,
                    files,
                    ctx,
                    run_id=run_id,
                    batch_rows=settings.validation.batch_rows,
                    max_reject_share=settings.validation.max_reject_share,
                    identified=turn.done.set if turn is not None else None,
                )
            except (IngestError, FileRejected) as exc:
                raise dg.Failure(description=str(exc), allow_retries=False) from exc
            crash_point("after_ingest")
            log.info(
                f"{source.name}: {outcome.loaded} file(s) loaded, {outcome.duplicates} "
                f"duplicate, {outcome.rows_accepted} rows accepted, {outcome.rows_rejected} "
                "rejected"
            )
            metadata = {**table_metadata(con, source.table), **_run_metadata(outcome)}
            checks = _check_results(con, source, outcome)
    finally:
        if turn is not None:  # the next source goes on even if this one failed first
            turn.done.set()
    metadata["seconds"] = dg.MetadataValue.float(round(time.perf_counter() - started, 3))
    return Ingested(metadata, checks, outcome.loaded > 0)


def build_ingest_assets(
    settings: Settings, daily: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    """A step per source that is not daily, and one for the daily sources (ledger and events)."""
    sources = list(SOURCES.values())
    steps = [
        build_ingest_step(f"raw__{asset_key(s).path[-1]}", [s], settings, None)
        for s in sources
        if not s.daily
    ]
    steps.append(build_ingest_step(DAILY_STEP, [s for s in sources if s.daily], settings, daily))
    return steps


DAILY_STEP = "raw__daily_sources"
