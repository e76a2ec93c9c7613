"""The cost model loader: the project's model loads; every mistake stops with the key named."""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from pathlib import Path

import allocation_helpers as h
import pytest
import yaml

from pfd_pipeline.allocate import AllocationError
from pfd_pipeline.cost_model import CostModelError, load_cost_model

PROJECT_MODEL = Path(__file__).parent.parent / "data" / "config" / "cost_model.yaml"

# A small valid model; each invalid case below changes one thing in a copy of it.
VALID = {
    "resources": {
        "customer_service": {"method": "time_driven"},
        "logistics": {"method": "pool", "split": {"delivery": 60, "delivery_dock": 40}},
    },
    "activities": {
        "order_entry": {
            "driver": {"events": "order_entry", "measure": "quantity"},
            "costs": [
                {
                    "time_driven": "customer_service",
                    "time_equation": {"base": 5, "per_unit": 3, "flags": {"rush": 10}},
                }
            ],
        },
        "delivery": {
            "driver": {"events": "delivery", "measure": "quantity"},
            "costs": [{"pool": "logistics"}, {"direct": "amount"}],
        },
        "delivery_dock": {
            "driver": {"events": "delivery", "measure": "count"},
            "costs": [{"pool": "logistics"}],
        },
        "invoice_printing": {
            "driver": {"ledger": "invoices"},
            "costs": [{"standard_rate": 0.45}],
        },
    },
}


