"""What a commercial lead wants to see first, read from the published file as a BI tool would."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path

import duckdb

from pfd_pipeline.marts import whale_summary
from pfd_pipeline.sql import load_sql
from pfd_pipeline.warehouse import table_exists

SHOWN = 5
# The value-matrix cells a commercial lead acts on first (names as in customer_value_matrix).
FOCUS_CELLS = (
    "awesome customers",
    "promoters who lose money",
    "profitable detractors at risk",
    "promoters to grow",
)


def commercial_summary(published_db: Path, period: str | None = None) -> str:
    """Whale curve, tiers, the most and least profitable customers, and the reconciliation."""
    if not published_db.exists():
        return f"No published tables yet at {published_db}."
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        whale = whale_summary(con, period)
        if whale is None:
            return f"{published_db} holds no months yet."
        month = whale["period"]
        window_start = con.execute(
            "select min(window_start) from marts.customer_tiers where period = ?", [month]
        ).fetchall()[0][0]
        tiers = con.execute(
            "select tier, count(*), sum(operating_profit) from marts.customer_tiers "
            "where period = ? group by tier, tier_order order by tier_order",
            [month],
        ).fetchall()
        changes = dict(
            con.execute(
                "select tier_change, count(*) from marts.customer_tiers where period = ? "
                "group by all",
                [month],
            ).fetchall()
        )
        best, worst = ranked_customers(con, month, window_start, limit=SHOWN)
        balance = con.execute(
            "select count(*), count(*) filter (difference <> 0), "
            "coalesce(sum(cost_supplied), 0), coalesce(sum(unused_capacity_cost), 0) "
            "from marts.allocation_reconciliation where period between ? and ?",
            [window_start, month],
        ).fetchall()[0]
        value = _value_lines(con, month)
    finally:
        con.close()
    return "\n".join(
        [
            f"Customer profitability, {window_start} to {month} "
            f"(read from {published_db.name}, schema marts):",
            *_whale_lines(whale),
            "  Tiers:",
            *(
                f"    {tier:<18}{n:>7,} customers   operating profit {profit:>16,.2f}"
                for tier, n, profit in tiers
            ),
            f"    since the month before: {changes.get('up', 0):,} moved up, "
            f"{changes.get('down', 0):,} down, {changes.get('new', 0):,} new",
            f"  The {SHOWN} most profitable customers (operating profit; biggest cost-to-serve "
            "activity):",
            *_ranked(best),
            f"  The {SHOWN} least profitable:",
            *_ranked(worst),
            _balance_line(*balance),
            *value,
        ]
    )


def value_matrix(con: duckdb.DuckDBPyConnection, period: str) -> list[dict]:
    """The month's customer value matrix (profit tier x advocacy), one dict per cell, in grid
    order; [] if the table is absent or empty. For the summary and the report."""
    if not table_exists(con, "marts.customer_value_matrix"):
        return []
    return _dicts(
        con,
        "select * from marts.customer_value_matrix where period = ? "
        "order by tier_order, advocacy_order",
        [period],
    )


def rising_stars(con: duckdb.DuckDBPyConnection, period: str, limit: int = SHOWN) -> list[dict]:
    """The month's top rising stars by rank, one dict per customer (with the reason)."""
    if not table_exists(con, "marts.rising_stars"):
        return []
    return _dicts(
        con,
        "select * from marts.rising_stars where period = ? order by rising_rank limit ?",
        [period, limit],
    )


def rising_segments(con: duckdb.DuckDBPyConnection, period: str) -> list[dict]:
    """Segments by how much their young customers look like today's top tier (median CLV of
    the young against the top tier's CLV bar), for segments with at least one rising star."""
    if not table_exists(con, "marts.rising_stars"):
        return []
    return _dicts(
        con,
        """
        select segment, any_value(segment_young_customers) as young_customers,
               any_value(segment_rising_stars) as rising_stars,
               any_value(segment_young_median_clv) as young_median_clv,
               any_value(segment_clv_vs_top_tier_pct) as clv_vs_top_tier_pct
        from marts.rising_stars where period = ?
        group by segment
        order by clv_vs_top_tier_pct desc nulls last, segment
        """,
        [period],
    )


