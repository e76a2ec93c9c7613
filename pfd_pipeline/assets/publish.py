"""Stage `publish`: the BI tables as one DuckDB file and as Parquet, switched atomically."""

import time

import dagster as dg
import duckdb as duckdb_lib
from dagster_duckdb import DuckDBResource

from pfd_pipeline import marts, progress
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
from pfd_pipeline.warehouse import checkpoint_alongside, markdown_table

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


def build_publish_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=DUCKDB_FILE,
        group_name=GROUP,
        deps=UPSTREAM,
        kinds={"duckdb"},
        description=f"{settings.published_db}: the BI tables in schema marts, every table and "
        f"column described (COMMENT ON), readable by DuckDB {settings.publish.storage_version}+.",
        check_specs=[
            dg.AssetCheckSpec(
                "matches_work_store",
                asset=DUCKDB_FILE,
                description="Opened read-only by a second connection, every published table "
                "has the work store's row count.",
            )
        ],
    )
    def duckdb_file(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
        with duckdb.get_connection() as con:
            ensure_tables(con)
            publication = _publish(publish_duckdb, con, settings, context.run.run_id)
            expected = _row_counts(con, "marts", work=True)
        reader = duckdb_lib.connect(str(settings.published_db), read_only=True)
        try:
            published = _row_counts(reader, "marts", work=False)
        finally:
            reader.close()
        differ = sorted(t for t in expected if expected[t] != published.get(t))
        yield dg.MaterializeResult(
            metadata={
                **_metadata(publication),
                "rows": dg.MetadataValue.md(
                    markdown_table(["table", "rows"], sorted(published.items()))
                ),
            }
        )
        yield dg.AssetCheckResult(
            check_name="matches_work_store",
            passed=not differ,
            metadata={"tables_differing": dg.MetadataValue.text(", ".join(differ) or "none")},
        )

    @dg.asset(
        key=PARQUET,
        group_name=GROUP,
        deps=UPSTREAM,
        kinds={"parquet"},
        description=f"{settings.parquet_dir}/<table>/period=YYYY-MM/*.parquet: the same tables, "
        "Hive-partitioned by month, for tools that read Parquet.",
    )
    def parquet(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
        with duckdb.get_connection() as con:
            ensure_tables(con)
            publication = _publish(publish_parquet, con, settings, context.run.run_id)
        return dg.MaterializeResult(metadata=_metadata(publication))

    @dg.asset(
        key=REPORT,
        group_name=GROUP,
        # after the Parquet too, though it reads only the published file: the work store is
        # checkpointed meanwhile, and nothing else should be writing or reading it then
        deps=[DUCKDB_FILE, PARQUET],
        kinds={"html"},
        description=f"{settings.reports_dir}/pfd_report_YYYY-MM.html: the latest month's "
        "profitability report (whale curve, tiers, Shapiro matrix, waterfall, customers, "
        "lifetime value, value matrix, rising stars, segments, capacity, reconciliation, data "
        "quality), one self-contained page read from the published file.",
    )
    def report(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
        from pfd_pipeline.report import ReportError, write_report

        started = time.perf_counter()
        try:
            with (
                progress.current().stage("report", unit="pages") as shown,
                # the work store's checkpoint (about 1.4 s after a daily run at L) beside the
                # drawing, which keeps one core busy
                checkpoint_alongside(duckdb.get_connection) as failures,
            ):
                path = write_report(settings.published_db, settings.reports_dir)
                shown.advance()
            for failure in failures:
                context.log.info(f"work store not checkpointed beside the report: {failure}")
        except ReportError as exc:  # nothing published yet: nothing to draw, not a failure
            context.log.info(f"no report: {exc}")
            return dg.MaterializeResult(metadata={"report": dg.MetadataValue.text(str(exc))})
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(path)),
                "period": dg.MetadataValue.text(path.stem.removeprefix("pfd_report_")),
                "size_kb": dg.MetadataValue.int(path.stat().st_size // 1024),
                "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 2)),
            }
        )

    return [duckdb_file, parquet, report]


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
