"""Profitability marts: which months of each table to rebuild, and rebuilding them.

Every month of every table carries a build number (audit.build_seq). A month of a mart is
rebuilt when it was never built, was built with other mart settings, or when a month it reads
(its own month back to `lookback` months earlier) was rebuilt upstream after it. So late data
for a closed month re-opens it and everything downstream that reads it: tiers and trends for
the following months of their windows, segment growth, the whale curve.

The arithmetic is in sql/marts/<table>.sql; this module binds the months and the settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import duckdb

from pfd_pipeline.allocate import month_bounds
from pfd_pipeline.settings import MartSettings
from pfd_pipeline.sql import load_sql
from pfd_pipeline.warehouse import run_in_order, table_exists

# From this many months rebuilt at once, `prepare` steps are told so and switch to their
# one-pass-for-all-months SQL (the tiers' and trends' window sums, the CLV inputs): the same
# results, with one pass shared by all the months, which costs more for one month alone.
MANY_MONTHS = 4

# Historical value is the profit of every month to date: a change to any earlier month counts.
ALL_EARLIER_MONTHS = 1200


@dataclass(frozen=True)
class Mart:
    name: str  # table in schema marts, and sql/marts/<name>.sql
    upstream: str  # the table whose months it reads
    lookback: int  # months before its own month that it reads
    # Other marts of the same month it reads. Each is rebuilt whenever `upstream` is (they read
    # the same months of customer_profitability, or fewer); listed so that they are built first.
    reads: tuple[str, ...] = ()
    # Further tables the same SQL file writes, in the same transaction and with the same months.
    also_writes: tuple[str, ...] = ()
    # A step before the SQL, e.g. the CLV model fits, leaving temp tables (or views) for it to
    # read; told whether MANY_MONTHS months or more are rebuilt at once.
    prepare: Callable[[duckdb.DuckDBPyConnection, MartSettings, bool], None] | None = None
    # Run the SQL once per month: one month at a time keeps its hash tables in memory where all
    # months at once would spill to disk. Its months must not read each other's rows: two may be
    # rebuilt at once (see rebuild).
    by_month: bool = False

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.name, *self.also_writes)


def marts(settings: MartSettings) -> tuple[Mart, ...]:
    """The mart tables in build order, with what each reads (which depends on the windows)."""
    trend_lookback = max(12, 2 * settings.growth_months - 1)
    return (
        Mart("customer_profitability", "customer_cost_to_serve", 0, by_month=True),
        # the window, and the month before (its tiers are the "previous tier")
        Mart(
            "customer_tiers",
            "customer_profitability",
            settings.window_months,
            prepare=stage_tier_windows,
        ),
        Mart("whale_curve", "customer_tiers", 0),
        Mart(
            "customer_trends",
            "customer_profitability",
            trend_lookback,
            prepare=stage_trend_windows,
        ),
        Mart("segment_profitability", "customer_profitability", 2 * settings.growth_months - 1),
        Mart(
            "customer_lifetime_value",
            "customer_profitability",
            ALL_EARLIER_MONTHS,
            also_writes=("clv_model_fit",),
            prepare=stage_clv_scores,
        ),
        Mart(
            "customer_value_matrix",
            "customer_lifetime_value",
            0,
            reads=("customer_tiers",),
        ),
        Mart(
            "rising_stars",
            "customer_lifetime_value",
            0,
            reads=("customer_tiers", "customer_trends"),
        ),
    )


def stage_clv_scores(con: duckdb.DuckDBPyConnection, settings: MartSettings, many: bool) -> None:
    """clv.stage_scores, its module imported only now: it imports scipy, about 0.5 s of Python
    that every `pfd run` paid at start-up, before the first step, though only the lifetime-value
    mart needs it, several seconds later. The runner imports it beside the run's first steps."""
    from pfd_pipeline.clv import stage_scores

    stage_scores(con, settings, many)


def stage_tier_windows(con: duckdb.DuckDBPyConnection, settings: MartSettings, many: bool) -> None:
    """Temp table tier_windows for customer_tiers: each customer's totals over the trailing
    window of every month in mart_targets, from one grid for many months at once, else from the
    two parts of each window (`stage_window_parts`); the same rows either way."""
    stage_window_parts(con, TIER_PARTS, settings, many)
    sql = "marts/tier_windows_grid" if many else "marts/tier_windows"
    con.execute("create or replace temp table tier_windows as " + load_sql(sql))