def clv_overview(con: duckdb.DuckDBPyConnection, period: str) -> dict | None:
    """The month's CLV totals and model fit."""
    if not table_exists(con, "marts.customer_lifetime_value"):
        return None
    rows = _dicts(
        con,
        """
        select f.status, f.horizon_months, f.annual_discount_rate, f.customers_fitted,
               f.bgnbd_r, f.bgnbd_alpha_weeks, f.bgnbd_a, f.bgnbd_b,
               f.gamma_gamma_p, f.gamma_gamma_q, f.gamma_gamma_gamma,
               f.non_positive_margin_customers,
               (select sum(clv) from marts.customer_lifetime_value where period = f.period)
                   as clv,
               (select count(*) filter (clv < 0) from marts.customer_lifetime_value
                where period = f.period) as negative_clv_customers
        from marts.clv_model_fit as f where f.period = ?
        """,
        [period],
    )
    return rows[0] if rows else None


def _value_lines(con: duckdb.DuckDBPyConnection, month: str) -> list[str]:
    """CLV, the value matrix's focus cells and the top rising stars of the month."""
    fit = clv_overview(con, month)
    if fit is None:
        return []
    lines = [
        f"  Lifetime value on profit (next {fit['horizon_months']} months, discounted "
        f"{fit['annual_discount_rate'] * 100:.0f}% a year; an estimate): {fit['status']} on "
        f"{fit['customers_fitted']:,} customers."
    ]
    if fit["clv"] is not None:
        lines.append(
            f"    total CLV {fit['clv']:,.2f}; {fit['negative_clv_customers']:,} customers are "
            f"expected to lose money; {fit['non_positive_margin_customers']:,} repeat buyers "
            "with a margin <= 0 valued at their own margin."
        )
    cells = value_matrix(con, month)
    if cells:
        nps = {c["profit_tier"]: c["tier_nps"] for c in cells}
        lines.append("  Customer value matrix (profit tier x advocacy, the latest survey score):")
        for c in cells:
            if c["cell"] in FOCUS_CELLS:
                lines.append(
                    f"    {c['cell']:<31}{c['customers']:>6,} customers   operating profit "
                    f"{c['operating_profit']:>15,.2f}   CLV {c['clv']:>15,.2f}"
                )
        lines.append(
            "    net promoter score by tier: "
            + ", ".join(
                f"{tier} {'n/a' if score is None else f'{score:+.0f}'}"
                for tier, score in nps.items()
            )
        )
    stars = rising_stars(con, month)
    if stars:
        lines.append(
            f"  Rising stars (young customers on the path to the top tier), top {len(stars)}:"
        )
        lines += [
            f"    {r['customer_id']:<10}{r['customer_name'][:26]:<27}{r['segment'][:12]:<13}"
            f"CLV {r['clv']:>12,.2f}   {r['reason']}"
            for r in stars
        ]
        segments = rising_segments(con, month)
        lines.append(
            "    segments whose young customers look most like the top tier (median CLV of "
            "the young vs the top tier's bar): "
            + ", ".join(
                f"{s['segment']} {s['clv_vs_top_tier_pct']:.0f}%"
                for s in segments
                if s["clv_vs_top_tier_pct"] is not None
            )
        )
    return lines


def _dicts(con: duckdb.DuckDBPyConnection, query: str, params: list) -> list[dict]:
    rows = con.execute(query, params).fetchall()
    names = [d[0] for d in con.description]
    return [dict(zip(names, row, strict=True)) for row in rows]


def _whale_lines(w: dict) -> list[str]:
    if w["top_profit_pct"] is None:
        return [
            f"  Whale curve: total operating profit is {w['total_profit']:,.2f} (not positive), "
            "so shares of it are not meaningful."
        ]
    return [
        f"  Whale curve over {w['customers']:,} customers, total operating profit "
        f"{w['total_profit']:,.2f}:",
        f"    the top {pct_text(w['top_customers_pct'])} of customers earn "
        f"{pct_text(w['top_profit_pct'])} of it;",
        f"    the curve peaks at {pct_text(w['peak_profit_pct'])} with "
        f"{pct_text(w['peak_customer_pct'])} of customers;",
        f"    the bottom {pct_text(w['bottom_customers_pct'])} lose "
        f"{pct_text(-w['bottom_profit_pct'])} of it; "
        f"{w['unprofitable_customers']:,} customers lose money.",
    ]


