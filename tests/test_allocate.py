"""Allocation of one month, method by method, against numbers worked out by hand.

Each test builds a fresh DuckDB file, inserts raw rows directly, writes a small cost model and
allocates January 2025. Every expected number is derived in the comments next to it; money and
rates are compared as exact decimal strings (value and scale). Largest remainder: each claimant
gets the floor of its share in cents, the leftover cents go to the largest remainders, ties by
claimant key (time-driven: 'activity|customer', unused capacity '~unused'; pool: customer_id).

The last test is property-based: random small models and months must balance to the cent.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from pathlib import Path

import allocation_helpers as h
import duckdb
import pytest
import yaml
from allocation_helpers import event, pool_rate_row, recon_row
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pfd_pipeline import allocate
from pfd_pipeline.sql import load_sql

ZERO_DIRECT = recon_row("direct", "0.00", "0.00")
ZERO_STANDARD = recon_row("standard_rate", "0.00", "0.00")


def _time_rate_row(**values) -> dict:
    return {"method": "time_driven", "cost_unassigned": "0.00", **values}


# --------------------------------------------------------------------------------------------
# Time-driven ABC: time equation, measured minutes, unused capacity
# --------------------------------------------------------------------------------------------

TIME_EQUATION_MODEL = """
resources:
  customer_service: {method: time_driven}
activities:
  order_entry:
    driver: {events: order_entry, measure: quantity}
    costs:
      - time_driven: customer_service
        time_equation:
          base: 2
          per_unit: 0.5
          channel: {phone: {base: 4, per_unit: 1}, web: -1}
          flags: {rush: 6, export: {base: 3, per_unit: 0.25}}
  support_ticket:
    driver: {events: support_ticket, measure: count}
    costs:
      - time_driven: customer_service
        time_equation: {base: 15, measured: true}
"""


def _time_equation_month(tmp_path: Path):
    con = h.warehouse(tmp_path / "pfd.duckdb")
    h.customers(con, "A", "B")
    # rate = 360.00 / 480 minutes = 0.75 per minute
    h.resources(con, ("customer_service", "360.00", 480))
    h.events(
        con,
        # 2 + 0.5*4 + phone (4 + 1*4) = 12
        event("E1", "A", "order_entry", 4, channel="phone"),
        # 2 + 0.5*2 + web (-1) + rush 6 + export (3 + 0.25*2) = 11.5
        event("E2", "A", "order_entry", 2, channel="web", flags="rush|export"),
        # 2 + 0.5*1 = 2.5: the equation is not `measured`, so the event's 99 minutes are ignored
        event("E3", "A", "order_entry", 1, minutes="99"),
        # 2 + 0.5*10 + rush 6 = 13 (no adder for email, none for the unknown flag 'fragile')
        event("E4", "B", "order_entry", 10, channel="email", flags="rush|fragile"),
        event("E5", "B", "support_ticket", minutes="40"),  # measured: 40
        event("E6", "B", "support_ticket"),  # no measured minutes: the base, 15
        event("E7", "A", "support_ticket", minutes="7.5"),  # measured: 7.5
        event("E8", "A", "order_entry", 100, date="2025-02-01"),  # February: not in January
    )
    h.allocate_month(con, h.model(tmp_path, TIME_EQUATION_MODEL))
    return con


def test_time_driven_with_time_equation_and_measured_minutes(tmp_path):
    con = _time_equation_month(tmp_path)
    # minutes: A order_entry 12 + 11.5 + 2.5 = 26      A support_ticket 7.5
    #          B order_entry 13                         B support_ticket 40 + 15 = 55
    # used 26 + 7.5 + 13 + 55 = 101.5 of 480 -> unused 378.5 minutes
    # at 0.75: A oe 19.50, A st 5.625, B oe 9.75, B st 41.25, unused 283.875 (sum 360.00)
    # cents: floors 1950 + 562 + 975 + 4125 + 28387 = 35999, 1 cent left; A st and unused both
    # have remainder .5, tie by key 'support_ticket|A' < '~unused' -> A st 5.63, unused 283.87
    assert h.cost_to_serve(con) == {
        ("A", "order_entry", "customer_service"): (
            "time_driven",
            "7.0000",  # driver units = quantity 4 + 2 + 1
            "26.00",
            "0.750000",
            "19.50",
        ),
        ("A", "support_ticket", "customer_service"): (
            "time_driven",
            "1.0000",
            "7.50",
            "0.750000",
            "5.63",
        ),
        ("B", "order_entry", "customer_service"): (
            "time_driven",
            "10.0000",
            "13.00",
            "0.750000",
            "9.75",
        ),
        ("B", "support_ticket", "customer_service"): (
            "time_driven",
            "2.0000",  # count of tickets
            "55.00",
            "0.750000",
            "41.25",
        ),
    }
    shared = {
        "cost_supplied": "360.00",
        "practical_capacity_minutes": "480.00",
        "rate": "0.750000",  # 360.00 / 480
        "resource_minutes_used": "101.50",
        "unused_capacity_minutes": "378.50",  # 480 - 101.5
        "unused_capacity_cost": "283.87",
        "utilisation": "0.2115",  # 101.5 / 480 = 0.21146
    }
    assert h.activity_rates(con) == {
        ("customer_service", "order_entry"): _time_rate_row(
            driver_units="17.0000",  # 7 + 10
            minutes_used="39.00",  # 26 + 13
            cost_assigned="29.25",  # 19.50 + 9.75
            **shared,
        ),
        ("customer_service", "support_ticket"): _time_rate_row(
            driver_units="3.0000",  # 1 + 2
            minutes_used="62.50",  # 7.5 + 55
            cost_assigned="46.88",  # 5.63 + 41.25
            **shared,
        ),
    }
    # assigned 19.50 + 5.63 + 9.75 + 41.25 = 76.13; 76.13 + 283.87 = 360.00
    assert h.reconciliation(con) == {
        "customer_service": recon_row(
            "time_driven", "360.00", "76.13", "283.87", capacity="480.00", minutes_used="101.50"
        ),
        "direct": ZERO_DIRECT,
        "standard_rate": ZERO_STANDARD,
    }


def test_time_driven_over_capacity_charges_at_the_capacity_rate(tmp_path):
    con = h.warehouse(tmp_path / "pfd.duckdb")
    h.customers(con, "A", "B", "C")
    # rate = 100.01 / 200 = 0.50005 per minute
    h.resources(con, ("warehouse", "100.01", 200))
    h.events(
        con,
        event("E1", "A", "picking", 60),
        event("E2", "A", "picking", 40),
        event("E3", "B", "picking", 120),
        event("E4", "C", "picking", 80),
    )
    model = """
