"""Stage `allocate`: cost-to-serve per month, customer and activity, reconciled to the cent."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pfd_pipeline import progress
from pfd_pipeline.allocate import (
    AllocationError,
    allocate_periods,
    ensure_tables,
    pending_periods,
    unbalanced,
)
from pfd_pipeline.assets.ingest import asset_key
from pfd_pipeline.cost_model import CostModelError, load_cost_model
from pfd_pipeline.faults import crash_point
from pfd_pipeline.ingest import discard_unrecorded_rows
from pfd_pipeline.planning import today
from pfd_pipeline.publish import describe
from pfd_pipeline.settings import Settings
from pfd_pipeline.sources import SOURCES
from pfd_pipeline.warehouse import MARTS_ALIAS, ensure_schema, table_metadata

GROUP = "allocate"
COST_TO_SERVE = dg.AssetKey(["marts", "customer_cost_to_serve"])
ACTIVITY_RATES = dg.AssetKey(["marts", "activity_rates"])
RECONCILIATION = dg.AssetKey(["marts", "allocation_reconciliation"])
RAW = [asset_key(s) for s in SOURCES.values()]


def build_allocate_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    @dg.multi_asset(
        name="allocate_cost_to_serve",
        group_name=GROUP,
        specs=[
            dg.AssetSpec(
                COST_TO_SERVE,
                deps=RAW,
                description="What each customer costs to serve, month by month and activity by "
                "activity: driver units, minutes, rate and cost.",
                kinds={"duckdb"},
            ),
            dg.AssetSpec(
                ACTIVITY_RATES,
                deps=RAW,
                description="How each rate was derived: cost supplied, practical capacity, rate, "
                "minutes used, cost assigned and unused capacity per resource and activity.",
                kinds={"duckdb"},
            ),
            dg.AssetSpec(
                RECONCILIATION,
                deps=RAW,
                description="Proof that every unit of cost supplied is accounted for: assigned, "
                "unused capacity or unassigned with its reason, per resource and month.",
                kinds={"duckdb"},
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                "books_balance",
                asset=RECONCILIATION,
                blocking=True,
                description="supplied = assigned + unused + unassigned, to the cent, for every "
                "resource and month (difference = 0.00).",
            )
        ],
    )
    def allocate_cost_to_serve(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
        """Rebuild, one transaction per month, every month whose inputs or cost model changed."""
        try:
            model = load_cost_model(settings.cost_model_path)
        except CostModelError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
        with duckdb.get_connection() as con:
            ensure_schema(con)
            ensure_tables(con)
            for source in SOURCES.values():  # rows a killed load left behind are not data
                discard_unrecorded_rows(con, source)
            pending = pending_periods(con, model, today(settings), settings.close_after_days)
            for period in pending:
                context.log.info(f"allocating {period.period} ({period.status}): {period.reason}")
            with progress.current().stage("allocate", len(pending), "months") as shown:
                months = allocate_periods(
                    con, model, pending, context.run.run_id, settings.duckdb_threads
                )
                try:
                    for _ in months:
                        crash_point("mid_allocation")
                        shown.advance()
                except AllocationError as exc:
                    raise dg.Failure(description=str(exc), allow_retries=False) from exc
            if pending:  # column descriptions for the UI's schema view, as published
                names = [k.path[-1] for k in (COST_TO_SERVE, ACTIVITY_RATES, RECONCILIATION)]
                describe(con, {name: f"{MARTS_ALIAS}.marts.{name}" for name in names})
            off = unbalanced(con)
            rebuilt = "\n".join(f"| {p.period} | {p.status} | {p.reason} |" for p in pending)
            run_meta = {
                "months_rebuilt": dg.MetadataValue.int(len(pending)),
                "rebuilt": dg.MetadataValue.md(
                    "| month | status | why |\n|---|---|---|\n" + rebuilt if pending else "_none_"
                ),
                "cost_model": dg.MetadataValue.path(str(model.path)),
                "cost_model_sha256": dg.MetadataValue.text(model.sha256),
            }
            metadata = {
                key: table_metadata(con, "marts." + key.path[-1])
                for key in (COST_TO_SERVE, ACTIVITY_RATES, RECONCILIATION)
            }
        for key, meta in metadata.items():
            yield dg.MaterializeResult(asset_key=key, metadata={**meta, **run_meta})
        yield dg.AssetCheckResult(
            asset_key=RECONCILIATION,
            check_name="books_balance",
            passed=not off,
            metadata={
                "rows_out_of_balance": dg.MetadataValue.int(len(off)),
                "first": dg.MetadataValue.text(
                    "; ".join(f"{p} {r}: {d}" for p, r, d in off[:5]) or "none"
                ),
            },
        )

    return [allocate_cost_to_serve]
