"""Stage `publish`: the BI tables as one DuckDB file and as Parquet, switched atomically."""

import time
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import duckdb as duckdb_lib
from dagster_duckdb import DuckDBResource

from pfd_pipeline import marts, progress
from pfd_pipeline.assets import failing_as
from pfd_pipeline.assets.allocate import ACTIVITY_RATES, RECONCILIATION
from pfd_pipeline.assets.marts import key
from pfd_pipeline.assets.validate import INGEST_AUDIT, REJECTED_ROWS
from pfd_pipeline.publish import (
    PUBLISHED_TABLES,
    Publication,
    PublishError,
    ensure_tables,
    publish_duckdb,
    publish_parquet,
    source_of,
)
from pfd_pipeline.settings import Settings
from pfd_pipeline.warehouse import checkpoint, markdown_table

GROUP = "publish"
DUCKDB_FILE = dg.AssetKey(["publish", "duckdb_file"])
PARQUET = dg.AssetKey(["publish", "parquet"])
REPORT = dg.AssetKey(["publish", "report"])
UPSTREAM = [
    *(key(m) for m in marts.MART_NAMES),
    key("customer_cost_to_serve"),
    ACTIVITY_RATES,
    RECONCILIATION,
    INGEST_AUDIT,
    REJECTED_ROWS,
]


def _spec(
    key: dg.AssetKey, kind: str, description: str, deps: list[dg.AssetKey] = UPSTREAM
) -> dg.AssetSpec:
    return dg.AssetSpec(key, group_name=GROUP, deps=deps, kinds={kind}, description=description)