resources:
  warehouse: {method: time_driven}
activities:
  picking:
    driver: {events: picking, measure: quantity}
    costs:
      - time_driven: warehouse
        time_equation: {per_unit: 1}
"""
    h.allocate_month(con, h.model(tmp_path, model))
    # minutes = quantity: A 100, B 120, C 80 -> 300 used of 200 (overrun 100 minutes)
    # charged at the capacity rate: 300 * 0.50005 = 150.015 -> 150.02 (half up, exact decimals)
    # by minutes: A 15002*100/300 = 5000.67, B 6000.8, C 4000.53 cents; floors 15000, 2 cents
    # left -> largest remainders B (.8), A (.67): A 50.01, B 60.01, C 40.00 (sum 150.02)
    # unused = 100.01 - 150.02 = -50.01 over 200 - 300 = -100 minutes
    assert h.cost_to_serve(con) == {
        ("A", "picking", "warehouse"): ("time_driven", "100.0000", "100.00", "0.500050", "50.01"),
        ("B", "picking", "warehouse"): ("time_driven", "120.0000", "120.00", "0.500050", "60.01"),
        ("C", "picking", "warehouse"): ("time_driven", "80.0000", "80.00", "0.500050", "40.00"),
    }
    assert h.activity_rates(con) == {
        ("warehouse", "picking"): _time_rate_row(
            cost_supplied="100.01",
            practical_capacity_minutes="200.00",
            rate="0.500050",
            driver_units="300.0000",
            minutes_used="300.00",
            cost_assigned="150.02",
            resource_minutes_used="300.00",
            unused_capacity_minutes="-100.00",
            unused_capacity_cost="-50.01",
            utilisation="1.5000",  # 300 / 200
        )
    }
    # 150.02 + (-50.01) = 100.01
    assert h.reconciliation(con) == {
        "warehouse": recon_row(
            "time_driven",
            "100.01",
            "150.02",
            "-50.01",
            capacity="200.00",
            minutes_used="300.00",
            overrun="100.00",
        ),
        "direct": ZERO_DIRECT,
        "standard_rate": ZERO_STANDARD,
    }


# --------------------------------------------------------------------------------------------
# Conventional ABC: pool split, rate = share / driver volume, largest remainder
# --------------------------------------------------------------------------------------------

POOL_MODEL = """
resources:
  logistics:
    method: pool
    split: {delivery: 60, delivery_dock: 40}
activities:
  delivery:
    driver: {events: delivery, measure: quantity}
    costs: [{pool: logistics}]
  delivery_dock:
    driver: {events: delivery, measure: count}
    costs: [{pool: logistics}]
"""


def test_pool_split_and_largest_remainder(tmp_path):
    con = h.warehouse(tmp_path / "pfd.duckdb")
    h.customers(con, "K", "B", "M")
    h.resources(con, ("logistics", "250.01", None))
    h.events(
        con,
        event("E1", "K", "delivery", 10),
        event("E2", "B", "delivery", 20),
        event("E3", "M", "delivery", 30),
    )
    h.allocate_month(con, h.model(tmp_path, POOL_MODEL))
    # split of 25001 cents: delivery 60% = 15000.6, dock 40% = 10000.4; floors 25000, the
    # 1 cent left goes to delivery (.6): delivery 150.01, dock 100.00
    # delivery over 60 miles (rate 150.01 / 60 = 2.5001667): K 15001*10/60 = 2500.17,
    # B 5000.33, M 7500.5 cents; floors 15000, 1 cent to M (.5): K 25.00, B 50.00, M 75.01
    # dock over 3 deliveries (rate 100.00 / 3 = 33.333333): 3333.33 cents each; floors 9999,
    # 1 cent left, all remainders equal -> the first customer_id, B: B 33.34, K 33.33, M 33.33
    assert h.cost_to_serve(con) == {
        ("B", "delivery", "logistics"): ("pool", "20.0000", None, "2.500167", "50.00"),
        ("B", "delivery_dock", "logistics"): ("pool", "1.0000", None, "33.333333", "33.34"),
        ("K", "delivery", "logistics"): ("pool", "10.0000", None, "2.500167", "25.00"),
        ("K", "delivery_dock", "logistics"): ("pool", "1.0000", None, "33.333333", "33.33"),
        ("M", "delivery", "logistics"): ("pool", "30.0000", None, "2.500167", "75.01"),
        ("M", "delivery_dock", "logistics"): ("pool", "1.0000", None, "33.333333", "33.33"),
    }
    assert h.activity_rates(con) == {
        ("logistics", "delivery"): pool_rate_row("150.01", "2.500167", "60.0000", "150.01"),
        ("logistics", "delivery_dock"): pool_rate_row("100.00", "33.333333", "3.0000", "100.00"),
    }
    assert h.reconciliation(con) == {
        "logistics": recon_row("pool", "250.01", "250.01"),
        "direct": ZERO_DIRECT,
        "standard_rate": ZERO_STANDARD,
    }


def test_pool_without_driver_volume_and_active_customers(tmp_path):
    con = h.warehouse(tmp_path / "pfd.duckdb")
    h.customers(con, "A", "B", "C", "D", "E")
    h.resources(con, ("finance", "1000.00", None))
    h.ledger(
        con,
        ("L1", "I1", "invoice", "2025-01-05", "A", 2),
        ("L2", "I1", "invoice", "2025-01-05", "A", 1),
        ("L3", "I2", "invoice", "2025-01-09", "B", 1),
        ("L4", "I3", "invoice", "2025-01-31", "D", 4),
        ("L5", "CN1", "credit_note", "2025-01-12", "C", -1),  # C: a credit note only
        ("L6", "I4", "invoice", "2024-12-20", "E", 1),  # E: an invoice in December only
    )
    # the only collection call is in February: no driver volume in January
    h.events(con, event("E1", "A", "collection_call", date="2025-02-03"))
    model = """
