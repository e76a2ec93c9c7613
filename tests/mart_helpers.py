"""Hand-made months for the mart and publish tests: ledger lines, allocated cost and the
allocation's build record, as a run would leave them."""

from __future__ import annotations

import datetime as dt

from pfd_pipeline import marts
from pfd_pipeline.settings import MartSettings

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
    con.execute(
        "insert or replace into audit.allocated_periods values "
        "(?, 'sha', 'test', 'run', now(), nextval('audit.build_seq'))",
        [period],
    )


def build(con, settings: MartSettings = DEFAULTS) -> dict[str, list[str]]:
    """Rebuild what is pending, as the assets do; return the months rebuilt per table."""
    rebuilt = {}
    for mart in marts.marts(settings):
        rebuilt[mart.name] = marts.pending(con, mart, settings)
        marts.rebuild(con, mart, rebuilt[mart.name], settings, "run")
    return rebuilt


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