def ranked_customers(
    con: duckdb.DuckDBPyConnection, month: str, start: str, limit: int = SHOWN
) -> tuple[list[dict], list[dict]]:
    """The `limit` most and least profitable customers of the month's window (best first, worst
    first), each with its cost-to-serve drill-down over the window (`costs`, biggest first). One
    query for both lists and one for both drill-downs: a drill-down reads every row of the window
    in customer_cost_to_serve (the customer ids are spread over all of it: 0.3-0.5 s at L).

    A run's report and the CLI's summary after it ask the same published file for the same
    month, so the last answer is kept for that file (path, inode, size and modification time:
    a publication replaces the file) and a smaller `limit` is cut from a larger one."""
    file = _file_identity(con)
    key = (file, month, start)
    held = _RANKED.get(key)
    if held is None or held[0] < limit:
        held = (limit, _ranked_customers(con, month, start, limit))
        _RANKED.clear()
        if file is not None:  # an in-memory database has no identity to check
            _RANKED[key] = held
    best, worst = held[1]
    return copy.deepcopy(best[:limit]), copy.deepcopy(worst[:limit])


# The last ranked_customers answer: (file identity, month, start) -> (limit, (best, worst)).
_RANKED: dict[tuple, tuple[int, tuple[list[dict], list[dict]]]] = {}


def _file_identity(con: duckdb.DuckDBPyConnection) -> tuple | None:
    """The connection's database file as (path, inode, size, mtime), or None (in memory)."""
    path = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchall()[0][0]
    if not path:
        return None
    stat = Path(path).stat()
    return (path, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _ranked_customers(
    con: duckdb.DuckDBPyConnection, month: str, start: str, limit: int
) -> tuple[list[dict], list[dict]]:
    result = con.execute(load_sql("report/ranked_customers"), {"month": month, "limit": limit})
    names = [d[0] for d in result.description]
    customers = [dict(zip(names, r, strict=True)) for r in result.fetchall()]
    result = con.execute(
        load_sql("report/customer_drilldown"),
        {"month": month, "start": start, "customers": list({c["customer_id"] for c in customers})},
    )
    names = [d[0] for d in result.description]
    costs: dict[str, list[dict]] = {}
    for row in result.fetchall():
        cost = dict(zip(names, row, strict=True))
        costs.setdefault(cost.pop("customer_id"), []).append(cost)
    for customer in customers:
        customer["costs"] = costs.get(customer["customer_id"], [])
    best = [c for c in customers if not c.pop("worst")]
    return best, customers[len(best) :]


def top_activity(costs: list[dict]) -> tuple[str, Decimal] | None:
    """The activity costing most in a drill-down (summed over its resources); ties by name."""
    by_activity: dict[str, Decimal] = {}
    for c in costs:
        by_activity[c["activity"]] = by_activity.get(c["activity"], Decimal(0)) + c["cost"]
    if not by_activity:
        return None
    return min(by_activity.items(), key=lambda item: (-item[1], item[0]))


def _ranked(customers: list[dict]) -> list[str]:
    """Lines of the most (or least) profitable customers of the month, with their biggest cost."""
    lines = []
    for c in customers:
        top = top_activity(c["costs"])
        driver = f"{top[0]} {top[1]:,.2f}" if top else "no cost-to-serve"
        lines.append(
            f"    {c['customer_id']:<10}{c['customer_name'][:26]:<27}{c['segment'][:12]:<13}"
            f"{c['operating_profit']:>14,.2f}   net revenue {c['net_revenue']:>14,.2f}   {driver}"
        )
    return lines


def _balance_line(rows: int, off: int, supplied: Decimal, unused: Decimal) -> str:
    status = "every one balances to the cent" if off == 0 else f"{off} DO NOT BALANCE"
    return (
        f"  Reconciliation: {rows:,} resource-months in the window, {status}; "
        f"cost supplied {supplied:,.2f}, of which unused capacity {unused:,.2f}."
    )


def pct_text(value: Decimal) -> str:
    """A share in whole percent: 263%."""
    return f"{value:.0f}%"