resources:
  finance:
    method: pool
    split: {collection_call: 30, customer_account: 70}
activities:
  collection_call:
    driver: {events: collection_call, measure: count}
    costs: [{pool: finance}]
  customer_account:
    driver: {customers: active}
    costs: [{pool: finance}]
"""
    h.allocate_month(con, h.model(tmp_path, model))
    # split: collection_call 30% of 1000.00 = 300.00 -> no driver volume, unassigned
    # customer_account 70% = 700.00 over the active customers A, B, D (an invoice in January)
    # = 23333.33 cents each; floors 69999, 1 cent to the first customer_id, A
    assert h.cost_to_serve(con) == {
        ("A", "customer_account", "finance"): ("pool", "1.0000", None, "233.333333", "233.34"),
        ("B", "customer_account", "finance"): ("pool", "1.0000", None, "233.333333", "233.33"),
        ("D", "customer_account", "finance"): ("pool", "1.0000", None, "233.333333", "233.33"),
    }
    assert h.activity_rates(con) == {
        ("finance", "collection_call"): pool_rate_row("300.00", None, "0.0000", "0.00", "300.00"),
        ("finance", "customer_account"): pool_rate_row("700.00", "233.333333", "3.0000", "700.00"),
    }
    assert h.reconciliation(con) == {
        "finance": recon_row(
            "pool", "1000.00", "700.00", no_driver_volume="300.00", total="300.00"
        ),
        "direct": ZERO_DIRECT,
        "standard_rate": ZERO_STANDARD,
    }


# --------------------------------------------------------------------------------------------
# Standard rates and direct assignment
# --------------------------------------------------------------------------------------------


def test_standard_rates_per_ledger_driver_and_event_quantity(tmp_path):
    con = h.warehouse(tmp_path / "pfd.duckdb")
    h.customers(con, "A", "B")
    h.ledger(
        con,
        ("L1", "I1", "invoice", "2025-01-05", "A", 3),
        ("L2", "I1", "invoice", "2025-01-05", "A", 5),
        ("L3", "I1", "invoice", "2025-01-05", "A", 2),
        ("L4", "I2", "invoice", "2025-01-20", "A", 7),
        ("L5", "I3", "invoice", "2025-01-08", "B", 4),
        ("L6", "CN1", "credit_note", "2025-01-09", "B", -1),
        ("L7", "CN1", "credit_note", "2025-01-09", "B", -2),
    )
    h.events(
        con,
        event("E1", "A", "delivery", "12.5"),
        event("E2", "B", "delivery", 3),
        event("E3", "B", "delivery", "4.25"),
        event("E4", "X", "delivery", 2),  # X is not in the customer master
    )
    model = """
resources: {}
activities:
  invoice_printing:
    driver: {ledger: invoices}
    costs: [{standard_rate: 0.45}]
  credit_handling:
    driver: {ledger: credit_note_lines}
    costs: [{standard_rate: 2.5}]
  handling:
    driver: {ledger: units}
    costs: [{standard_rate: 0.125}]
  delivery_miles:
    driver: {events: delivery, measure: quantity}
    costs: [{standard_rate: 1.37}]
"""
    h.allocate_month(con, h.model(tmp_path, model))
    assert h.cost_to_serve(con) == {
        # 12.5 miles * 1.37 = 17.125 -> 17.13
        ("A", "delivery_miles", "standard_rate"): (
            "standard_rate",
            "12.5000",
            None,
            "1.370000",
            "17.13",
        ),
        # invoiced units 3 + 5 + 2 + 7 = 17 * 0.125 = 2.125 -> 2.13
        ("A", "handling", "standard_rate"): ("standard_rate", "17.0000", None, "0.125000", "2.13"),
        # 2 invoices (I1, I2) * 0.45
        ("A", "invoice_printing", "standard_rate"): (
            "standard_rate",
            "2.0000",
            None,
            "0.450000",
            "0.90",
        ),
        # 2 credit-note lines * 2.5
        ("B", "credit_handling", "standard_rate"): (
            "standard_rate",
            "2.0000",
            None,
            "2.500000",
            "5.00",
        ),
        # (3 + 4.25) miles * 1.37 = 9.9325 -> 9.93
        ("B", "delivery_miles", "standard_rate"): (
            "standard_rate",
            "7.2500",
            None,
            "1.370000",
            "9.93",
        ),
        # invoiced units 4 (credit notes are not units) * 0.125 = 0.50
        ("B", "handling", "standard_rate"): ("standard_rate", "4.0000", None, "0.125000", "0.50"),
        ("B", "invoice_printing", "standard_rate"): (
            "standard_rate",
            "1.0000",
            None,
            "0.450000",
            "0.45",
        ),
    }
    assert h.activity_rates(con) == {}  # no resource behind a standard rate
    # assigned 17.13 + 2.13 + 0.90 + 5.00 + 9.93 + 0.50 + 0.45 = 36.04; X: 2 * 1.37 = 2.74
    # supplied (what the rates charged) 36.04 + 2.74 = 38.78
    assert h.reconciliation(con) == {
        "direct": ZERO_DIRECT,
        "standard_rate": recon_row(
            "standard_rate", "38.78", "36.04", unknown_customer="2.74", total="2.74"
        ),
    }


def test_direct_amounts_and_amounts_without_a_rule(tmp_path):
    con = h.warehouse(tmp_path / "pfd.duckdb")
    h.customers(con, "A", "B")
    h.events(
        con,
        event("E1", "A", "delivery", amount="85.00"),
        event("E2", "A", "delivery", amount="14.99"),
        event("E3", "A", "delivery", amount="-4.99"),  # a carrier credit
        event("E4", "B", "delivery"),  # no amount: nothing to assign
        event("E5", "B", "delivery", amount="0.01"),
        event("E6", "B", "sales_visit", amount="55.55"),  # sales_visit has no direct rule
        event("E7", "A", "gift", amount="20.00"),  # gift is not in the model
        event("E8", "B", "gift"),
    )
    model = """
