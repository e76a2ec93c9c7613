"""A tiny warehouse for allocation tests: raw rows inserted directly, a cost model file, one month.

Rows read back from the marts have their Decimals turned into strings (`str(Decimal)`), so an
expected value such as "0.750000" checks the number and its scale exactly.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from pfd_pipeline import allocate
from pfd_pipeline.cost_model import CostModel, load_cost_model
from pfd_pipeline.warehouse import connect, ensure_schema

PERIOD = "2025-01"

# every column of marts.allocation_reconciliation after (period, resource), in table order
RECONCILIATION = (
    "method",
    "cost_supplied",
    "cost_assigned",
    "unused_capacity_cost",
    "unassigned_unknown_customer",
    "unassigned_no_driver_volume",
    "unassigned_resource_not_in_model",
    "unassigned_unknown_activity",
    "unassigned_no_direct_rule",
    "unassigned_total",
    "difference",
    "practical_capacity_minutes",
    "minutes_used",
    "capacity_overrun_minutes",
)
# every column of marts.activity_rates after (period, resource, activity), in table order
ACTIVITY_RATES = (
    "method",
    "cost_supplied",
    "practical_capacity_minutes",
    "rate",
    "driver_units",
    "minutes_used",
    "cost_assigned",
    "cost_unassigned",
    "resource_minutes_used",
    "unused_capacity_minutes",
    "unused_capacity_cost",
    "utilisation",
)
COST_TO_SERVE = ("method", "driver_units", "minutes", "rate", "cost")


def warehouse(path: Path | str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A connection with the raw, audit and cost tables created and empty."""
    con = connect(path)
    ensure_schema(con)
    allocate.ensure_tables(con)
    return con


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple], file_id: int) -> None:
    """Insert rows (without the _file_id/_row_number columns, which are added here)."""
    if not rows:
        return
    placeholders = ", ".join("?" * (len(rows[0]) + 2))
    con.executemany(
        f"insert into raw.{table} values ({placeholders})",
        [[*row, file_id, n] for n, row in enumerate(rows, start=1)],
    )


def customers(con: duckdb.DuckDBPyConnection, *ids: str) -> None:
    _insert(
        con, "customers", [(c, f"Customer {c}", "Retail", "North", "2020-01-01") for c in ids], 1
    )


def resources(con: duckdb.DuckDBPyConnection, *rows: tuple) -> None:
    """(resource, cost_amount, practical_capacity_minutes[, period])."""
    _insert(
        con,
        "resource_costs",
        [(row[3] if len(row) > 3 else PERIOD, row[0], _dec(row[1]), _dec(row[2])) for row in rows],
        2,
    )


def ledger(con: duckdb.DuckDBPyConnection, *rows: tuple) -> None:
    """(line_id, document_id, document_type, posting_date, customer_id, quantity)."""
    lines = []
    for line_id, document_id, document_type, posting_date, customer_id, quantity in rows:
        amount = _dec(quantity) * 10  # same sign as the quantity: < 0 on a credit note
        lines.append(
            (
                line_id,
                document_id,
                document_type,
                posting_date,
                customer_id,
                "P1",
                _dec(quantity),
                amount,
                Decimal(0),
                amount / 2,
                "USD",
                None,
                Decimal(0),
            )
        )
    _insert(con, "sales_ledger", lines, 3)


def event(
    event_id: str,
    customer_id: str,
    activity: str,
    quantity: Any = 1,
    *,
    date: str = "2025-01-15",
    channel: str | None = None,
    minutes: Any = None,
    amount: Any = None,
    flags: str | None = None,
) -> tuple:
    """One raw.activity_events row (without _file_id/_row_number)."""
    return (
        event_id,
        dt.date.fromisoformat(date),
        customer_id,
        activity,
        _dec(quantity),
        channel,
        _dec(minutes),
        _dec(amount),
        flags,
    )


def events(con: duckdb.DuckDBPyConnection, *rows: tuple) -> None:
    _insert(con, "activity_events", list(rows), 4)


def model(tmp_path: Path, text: str, name: str = "cost_model.yaml") -> CostModel:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_cost_model(path)


def allocate_month(
    con: duckdb.DuckDBPyConnection, cost_model: CostModel, period: str = PERIOD
) -> None:
    allocate.allocate_period(
        con, cost_model, allocate.PeriodOutcome(period, "closed", "test"), "run"
    )


def fetch(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> list[tuple]:
    """Rows with every Decimal as its exact string (number and scale)."""
    return [
        tuple(str(v) if isinstance(v, Decimal) else v for v in row)
        for row in con.execute(sql, params or []).fetchall()
    ]


def cost_to_serve(con: duckdb.DuckDBPyConnection, period: str = PERIOD) -> dict[tuple, tuple]:
    """(customer_id, activity, resource) -> (method, driver_units, minutes, rate, cost)."""
    rows = fetch(
        con,
        "select customer_id, activity, resource, method, driver_units, minutes, rate, cost, "
        "period_status from marts.customer_cost_to_serve where period = ? order by all",
        [period],
    )
    assert all(row[-1] == "closed" for row in rows)
    return {row[:3]: row[3:-1] for row in rows}


def activity_rates(con: duckdb.DuckDBPyConnection, period: str = PERIOD) -> dict[tuple, dict]:
    """(resource, activity) -> every other column by name."""
    rows = fetch(
        con,
        f"select resource, activity, {', '.join(ACTIVITY_RATES)}, period_status "
        "from marts.activity_rates where period = ? order by all",
        [period],
    )
    assert all(row[-1] == "closed" for row in rows)
    return {row[:2]: dict(zip(ACTIVITY_RATES, row[2:-1], strict=True)) for row in rows}


def reconciliation(con: duckdb.DuckDBPyConnection, period: str = PERIOD) -> dict[str, dict]:
    """resource -> every other column by name."""
    rows = fetch(
        con,
        f"select resource, {', '.join(RECONCILIATION)}, period_status "
        "from marts.allocation_reconciliation where period = ? order by all",
        [period],
    )
    assert all(row[-1] == "closed" for row in rows)
    return {row[0]: dict(zip(RECONCILIATION, row[1:-1], strict=True)) for row in rows}


def recon_row(
    method: str | None,
    supplied: str,
    assigned: str,
    unused: str = "0.00",
    *,
    unknown_customer: str = "0.00",
    no_driver_volume: str = "0.00",
    not_in_model: str = "0.00",
    unknown_activity: str = "0.00",
    no_direct_rule: str = "0.00",
    total: str = "0.00",
    difference: str = "0.00",
    capacity: str | None = None,
    minutes_used: str | None = None,
    overrun: str = "0.00",
) -> dict[str, Any]:
    """An expected reconciliation row; every value is given by the test (nothing computed)."""
    return dict(
        zip(
            RECONCILIATION,
            (
                method,
                supplied,
                assigned,
                unused,
                unknown_customer,
                no_driver_volume,
                not_in_model,
                unknown_activity,
                no_direct_rule,
                total,
                difference,
                capacity,
                minutes_used,
                overrun,
            ),
            strict=True,
        )
    )


def pool_rate_row(
    supplied: str, rate: str | None, units: str, assigned: str, unassigned: str = "0.00"
) -> dict[str, Any]:
    """An expected activity_rates row of a pool activity (no capacity columns)."""
    return dict(
        zip(
            ACTIVITY_RATES,
            ("pool", supplied, None, rate, units, None, assigned, unassigned) + (None,) * 4,
            strict=True,
        )
    )


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))
