"""Hand-made months for the mart, publish and report tests: ledger lines, allocated cost and
the allocation's build record, as a run would leave them; fixed CLV scores in place of the
model fits."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import duckdb
import polars as pl

from pfd_pipeline import allocate, marts
from pfd_pipeline.clv import FIT_SCHEMA, SCORE_SCHEMA, stage_inputs
from pfd_pipeline.settings import MartSettings
from pfd_pipeline.sql import load_sql
from pfd_pipeline.warehouse import connect, ensure_schema

DEFAULTS = MartSettings()


def add_month(con, period: str, customers: dict[str, tuple], segment: str = "Retail") -> None:
    """Customers' (gross, discount, cogs, cost-to-serve) in a month, as ledger lines and
    allocated cost; then the month's allocation build, as the allocation would record it."""
    day = dt.date(int(period[:4]), int(period[5:]), 15)
    for customer, (gross, discount, cogs, cost) in customers.items():
        con.execute(
            "insert or ignore into raw.customers values (?, ?, ?, 'North', '2020-01-01', 1, 1)",
            [customer, f"Name {customer}", segment],
        )
        if gross:
            con.execute(
                "insert into raw.sales_ledger values (?, ?, 'invoice', ?, ?, 'P1', 1, ?, ?, ?, "
                "'EUR', 'web', 0, 1, 1)",
                [
                    f"{period}-{customer}",
                    f"D{period}-{customer}",
                    day,
                    customer,
                    gross,
                    discount,
                    cogs,
                ],
            )
        if cost:
            con.execute(
                "insert into marts.customer_cost_to_serve values "
                "(?, ?, 'order_entry', 'customer_service', 'time_driven', 1, 10, 1, ?, 'closed')",
                [period, customer, cost],
            )
    allocated_month(con, period)


def allocated_month(con, period: str) -> None:
    """What the allocation records of a month besides its cost: the ledger's documents per
    customer (read by customer_profitability) and the month's build."""
    allocate.bind_period(con, period, "closed")
    con.execute(load_sql("allocate/customer_documents"))
    con.execute("drop table period_params")
    con.execute(
        "insert or replace into audit.allocated_periods values "
        "(?, 'sha', 'test', 'run', now(), nextval('audit.build_seq'))",
        [period],
    )


def build(con, settings: MartSettings = DEFAULTS, prepare=None) -> dict[str, list[str]]:
    """Rebuild what is pending, as the assets do (with `prepare` in place of the CLV model fits,
    e.g. fixed_scores); return the months rebuilt per table."""
    rebuilt = {}
    for mart in marts.marts(settings):
        if prepare is not None and mart.name == "customer_lifetime_value":
            mart = dataclasses.replace(mart, prepare=prepare)
        rebuilt[mart.name] = marts.pending(con, mart, settings)
        marts.rebuild(con, mart, rebuilt[mart.name], settings, "run")
    return rebuilt


def fixed_scores(values: dict[str, float], status: str = "fixed"):
    """A `prepare` step in place of the model fits: the real clv_inputs, and for each customer
    an expected margin per order of (its cost-to-serve per order + values[customer]), 3 orders
    expected and 2.5 after discounting, P(alive) 0.8. So clv = 2.5 x values[customer]. Each
    month's fit has `status` and counts every customer with orders as fitted."""

    def prepare(con, settings, many: bool) -> None:
        stage_inputs(con, settings, many)
        inputs = con.execute(
            "select period, customer_id, cost_to_serve_per_order::double from clv_inputs"
        ).fetchall()
        scores = pl.DataFrame(
            [
                (p, c, "gamma-gamma", cost + values.get(c, 0.0), 0.8, 3.0, 2.5)
                for p, c, cost in inputs
            ],
            schema=SCORE_SCHEMA,
            orient="row",
        )
        months = sorted({p for p, _, _ in inputs})
        fits = pl.DataFrame(
            [{"period": p, "status": status,
              "customers_fitted": sum(1 for q, _, _ in inputs if q == p), "repeat_customers": 0,
              "margin_customers": 0, "non_positive_margin_customers": 0}
             for p in months],
            schema=FIT_SCHEMA,
        )  # fmt: skip
        for name, frame in (("clv_scores", scores), ("clv_fits", fits)):
            con.register("_frame", frame.to_arrow())
            con.execute(f"create or replace temp table {name} as select * from _frame")
            con.unregister("_frame")

    return prepare


# Ten customers in 2025-01: (gross, discount, cogs, cost-to-serve); operating profit is
# gross - discount - cogs - cost: 500, 300, 200, 100, 50, 0, -20, -30, -100, -400 (total 600).
JANUARY = {
    "C01": (2000, 100, 1000, 400),
    "C02": (1000, 50, 500, 150),
    "C03": (1000, 200, 500, 100),
    "C04": (600, 100, 300, 100),
    "C05": (400, 0, 200, 150),
    "C06": (200, 0, 100, 100),
    "C07": (200, 20, 100, 100),
    "C08": (100, 0, 50, 80),
    "C09": (0, 0, 0, 100),
    "C10": (400, 100, 200, 500),
}


def mart_store() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory work store with the raw, audit, cost and mart tables (for a fixture)."""
    connection = connect(":memory:")
    ensure_schema(connection)
    allocate.ensure_tables(connection)
    marts.ensure_tables(connection)
    yield connection
    connection.close()


def rows(con, sql: str, params=None) -> list[dict]:
    """The query's rows as dicts."""
    result = con.execute(sql, params or [])
    names = [d[0] for d in result.description]
    return [dict(zip(names, r, strict=True)) for r in result.fetchall()]