resources: {}
activities:
  delivery:
    driver: {events: delivery, measure: count}
    costs: [{direct: amount}]
  sales_visit:
    driver: {events: sales_visit, measure: count}
    costs: [{standard_rate: 10}]
"""
    h.allocate_month(con, h.model(tmp_path, model))
    assert h.cost_to_serve(con) == {
        # 85.00 + 14.99 - 4.99 = 95.00 over 3 deliveries
        ("A", "delivery", "direct"): ("direct", "3.0000", None, None, "95.00"),
        # 0.01 (the delivery without an amount still counts as a driver unit)
        ("B", "delivery", "direct"): ("direct", "2.0000", None, None, "0.01"),
        ("B", "sales_visit", "standard_rate"): (
            "standard_rate",
            "1.0000",
            None,
            "10.000000",
            "10.00",
        ),
    }
    assert h.activity_rates(con) == {}
    # supplied = every January event amount: 85.00 + 14.99 - 4.99 + 0.01 + 55.55 + 20.00 = 170.56
    # assigned 95.00 + 0.01 = 95.01; no rule 55.55; unknown activity 20.00; total 75.55
    assert h.reconciliation(con) == {
        "direct": recon_row(
            "direct",
            "170.56",
            "95.01",
            no_direct_rule="55.55",
            unknown_activity="20.00",
            total="75.55",
        ),
        "standard_rate": recon_row("standard_rate", "10.00", "10.00"),
    }


# --------------------------------------------------------------------------------------------
# Unknown customers, resources not in the model, one activity on two resources
# --------------------------------------------------------------------------------------------


def test_unknown_customer_cost_is_unassigned_for_every_method(tmp_path):
    con = h.warehouse(tmp_path / "pfd.duckdb")
    h.customers(con, "A")
    h.resources(con, ("customer_service", "50.00", 100), ("logistics", "80.00", None))
    h.events(
        con,
        event("E1", "A", "order_entry"),
        event("E2", "X", "order_entry"),  # X is not in the customer master
        event("E3", "A", "delivery", 30, amount="10.00"),
        event("E4", "X", "delivery", 10, amount="7.00"),
    )
    model = """
resources:
  customer_service: {method: time_driven}
  logistics: {method: pool, split: {delivery: 100}}
activities:
  order_entry:
    driver: {events: order_entry, measure: count}
    costs:
      - time_driven: customer_service
        time_equation: {base: 10}
  delivery:
    driver: {events: delivery, measure: quantity}
    costs: [{pool: logistics}, {direct: amount}]
"""
    h.allocate_month(con, h.model(tmp_path, model))
    # customer_service: rate 50.00 / 100 = 0.50; A 10 min = 5.00, X 10 min = 5.00 (unassigned),
    #   unused 100 - 20 = 80 min = 40.00
    # logistics: 80.00 over 40 miles = 2.00 per mile; A 30 = 60.00, X 10 = 20.00 (unassigned)
    # direct: A 10.00, X 7.00 (unassigned)
    assert h.cost_to_serve(con) == {
        ("A", "delivery", "direct"): ("direct", "30.0000", None, None, "10.00"),
        ("A", "delivery", "logistics"): ("pool", "30.0000", None, "2.000000", "60.00"),
        ("A", "order_entry", "customer_service"): (
            "time_driven",
            "1.0000",
            "10.00",
            "0.500000",
            "5.00",
        ),
    }
    assert h.activity_rates(con) == {
        ("customer_service", "order_entry"): _time_rate_row(
            cost_supplied="50.00",
            practical_capacity_minutes="100.00",
            rate="0.500000",
            driver_units="2.0000",  # A's and X's events
            minutes_used="20.00",
            cost_assigned="5.00",
            cost_unassigned="5.00",
            resource_minutes_used="20.00",
            unused_capacity_minutes="80.00",
            unused_capacity_cost="40.00",
            utilisation="0.2000",
        ),
        ("logistics", "delivery"): pool_rate_row("80.00", "2.000000", "40.0000", "60.00", "20.00"),
    }
    assert h.reconciliation(con) == {
        "customer_service": recon_row(
            "time_driven",
            "50.00",
            "5.00",
            "40.00",
            unknown_customer="5.00",
            total="5.00",
            capacity="100.00",
            minutes_used="20.00",
        ),
        "direct": recon_row("direct", "17.00", "10.00", unknown_customer="7.00", total="7.00"),
        "logistics": recon_row("pool", "80.00", "60.00", unknown_customer="20.00", total="20.00"),
        "standard_rate": ZERO_STANDARD,
    }


def test_resource_not_in_the_model_is_unassigned(tmp_path):
    con = h.warehouse(tmp_path / "pfd.duckdb")
    h.customers(con, "A")
    h.resources(con, ("logistics", "10.00", None), ("it_helpdesk", "123.45", 600))
    h.events(con, event("E1", "A", "delivery"))
    model = """
resources:
  logistics: {method: pool, split: {delivery: 100}}
activities:
  delivery:
    driver: {events: delivery, measure: count}
    costs: [{pool: logistics}]
"""
    h.allocate_month(con, h.model(tmp_path, model))
    assert h.cost_to_serve(con) == {
        ("A", "delivery", "logistics"): ("pool", "1.0000", None, "10.000000", "10.00"),
    }
    assert h.reconciliation(con) == {
        "it_helpdesk": recon_row(
            None, "123.45", "0.00", not_in_model="123.45", total="123.45", capacity="600.00"
        ),
        "logistics": recon_row("pool", "10.00", "10.00"),
        "direct": ZERO_DIRECT,
        "standard_rate": ZERO_STANDARD,
    }


TWO_RESOURCE_MODEL = """
resources:
  warehouse: {method: time_driven}
  logistics: {method: pool, split: {delivery: 100}}
