"""The cost model file: loading, validating, and loading it into DuckDB as plain tables.

The model's values never become SQL text: they are written into the `model` tables below and
the allocation SQL joins against them. A mistake in the file stops the run with a message that
names the key (e.g. `resources.logistics.split`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import yaml

from pfd_pipeline.errors import PfdError
from pfd_pipeline.warehouse import execute_with_frame

METHODS = ("time_driven", "pool")
EVENT_MEASURES = ("quantity", "count")
LEDGER_DRIVERS = ("invoice_lines", "credit_note_lines", "invoices", "credit_notes", "units")
CUSTOMER_DRIVERS = ("active",)
COST_KINDS = ("time_driven", "pool", "standard_rate", "direct")
_NAME = r"^[a-z][a-z0-9_]{0,63}$"


class CostModelError(PfdError):
    """The cost model file is invalid; the message names the key."""


@dataclass(frozen=True)
class Term:
    kind: str  # 'channel' or 'flag'
    key: str
    base: Decimal
    per_unit: Decimal


@dataclass(frozen=True)
class Cost:
    kind: str  # one of COST_KINDS
    resource: str | None = None
    rate: Decimal | None = None  # standard_rate
    base: Decimal = Decimal(0)
    per_unit: Decimal = Decimal(0)
    measured: bool = False
    terms: tuple[Term, ...] = ()


@dataclass(frozen=True)
class Activity:
    name: str
    driver_source: str  # 'events', 'ledger' or 'customers'
    driver_name: str  # event activity, ledger driver or customer driver
    measure: str  # 'quantity', 'count' (events) or the driver name
    costs: tuple[Cost, ...]


@dataclass(frozen=True)
class CostModel:
    path: Path
    sha256: str
    methods: dict[str, str]  # resource -> method
    splits: dict[str, dict[str, Decimal]]  # pool resource -> activity -> percent
    activities: dict[str, Activity] = field(default_factory=dict)


def load_cost_model(path: Path) -> CostModel:
    """Read and validate the cost model; raise CostModelError naming the offending key."""
    if not path.is_file():
        raise CostModelError(f"cost model {path} does not exist")
    text = path.read_bytes()
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CostModelError(f"cost model {path} is not valid YAML: {exc}") from exc
    where = path.name
    _mapping(raw, where)
    _keys(raw, {"resources", "activities"}, where, required={"resources", "activities"})
    methods, splits = _resources(raw["resources"], f"{where}: resources")
    activities = {
        name: _activity(name, spec, f"{where}: activities.{name}")
        for name, spec in _mapping(raw["activities"], f"{where}: activities").items()
    }
    _cross_check(methods, splits, activities, where)
    return CostModel(path, hashlib.sha256(text).hexdigest(), methods, splits, activities)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CostModelError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _keys(value: dict, allowed: set[str], where: str, required: set[str] = frozenset()) -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise CostModelError(f"{where}: unknown key(s) {unknown}; expected {sorted(allowed)}")
    missing = sorted(required - set(value))
    if missing:
        raise CostModelError(f"{where}: missing key(s) {missing}")


def _name(value: Any, where: str) -> str:
    import re

    if not isinstance(value, str) or not re.match(_NAME, value):
        raise CostModelError(f"{where}: {value!r} is not a name (lower-case letters, digits, _)")
    return value


def _number(value: Any, where: str, *, minimum: Decimal | None = Decimal(0)) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise CostModelError(f"{where}: {value!r} is not a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise CostModelError(f"{where}: {value!r} is not a number") from exc
    if not number.is_finite() or (minimum is not None and number < minimum):
        raise CostModelError(f"{where}: {value!r} must be a number >= {minimum}")
    return number


def _resources(raw: Any, where: str) -> tuple[dict[str, str], dict[str, dict[str, Decimal]]]:
    methods: dict[str, str] = {}
    splits: dict[str, dict[str, Decimal]] = {}
    for resource, spec in _mapping(raw, where).items():
        key = f"{where}.{_name(resource, where)}"
        spec = _mapping(spec, key)
        _keys(spec, {"method", "split"}, key, required={"method"})
        method = spec["method"]
        if method not in METHODS:
            raise CostModelError(f"{key}.method: {method!r} is not one of {list(METHODS)}")
        methods[resource] = method
        if method == "pool":
            if "split" not in spec:
                raise CostModelError(f"{key}: a pool resource needs a split")
            split = {
                _name(a, f"{key}.split"): _number(p, f"{key}.split.{a}")
                for a, p in _mapping(spec["split"], f"{key}.split").items()
            }
            total = sum(split.values(), Decimal(0))
            if total != 100:
                raise CostModelError(f"{key}.split: percentages sum to {total}, not 100")
            splits[resource] = split
        elif "split" in spec:
            raise CostModelError(f"{key}.split: only a pool resource has a split")
    return methods, splits


def _activity(name: str, spec: Any, where: str) -> Activity:
    _name(name, where)
    spec = _mapping(spec, where)
    _keys(spec, {"driver", "costs"}, where, required={"driver", "costs"})
    driver = _mapping(spec["driver"], f"{where}.driver")
    if "events" in driver:
        _keys(driver, {"events", "measure"}, f"{where}.driver", required={"events", "measure"})
        if driver["measure"] not in EVENT_MEASURES:
            measure = driver["measure"]
            raise CostModelError(
                f"{where}.driver.measure: {measure!r} is not one of {list(EVENT_MEASURES)}"
            )
        source, dname, measure = (
            "events",
            _name(driver["events"], f"{where}.driver"),
            driver["measure"],
        )
    elif "ledger" in driver:
        _keys(driver, {"ledger"}, f"{where}.driver")
        if driver["ledger"] not in LEDGER_DRIVERS:
            raise CostModelError(
                f"{where}.driver.ledger: {driver['ledger']!r} is not one of {list(LEDGER_DRIVERS)}"
            )
        source, dname, measure = "ledger", driver["ledger"], driver["ledger"]
    elif "customers" in driver:
        _keys(driver, {"customers"}, f"{where}.driver")
        if driver["customers"] not in CUSTOMER_DRIVERS:
            raise CostModelError(
                f"{where}.driver.customers: {driver['customers']!r} is not one of "
                f"{list(CUSTOMER_DRIVERS)}"
            )
        source, dname, measure = "customers", driver["customers"], driver["customers"]
    else:
        raise CostModelError(f"{where}.driver: needs one of events, ledger, customers")
    costs_raw = spec["costs"]
    if not isinstance(costs_raw, list) or not costs_raw:
        raise CostModelError(f"{where}.costs must be a non-empty list")
    costs = tuple(_cost(c, f"{where}.costs[{i}]", source) for i, c in enumerate(costs_raw))
    return Activity(name, source, dname, measure, costs)


def _cost(spec: Any, where: str, driver_source: str) -> Cost:
    spec = _mapping(spec, where)
    kinds = [k for k in COST_KINDS if k in spec]
    if len(kinds) != 1:
        raise CostModelError(f"{where}: needs exactly one of {list(COST_KINDS)}")
    kind = kinds[0]
    if kind == "time_driven":
        _keys(spec, {"time_driven", "time_equation"}, where, required={"time_equation"})
        if driver_source != "events":
            raise CostModelError(f"{where}: time-driven costs need an events driver")
        return _time_equation(spec["time_equation"], f"{where}.time_equation", spec["time_driven"])
    _keys(spec, {kind}, where)
    if kind == "pool":
        return Cost("pool", resource=_name(spec["pool"], where))
    if kind == "standard_rate":
        return Cost("standard_rate", rate=_number(spec["standard_rate"], f"{where}.standard_rate"))
    if spec["direct"] != "amount" or driver_source != "events":
        raise CostModelError(f"{where}.direct: must be `amount`, on an events driver")
    return Cost("direct")


def _time_equation(spec: Any, where: str, resource: Any) -> Cost:
    spec = _mapping(spec, where)
    _keys(spec, {"base", "per_unit", "channel", "flags", "measured"}, where)
    terms: list[Term] = []
    for kind, section in (("channel", "channel"), ("flag", "flags")):
        for key, adder in _mapping(spec.get(section) or {}, f"{where}.{section}").items():
            here = f"{where}.{section}.{_name(key, f'{where}.{section}')}"
            if isinstance(adder, dict):
                _keys(adder, {"base", "per_unit"}, here)
                base = _number(adder.get("base", 0), f"{here}.base", minimum=None)
                per_unit = _number(adder.get("per_unit", 0), f"{here}.per_unit", minimum=None)
            else:
                base, per_unit = _number(adder, here, minimum=None), Decimal(0)
            terms.append(Term(kind, key, base, per_unit))
    measured = spec.get("measured", False)
    if not isinstance(measured, bool):
        raise CostModelError(f"{where}.measured must be true or false")
    return Cost(
        "time_driven",
        resource=_name(resource, where),
        base=_number(spec.get("base", 0), f"{where}.base"),
        per_unit=_number(spec.get("per_unit", 0), f"{where}.per_unit"),
        measured=measured,
        terms=tuple(terms),
    )


def _cross_check(
    methods: dict[str, str],
    splits: dict[str, dict[str, Decimal]],
    activities: dict[str, Activity],
    where: str,
) -> None:
    direct_by_event: dict[str, str] = {}  # event activity -> the cost that charges its amount
    for activity in activities.values():
        for i, cost in enumerate(activity.costs):
            key = f"{where}: activities.{activity.name}.costs[{i}]"
            if cost.kind == "direct":
                event, first = activity.driver_name, direct_by_event.get(activity.driver_name)
                if first is not None:
                    raise CostModelError(
                        f"{key}: direct: amount of `{event}` events is already charged by "
                        f"{first}; an event's amount can be charged only once"
                    )
                direct_by_event[event] = f"activities.{activity.name}.costs[{i}]"
            if cost.kind in ("time_driven", "pool") and cost.resource not in methods:
                raise CostModelError(f"{key}: unknown resource {cost.resource!r}")
            if cost.kind in ("time_driven", "pool") and methods[cost.resource] != cost.kind:
                raise CostModelError(
                    f"{key}: resource {cost.resource!r} is {methods[cost.resource]}, "
                    f"not {cost.kind}"
                )
            if cost.kind == "pool" and activity.name not in splits[cost.resource]:
                raise CostModelError(
                    f"{key}: resources.{cost.resource}.split has no share for {activity.name!r}"
                )
    for resource, split in splits.items():
        for name in split:
            drawing = activities.get(name)
            if drawing is None or not any(c.resource == resource for c in drawing.costs):
                raise CostModelError(
                    f"{where}: resources.{resource}.split.{name}: no activity {name!r} "
                    f"draws on {resource!r} (add `- pool: {resource}` to its costs)"
                )


def model_tables(model: CostModel) -> dict[str, pl.DataFrame]:
    """The model as rows for the `model` schema (see sql/allocate/model_tables.sql)."""
    resources = pl.DataFrame(
        {"resource": list(model.methods), "method": list(model.methods.values())},
        schema={"resource": pl.String, "method": pl.String},
    )
    splits = pl.DataFrame(
        [
            {"resource": r, "activity": a, "percent": p}
            for r, split in model.splits.items()
            for a, p in split.items()
        ],
        schema={"resource": pl.String, "activity": pl.String, "percent": pl.Decimal(9, 4)},
    )
    activities = pl.DataFrame(
        [
            {
                "activity": a.name,
                "driver_source": a.driver_source,
                "driver_name": a.driver_name,
                "measure": a.measure,
            }
            for a in model.activities.values()
        ],
        schema={
            "activity": pl.String,
            "driver_source": pl.String,
            "driver_name": pl.String,
            "measure": pl.String,
        },
    )
    cost_rows, term_rows = [], []
    for a in model.activities.values():
        for i, c in enumerate(a.costs):
            cost_rows.append(
                {
                    "activity": a.name,
                    "cost_index": i,
                    "kind": c.kind,
                    "resource": c.resource,
                    "rate": c.rate,
                    "base_minutes": c.base,
                    "minutes_per_unit": c.per_unit,
                    "measured": c.measured,
                }
            )
            for t in c.terms:
                term_rows.append(
                    {
                        "activity": a.name,
                        "cost_index": i,
                        "term_kind": t.kind,
                        "term_key": t.key,
                        "base_minutes": t.base,
                        "minutes_per_unit": t.per_unit,
                    }
                )
    minutes = pl.Decimal(18, 4)
    costs = pl.DataFrame(
        cost_rows,
        schema={
            "activity": pl.String,
            "cost_index": pl.Int32,
            "kind": pl.String,
            "resource": pl.String,
            "rate": pl.Decimal(18, 4),
            "base_minutes": minutes,
            "minutes_per_unit": minutes,
            "measured": pl.Boolean,
        },
    )
    terms = pl.DataFrame(
        term_rows,
        schema={
            "activity": pl.String,
            "cost_index": pl.Int32,
            "term_kind": pl.String,
            "term_key": pl.String,
            "base_minutes": minutes,
            "minutes_per_unit": minutes,
        },
    )
    return {
        "resources": resources,
        "splits": splits,
        "activities": activities,
        "costs": costs,
        "terms": terms,
    }


def load_into(con: duckdb.DuckDBPyConnection, model: CostModel) -> None:
    """Replace the `model` schema's tables with this model (inside the caller's transaction)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS model")
    for name, frame in model_tables(model).items():
        # `name` comes from the fixed list in model_tables, never from the file
        execute_with_frame(con, f"CREATE OR REPLACE TABLE model.{name} AS FROM _frame", frame)
