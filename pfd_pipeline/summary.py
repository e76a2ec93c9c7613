"""What a commercial lead wants to see first, read from the published file as a BI tool would."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb

from pfd_pipeline.marts import whale_summary

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
        f"    the top {_pct(w['top_customers_pct'])} of customers earn "
        f"{_pct(w['top_profit_pct'])} of it;",
        f"    the curve peaks at {_pct(w['peak_profit_pct'])} with "
        f"{_pct(w['peak_customer_pct'])} of customers;",
        f"    the bottom {_pct(w['bottom_customers_pct'])} lose "
        f"{_pct(-w['bottom_profit_pct'])} of it; "
        f"{w['unprofitable_customers']:,} customers lose money.",
    ]


def _ranked(con: duckdb.DuckDBPyConnection, month: str, start: str, *, worst: bool) -> list[str]:
    """The most (or least) profitable customers of the month, with their biggest cost."""
    order = "profit_rank desc" if worst else "profit_rank"
    rows = con.execute(
        f"""
        with shown as (
            select customer_id, customer_name, segment, operating_profit, net_revenue, profit_rank
            from marts.customer_tiers where period = $month
            order by {order} limit {SHOWN}
        ),
        costs as (
            select c.customer_id, c.activity, sum(c.cost) as cost
            from marts.customer_cost_to_serve as c
            join shown using (customer_id)
            where c.period between $start and $month
            group by all
        )
        select s.customer_id, s.customer_name, s.segment, s.operating_profit, s.net_revenue,
               first(c.activity order by c.cost desc, c.activity), max(c.cost), s.profit_rank,
        from shown as s left join costs as c using (customer_id)
        group by all
        order by {order}
        """,
        {"month": month, "start": start},
    ).fetchall()
    lines = []
    for customer, name, segment, profit, revenue, activity, cost, _ in rows:
        driver = f"{activity} {cost:,.2f}" if activity else "no cost-to-serve"
        lines.append(
            f"    {customer:<10}{name[:26]:<27}{segment[:12]:<13}{profit:>14,.2f}   "
            f"net revenue {revenue:>14,.2f}   {driver}"
        )
    return lines


def _balance_line(rows: int, off: int, supplied: Decimal, unused: Decimal) -> str:
    status = "every one balances to the cent" if off == 0 else f"{off} DO NOT BALANCE"
    return (
        f"  Reconciliation: {rows:,} resource-months in the window, {status}; "
        f"cost supplied {supplied:,.2f}, of which unused capacity {unused:,.2f}."
    )


def _pct(value: Decimal) -> str:
    return f"{value:.0f}%"