activities:
  delivery:
    driver: {events: delivery, measure: quantity}
    costs:
      - time_driven: warehouse
        time_equation: {base: 20, flags: {fragile: 10}}
      - pool: logistics
"""


def _two_resource_month(con, period: str = "2025-01", warehouse_cost: str = "90.00") -> None:
    h.resources(
        con,
        ("warehouse", warehouse_cost, 120, period),
        ("logistics", "199.99", None, period),
    )
    day = f"{period}-10"
    h.events(
        con,
        event(f"{period}-1", "A", "delivery", 50, flags="fragile", date=day),
        event(f"{period}-2", "B", "delivery", 25, date=day),
        event(f"{period}-3", "B", "delivery", 25, date=day),
    )


def test_one_activity_drawing_on_two_resources(tmp_path):
    con = h.warehouse(tmp_path / "pfd.duckdb")
    h.customers(con, "A", "B")
    _two_resource_month(con)
    h.allocate_month(con, h.model(tmp_path, TWO_RESOURCE_MODEL))
    # warehouse (rate 90.00 / 120 = 0.75): A 20 + 10 = 30 min = 22.50, B 20 + 20 = 40 min =
    #   30.00, unused 120 - 70 = 50 min = 37.50
    # logistics 19999 cents by miles, A 50 and B 50: 9999.5 each; 1 cent left, tie -> A
    #   A 100.00, B 99.99, rate 199.99 / 100 = 1.9999
    assert h.cost_to_serve(con) == {
        ("A", "delivery", "logistics"): ("pool", "50.0000", None, "1.999900", "100.00"),
        ("A", "delivery", "warehouse"): ("time_driven", "50.0000", "30.00", "0.750000", "22.50"),
        ("B", "delivery", "logistics"): ("pool", "50.0000", None, "1.999900", "99.99"),
        ("B", "delivery", "warehouse"): ("time_driven", "50.0000", "40.00", "0.750000", "30.00"),
    }
    assert h.activity_rates(con) == {
        ("logistics", "delivery"): pool_rate_row("199.99", "1.999900", "100.0000", "199.99"),
        ("warehouse", "delivery"): _time_rate_row(
            cost_supplied="90.00",
            practical_capacity_minutes="120.00",
            rate="0.750000",
            driver_units="100.0000",
            minutes_used="70.00",
            cost_assigned="52.50",
            resource_minutes_used="70.00",
            unused_capacity_minutes="50.00",
            unused_capacity_cost="37.50",
            utilisation="0.5833",  # 70 / 120
        ),
    }
    assert h.reconciliation(con) == {
        "logistics": recon_row("pool", "199.99", "199.99"),
        "warehouse": recon_row(
            "time_driven", "90.00", "52.50", "37.50", capacity="120.00", minutes_used="70.00"
        ),
        "direct": ZERO_DIRECT,
        "standard_rate": ZERO_STANDARD,
    }


# --------------------------------------------------------------------------------------------
# Rebuilding a month replaces it
# --------------------------------------------------------------------------------------------

TABLES = (
    "marts.customer_cost_to_serve",
    "marts.activity_rates",
    "marts.allocation_reconciliation",
)


def _snapshot(con) -> dict[str, list[tuple]]:
    snapshot = {t: h.fetch(con, f"select * from {t} order by all") for t in TABLES}
    snapshot["audit"] = h.fetch(
        con, "select period, model_sha256, reason, run_id from audit.allocated_periods order by 1"
    )
    return snapshot


def test_rebuilding_a_month_replaces_it(tmp_path):
    con = h.warehouse(tmp_path / "pfd.duckdb")
    h.customers(con, "A", "B")
    _two_resource_month(con, "2025-01")
    _two_resource_month(con, "2025-02")
    model = h.model(tmp_path, TWO_RESOURCE_MODEL)
    h.allocate_month(con, model, "2025-01")
    h.allocate_month(con, model, "2025-02")
    first = _snapshot(con)
    assert len(first["marts.customer_cost_to_serve"]) == 8  # 4 rows a month
    assert len(first["marts.allocation_reconciliation"]) == 8

    h.allocate_month(con, model, "2025-01")
    h.allocate_month(con, model, "2025-01")
    assert _snapshot(con) == first

    # a corrected January cost: January is replaced, February untouched
    con.execute(
        "update raw.resource_costs set cost_amount = 120.00 "
        "where period = '2025-01' and resource = 'warehouse'"
    )
    h.allocate_month(con, model, "2025-01")
    after = _snapshot(con)
    for table in TABLES:
        assert len(after[table]) == len(first[table])
        feb = [row for row in after[table] if row[0] == "2025-02"]
        assert feb == [row for row in first[table] if row[0] == "2025-02"]
    # 120.00 / 120 = 1.00 per minute: A 30.00, B 40.00, unused 50.00
    assert h.reconciliation(con)["warehouse"] == recon_row(
        "time_driven", "120.00", "70.00", "50.00", capacity="120.00", minutes_used="70.00"
    )
    costs = h.cost_to_serve(con)
    assert costs["A", "delivery", "warehouse"][-1] == "30.00"
    assert costs["B", "delivery", "warehouse"][-1] == "40.00"


# --------------------------------------------------------------------------------------------
# Property: every random month balances to the cent
# --------------------------------------------------------------------------------------------

KNOWN = ("A", "B", "C")
EVENT_TYPES = ("e0", "e1", "e2")
CENTS = st.integers(0, 500_000).map(lambda c: Decimal(c) / 100)


@st.composite
def scenarios(draw):
    time_resources = [f"t{i}" for i in range(draw(st.integers(1, 2)))]
    pool_resources = [f"p{i}" for i in range(draw(st.integers(0, 2)))]
    activities: dict[str, dict] = {}
    directed: set[str] = set()  # an event's amount may be charged by one activity only
    for i in range(draw(st.integers(1, 5))):
        first = i == 0  # the first activity always takes t0's minutes for e0 events
        source = "events" if first else draw(st.sampled_from(("events", "ledger", "customers")))
        if source == "events":
            driver = {
                "events": "e0" if first else draw(st.sampled_from(EVENT_TYPES)),
                "measure": draw(st.sampled_from(("quantity", "count"))),
            }
        elif source == "ledger":
            driver = {"ledger": draw(st.sampled_from(("invoice_lines", "invoices", "units")))}
        else:
            driver = {"customers": "active"}
        costs: list[dict] = []
        if source == "events" and (first or draw(st.booleans())):
            equation = {
                "base": draw(st.sampled_from((0, 1, 2.5, 15))),
                "per_unit": draw(st.sampled_from((0, 0.5, 1, 2.5))),
                "measured": draw(st.booleans()),
            }
            if draw(st.booleans()):
                equation["channel"] = {"phone": {"base": 4, "per_unit": 0.5}, "web": -1}
            if draw(st.booleans()):
                equation["flags"] = {"rush": 5}
            resource = "t0" if first else draw(st.sampled_from(time_resources))
            costs.append({"time_driven": resource, "time_equation": equation})
        if pool_resources and draw(st.booleans()):
            costs.append({"pool": draw(st.sampled_from(pool_resources))})
        if draw(st.booleans()):
            costs.append({"standard_rate": draw(st.sampled_from((0.45, 1.37, 0.125, 3)))})
        if source == "events" and driver["events"] not in directed and draw(st.booleans()):
            directed.add(driver["events"])
            costs.append({"direct": "amount"})
        if not costs:
            costs.append({"standard_rate": 1})
        activities[f"a{i}"] = {"driver": driver, "costs": costs}

    resources: dict[str, dict] = {r: {"method": "time_driven"} for r in time_resources}
    for pool in pool_resources:
        drawing = [a for a, spec in activities.items() if {"pool": pool} in spec["costs"]]
        if not drawing:
            continue  # left out of the model: its cost is a resource not in the model
        k = len(drawing) - 1
        bounds = [
            0,
            *sorted(draw(st.lists(st.integers(0, 10_000), min_size=k, max_size=k))),
            10_000,
        ]
        resources[pool] = {
            "method": "pool",
            "split": {
                a: (hi - lo) / 100 for a, (lo, hi) in zip(drawing, pairwise(bounds), strict=True)
            },
        }

    supply = []
    for resource in time_resources:
        cost = draw(CENTS)
        capacity = draw(st.sampled_from((1, 2, 5, 15, 250)))  # often over capacity
        if cost == 0 and draw(st.booleans()):
            capacity = None
        if draw(st.integers(0, 5)):  # now and then a month without a cost row
            supply.append((resource, cost, capacity))
    for resource in pool_resources:
        if draw(st.integers(0, 5)):
            supply.append((resource, draw(CENTS), None))
    if draw(st.booleans()):
        supply.append(("zz_not_modelled", draw(CENTS), None))

    raw_events = []
    for n in range(draw(st.integers(0, 16))):
        raw_events.append(
            event(
                f"E{n}",
                draw(st.sampled_from((*KNOWN, "X"))),  # X: not in the customer master
                draw(st.sampled_from(("e0", *EVENT_TYPES, "mystery"))),
                draw(st.sampled_from(("0.5", "1", "2", "3.5", "12"))),
                date=draw(st.sampled_from(("2025-01-02", "2025-01-31", "2025-02-01"))),
                channel=draw(st.sampled_from((None, "web", "phone"))),
                minutes=draw(st.sampled_from((None, "0", "7.25", "45"))),
                amount=draw(st.sampled_from((None, "0", "12.34", "-5.01", "99.99"))),
                flags=draw(st.sampled_from((None, "rush", "rush|other"))),
            )
        )
    lines = []
    for n in range(draw(st.integers(0, 6))):
        customer_id = draw(st.sampled_from(KNOWN))
        invoice = draw(st.booleans())
        quantity = draw(st.integers(1, 9))
        lines.append(
            (
                f"L{n}",
                f"{'I' if invoice else 'CN'}{draw(st.integers(1, 3))}-{customer_id}",
                "invoice" if invoice else "credit_note",
                draw(st.sampled_from(("2025-01-03", "2025-01-28", "2024-12-30"))),
                customer_id,
                quantity if invoice else -quantity,
            )
        )
    return {"resources": resources, "activities": activities}, supply, raw_events, lines


def _equation_minutes(cost: dict, ev: tuple) -> Decimal:
    """Minutes of one event by the model's time equation: an independent oracle for the SQL."""
    _, _, _, _, quantity, channel, minutes, _, flags = ev
    equation = cost["time_equation"]
    if equation.get("measured") and minutes is not None:
        return minutes
    total = Decimal(str(equation["base"])) + Decimal(str(equation["per_unit"])) * quantity
    adders = dict(equation.get("channel", {}))
    if channel in adders:
        adder = adders[channel]
        if isinstance(adder, dict):
            total += Decimal(str(adder["base"])) + Decimal(str(adder["per_unit"])) * quantity
        else:
            total += Decimal(str(adder))
    for flag in (flags or "").split("|"):
        if flag in equation.get("flags", {}):
            total += Decimal(str(equation["flags"][flag]))
    return max(total, Decimal(0))