def stage_trend_windows(con: duckdb.DuckDBPyConnection, settings: MartSettings, many: bool) -> None:
    """Temp view trend_windows for customer_trends: each customer's window sums and run of months
    declining for every month in mart_targets, from one grid for many months at once, else from
    the two parts of each window (`stage_window_parts`); the same rows either way, from the same
    months of customer_profitability (temp view trend_series). Views, not tables:
    customer_trends.sql reads them as part of its own statement."""
    stage_window_parts(con, TREND_PARTS, settings, many)
    if many:  # the latest month's parts, if made, bounded the series to its own months
        _bound_trend_series(con, month_only=False)
    sql = "marts/trend_windows_grid" if many else "marts/trend_windows"
    con.execute("create or replace temp view trend_windows as " + load_sql(sql))


def _bound_trend_series(con: duckdb.DuckDBPyConnection, month_only: bool) -> None:
    """Temp view trend_series over the months customer_trends reads for mart_targets (temp
    table trend_span), or over the months in mart_targets alone (`month_only`)."""
    con.execute(
        "create or replace temp table trend_span as " + load_sql("marts/trend_span"),
        {"month_only": month_only},
    )
    con.execute("create or replace temp view trend_series as " + load_sql("marts/trend_series"))


@dataclass(frozen=True)
class WindowParts:
    """A mart's window sums for a few months, in two parts per month: its months before the
    month (`earlier`) and the month itself (temp table `table`, sql/marts/<table>.sql, with
    $month_only), added up by the mart's window SQL. The earlier part of the latest month is
    kept in `kept`, so that the next daily runs, which rebuild only that month, read the month
    alone: the windows read 12 to 24 months of customer_profitability, and only the last changes
    from one day to the next. Both names become SQL text: only the three fixed instances below
    exist."""

    table: str
    kept: str
    # Bounds the months the SQL reads, told `month_only`, for SQL that reads them through a
    # view (trend_parts.sql); without it the SQL takes $month_only itself.
    bound: Callable[[duckdb.DuckDBPyConnection, bool], None] | None = None


TIER_PARTS = WindowParts("tier_parts", "marts.tier_earlier_months")
TREND_PARTS = WindowParts("trend_parts", "marts.trend_earlier_months", _bound_trend_series)
CLV_PARTS = WindowParts("clv_parts", "marts.clv_earlier_months")
# Part of what a kept earlier part was made with: raise it when a parts SQL file changes what it
# computes, so that parts kept by the code before are not read.
PARTS_VERSION = 1


def stage_window_parts(
    con: duckdb.DuckDBPyConnection, parts: WindowParts, settings: MartSettings, many: bool
) -> None:
    """What a mart's `prepare` step does with its window parts: for many months (the grids,
    which make no parts) keep the latest month's earlier part if it is among them
    (`keep_latest_part`); for a few, make temp table `parts.table`, from the kept earlier part
    when it is usable (`stage_parts`)."""
    if many:
        keep_latest_part(con, parts, settings)
    else:
        stage_parts(con, parts, settings, kept_part_usable(con, parts, settings))


def _parts_settings(settings: MartSettings) -> str:
    return f"{settings.fingerprint()};parts_version={PARTS_VERSION}"


def kept_part_usable(
    con: duckdb.DuckDBPyConnection, parts: WindowParts, settings: MartSettings
) -> bool:
    """Whether `parts.kept` holds the earlier part of the one month in mart_targets, made with
    these settings, and no month before it has been rebuilt in customer_profitability since (every
    table the parts read, customer_months included, is rebuilt with its months). A part with no
    rows is not kept: it is made again, which costs nothing."""
    if not table_exists(con, parts.kept):
        return False
    return bool(
        con.execute(
            """
            with kept as (
                select
                    any_value(period) as period,
                    any_value(_build_id) as build_id,
                    any_value(_settings) as settings,
                from """
            + parts.kept
            + """
            )
            select
                k.settings = $settings
                and (select count(*) from mart_targets) = 1
                and k.period = (select min(period) from mart_targets)
                and not exists (
                    select 1 from audit.table_builds as b
                    where b.table_name = 'customer_profitability'
                        and b.period < k.period
                        and b.build_id > k.build_id
                )
            from kept as k
            """,
            {"settings": _parts_settings(settings)},
        ).fetchall()[0][0]
    )


