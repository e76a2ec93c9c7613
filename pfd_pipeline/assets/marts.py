"""Stage `marts`: customer profitability, tiers, the whale curve, trends and segments by month."""

import time
from functools import partial

import dagster as dg
from dagster_duckdb import DuckDBResource

from pfd_pipeline import marts, progress
from pfd_pipeline.assets import failing_as
from pfd_pipeline.assets.allocate import COST_TO_SERVE
from pfd_pipeline.faults import crash_point
from pfd_pipeline.publish import describe
from pfd_pipeline.settings import Settings
from pfd_pipeline.warehouse import MARTS_ALIAS, markdown_table, run_in_order, table_metadata

GROUP = "marts"
DESCRIPTIONS = {
    "customer_profitability": "Each customer's P&L per month: revenue, discounts, off-invoice, "
    "COGS, gross margin, cost-to-serve, operating profit, margins and volumes.",
    "customer_tiers": "Customers ranked by operating profit over the trailing window: cumulative "
    "shares, 20/70/10 tier, Shapiro quadrant, previous tier and change.",
    "whale_curve": "Cumulative % of profit against % of customers at every percent, with the "
    "month's peak, top-group share and bottom-group loss.",
    "customer_trends": "Trailing profit and margin, margin slope, growth, months declining and "
    "a trend label per customer and month.",
    "segment_profitability": "The P&L by segment, region and channel with subtotals, growth and "
    "margin trend.",
    "customer_lifetime_value": "Each customer's predicted lifetime value on profit (BG/NBD orders "
    "x Gamma-Gamma margin less cost-to-serve, discounted), P(alive), historical profit, tenure "
    "and advocacy; with the month's model fit in clv_model_fit.",
    "customer_value_matrix": "Profit tier x advocacy (NPS category): customers, profit and CLV "
    "per cell, named (awesome customers, promoters who lose money, profitable detractors at "
    "risk, ...) with an action.",
    "rising_stars": "Young customers whose CLV or improving run-rate puts them on the path to "
    "the top tier, with the reason, and how their segment's young customers compare.",
}


# Two at a time, these start first (the rest in build order): the lifetime value is a daily
# run's longest mart (its model fits) and the value matrix and rising stars wait for it. Started
# after the tiers, the whale curve and the segments, it ran alone at the end; first, the others
# run beside it: the step 4.38 / 4.62 / 4.56 -> 4.13 / 4.12 / 4.11 s (daily runs at L, alternated).
STARTED_FIRST = ("customer_lifetime_value",)


def key(table: str) -> dg.AssetKey:
    return COST_TO_SERVE if table == "customer_cost_to_serve" else dg.AssetKey(["marts", table])


def build_mart_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    """customer_profitability (whose tie-out check blocks the rest), then one step for the
    marts that read it, which rebuilds them in order, a daily run's two at a time."""
    first, *later = marts.marts(settings.marts)
    return [_profitability_asset(settings, first), _later_marts_asset(settings, tuple(later))]


def _spec(mart: marts.Mart) -> dg.AssetSpec:
    return dg.AssetSpec(
        key(mart.name),
        deps=[key(mart.upstream), *(key(t) for t in mart.reads)],
        description=DESCRIPTIONS[mart.name],
        kinds={"duckdb"},
        group_name=GROUP,
    )