CENT = Decimal("0.01")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_every_random_month_balances_to_the_cent(scenario):
    spec, supply, raw_events, lines = scenario
    with tempfile.TemporaryDirectory() as folder:
        model = h.model(Path(folder), yaml.safe_dump(spec))
    con = h.warehouse()
    h.customers(con, *KNOWN)
    h.resources(con, *supply)
    h.events(con, *raw_events)
    h.ledger(con, *lines)
    h.allocate_month(con, model)

    recon = con.execute(
        "select resource, cost_supplied, cost_assigned, unused_capacity_cost, "
        "unassigned_unknown_customer + unassigned_no_driver_volume "
        "+ unassigned_resource_not_in_model + unassigned_unknown_activity "
        "+ unassigned_no_direct_rule, unassigned_total, difference "
        "from marts.allocation_reconciliation"
    ).fetchall()
    by_resource = {}
    for resource, supplied, assigned, unused, reasons, unassigned, difference in recon:
        assert difference == 0, resource
        assert supplied == assigned + unused + unassigned, resource
        assert unassigned == reasons, resource
        by_resource[resource] = (supplied, assigned)

    # supplied is what came in: the raw cost rows and January's event amounts
    for resource, cost, _ in supply:
        assert by_resource[resource][0] == cost
    january = [e for e in raw_events if e[1].month == 1]
    assert by_resource["direct"][0] == sum((e[7] or 0 for e in january), Decimal(0))

    # customer_cost_to_serve adds up to cost_assigned, per resource; only known customers
    served = con.execute(
        "select resource, sum(cost), list(distinct customer_id) "
        "from marts.customer_cost_to_serve group by 1"
    ).fetchall()
    for resource, cost, customer_ids in served:
        assert cost == by_resource[resource][1], resource
        assert set(customer_ids) <= set(KNOWN)

    _check_time_driven_shares(con, spec, supply, january)