def stage_parts(
    con: duckdb.DuckDBPyConnection, parts: WindowParts, settings: MartSettings, month_only: bool
) -> None:
    """Temp table `parts.table` for the months in mart_targets. `month_only` (the earlier part
    is kept and usable, `kept_part_usable`): the month's part is made and the kept earlier part
    added; else both parts are made, and the earlier part of the latest month of
    customer_profitability, when it is among them, is kept for the next runs (in the mart's
    transaction: kept only if the mart is rebuilt), with a build number that tells whether a
    month before it was rebuilt since."""
    if parts.bound is not None:
        parts.bound(con, month_only)
    con.execute(
        "create or replace temp table " + parts.table + " as " + load_sql("marts/" + parts.table),
        {} if parts.bound is not None else {"month_only": month_only},
    )
    if month_only:
        con.execute(
            "insert into "
            + parts.table
            + " select * exclude (_build_id, _settings) from "
            + parts.kept
        )
        return
    latest = _latest_target(con)
    if latest is None:
        return
    build_id = con.execute("select nextval('audit.build_seq')").fetchall()[0][0]
    con.execute(
        "create or replace table " + parts.kept + " as select *, $build_id as _build_id, "
        "$settings as _settings from " + parts.table + " where earlier and period = $period",
        {"build_id": build_id, "settings": _parts_settings(settings), "period": latest},
    )


def keep_latest_part(
    con: duckdb.DuckDBPyConnection, parts: WindowParts, settings: MartSettings
) -> None:
    """For a rebuild of many months (the grids, which make no parts): when the latest month of
    customer_profitability is among them, make and keep its earlier part as a rebuild of that
    month alone would, so that the daily runs after a full build read the month alone from the
    first one on. Leaves temp table `parts.table` with that month's parts."""
    latest = _latest_target(con)
    if latest is None:
        return
    con.execute("create or replace temp table mart_targets_all as from mart_targets")
    con.execute("delete from mart_targets where period <> $latest", {"latest": latest})
    try:
        stage_parts(con, parts, settings, month_only=False)
    finally:
        con.execute("delete from mart_targets")
        con.execute("insert into mart_targets from mart_targets_all")
        con.execute("drop table mart_targets_all")


def _latest_target(con: duckdb.DuckDBPyConnection) -> str | None:
    """The latest month of customer_profitability, if it is among the months in mart_targets."""
    rows = con.execute(
        "select period from mart_targets where period = (select max(period) "
        "from audit.table_builds where table_name = 'customer_profitability')"
    ).fetchall()
    return rows[0][0] if rows else None


MART_NAMES = tuple(m.name for m in marts(MartSettings()))
# Every table the marts write (customer_lifetime_value also writes clv_model_fit).
MART_TABLES = tuple(t for m in marts(MartSettings()) for t in m.tables)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    new_months = not table_exists(con, "marts.customer_months")
    new_history = not table_exists(con, "marts.customer_history")
    con.execute(load_sql("marts/mart_tables"))
    # A warehouse built before an internal table existed: rebuild the months that fill it.
    if new_months:
        con.execute("delete from audit.mart_periods where table_name = 'customer_profitability'")
    if new_history:
        con.execute("delete from audit.mart_periods where table_name = 'customer_lifetime_value'")


def pending(con: duckdb.DuckDBPyConnection, mart: Mart, settings: MartSettings) -> list[str]:
    """Months of `mart` to rebuild, oldest first."""
    rows = con.execute(
        """
        with months as (
            select period, cast(left(period, 4) as integer) * 12
                + cast(right(period, 2) as integer) as mi
            from audit.table_builds where table_name = $upstream
        ),
        own as (
            select period, build_id, settings from audit.mart_periods where table_name = $name
        )
        select m.period
        from months as m
        left join own as o using (period)
        where o.period is null
            or o.settings <> $settings
            or exists (
                select 1 from months as u
                join audit.table_builds as b
                    on b.table_name = $upstream and b.period = u.period
                where u.mi between m.mi - $lookback and m.mi and b.build_id > o.build_id
            )
        order by m.period
        """,
        {
            "upstream": mart.upstream,
            "name": mart.name,
            "settings": settings.fingerprint(),
            "lookback": mart.lookback,
        },
    ).fetchall()
    return [r[0] for r in rows]