def _profitability_asset(settings: Settings, mart: marts.Mart) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(mart.name),
        group_name=GROUP,
        deps=[key(mart.upstream)],
        description=DESCRIPTIONS[mart.name],
        kinds={"duckdb"},
        check_specs=[
            dg.AssetCheckSpec(
                "ties_to_ledger_and_allocation",
                asset=key(mart.name),
                blocking=True,
                description="Per month, net revenue and COGS equal the ledger's, and "
                "cost-to-serve equals the allocation's, to the cent.",
            )
        ],
    )
    def mart_asset(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
        with duckdb.get_connection() as con:
            marts.ensure_tables(con)
            periods, metadata = _rebuild(con, mart, settings, context.run.run_id, context.log)
            crash_point("after_marts")
            # The months built in this run: a month that tied when built ties until rebuilt (a
            # change to its ledger lines or costs rebuilds it). One that does not tie is
            # recorded as never built, so the next run rebuilds and checks it again.
            off = marts.untied(con, periods)
            if off:
                marts.forget_builds(con, mart.name, list(off))
        yield dg.MaterializeResult(metadata=metadata)
        yield dg.AssetCheckResult(
            check_name="ties_to_ledger_and_allocation",
            passed=not off,
            metadata={
                "months_checked": dg.MetadataValue.int(len(periods)),
                "months_off": dg.MetadataValue.int(len(off)),
                "first": dg.MetadataValue.text(
                    "; ".join(f"{p}: {m}" for p, m in list(off.items())[:5]) or "none"
                ),
            },
        )

    return mart_asset


def _later_marts_asset(settings: Settings, later: tuple[marts.Mart, ...]) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="marts__from_customer_profitability",
        specs=[_spec(m) for m in later],
        can_subset=True,
    )
    def later_marts(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
        """The marts that read customer_profitability, each once those it reads are rebuilt.

        A daily run rebuilds a month of each, in statements that keep fewer than the two cores
        busy (the lifetime value's model fits, the tiers' and trends' joins of one month), so
        they run two at a time on cursors of their own: four of them at L 3.9 -> 3.2 s. Many
        months at once (a full build) keep both cores busy mart by mart, and two would add up
        their memory, so they run one at a time.
        """
        selected = [m for m in later if key(m.name) in context.selected_asset_keys]
        run_id = context.run.run_id
        with duckdb.get_connection() as con:
            marts.ensure_tables(con)  # once, here: it replaces a view, which two would conflict on
            workers = 1 if _many_months(con, selected, settings) else settings.duckdb_threads
            tasks = [
                (
                    m.name,
                    (m.upstream, *m.reads),
                    partial(_rebuild_as_asset, mart=m, settings=settings, run_id=run_id),
                )
                for m in sorted(selected, key=lambda m: m.name not in STARTED_FIRST)
            ]
            for name, (periods, metadata) in run_in_order(con, tasks, workers):
                if periods:
                    context.log.info(f"rebuilt {name}: {_span(periods)}")
                yield dg.MaterializeResult(asset_key=key(name), metadata=metadata)

    return later_marts


def _many_months(con, selected: list[marts.Mart], settings: Settings) -> bool:
    """Whether any of the marts that read only customer_profitability has MANY_MONTHS months or
    more to rebuild (the rest read those and rebuild as many months or fewer)."""
    return any(
        len(marts.pending(con, m, settings.marts)) >= marts.MANY_MONTHS
        for m in selected
        if m.upstream == "customer_profitability" and not m.reads
    )


def _rebuild_as_asset(con, mart: marts.Mart, settings: Settings, run_id: str):
    """_rebuild, with a failure that names the mart's asset (for the run's message)."""
    return failing_as(key(mart.name), lambda: _rebuild(con, mart, settings, run_id))


def _rebuild(
    con, mart: marts.Mart, settings: Settings, run_id: str, log=None
) -> tuple[list[str], dict[str, dg.MetadataValue]]:
    """Rebuild the months of `mart` that need it; return them and the asset's metadata."""
    started = time.perf_counter()
    periods = marts.pending(con, mart, settings.marts)
    if periods and log is not None:
        log.info(f"rebuilding {mart.name}: {_span(periods)}")
    with progress.current().stage(f"marts {mart.name}", len(periods), "months") as shown:
        marts.rebuild(con, mart, periods, settings.marts, run_id, settings.duckdb_threads)
        shown.advance(len(periods))
    if periods:  # column descriptions for the UI's schema view, as published
        describe(con, {table: f"{MARTS_ALIAS}.marts.{table}" for table in mart.tables})
    metadata = {
        **table_metadata(con, f"marts.{mart.name}"),
        "months_rebuilt": dg.MetadataValue.int(len(periods)),
        "rebuilt": dg.MetadataValue.text(_span(periods) or "none"),
    }
    if mart.name == "whale_curve":
        metadata.update(whale_metadata(con, settings))
    if mart.name == "customer_lifetime_value":
        metadata.update(clv_fit_metadata(con))
    metadata["seconds"] = dg.MetadataValue.float(round(time.perf_counter() - started, 3))
    return periods, metadata


def whale_metadata(con, settings: Settings) -> dict[str, dg.MetadataValue]:
    """The latest month's whale-curve figures and picture, and the report that shows it."""
    from pfd_pipeline.report import report_file, whale_markdown  # matplotlib only when drawing

    summary = marts.whale_summary(con)
    if summary is None:
        return {}
    return {
        "whale_curve_chart": dg.MetadataValue.md(whale_markdown(summary)),
        "report": dg.MetadataValue.path(str(report_file(settings.reports_dir, summary["period"]))),
        "period": dg.MetadataValue.text(summary["period"]),
        "customers": dg.MetadataValue.int(summary["customers"]),
        "total_profit": dg.MetadataValue.float(float(summary["total_profit"])),
        "top_profit_pct": dg.MetadataValue.text(f"{summary['top_profit_pct']}"),
        "bottom_profit_pct": dg.MetadataValue.text(f"{summary['bottom_profit_pct']}"),
        "peak_profit_pct": dg.MetadataValue.text(f"{summary['peak_profit_pct']}"),
        "peak_customer_pct": dg.MetadataValue.text(f"{summary['peak_customer_pct']}"),
        "unprofitable_customers": dg.MetadataValue.int(summary["unprofitable_customers"]),
        "curve": dg.MetadataValue.md(
            markdown_table(
                ["customer %", "cumulative profit %"],
                [(p, v) for p, v in summary["curve"] if p % 10 == 0 or p in (1, 5)],
            )
        ),
    }


def clv_fit_metadata(con) -> dict[str, dg.MetadataValue]:
    """The latest month's CLV model fit (clv_model_fit), as Dagster metadata."""
    rows = con.execute(
        "select period, status, customers_fitted, bgnbd_r, bgnbd_alpha_weeks, bgnbd_a, bgnbd_b, "
        "gamma_gamma_p, gamma_gamma_q, gamma_gamma_gamma from marts.clv_model_fit "
        "order by period desc limit 1"
    ).fetchall()
    if not rows:
        return {}
    period, status, customers, *params = rows[0]
    names = ("r", "alpha (weeks)", "a", "b", "p", "q", "gamma")
    return {
        "fit_period": dg.MetadataValue.text(period),
        "fit_status": dg.MetadataValue.text(status),
        "customers_fitted": dg.MetadataValue.int(customers),
        "parameters": dg.MetadataValue.md(
            markdown_table(
                ["parameter", "estimate"],
                [(n, "" if v is None else f"{v:.4f}") for n, v in zip(names, params, strict=True)],
            )
        ),
    }


def _span(periods: list[str]) -> str:
    if len(periods) <= 3:
        return ", ".join(periods)
    return f"{len(periods)} months, {periods[0]} to {periods[-1]}"