def _check_time_driven_shares(con, spec, supply, january) -> None:
    """Each customer's time-driven cost is within a cent of minutes x the capacity cost rate
    (over capacity: of its share of the charge), and its minutes match the time equation."""
    supplied = {r: (cost, capacity) for r, cost, capacity in supply}
    minutes: dict[tuple, Decimal] = {}  # (customer, activity, resource) -> minutes
    used: dict[str, Decimal] = {}
    for name, activity in spec["activities"].items():
        for cost in activity["costs"]:
            if "time_driven" not in cost:
                continue
            resource = cost["time_driven"]
            for ev in january:
                if ev[3] != activity["driver"]["events"]:
                    continue
                m = _equation_minutes(cost, ev)
                used[resource] = used.get(resource, Decimal(0)) + m
                if ev[2] in KNOWN:
                    key = (ev[2], name, resource)
                    minutes[key] = minutes.get(key, Decimal(0)) + m
    rows = con.execute(
        "select customer_id, activity, resource, minutes, cost from marts.customer_cost_to_serve "
        "where method = 'time_driven'"
    ).fetchall()
    # a resource without capacity has no cost (else the month stops) and so no customer rows
    with_capacity = {r for r, (_, capacity) in supplied.items() if capacity}
    assert {r[:3] for r in rows} == {k for k in minutes if k[2] in with_capacity}
    for customer_id, activity, resource, got_minutes, cost in rows:
        expected = minutes[customer_id, activity, resource]
        assert got_minutes == expected.quantize(CENT, ROUND_HALF_UP)
        total, capacity = supplied[resource]
        if used[resource] > capacity:
            charged = (total * used[resource] / capacity).quantize(CENT, ROUND_HALF_UP)
            exact = charged * expected / used[resource]
        else:
            exact = total * expected / capacity
        assert abs(cost - exact) < CENT, (customer_id, activity, resource)


# --------------------------------------------------------------------------------------------
# Several months at once
# --------------------------------------------------------------------------------------------

MONTHS = ("2025-01", "2025-02", "2025-03", "2025-04", "2025-05")


def _months_store(path: Path, capacity_of=lambda period: 480):
    con = h.warehouse(path)
    h.customers(con, "A", "B")
    for i, period in enumerate(MONTHS):
        h.resources(con, ("customer_service", f"{360 + 7 * i}.01", capacity_of(period), period))
        day = f"{period}-1{i}"
        h.events(
            con,
            event(f"O{i}A", "A", "order_entry", 1 + i, date=day, channel="phone"),
            event(f"O{i}B", "B", "order_entry", 3, date=day, flags="rush"),
            event(f"S{i}B", "B", "support_ticket", date=day, minutes=str(10 + i)),
        )
    return con


def _cost_tables(con) -> dict[str, list[tuple]]:
    return {
        table: h.fetch(con, f"select * from marts.{table} order by all")
        for table in ("customer_cost_to_serve", "activity_rates", "allocation_reconciliation")
    }


def test_months_two_at_a_time_give_what_one_at_a_time_gives(tmp_path):
    cost_model = h.model(tmp_path, TIME_EQUATION_MODEL)
    periods = [allocate.PeriodOutcome(p, "closed", "test") for p in MONTHS]
    results = []
    for workers in (1, 2):
        con = _months_store(tmp_path / f"w{workers}.duckdb")
        done = list(allocate.allocate_periods(con, cost_model, periods, "run", workers))
        assert sorted(p.period for p in done) == list(MONTHS)
        assert h.fetch(con, "select count(*) from audit.allocated_periods") == [(5,)]
        results.append(_cost_tables(con))
    assert len(results[0]["customer_cost_to_serve"]) >= 15
    assert results[0] == results[1]


def test_after_a_failed_month_no_further_month_starts(tmp_path, monkeypatch):
    """March has cost but no capacity: its transaction rolls back, the month running beside it
    commits, and no later month starts; the error is raised once both have finished.

    Which month runs beside March depends on which of January and February finishes first; so
    March reports its error only once April has started (else, on a machine where March fails
    before February finishes, April would not start at all, and the test would depend on the
    machine's timing)."""
    cost_model = h.model(tmp_path, TIME_EQUATION_MODEL)
    con = _months_store(tmp_path / "w.duckdb", lambda period: 0 if period == "2025-03" else 480)
    april_started = threading.Event()
    bind_period, check_capacity = allocate.bind_period, allocate._check_capacity

    def bind(con, period, status):
        if period == "2025-04":
            april_started.set()
        bind_period(con, period, status)

    def check(con, model, period):
        if period == "2025-03":
            assert april_started.wait(60), "April never started beside March"
        check_capacity(con, model, period)

    monkeypatch.setattr(allocate, "bind_period", bind)
    monkeypatch.setattr(allocate, "_check_capacity", check)
    periods = [allocate.PeriodOutcome(p, "closed", "test") for p in MONTHS]
    done = []
    with pytest.raises(allocate.AllocationError, match="2025-03"):
        for period in allocate.allocate_periods(con, cost_model, periods, "run", 2):
            done.append(period.period)
    allocated = [r[0] for r in h.fetch(con, "select period from audit.allocated_periods")]
    assert sorted(allocated) == sorted(done) == ["2025-01", "2025-02", "2025-04"]
    assert h.fetch(
        con, "select distinct period from marts.allocation_reconciliation order by 1"
    ) == [
        ("2025-01",),
        ("2025-02",),
        ("2025-04",),
    ]


