"""What a commercial lead wants to see first, read from the published file as a BI tool would."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb

from pfd_pipeline.marts import whale_summary
from pfd_pipeline.sql import load_sql

SHOWN = 5


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
        best = _ranked(con, month, window_start, worst=False)
        worst = _ranked(con, month, window_start, worst=True)
        balance = con.execute(
            "select count(*), count(*) filter (difference <> 0), "
            "coalesce(sum(cost_supplied), 0), coalesce(sum(unused_capacity_cost), 0) "
            "from marts.allocation_reconciliation where period between ? and ?",
            [window_start, month],
        ).fetchall()[0]
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
            *best,
            f"  The {SHOWN} least profitable:",
            *worst,
            _balance_line(*balance),
        ]
    )


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
    con: duckdb.DuckDBPyConnection, month: str, start: str, *, worst: bool, limit: int
) -> list[dict]:
    """The most (or least) profitable customers of the month's window, best (worst) first, each
    with its cost-to-serve drill-down over the window (`costs`, biggest first)."""
    result = con.execute(
        load_sql("report/ranked_customers"), {"month": month, "worst": worst, "limit": limit}
    )
    names = [d[0] for d in result.description]
    customers = [dict(zip(names, r, strict=True)) for r in result.fetchall()]
    result = con.execute(
        load_sql("report/customer_drilldown"),
        {"month": month, "start": start, "customers": [c["customer_id"] for c in customers]},
    )
    names = [d[0] for d in result.description]
    costs: dict[str, list[dict]] = {}
    for row in result.fetchall():
        cost = dict(zip(names, row, strict=True))
        costs.setdefault(cost.pop("customer_id"), []).append(cost)
    for customer in customers:
        customer["costs"] = costs.get(customer["customer_id"], [])
    return customers


def top_activity(costs: list[dict]) -> tuple[str, Decimal] | None:
    """The activity costing most in a drill-down (summed over its resources); ties by name."""
    by_activity: dict[str, Decimal] = {}
    for c in costs:
        by_activity[c["activity"]] = by_activity.get(c["activity"], Decimal(0)) + c["cost"]
    if not by_activity:
        return None
    return min(by_activity.items(), key=lambda item: (-item[1], item[0]))


def _ranked(con: duckdb.DuckDBPyConnection, month: str, start: str, *, worst: bool) -> list[str]:
    """The most (or least) profitable customers of the month, with their biggest cost."""
    lines = []
    for c in ranked_customers(con, month, start, worst=worst, limit=SHOWN):
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