def build_publish_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    @dg.multi_asset(
        name="publish",
        specs=[
            _spec(
                DUCKDB_FILE,
                "duckdb",
                f"{settings.published_db}: the BI tables in schema marts, every table and column "
                "described (COMMENT ON), readable by DuckDB "
                f"{settings.publish.storage_version}+.",
            ),
            _spec(
                PARQUET,
                "parquet",
                f"{settings.parquet_dir}/<table>/period=YYYY-MM/*.parquet: the same tables, "
                "Hive-partitioned by month, for tools that read Parquet.",
            ),
            _spec(
                REPORT,
                "html",
                f"{settings.reports_dir}/pfd_report_YYYY-MM.html: the latest month's "
                "profitability report (whale curve, tiers, Shapiro matrix, waterfall, customers, "
                "lifetime value, value matrix, rising stars, segments, capacity, reconciliation, "
                "data quality), one self-contained page read from the published file.",
                deps=[DUCKDB_FILE],  # it reads only the published file
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                "matches_work_store",
                asset=DUCKDB_FILE,
                description="Opened read-only by a second connection, every published table "
                "has the work store's row count.",
            )
        ],
        can_subset=True,
    )
    def publish(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
        """The DuckDB file first, then the Parquet files and the report side by side.

        The report reads only the published file and draws in Python (one core); the Parquet
        files are written by DuckDB from the marts (both cores, most of the time). Drawn on a
        thread of its own meanwhile, the report no longer adds its time to a daily run's
        (about 1.3 s at L). The work store is checkpointed once the Parquet is written, beside
        the rest of the drawing: nothing else reads or writes it then.
        """
        selected = context.selected_asset_keys
        checked = bool(context.selected_asset_check_keys)  # matches_work_store
        run_id = context.run.run_id
        if DUCKDB_FILE in selected:
            yield from failing_as(
                DUCKDB_FILE, lambda: _duckdb_file(duckdb, settings, run_id, checked)
            )
        elif checked:  # the check on its own: the published file as it is
            yield failing_as(DUCKDB_FILE, lambda: _checked_as_published(duckdb, settings))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pfd-report") as pool:
            drawn = None
            if REPORT in selected:
                drawn = pool.submit(failing_as, REPORT, lambda: _report(settings))
            if PARQUET in selected:
                publication = failing_as(PARQUET, lambda: _parquet(duckdb, settings, run_id))
                yield dg.MaterializeResult(asset_key=PARQUET, metadata=_metadata(publication))
            for failure in checkpoint(duckdb.get_connection):
                context.log.info(f"work store not checkpointed after publishing: {failure}")
            if drawn is not None:
                metadata, note = drawn.result()
                if note:
                    context.log.info(note)
                yield dg.MaterializeResult(asset_key=REPORT, metadata=metadata)

    return [publish]


def _duckdb_file(
    duckdb: DuckDBResource, settings: Settings, run_id: str, checked: bool
) -> list[dg.MaterializeResult | dg.AssetCheckResult]:
    """Publish the DuckDB file; return its materialisation and (if `checked`) the check of its
    row counts."""
    with duckdb.get_connection() as con:
        ensure_tables(con)
        publication = _publish(publish_duckdb, con, settings, run_id)
        expected = _row_counts(con, "marts", work=True) if checked else None
    published = _published_rows(settings)
    materialized = dg.MaterializeResult(
        asset_key=DUCKDB_FILE,
        metadata={
            **_metadata(publication),
            "rows": dg.MetadataValue.md(
                markdown_table(["table", "rows"], sorted(published.items()))
            ),
        },
    )
    if expected is None:
        return [materialized]
    return [materialized, _matches_work_store(expected, published)]


def _checked_as_published(duckdb: DuckDBResource, settings: Settings) -> dg.AssetCheckResult:
    """The check run on its own: the published file as it is against the work store."""
    with duckdb.get_connection() as con:
        expected = _row_counts(con, "marts", work=True)
    return _matches_work_store(expected, _published_rows(settings))


def _published_rows(settings: Settings) -> dict[str, int]:
    """The published file's rows per table, read by a connection of its own (none when nothing
    is published yet)."""
    if not settings.published_db.exists():
        return {}
    reader = duckdb_lib.connect(str(settings.published_db), read_only=True)
    try:
        return _row_counts(reader, "marts", work=False)
    finally:
        reader.close()


def _matches_work_store(expected: dict[str, int], published: dict[str, int]) -> dg.AssetCheckResult:
    """The published tables hold the work store's rows (none published: every table differs)."""
    differ = sorted(t for t in expected if expected[t] != published.get(t))
    return dg.AssetCheckResult(
        asset_key=DUCKDB_FILE,
        check_name="matches_work_store",
        passed=not differ,
        metadata={"tables_differing": dg.MetadataValue.text(", ".join(differ) or "none")},
    )


def _parquet(duckdb: DuckDBResource, settings: Settings, run_id: str) -> Publication:
    with duckdb.get_connection() as con:
        ensure_tables(con)
        return _publish(publish_parquet, con, settings, run_id)


def _report(settings: Settings) -> tuple[dict[str, dg.MetadataValue], str | None]:
    """Write the latest month's report; return its metadata and a note for the log (when there
    is nothing published to draw, which is not a failure)."""
    from pfd_pipeline.report import ReportError, write_report

    started = time.perf_counter()
    try:
        with progress.current().stage("report", unit="pages") as shown:
            path = write_report(settings.published_db, settings.reports_dir)
            shown.advance()
    except ReportError as exc:
        return {"report": dg.MetadataValue.text(str(exc))}, f"no report: {exc}"
    return {
        "path": dg.MetadataValue.path(str(path)),
        "period": dg.MetadataValue.text(path.stem.removeprefix("pfd_report_")),
        "size_kb": dg.MetadataValue.int(path.stat().st_size // 1024),
        "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 2)),
    }, None


def _publish(publish, con, settings: Settings, run_id: str) -> Publication:
    target = publish.__name__.removeprefix("publish_")
    try:
        with progress.current().stage(f"publish {target}", unit="months") as shown:
            publication = publish(con, settings, run_id)
            shown.advance(len({p for ps in publication.periods.values() for p in ps}))
        return publication
    except PublishError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


def _metadata(publication: Publication) -> dict[str, dg.MetadataValue]:
    months = sorted({p for ps in publication.periods.values() for p in ps})
    return {
        "path": dg.MetadataValue.path(str(publication.path)),
        "full_rewrite": dg.MetadataValue.bool(publication.full),
        "months_written": dg.MetadataValue.int(len(months)),
        "seconds": dg.MetadataValue.float(round(publication.seconds, 2)),
    }


def _row_counts(con, schema: str, *, work: bool) -> dict[str, int]:
    """Rows per published table (publication itself excluded: it exists only when published)."""
    counts = {}
    for table in PUBLISHED_TABLES:
        if table == "publication":
            continue
        name = source_of(table) if work else f"{schema}.{table}"
        counts[table] = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
    return counts