def _write(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / "cost_model.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def test_the_project_cost_model_loads():
    model = load_cost_model(PROJECT_MODEL)
    assert model.methods == {
        "customer_service": "time_driven",
        "warehouse": "time_driven",
        "sales": "time_driven",
        "logistics": "pool",
        "finance": "pool",
    }
    assert model.splits == {
        "logistics": {"delivery": Decimal(70), "delivery_dock": Decimal(30)},
        "finance": {"collection_call": Decimal(30), "customer_account": Decimal(70)},
    }
    assert set(model.activities) == {
        "order_entry",
        "delivery",
        "delivery_dock",
        "return_processing",
        "support_ticket",
        "sales_visit",
        "collection_call",
        "customer_account",
        "invoice_printing",
    }
    order_entry = model.activities["order_entry"]
    assert [(c.kind, c.resource) for c in order_entry.costs] == [
        ("time_driven", "customer_service"),
        ("time_driven", "warehouse"),
    ]
    phone = next(t for t in order_entry.costs[0].terms if t.key == "phone")
    assert (phone.kind, phone.base, phone.per_unit) == ("channel", Decimal(9), Decimal("1.8"))
    assert model.activities["support_ticket"].costs[0].measured is True
    assert model.activities["invoice_printing"].costs[0].rate == Decimal("0.45")
    assert len(model.sha256) == 64


def test_the_small_valid_model_loads(tmp_path):
    model = load_cost_model(_write(tmp_path, VALID))
    assert model.methods == {"customer_service": "time_driven", "logistics": "pool"}


def _set(spec: dict, path: str, value) -> None:
    """Set (or with value `...`, delete) the key at a dotted path; [i] indexes a list."""
    keys = [int(k) if k.isdigit() else k for k in re.split(r"\.|\[|\]\.?", path) if k]
    for key in keys[:-1]:
        spec = spec[key]
    if value is ...:
        del spec[keys[-1]]
    else:
        spec[keys[-1]] = value


INVALID = [
    pytest.param(
        [("activities.order_entry.costs[0].time_driven", "call_centre")],
        "cost_model.yaml: activities.order_entry.costs[0]: unknown resource 'call_centre'",
        id="unknown-resource",
    ),
    pytest.param(
        [("resources.logistics.split.delivery", 50)],
        "cost_model.yaml: resources.logistics.split: percentages sum to 90, not 100",
        id="split-not-100",
    ),
    pytest.param(
        [
            ("activities.order_entry.costs[0].time_equaton", {"base": 5}),
            ("activities.order_entry.costs[0].time_equation", ...),
        ],
        "cost_model.yaml: activities.order_entry.costs[0]: unknown key(s) ['time_equaton']",
        id="typo-time_equaton",
    ),
    pytest.param(
        [("activities.order_entry.costs[0].time_equation.per_unti", 3)],
        "activities.order_entry.costs[0].time_equation: unknown key(s) ['per_unti']",
        id="typo-inside-time-equation",
    ),
    pytest.param(
        [("resources.logistics.split", ...)],
        "cost_model.yaml: resources.logistics: a pool resource needs a split",
        id="pool-without-split",
    ),
    pytest.param(
        [("resources.logistics.method", "fifo")],
        "cost_model.yaml: resources.logistics.method: 'fifo' is not one of ['time_driven', 'pool']",
        id="unknown-method",
    ),
    pytest.param(
        [("activities.delivery_dock.costs", [{"standard_rate": 2}])],
        "cost_model.yaml: resources.logistics.split.delivery_dock: no activity 'delivery_dock' "
        "draws on 'logistics'",
        id="split-activity-not-drawing-on-pool",
    ),
    pytest.param(
        [("resources.logistics.split", {"delivery": 60, "delivery_dock": 30, "loading": 10})],
        "cost_model.yaml: resources.logistics.split.loading: no activity 'loading' draws on "
        "'logistics'",
        id="split-activity-unknown",
    ),
    pytest.param(
        [("activities.invoice_printing.costs[0].standard_rate", -0.45)],
        "cost_model.yaml: activities.invoice_printing.costs[0].standard_rate: -0.45 must be a "
        "number >= 0",
        id="negative-rate",
    ),
    pytest.param(
        [
            (
                "activities.invoice_printing.costs",
                [{"time_driven": "customer_service", "time_equation": {"base": 2}}],
            )
        ],
        "cost_model.yaml: activities.invoice_printing.costs[0]: time-driven costs need an "
        "events driver",
        id="time-driven-on-ledger-driver",
    ),
    pytest.param(
        [("activities.delivery_dock.costs", [{"time_driven": "logistics", "time_equation": {}}])],
        "cost_model.yaml: activities.delivery_dock.costs[0]: resource 'logistics' is pool, "
        "not time_driven",
        id="time-driven-cost-on-pool-resource",
    ),
    pytest.param(
        [("activities.delivery.costs[0]", {"pool": "customer_service"})],
        "cost_model.yaml: activities.delivery.costs[0]: resource 'customer_service' is "
        "time_driven, not pool",
        id="pool-cost-on-time-driven-resource",
    ),
    pytest.param(
        [("resources.logistics.split", {"delivery": 100})],
        "cost_model.yaml: activities.delivery_dock.costs[0]: resources.logistics.split has no "
        "share for 'delivery_dock'",
        id="pool-activity-missing-from-split",
    ),
    pytest.param(
        [("activities.delivery_dock.costs", [{"pool": "logistics"}, {"direct": "amount"}])],
        "cost_model.yaml: activities.delivery_dock.costs[1]: direct: amount of `delivery` events "
        "is already charged by activities.delivery.costs[1]",
        id="event-amount-charged-twice",
    ),
    pytest.param(
        [("activities.delivery.costs", [{"pool": "logistics"}, {"direct": "amount"}] * 2)],
        "cost_model.yaml: activities.delivery.costs[3]: direct: amount of `delivery` events "
        "is already charged by activities.delivery.costs[1]",
        id="event-amount-charged-twice-by-one-activity",
    ),
]


@pytest.mark.parametrize(("changes", "message"), INVALID)
def test_an_invalid_model_stops_naming_the_key(tmp_path, changes, message):
    spec = copy.deepcopy(VALID)
    for path, value in changes:
        _set(spec, path, value)
    with pytest.raises(CostModelError) as error:
        load_cost_model(_write(tmp_path, spec))
    assert message in str(error.value)


def test_a_file_that_is_not_yaml_stops(tmp_path):
    path = tmp_path / "cost_model.yaml"
    path.write_text("resources: {customer_service: [method: time_driven\n", encoding="utf-8")
    with pytest.raises(CostModelError, match=r"cost_model\.yaml is not valid YAML"):
        load_cost_model(path)


def test_a_file_that_is_yaml_but_not_a_mapping_stops(tmp_path):
    path = tmp_path / "costs.csv"
    path.write_text("resource,method\nlogistics,pool\n", encoding="utf-8")
    with pytest.raises(CostModelError, match=r"costs\.csv must be a mapping, got str"):
        load_cost_model(path)


def test_a_missing_file_stops(tmp_path):
    with pytest.raises(CostModelError, match="does not exist"):
        load_cost_model(tmp_path / "nope.yaml")


@pytest.mark.parametrize("capacity", [None, 0], ids=["missing", "zero"])
def test_time_driven_cost_without_capacity_stops_the_month(tmp_path, capacity):
    con = h.warehouse(tmp_path / "pfd.duckdb")
    h.customers(con, "A")
    h.resources(con, ("customer_service", "960.00", capacity), ("logistics", "100.00", None))
    h.events(con, h.event("E1", "A", "order_entry", 2), h.event("E2", "A", "delivery", 5))
    model = load_cost_model(_write(tmp_path, VALID))
    with pytest.raises(AllocationError) as error:
        h.allocate_month(con, model)
    message = str(error.value)
    assert "'customer_service'" in message
    assert "2025-01" in message
    assert "resources.customer_service.method" in message
    assert "cost_model.yaml" in message
    assert "column practical_capacity_minutes (rule capacity_positive)" in message
    assert ("capacity is empty" if capacity is None else "capacity is 0.00") in message
    # the month's transaction was rolled back: nothing published, nothing recorded as allocated
    for table in (
        "marts.customer_cost_to_serve",
        "marts.activity_rates",
        "marts.allocation_reconciliation",
        "audit.allocated_periods",
    ):
        assert con.execute(f"select count(*) from {table}").fetchall() == [(0,)]


def test_time_driven_resource_without_cost_needs_no_capacity(tmp_path):
    con = h.warehouse(tmp_path / "pfd.duckdb")
    h.customers(con, "A")
    h.resources(con, ("customer_service", "0.00", None), ("logistics", "100.00", None))
    h.events(con, h.event("E1", "A", "delivery", 5))
    h.allocate_month(con, load_cost_model(_write(tmp_path, VALID)))
    assert con.execute(
        "select count(*) from marts.allocation_reconciliation where difference <> 0"
    ).fetchall() == [(0,)]
