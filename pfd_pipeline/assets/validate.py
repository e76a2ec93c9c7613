"""Stage `validate`: the ingest audit and the rejected rows, with the checks that guard them."""

from collections.abc import Iterator

import dagster as dg
from dagster_duckdb import DuckDBResource

from pfd_pipeline.assets.ingest import asset_key
from pfd_pipeline.settings import Settings
from pfd_pipeline.sources import SOURCES
from pfd_pipeline.warehouse import ensure_schema, markdown_table, table_metadata

GROUP = "validate"
RAW_ASSETS = [asset_key(s) for s in SOURCES.values()]
INGEST_AUDIT = dg.AssetKey(["audit", "ingested_files"])
REJECTED_ROWS = dg.AssetKey(["audit", "rejected_rows"])


def build_validate_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    share = settings.validation.max_reject_share

    @dg.multi_asset(
        name="audit",
        specs=[
            dg.AssetSpec(
                INGEST_AUDIT,
                group_name=GROUP,
                deps=RAW_ASSETS,
                kinds={"duckdb"},
                description="Every landing file seen, with its status and rows read, accepted "
                "and rejected.",
            ),
            dg.AssetSpec(
                REJECTED_ROWS,
                group_name=GROUP,
                deps=RAW_ASSETS,
                kinds={"duckdb"},
                description="Every landing row that broke a rule, with its file, row number, "
                "raw record and rule.",
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                "rows_balance",
                asset=INGEST_AUDIT,
                blocking=True,
                description="For every landing file: rows read = rows accepted + rows rejected.",
            ),
            dg.AssetCheckSpec(
                "reject_share_within_limit",
                asset=INGEST_AUDIT,
                description=f"No loaded file has more than {share:.1%} of its rows rejected.",
            ),
        ],
        can_subset=True,
    )
    def audit(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
        """The ingest audit and the rejected rows, in one step: two steps of a few queries each
        cost a daily run about 70 ms more, most of it Dagster's own for a step."""
        selected = context.selected_asset_keys
        checks = {k.name for k in context.selected_asset_check_keys}
        with duckdb.get_connection() as con:
            ensure_schema(con)
            if INGEST_AUDIT in selected or checks:  # a check may be run on its own
                yield from _ingest_audit(con, share, INGEST_AUDIT in selected, checks)
            if REJECTED_ROWS in selected:
                yield _rejected_rows(con)

    return [audit]


def _ingest_audit(
    con, share: float, materialize: bool, checks: set[str]
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The ingest audit's materialisation (if `materialize`) and the named `checks` of it; only
    what is asked for is queried (a check may be run on its own)."""
    if materialize:
        per_source = con.execute(
            """
            SELECT source, count(*) FILTER (status = 'loaded'),
                   count(*) FILTER (status = 'duplicate'),
                   sum(rows_read), sum(rows_accepted), sum(rows_rejected)
            FROM audit.ingested_files GROUP BY source ORDER BY source
            """
        ).fetchall()
        metadata = table_metadata(con, "audit.ingested_files")
        metadata["per_source"] = dg.MetadataValue.md(
            markdown_table(
                ["source", "files loaded", "duplicates", "rows read", "accepted", "rejected"],
                per_source,
            )
        )
        yield dg.MaterializeResult(asset_key=INGEST_AUDIT, metadata=metadata)
    if "rows_balance" in checks:
        unbalanced = con.execute(
            "SELECT count(*) FROM audit.ingested_files "
            "WHERE rows_read <> rows_accepted + rows_rejected"
        ).fetchall()[0][0]
        yield dg.AssetCheckResult(
            asset_key=INGEST_AUDIT,
            check_name="rows_balance",
            passed=unbalanced == 0,
            metadata={"files": unbalanced},
        )
    if "reject_share_within_limit" in checks:
        over = con.execute(
            "SELECT path, rows_rejected, rows_read FROM audit.ingested_files "
            "WHERE rows_read > 0 AND rows_rejected > ? * rows_read ORDER BY path",
            [share],
        ).fetchall()
        yield dg.AssetCheckResult(
            asset_key=INGEST_AUDIT,
            check_name="reject_share_within_limit",
            passed=not over,
            metadata={
                "files_over_limit": dg.MetadataValue.md(
                    markdown_table(["path", "rejected", "read"], over[:20])
                )
            },
        )


def _rejected_rows(con) -> dg.MaterializeResult:
    by_rule = con.execute(
        "SELECT source, rule, count(*) FROM audit.rejected_rows GROUP BY ALL ORDER BY 3 DESC, 1, 2"
    ).fetchall()
    metadata = table_metadata(con, "audit.rejected_rows")
    metadata["by_rule"] = dg.MetadataValue.md(markdown_table(["source", "rule", "rows"], by_rule))
    return dg.MaterializeResult(asset_key=REJECTED_ROWS, metadata=metadata)
