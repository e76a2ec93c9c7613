"""The worked example in docs/cost_model.md, run through the engine: every number in the doc."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pfd_pipeline import allocate
from pfd_pipeline.cost_model import load_cost_model
from pfd_pipeline.warehouse import connect, ensure_schema

EXAMPLE = Path(__file__).parent.parent / "docs" / "example_cost_model"


def test_worked_example_in_the_docs():
    con = connect(":memory:")
    ensure_schema(con)
    allocate.ensure_tables(con)
    con.execute((EXAMPLE / "landing.sql").read_text(encoding="utf-8"))
    model = load_cost_model(EXAMPLE / "cost_model.yaml")
    allocate.allocate_period(
        con, model, allocate.PeriodOutcome("2025-01", "closed", "example"), "run"
    )
    costs = con.execute(
        "select customer_id, activity, resource, minutes, cost from marts.customer_cost_to_serve "
        "order by all"
    ).fetchall()
    d = Decimal
    assert costs == [
        ("A", "delivery", "logistics", None, d("1600.00")),
        ("A", "delivery_dock", "logistics", None, d("200.00")),
        ("A", "invoice_printing", "standard_rate", None, d("0.45")),
        ("A", "order_entry", "customer_service", d("3.00"), d("2.25")),
        ("B", "delivery", "direct", None, d("85.00")),
        ("B", "delivery", "logistics", None, d("800.00")),
        ("B", "delivery_dock", "logistics", None, d("400.00")),
        ("B", "invoice_printing", "standard_rate", None, d("0.90")),
        ("B", "order_entry", "customer_service", d("31.00"), d("23.25")),
        ("B", "support_ticket", "customer_service", d("55.00"), d("41.25")),
    ]
    per_customer = dict(
        con.execute(
            "select customer_id, sum(cost) from marts.customer_cost_to_serve group by 1"
        ).fetchall()
    )
    assert per_customer == {"A": d("1802.70"), "B": d("1350.40")}
    rates = con.execute(
        "select activity, rate, unused_capacity_minutes, unused_capacity_cost, utilisation "
        "from marts.activity_rates order by activity"
    ).fetchall()
    assert rates == [
        ("delivery", d("13.333333"), None, None, None),
        ("delivery_dock", d("200.000000"), None, None, None),
        ("order_entry", d("0.750000"), d("39.00"), d("29.25"), d("0.6953")),
        ("support_ticket", d("0.750000"), d("39.00"), d("29.25"), d("0.6953")),
    ]
    recon = con.execute(
        "select resource, cost_supplied, cost_assigned, unused_capacity_cost, unassigned_total, "
        "difference from marts.allocation_reconciliation order by resource"
    ).fetchall()
    assert recon == [
        ("customer_service", d("96.00"), d("66.75"), d("29.25"), d("0.00"), d("0.00")),
        ("direct", d("85.00"), d("85.00"), d("0.00"), d("0.00"), d("0.00")),
        ("logistics", d("3000.00"), d("3000.00"), d("0.00"), d("0.00"), d("0.00")),
        ("standard_rate", d("1.35"), d("1.35"), d("0.00"), d("0.00"), d("0.00")),
    ]