def rebuild(
    con: duckdb.DuckDBPyConnection,
    mart: Mart,
    periods: list[str],
    settings: MartSettings,
    run_id: str,
    workers: int = 1,
) -> None:
    """Rebuild the given months of one mart table in one transaction (all or nothing).

    A mart rebuilt month by month (`by_month`), given `workers` > 1, rebuilds each month in a
    transaction of its own instead, `workers` months at once on cursors of their own, as the
    allocation does: one month's statements keep about 1.7 of two cores busy, two at once both
    (eight months of customer_profitability at L 17.0-17.5 -> 13.9-14.1 s, 0.15 GB more
    memory). As in the allocation, no further month starts after one fails; the error is raised
    once the months in flight have committed or rolled back, so the months committed stay
    rebuilt, each with its build number, and the rest stay pending.
    """
    if not periods:
        return
    if mart.by_month and workers > 1 and len(periods) > 1:
        alone = partial(rebuild, mart=mart, settings=settings, run_id=run_id)
        months = [(p, (), partial(alone, periods=[p])) for p in periods]
        for _ in run_in_order(con, months, workers):
            pass
        return
    con.execute("BEGIN TRANSACTION")
    try:
        for batch in [[p] for p in periods] if mart.by_month else [periods]:
            _bind(con, batch, settings)
            if mart.prepare is not None:
                mart.prepare(con, settings, len(batch) >= MANY_MONTHS)
            con.execute(load_sql(f"marts/{mart.name}"))
        _bind(con, periods, settings)
        for table in mart.tables:
            con.execute(
                """
                insert or replace into audit.mart_periods
                select $name, period, nextval('audit.build_seq'), $settings, $run_id,
                       current_localtimestamp()
                from mart_targets order by period
                """,
                {"name": table, "settings": settings.fingerprint(), "run_id": run_id},
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for view in TEMP_VIEWS:  # before the tables they read
            con.execute(f"drop view if exists {view}")
        for table in ("mart_targets", "mart_params", *TEMP_TABLES):
            con.execute(f"drop table if exists {table}")


# left by clv.stage_scores, stage_tier_windows and stage_trend_windows, dropped by rebuild
TEMP_TABLES = (
    "clv_inputs",
    "clv_scores",
    "clv_fits",
    "tier_windows",
    "tier_parts",
    "trend_parts",
    "trend_span",
    "clv_parts",
)
TEMP_VIEWS = ("trend_windows", "trend_series", "clv_buyers")  # each before those it reads


def _bind(con: duckdb.DuckDBPyConnection, periods: list[str], settings: MartSettings) -> None:
    """The months to rebuild (temp table mart_targets) and the settings (mart_params)."""
    bounds = [month_bounds(p) for p in periods]
    starts, ends = [start for start, _ in bounds], [end for _, end in bounds]
    con.execute(
        "create or replace temp table mart_targets as "
        "select unnest($periods::varchar[]) as period, unnest($starts::date[]) as period_start, "
        "unnest($ends::date[]) as period_end",
        {"periods": periods, "starts": starts, "ends": ends},
    )
    con.execute(
        """
        create or replace temp table mart_params as select
            $window_months::integer as window_months,
            $top_share::decimal(9, 6) as top_share,
            $bottom_share::decimal(9, 6) as bottom_share,
            $slope_months::integer as slope_months,
            $stable_slope_pp::decimal(9, 4) as stable_slope_pp,
            $declining_months::integer as declining_months,
            $growth_months::integer as growth_months,
            $erosion_pp::decimal(9, 4) as erosion_pp,
            $clv_horizon_months::integer as clv_horizon_months,
            $clv_annual_discount_rate::decimal(9, 6) as clv_annual_discount_rate,
            $clv_calibration_months::integer as clv_calibration_months,
            $advocacy_window_months::integer as advocacy_window_months,
            $promoter_min_score::integer as promoter_min_score,
            $detractor_max_score::integer as detractor_max_score,
            $rising_max_tenure_months::integer as rising_max_tenure_months,
            $rising_clv_percentile::decimal(9, 6) as rising_clv_percentile
        """,
        {
            "window_months": settings.window_months,
            "top_share": settings.top_share,
            "bottom_share": settings.bottom_share,
            "slope_months": settings.slope_months,
            "stable_slope_pp": settings.stable_slope_pp,
            "declining_months": settings.declining_months,
            "growth_months": settings.growth_months,
            "erosion_pp": settings.erosion_pp,
            "clv_horizon_months": settings.clv_horizon_months,
            "clv_annual_discount_rate": settings.clv_annual_discount_rate,
            "clv_calibration_months": settings.clv_calibration_months,
            "advocacy_window_months": settings.advocacy_window_months,
            "promoter_min_score": settings.promoter_min_score,
            "detractor_max_score": settings.detractor_max_score,
            "rising_max_tenure_months": settings.rising_max_tenure_months,
            "rising_clv_percentile": settings.rising_clv_percentile,
        },
    )


def untied(con: duckdb.DuckDBPyConnection, periods: list[str]) -> dict[str, str]:
    """Those of `periods` where customer_profitability does not tie to the ledger or the
    allocation, each with what is off. Only those months' ledger lines and cost rows are read,
    so a daily run's check of its month or two does not grow with the history."""
    if not periods:
        return {}
    rows = con.execute(
        """
        with ledger as (
            select strftime(posting_date, '%Y-%m') as period,
                   sum(gross_amount - discount_amount - off_invoice_amount) as net_revenue,
                   sum(cogs_amount) as cogs
            from raw.sales_ledger
            where posting_date >= cast($first_period || '-01' as date)
              and posting_date < cast($last_period || '-01' as date) + interval 1 month
            group by all
        ),
        cost as (
            select period, sum(cost) as cost from marts.customer_cost_to_serve
            where period between $first_period and $last_period group by all
        ),
        mart as (
            select period, sum(net_revenue) as net_revenue, sum(cogs) as cogs,
                   sum(cost_to_serve) as cost
            from marts.customer_profitability
            where period between $first_period and $last_period group by all
        )
        select b.period,
               coalesce(m.net_revenue, 0) - coalesce(l.net_revenue, 0),
               coalesce(m.cogs, 0) - coalesce(l.cogs, 0),
               coalesce(m.cost, 0) - coalesce(c.cost, 0)
        from (select unnest($periods::varchar[]) as period) as b
        left join mart as m using (period)
        left join ledger as l using (period)
        left join cost as c using (period)
        where coalesce(m.net_revenue, 0) <> coalesce(l.net_revenue, 0)
           or coalesce(m.cogs, 0) <> coalesce(l.cogs, 0)
           or coalesce(m.cost, 0) <> coalesce(c.cost, 0)
        order by 1
        """,
        {"periods": periods, "first_period": min(periods), "last_period": max(periods)},
    ).fetchall()
    return {
        p: f"net revenue off by {n}, COGS off by {g}, cost-to-serve off by {c}"
        for p, n, g, c in rows
    }


def forget_builds(con: duckdb.DuckDBPyConnection, table: str, periods: list[str]) -> None:
    """Record months of a mart as never built, so that the next run rebuilds (and checks) them."""
    con.execute(
        "delete from audit.mart_periods where table_name = $table "
        "and period in (select unnest($periods::varchar[]))",
        {"table": table, "periods": periods},
    )


def whale_summary(con: duckdb.DuckDBPyConnection, period: str | None = None) -> dict | None:
    """A month's whale-curve figures and curve points (the latest month by default)."""
    rows = con.execute(
        """
        select * from marts.whale_curve
        where period = coalesce($period, (select max(period) from marts.whale_curve))
        order by customer_pct
        """,
        {"period": period},
    ).fetchall()
    if not rows:
        return None
    names = [d[0] for d in con.description]
    last = dict(zip(names, rows[-1], strict=True))
    last["curve"] = [
        (r[names.index("customer_pct")], r[names.index("cumulative_profit_pct")]) for r in rows
    ]
    return last