def _changed(con, *periods: str) -> None:
    """Months a load touched, as the ingest records them (audit.changed_periods)."""
    for period in periods:
        con.execute(
            "insert into audit.changed_periods values (?, 'activity_events', 'run', now())",
            [period],
        )


def test_pending_months_come_from_the_audit_and_a_month_emptied_by_a_correction_drops_out(
    tmp_path,
):
    cost_model = h.model(tmp_path, TIME_EQUATION_MODEL)
    con = h.warehouse(tmp_path / "w.duckdb")
    h.customers(con, "A")
    h.events(
        con,
        event("E1", "A", "order_entry", date="2025-01-10"),
        event("E2", "A", "order_entry", date="2025-02-10"),
    )
    h.resources(con, ("customer_service", "10.00", 100, "2025-03"))
    _changed(con, "2025-01", "2025-02", "2024-12")  # 2024-12: its rows moved out before

    def pending():
        today = dt.date(2025, 6, 1)
        return [(p.period, p.reason) for p in allocate.pending_periods(con, cost_model, today, 5)]

    assert pending() == [
        ("2025-01", "first allocation"),
        ("2025-02", "first allocation"),
        ("2025-03", "first allocation"),
    ]
    months = allocate.pending_periods(con, cost_model, dt.date(2025, 6, 1), 5)
    assert len(list(allocate.allocate_periods(con, cost_model, months, "run", 2))) == 3
    assert pending() == []
    # a correction moves February's only event into January: both months changed
    con.execute("update raw.activity_events set event_date = '2025-01-20' where event_id = 'E2'")
    _changed(con, "2025-01", "2025-02")
    assert pending() == [("2025-01", "late data for a closed month")]


# --------------------------------------------------------------------------------------------
# Largest remainder on its own: the SQL against the rule in Python, on random pools
# --------------------------------------------------------------------------------------------


def _largest_remainder(amount: int, claims: list[tuple[str, Decimal]]) -> dict[str, int]:
    """The rule, directly, on (claimant key, weight) claims: floors of the exact shares, leftover
    cents to the largest remainders (ties by claimant key, then claim); cents per key. Amounts
    and weights are not negative."""
    scaled = [int(w * 10000) for _, w in claims]
    total = sum(scaled)
    shares = [divmod(amount * w, total) if total else (0, 0) for w in scaled]
    leftover = amount - sum(f for f, _ in shares)
    order = sorted(range(len(claims)), key=lambda i: (-shares[i][1], claims[i][0], i))
    cents: dict[str, int] = {}
    for rank, i in enumerate(order):
        key = claims[i][0]
        cents[key] = cents.get(key, 0) + shares[i][0] + (1 if rank < leftover else 0)
    return cents


WEIGHTS = st.one_of(
    st.sampled_from([Decimal(0), Decimal(1), Decimal(2), Decimal("0.5")]),  # many ties
    st.decimals(0, 10_000, places=4),
    st.decimals(0, 10**13, places=4),  # amount x weight beyond 64 bits: the 128-bit path
)
# a key twice in a pool: two cost lines of one activity on one resource
KEYS = st.sampled_from(["a|K1", "a|K2", "b|K1", "b|K3", "c|K2"])


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**12), st.lists(st.tuples(KEYS, WEIGHTS), min_size=1, max_size=12)
        ),
        min_size=1,
        max_size=4,
    )
)
def test_largest_remainder_sql_matches_the_rule(pools):
    con = h.warehouse()
    con.execute(
        "create temp table claims (pool_id varchar, amount_cents hugeint, "
        "weight decimal(38, 4), claimant_key varchar, payload integer)"
    )
    rows, expected = [], {}
    for p, (amount, claims) in enumerate(pools):
        rows += [(f"p{p}", amount, weight, key, n) for n, (key, weight) in enumerate(claims)]
        for key, cents in _largest_remainder(amount, claims).items():
            expected[(f"p{p}", key)] = Decimal(cents) / 100
    con.executemany("insert into claims values (?, ?, ?, ?, ?)", rows)
    con.execute(load_sql("allocate/largest_remainder"))
    got = {
        (pool_id, key): cost
        for pool_id, key, cost in con.execute(
            "select pool_id, claimant_key, sum(cost) from allocated group by all"
        ).fetchall()
    }
    assert got == expected
    assert con.execute("select count(*) from allocated").fetchone()[0] == len(rows)
    for p, (amount, claims) in enumerate(pools):
        if any(w for _, w in claims):  # with weights, the pool is shared to the cent
            assert sum(v for (pool, _), v in got.items() if pool == f"p{p}") * 100 == amount


def test_largest_remainder_names_the_pool_whose_weights_are_beyond_its_range():
    con = h.warehouse()
    con.execute(
        "create temp table claims as select 'time:warehouse' as pool_id, 100::hugeint "
        "as amount_cents, 1e15::decimal(38, 4) as weight, 'a|K' as claimant_key"
    )
    with pytest.raises(duckdb.Error, match="pool time:warehouse: a claimant's weight of"):
        con.execute(load_sql("allocate/largest_remainder"))
    # each weight within range, their sum not: 11 x 8.9e14 > 9.2e14
    con.execute(
        "create or replace temp table claims as select 'pool:logistics:delivery' as pool_id, "
        "100::hugeint as amount_cents, 8.9e14::decimal(38, 4) as weight, 'K' || i as claimant_key "
        "from range(11) as t (i)"
    )
    with pytest.raises(duckdb.Error, match="pool pool:logistics:delivery: its weights sum to"):
        con.execute(load_sql("allocate/largest_remainder"))
