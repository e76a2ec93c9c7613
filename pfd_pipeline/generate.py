"""Demo landing data: a wholesale business whose customer profitability emerges from behaviour.

The generator writes the landing sources (customers, sales_ledger, activities, resources and
the optional feedback) for a window of calendar months. It never writes profit, tier or
cost-to-serve: those must come out of the pipeline's cost model, applied to what customers do.

Behaviour model
---------------
Customers. Each customer has a heavy-tailed size (a lognormal latent shared by order frequency,
lines per order and units per line) and, independently, an ordering style: some order small and
often, others rarely and in bulk. Independently of size again, each customer gets a
cost-to-serve profile: a preferred channel mix (EDI / web / email / phone; big customers lean
EDI, but not always), a rush share, a return rate, a support-ticket propensity, a sales-visit
frequency, a discount depth (some big customers negotiate deep discounts), a rebate rate paid
off invoice, and for a few a slow-payment habit that triggers collection calls. One
"fussiness" trait raises rush, returns, tickets, visits and phone ordering together, so some
customers are demanding on every count. Segment and region shift these (distributors are big
and often export, hospitality phones and rushes, online customers order on the web and return
more). Some customers are acquired during the window and order only afterwards; some churn
part-way, after a declining trend.

Products. 300 products with a list price and a unit cost (gross margin 20-42%) and a skewed
popularity.

Ledger. Every order is an invoice (one document, 1..n lines) on a business day, with the
customer's discount and rebate. A share of invoice lines comes back a few days later on a
credit note (negative quantity and amounts; damaged goods are written off, so their COGS is
not reversed). Days without rows (weekends) get no file.

Activities. One `order_entry` and one `delivery` per invoice, one `return_processing` per
credit note, and `support_ticket`, `sales_visit` and `collection_call` events at each
customer's own rate. Export deliveries carry a carrier invoice (`amount`); sales visits carry
their travel expense.

Resources. Each month the three time-driven departments (customer_service, warehouse, sales)
are staffed to the month's workload, measured with the nominal time equations in
NOMINAL_MINUTES, at a target utilisation near 85%; practical capacity is FTE x
MINUTES_PER_FTE. The logistics pool (own fleet) scales with domestic miles and deliveries, and
the finance pool with active customers and collection calls; pools have no capacity.

Feedback. Every month about 6% of the active customers answer a survey (0-10, "would you
recommend us?"), so not every customer answers in a year. The score reflects how the customer
is served: rush orders, returns and support tickets lower it, discounts, rebates and sales
visits raise it, customers about to leave score lower, and the rest is personal. So some
customers who cost most to serve (visits, deep discounts) are promoters who lose money, and
some profitable customers with many rush orders and returns are detractors at risk.

Everything is vectorised with numpy and polars and generated one calendar month at a time from
generators spawned off one SeedSequence, so the same arguments give byte-identical files.
`with_errors=True` adds a handful of realistic bad rows (see LEDGER_ERRORS and
ACTIVITY_ERRORS), never more than 5% of any file.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from pfd_pipeline.sources import ACTIVITIES, CUSTOMERS, FEEDBACK, RESOURCES, SALES_LEDGER, Source

SEGMENTS = ("Retail", "Hospitality", "Wholesale", "Online", "Distributor")
SEGMENT_SHARE = (0.34, 0.22, 0.20, 0.14, 0.10)
REGIONS = ("North", "South", "East", "West", "Export")
# Region mix by segment (rows follow SEGMENTS).
REGION_SHARE = (
    (0.27, 0.27, 0.23, 0.22, 0.01),
    (0.26, 0.26, 0.24, 0.24, 0.00),
    (0.24, 0.24, 0.22, 0.22, 0.08),
    (0.22, 0.22, 0.20, 0.20, 0.16),
    (0.20, 0.20, 0.18, 0.17, 0.25),
)
CHANNELS = ("edi", "web", "email", "phone")
TICKET_CHANNELS = ("phone", "email", "web")
ACTIVITY_NAMES = (
    "order_entry",
    "delivery",
    "return_processing",
    "support_ticket",
    "sales_visit",
    "collection_call",
)
ORDER_ENTRY, DELIVERY, RETURN, SUPPORT, VISIT, COLLECTION = range(len(ACTIVITY_NAMES))

# Nominal minutes a department spends, used to staff it: (base, per line) by order channel.
NOMINAL_MINUTES = {
    "order_entry": {
        "edi": (1.0, 0.2),
        "web": (3.0, 0.5),
        "email": (8.0, 1.5),
        "phone": (10.0, 2.0),
    },
    "order_entry_rush": 5.0,
    "picking": (10.0, 4.0),  # warehouse minutes per delivery: base, per invoice line
    "picking_rush": 15.0,
    "return_processing": (15.0, 5.0),  # customer service: base, per returned line
}
MINUTES_PER_FTE = 8010  # 20 days x 7.5 h x 60 min x 89% practical
TARGET_UTILISATION = 0.85
# Time-driven departments: loaded monthly cost per FTE, fixed overhead, overhead per FTE (USD).
DEPARTMENTS = {
    "customer_service": (6_400, 2_500, 450),
    "warehouse": (6_000, 6_000, 900),
    "sales": (8_800, 2_000, 600),
}
LOGISTICS_PER_MILE = 0.55  # own fleet, domestic miles (USD)
LOGISTICS_PER_DELIVERY = 15.0  # loading dock, per delivery
LOGISTICS_FIXED = 1_500.0
FINANCE_FIXED = 2_500.0
FINANCE_PER_CUSTOMER = 3.5  # billing, credit control, per active customer-month
FINANCE_PER_CALL = 40.0

# How `small_orders` moves order frequency and lines per order (log scale, per unit).
ORDERS_SHIFT = 0.4
LINES_SHIFT = 1.5

DOCUMENT_DIGITS = 7  # INV0000123, CN0000045 (more digits once past 9,999,999)
ROW_DIGITS = 9  # L000000001, E000000001
SCRAP_SHARE = 0.3  # returned lines not fit for resale: COGS is not reversed

LEDGER_ERRORS = ("unknown_customer", "negative_quantity", "bad_date", "duplicate_line")
ACTIVITY_ERRORS = ("activity_unknown_customer", "activity_bad_date", "duplicate_event")
ERRORS_PER_KIND = 4
MAX_BAD_SHARE = 0.05
SURVEY_RESPONSE_PM = 0.06  # share of active customers answering the survey in a month
WRITTEN = (CUSTOMERS, SALES_LEDGER, ACTIVITIES, RESOURCES, FEEDBACK)

_NAME_FIRST = (
    "Acme Alder Apex Aspen Atlas Beacon Birch Blue Cedar Coastal Copper Crest Delta Eagle Elm "
    "Evergreen Falcon Fern Golden Granite Harbor Hazel Highland Iron Juniper Lake Laurel Liberty "
    "Maple Meadow Metro Northwind Oak Orchard Pacific Peak Pine Prairie Quarry Red Ridge River "
    "Rock Sage Silver Spruce Star Stone Summit Sun Valley Willow"
).split()
_NAME_SECOND = {
    "Retail": "Market Stores Grocers Mart Provisions Goods Shop Pantry".split(),
    "Hospitality": "Cafe Bistro Kitchen Hotel Tavern Diner Grill Catering".split(),
    "Wholesale": "Wholesale Supply Trading Foods Merchants Cash&Carry Depot Brothers".split(),
    "Online": "Online Direct Express Delivered Box Click Basket Digital".split(),
    "Distributor": "Distribution Logistics Foodservice Partners Imports Sales Group Trade".split(),
}
_NAME_SUFFIX = ("Ltd", "Inc", "LLC", "Co", "& Sons", "Group", "")


@dataclass(frozen=True)
class GenerateSummary:
    out_dir: Path
    files: dict[str, int]  # source name -> number of files written
    rows: dict[str, int]  # source name -> rows written (incl. injected bad rows)
    errors_injected: dict[str, int]  # kind -> count (empty without with_errors)


@dataclass(frozen=True)
class _Month:
    """One calendar month of the window, clipped to the window's first and last day."""

    index: int
    period: str
    first: np.datetime64
    last: np.datetime64

    @property
    def business_days(self) -> np.ndarray:
        """The month's Monday-to-Friday dates."""
        days = np.arange(self.first, self.last + 1, dtype="datetime64[D]")
        return days[np.is_busday(days)]


@dataclass(frozen=True)
class _Population:
    """Customer attributes, one array entry per customer (index i is customer C{i+1})."""

    segment: np.ndarray
    region: np.ndarray
    acquired: np.ndarray  # datetime64[D]
    leaves: np.ndarray  # datetime64[D]: first day without activity (after the window if never)
    orders_pm: np.ndarray  # invoices per full month
    lines_lam: np.ndarray  # invoice lines = 1 + Poisson(lines_lam)
    qty_lam: np.ndarray  # units per line = 1 + Poisson(qty_lam)
    channel_cdf: np.ndarray  # (n, 4) cumulative channel mix over CHANNELS
    rush: np.ndarray
    returns: np.ndarray  # share of invoice lines returned
    tickets_pm: np.ndarray
    visits_pm: np.ndarray
    calls_pm: np.ndarray
    discount: np.ndarray
    rebate: np.ndarray
    growth: np.ndarray  # monthly log-growth of order frequency
    miles: np.ndarray  # delivery distance

    @property
    def size(self) -> int:
        return len(self.segment)


@dataclass(frozen=True)
class _Catalogue:
    """Products: list price and unit cost in cents, and a popularity CDF."""

    price: np.ndarray
    cost: np.ndarray
    cdf: np.ndarray


# --------------------------------------------------------------------------- public entry point


def generate(
    out_dir: Path,
    *,
    customers: int = 2000,
    months: int = 24,
    start: dt.date = dt.date(2024, 11, 1),
    seed: int = 42,
    with_errors: bool = False,
    file_format: str = "csv",
    small_orders: float = 0.0,
) -> GenerateSummary:
    """Write demo landing files for `customers` over `months` from `start` into `out_dir`.

    `small_orders` shifts every customer's ordering style towards smaller, more frequent orders
    (in standard deviations of the style; 0 = the demo's mix). More orders of fewer lines mean
    more order-entry and delivery events per ledger line: the benchmark workloads use it to
    reach their mix of two events per line.
    """
    if file_format not in ("csv", "parquet"):
        raise ValueError(f"file_format must be 'csv' or 'parquet', not {file_format!r}")
    if customers < 1 or months < 1:
        raise ValueError("customers and months must be at least 1")
    out_dir = Path(out_dir)
    window = _months(start, months)
    end = window[-1].last
    # the survey's generator is spawned last, so the other sources are the same as without it
    master_seq, error_seq, *month_seqs, survey_seq = np.random.SeedSequence(seed).spawn(
        3 + len(window)
    )
    master_rng = np.random.default_rng(master_seq)
    pop = _population(master_rng, customers, np.datetime64(start, "D"), end, small_orders)
    catalogue = _catalogue(master_rng, 300)
    for source in WRITTEN:
        _clear(out_dir / source.name)
    survey_rng = np.random.default_rng(survey_seq)

    injector = _Injector(np.random.default_rng(error_seq), len(window), customers, with_errors)
    state = _State(customers, len(catalogue.price))
    with _Writer(out_dir, file_format) as writer:
        writer.write(CUSTOMERS, _customer_frame(master_rng, pop), f"customers_{end}")
        for month, seq in zip(window, month_seqs, strict=True):
            rng = np.random.default_rng(seq)
            ledger, events = _simulate_month(rng, pop, catalogue, month, end)
            ledger, events = state.carry(month, ledger, events)
            _write_ledger(writer, state, injector, month, ledger)
            _write_events(writer, state, injector, month, events)
            resources = _resources(rng, month, events, _active_count(pop, month))
            writer.write(RESOURCES, resources, f"resources_{month.period}")
            answers = _survey(survey_rng, pop, month)
            if answers.height:
                writer.write(FEEDBACK, answers, f"nps_{month.period}")
    return GenerateSummary(out_dir, dict(writer.files), dict(writer.rows), dict(injector.counts))


# --------------------------------------------------------------------------- calendar


def _months(start: dt.date, months: int) -> list[_Month]:
    """The calendar months the window [start, start + months) touches, clipped to the window."""
    first_of = dt.date(start.year, start.month, 1)
    end = _add_months(start, months) - dt.timedelta(days=1)
    out = []
    cursor = first_of
    while cursor <= end:
        following = _add_months(cursor, 1)
        first, last = max(cursor, start), min(following - dt.timedelta(days=1), end)
        out.append(
            _Month(len(out), f"{cursor:%Y-%m}", np.datetime64(first, "D"), np.datetime64(last, "D"))
        )
        cursor = following
    return out


def _add_months(day: dt.date, months: int) -> dt.date:
    """The same day of the month `months` later, clipped to the month's last day."""
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    month += 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


# --------------------------------------------------------------------------- master data


def _population(
    rng: np.random.Generator,
    n: int,
    start: np.datetime64,
    end: np.datetime64,
    small_orders: float = 0.0,
) -> _Population:
    """Draw every customer's size, ordering style and cost-to-serve profile."""
    segment = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARE)
    region_cdf = np.cumsum(np.asarray(REGION_SHARE), axis=1)[segment]
    region = (rng.random(n)[:, None] > region_cdf).sum(axis=1).clip(0, len(REGIONS) - 1)
    size = rng.normal(0.0, 1.15, n) + np.array([0.0, -0.3, 0.5, -0.4, 1.0])[segment]
    often = rng.normal(0.0, 1.0, n)  # ordering style: high = small orders, often
    fussy = rng.normal(0.0, 1.0, n)  # service demands: rush, returns, tickets, visits, phone
    export = region == REGIONS.index("Export")  # export customers consolidate: fewer, bigger orders
    often -= np.where(export, 0.8, 0.0)
    orders_pm = np.exp(np.log(2.2) + 0.55 * size + 0.8 * often + ORDERS_SHIFT * small_orders)
    orders_pm = orders_pm.clip(0.1, 150)
    lines_lam = np.exp(
        np.log(2.6) + 0.3 * size - 0.45 * often - LINES_SHIFT * small_orders + rng.normal(0, 0.3, n)
    ).clip(0.01, 30)
    qty_lam = np.exp(np.log(2.5) + 0.35 * size - 0.3 * often + rng.normal(0, 0.35, n)).clip(0.1, 60)

    acquired, leaves = _lifecycle(rng, n, start, end)
    churners = leaves <= end
    growth = np.where(churners, rng.normal(-0.03, 0.015, n), rng.normal(0.002, 0.015, n))
    return _Population(
        segment=segment,
        region=region,
        acquired=acquired,
        leaves=leaves,
        orders_pm=orders_pm,
        lines_lam=lines_lam,
        qty_lam=qty_lam,
        channel_cdf=_channel_mix(rng, segment, size, fussy),
        rush=(rng.beta(0.5, 7.0, n) * np.exp(0.5 * fussy) + (segment == 1) * 0.06).clip(0, 0.6),
        returns=(rng.beta(0.6, 25.0, n) * np.exp(0.5 * fussy) * (1 + (segment == 3))).clip(0, 0.3),
        tickets_pm=np.exp(np.log(0.3) + 0.2 * size + 0.5 * fussy + rng.normal(0, 1.0, n)).clip(
            0, 10
        ),
        visits_pm=_visit_rate(rng, segment, size + fussy) * np.where(export, 0.3, 1.0),
        calls_pm=np.where(rng.random(n) < 0.06, rng.uniform(0.5, 2.0, n), 0.0),
        discount=_discount_depth(rng, segment, size),
        rebate=_rebate_rate(rng, size),
        growth=growth,
        miles=_distance(rng, region),
    )


def _lifecycle(
    rng: np.random.Generator, n: int, start: np.datetime64, end: np.datetime64
) -> tuple[np.ndarray, np.ndarray]:
    """Acquisition dates (12% inside the window) and churn dates (10% leave part-way)."""
    span = int((end - start).astype(int)) + 1
    before = start - rng.integers(30, 15 * 365, n).astype("timedelta64[D]")
    inside = start + rng.integers(0, max(span - 30, 1), n).astype("timedelta64[D]")
    acquired = np.where(rng.random(n) < 0.12, inside, before)
    first_churn = np.maximum(acquired, start) + np.timedelta64(90, "D")
    room = (end - first_churn).astype(int)
    churn_at = first_churn + (rng.random(n) * room.clip(0)).astype("timedelta64[D]")
    churns = (rng.random(n) < 0.10) & (room > 0)
    return acquired, np.where(churns, churn_at, end + np.timedelta64(1, "D"))


def _channel_mix(
    rng: np.random.Generator, segment: np.ndarray, size: np.ndarray, fussy: np.ndarray
) -> np.ndarray:
    """Each customer's cumulative channel probabilities over CHANNELS (one dominant, mostly)."""
    n = len(segment)
    logits = np.empty((n, len(CHANNELS)))
    logits[:, 0] = -0.8 + 1.1 * size - 0.3 * fussy + np.array([0, -0.5, 0.4, 0.2, 0.8])[segment]
    logits[:, 1] = 0.3 + np.array([0, 0, 0, 2.0, 0])[segment]
    logits[:, 2] = -0.3
    logits[:, 3] = -0.3 * size + 0.5 * fussy + np.array([0, 1.0, 0, -1.0, 0])[segment]
    logits = 1.5 * (logits + rng.normal(0, 1.0, logits.shape))
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    return cdf


def _visit_rate(rng: np.random.Generator, segment: np.ndarray, pull: np.ndarray) -> np.ndarray:
    """Sales visits per month: wholesalers most, online almost never; `pull` attracts visits."""
    base = np.array([0.12, 0.15, 0.4, 0.03, 0.6])[segment]
    return np.exp(np.log(base) + 0.35 * pull + rng.normal(0, 0.8, len(pull))).clip(0, 4)


def _discount_depth(rng: np.random.Generator, segment: np.ndarray, size: np.ndarray) -> np.ndarray:
    """On-invoice discount share: by segment and size, plus deep deals for some big customers."""
    n = len(size)
    depth = (
        np.array([0.02, 0.01, 0.05, 0.03, 0.08])[segment] + 0.015 * size + rng.normal(0, 0.015, n)
    )
    deal = (size > 0.7) & (rng.random(n) < 0.35)
    return (depth + np.where(deal, rng.uniform(0.06, 0.15, n), 0.0)).clip(0, 0.35)


def _rebate_rate(rng: np.random.Generator, size: np.ndarray) -> np.ndarray:
    """Off-invoice rebate share of gross: zero for most, up to ~8% for big customers."""
    n = len(size)
    has = rng.random(n) < 0.3 + 0.2 * (size > 0.5)
    rate = rng.uniform(0.005, 0.03, n) + 0.01 * size.clip(0)
    return np.where(has, rate, 0.0).clip(0, 0.08)


def _distance(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """Delivery miles from the warehouse: domestic tens of miles, export hundreds to thousands."""
    median = np.array([30.0, 45.0, 25.0, 60.0, 1100.0])[region]
    sigma = np.where(region == REGIONS.index("Export"), 0.4, 0.6)
    return np.exp(np.log(median) + sigma * rng.normal(0, 1.0, len(region))).clip(3, 4000)


def _catalogue(rng: np.random.Generator, n: int) -> _Catalogue:
    """Products with list prices, 20-45% gross margin and a skewed (Zipf-like) popularity."""
    price = np.exp(np.log(24.0) + 0.8 * rng.normal(0, 1.0, n)).clip(1.49, 1500.0)
    price_cents = np.rint(price * 100).astype(np.int64)
    margin = rng.permutation(np.linspace(0.20, 0.42, n))  # evenly spread, randomly assigned
    cost_cents = np.rint(price_cents * (1 - margin)).astype(np.int64)
    weights = rng.permutation(1.0 / np.arange(1, n + 1) ** 0.7)
    cdf = np.cumsum(weights) / weights.sum()
    cdf[-1] = 1.0
    return _Catalogue(price_cents, cost_cents, cdf)


def _customer_frame(rng: np.random.Generator, pop: _Population) -> pl.DataFrame:
    """The customer master snapshot as strings."""
    n = pop.size
    first = np.asarray(_NAME_FIRST)[rng.integers(0, len(_NAME_FIRST), n)]
    table = np.asarray([_NAME_SECOND[s] for s in SEGMENTS])  # segments x 8 words
    second = table[pop.segment, rng.integers(0, table.shape[1], n)]
    suffix = np.asarray(_NAME_SUFFIX)[rng.integers(0, len(_NAME_SUFFIX), n)]
    return pl.DataFrame(
        {
            "customer_id": _ids("C", n, 6),
            "customer_name": pl.Series(np.char.add(np.char.add(first, " "), second))
            + pl.Series(np.where(suffix == "", "", np.char.add(" ", suffix))),
            "segment": np.asarray(SEGMENTS)[pop.segment],
            "region": np.asarray(REGIONS)[pop.region],
            "acquired_on": pl.Series(pop.acquired).dt.to_string("%Y-%m-%d"),
        }
    )


# --------------------------------------------------------------------------- one month


def _survey(rng: np.random.Generator, pop: _Population, month: _Month) -> pl.DataFrame:
    """The month's survey answers: who answers, on which day, and a score driven by service."""
    bdays = month.business_days
    if len(bdays) == 0:
        return pl.DataFrame(schema={c: pl.String for c in FEEDBACK.column_names})
    lo, hi = _active_range(pop, bdays)
    answers = (hi > lo) & (rng.random(pop.size) < SURVEY_RESPONSE_PM)
    cust = np.flatnonzero(answers)
    day = bdays[lo[cust] + (rng.random(len(cust)) * (hi - lo)[cust]).astype(np.int64)]
    leaving_soon = (pop.leaves[cust] - day).astype(int) < 120
    latent = (
        8.2
        - 6.0 * pop.rush[cust]
        - 10.0 * pop.returns[cust]
        - 0.4 * pop.tickets_pm[cust]
        + 12.0 * pop.discount[cust]
        + 25.0 * pop.rebate[cust]
        + 0.4 * pop.visits_pm[cust]
        - 1.5 * leaving_soon
        + rng.normal(0.0, 1.3, len(cust))
    )
    return pl.DataFrame(
        {
            "customer_id": _ids("C", pop.size, 6).gather(cust),
            "survey_date": pl.Series(day).dt.to_string("%Y-%m-%d"),
            "score": pl.Series(np.rint(latent).clip(0, 10).astype(np.int64)).cast(pl.String),
        }
    )


def _simulate_month(
    rng: np.random.Generator, pop: _Population, cat: _Catalogue, month: _Month, end: np.datetime64
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A month's ledger lines and activity events (credit notes may fall in the next month)."""
    bdays = month.business_days
    if len(bdays) == 0:
        return _empty_ledger(), _empty_events()
    docs = _orders(rng, pop, month, bdays)
    lines = _invoice_lines(rng, pop, cat, docs)
    credit_docs, credit_lines = _returns(rng, pop, cat, docs, lines, end)
    ledger = pl.concat([_ledger_frame(docs, lines, 0), _ledger_frame(credit_docs, credit_lines, 1)])
    events = pl.concat(
        [
            _order_events(rng, pop, docs),
            _event_frame(credit_docs["day"], credit_docs["cust"], RETURN, credit_docs["lines"]),
            _customer_events(rng, pop, bdays),
        ]
    )
    return ledger, events


def _active_range(pop: _Population, bdays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per customer, the [lo, hi) business-day indexes of the month it is a customer on."""
    lo = np.searchsorted(bdays, pop.acquired, side="left")
    hi = np.searchsorted(bdays, pop.leaves, side="left")
    return lo, np.maximum(hi, lo)


def _active_count(pop: _Population, month: _Month) -> int:
    """Customers who are customers on at least one day of the month."""
    return int(((pop.acquired <= month.last) & (pop.leaves > month.first)).sum())


def _spread(
    rng: np.random.Generator, rate_pm: np.ndarray, lo: np.ndarray, hi: np.ndarray, bdays: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson event counts per customer over its active days; returns (customer, day) per event."""
    counts = rng.poisson(rate_pm * (hi - lo) / 21.7)
    cust = np.repeat(np.arange(len(counts)), counts)
    idx = lo[cust] + (rng.random(len(cust)) * (hi - lo)[cust]).astype(np.int64)
    return cust, bdays[idx]


def _orders(rng: np.random.Generator, pop: _Population, month: _Month, bdays: np.ndarray) -> dict:
    """Invoice documents: customer, day, channel, rush flag and number of lines."""
    lo, hi = _active_range(pop, bdays)
    season = 1.0 + 0.08 * math.cos(2 * math.pi * (int(month.period[5:]) - 12) / 12)
    trend = np.exp((pop.growth * month.index).clip(-1.6, 1.6))
    cust, day = _spread(rng, pop.orders_pm * trend * season, lo, hi, bdays)
    order = np.lexsort((cust, day))
    cust, day = cust[order], day[order]
    channel = (rng.random(len(cust))[:, None] > pop.channel_cdf[cust]).sum(axis=1)
    return {
        "cust": cust,
        "day": day,
        "channel": channel.clip(0, len(CHANNELS) - 1),
        "rush": rng.random(len(cust)) < pop.rush[cust],
        "lines": 1 + rng.poisson(pop.lines_lam[cust]).clip(0, 60),
    }


def _invoice_lines(rng: np.random.Generator, pop: _Population, cat: _Catalogue, docs: dict) -> dict:
    """Invoice lines with quantity, gross, discount, COGS and off-invoice amounts in cents."""
    doc = np.repeat(np.arange(len(docs["cust"])), docs["lines"])
    cust = docs["cust"][doc]
    product = np.searchsorted(cat.cdf, rng.random(len(doc)), side="right").clip(0, len(cat.cdf) - 1)
    qty = 1 + rng.poisson(pop.qty_lam[cust])
    return _priced(pop, cat, doc, cust, product, qty)


def _priced(
    pop: _Population,
    cat: _Catalogue,
    doc: np.ndarray,
    cust: np.ndarray,
    product: np.ndarray,
    qty: np.ndarray,
) -> dict:
    """Amounts for lines of `qty` units (negative on credit notes) at the customer's terms."""
    gross = qty * cat.price[product]
    return {
        "doc": doc,
        "product": product,
        "qty": qty,
        "gross": gross,
        "discount": np.rint(gross * pop.discount[cust]).astype(np.int64),
        "cogs": qty * cat.cost[product],
        "off": np.rint(gross * pop.rebate[cust]).astype(np.int64),
    }


def _returns(
    rng: np.random.Generator,
    pop: _Population,
    cat: _Catalogue,
    docs: dict,
    lines: dict,
    end: np.datetime64,
) -> tuple[dict, dict]:
    """Credit notes for returned invoice lines: one note per invoice, 3-20 days later."""
    line_cust = docs["cust"][lines["doc"]]
    back = np.flatnonzero(rng.random(len(line_cust)) < pop.returns[line_cust])
    source_doc = lines["doc"][back]
    notes, note_of_line = np.unique(source_doc, return_inverse=True)
    lag = rng.integers(3, 21, len(notes)).astype("timedelta64[D]")
    day = np.busday_offset(docs["day"][notes] + lag, 0, roll="forward")
    keep_note = day <= end
    qty = -(1 + (rng.random(len(back)) * lines["qty"][back]).astype(np.int64))
    credit_docs = {
        "cust": docs["cust"][notes][keep_note],
        "day": day[keep_note],
        "channel": docs["channel"][notes][keep_note],
        "rush": np.zeros(keep_note.sum(), dtype=bool),
        "lines": np.bincount(note_of_line, minlength=len(notes))[keep_note],
    }
    kept_line = keep_note[note_of_line]
    renumber = np.cumsum(keep_note) - 1
    cust = line_cust[back][kept_line]
    credit_lines = _priced(
        pop,
        cat,
        renumber[note_of_line[kept_line]],
        cust,
        lines["product"][back][kept_line],
        qty[kept_line],
    )
    scrapped = rng.random(len(cust)) < SCRAP_SHARE  # damaged goods: written off, no COGS reversal
    credit_lines["cogs"] = np.where(scrapped, 0, credit_lines["cogs"])
    return credit_docs, credit_lines


def _ledger_frame(docs: dict, lines: dict, kind: int) -> pl.DataFrame:
    """Ledger lines as numbers; `kind` 0 for invoices, 1 for credit notes."""
    doc = lines["doc"]
    return pl.DataFrame(
        {
            "_day": docs["day"][doc],
            "_kind": np.full(len(doc), kind, dtype=np.int8),
            "_doc": doc.astype(np.int64),
            "cust": docs["cust"][doc].astype(np.int64),
            "product": lines["product"].astype(np.int32),
            "quantity": lines["qty"].astype(np.int64),
            "gross": lines["gross"],
            "discount": -np.abs(lines["discount"]) if kind else lines["discount"],
            "cogs": lines["cogs"],
            "off": -np.abs(lines["off"]) if kind else lines["off"],
            "channel": docs["channel"][doc].astype(np.int8),
        },
        schema_overrides={"_day": pl.Date},
    )


def _empty_ledger() -> pl.DataFrame:
    """A ledger frame with no lines."""
    empty = {"day": np.array([], dtype="datetime64[D]"), "cust": np.array([], dtype=np.int64)}
    empty["channel"] = np.array([], dtype=np.int8)
    lines = {k: np.array([], dtype=np.int64) for k in ("doc", "product", "qty", "gross")}
    lines |= {k: np.array([], dtype=np.int64) for k in ("discount", "cogs", "off")}
    return _ledger_frame(empty, lines, 0)


def _event_frame(
    day: np.ndarray,
    cust: np.ndarray,
    activity: int,
    quantity: np.ndarray,
    *,
    channel: np.ndarray | None = None,
    minutes: np.ndarray | None = None,
    amount: np.ndarray | None = None,
    rush: np.ndarray | None = None,
    lines: np.ndarray | None = None,
) -> pl.DataFrame:
    """Activity events as numbers: minutes in tenths, amount in cents, absent values null."""
    n = len(cust)

    def opt(values: np.ndarray | None, dtype: pl.DataType) -> pl.Series:
        return (
            pl.Series(values, dtype=dtype)
            if values is not None
            else pl.repeat(None, n, dtype=dtype, eager=True)
        )

    return pl.DataFrame(
        {
            "_day": pl.Series(day, dtype=pl.Date),
            "activity": pl.Series(np.full(n, activity), dtype=pl.Int8),
            "cust": pl.Series(cust, dtype=pl.Int64),
            "quantity": pl.Series(quantity, dtype=pl.Int64),
            "channel": opt(channel, pl.Int8),
            "minutes": opt(minutes, pl.Int64),
            "amount": opt(amount, pl.Int64),
            "rush": pl.Series(
                rush if rush is not None else np.zeros(n, dtype=bool), dtype=pl.Boolean
            ),
            "_lines": opt(lines, pl.Int64),
        }
    )


def _empty_events() -> pl.DataFrame:
    """An events frame with no rows."""
    none = np.array([], dtype=np.int64)
    return _event_frame(np.array([], dtype="datetime64[D]"), none, ORDER_ENTRY, none)


def _order_events(rng: np.random.Generator, pop: _Population, docs: dict) -> pl.DataFrame:
    """One order_entry and one delivery event per invoice; export deliveries carry a bill."""
    cust = docs["cust"]
    miles = np.maximum(1, np.rint(pop.miles[cust] * rng.uniform(0.9, 1.1, len(cust)))).astype(
        np.int64
    )
    export = pop.region[cust] == REGIONS.index("Export")
    carrier = (4_500 + 18 * miles) * np.where(docs["rush"], 1.4, 1.0)
    amount = np.where(export, np.rint(carrier), np.nan)
    entry = _event_frame(
        docs["day"],
        cust,
        ORDER_ENTRY,
        docs["lines"],
        channel=docs["channel"],
        rush=docs["rush"],
        lines=docs["lines"],
    )
    delivery = _event_frame(
        docs["day"], cust, DELIVERY, miles, rush=docs["rush"], lines=docs["lines"]
    )
    delivery = delivery.with_columns(pl.Series("amount", amount, nan_to_null=True).cast(pl.Int64))
    return pl.concat([entry, delivery])


def _customer_events(rng: np.random.Generator, pop: _Population, bdays: np.ndarray) -> pl.DataFrame:
    """Support tickets, sales visits and collection calls at each customer's own rate."""
    lo, hi = _active_range(pop, bdays)
    cust, day = _spread(rng, pop.tickets_pm, lo, hi, bdays)
    n = len(cust)
    minutes = np.exp(np.log(22.0) + 0.7 * rng.normal(0, 1.0, n)).clip(5, 180)
    channel = np.searchsorted([0.5, 0.85], rng.random(n), side="right")
    tickets = _event_frame(
        day,
        cust,
        SUPPORT,
        np.ones(n, dtype=np.int64),
        channel=channel,
        minutes=np.rint(minutes * 10).astype(np.int64),
    )
    cust, day = _spread(rng, pop.visits_pm, lo, hi, bdays)
    n = len(cust)
    export = pop.region[cust] == REGIONS.index("Export")
    travel = np.where(
        export,
        rng.uniform(35_000, 120_000, n),
        2 * 67 * pop.miles[cust] + rng.uniform(1_500, 4_000, n),
    )
    visits = _event_frame(
        day,
        cust,
        VISIT,
        np.ones(n, dtype=np.int64),
        minutes=600 + 150 * rng.integers(0, 13, n),
        amount=np.rint(travel).astype(np.int64),
    )
    cust, day = _spread(rng, pop.calls_pm, lo, hi, bdays)
    calls = _event_frame(
        day,
        cust,
        COLLECTION,
        np.ones(len(cust), dtype=np.int64),
        channel=np.full(len(cust), CHANNELS.index("phone")),
    )
    return pl.concat([tickets, visits, calls])


# --------------------------------------------------------------------------- resources


def _nominal_minutes(events: pl.DataFrame) -> dict[str, float]:
    """The month's workload per time-driven department, by the nominal time equations."""
    entry = NOMINAL_MINUTES["order_entry"]
    base = pl.col("channel").replace_strict(
        {i: entry[c][0] for i, c in enumerate(CHANNELS)}, default=0.0, return_dtype=pl.Float64
    )
    per_line = pl.col("channel").replace_strict(
        {i: entry[c][1] for i, c in enumerate(CHANNELS)}, default=0.0, return_dtype=pl.Float64
    )
    rush = pl.col("rush").cast(pl.Float64)
    act = pl.col("activity")
    pick_base, pick_line = NOMINAL_MINUTES["picking"]
    ret_base, ret_line = NOMINAL_MINUTES["return_processing"]
    minutes = pl.col("minutes").cast(pl.Float64) / 10
    q = pl.col("quantity").cast(pl.Float64)
    totals = events.select(
        (
            pl.when(act == ORDER_ENTRY)
            .then(base + per_line * q + NOMINAL_MINUTES["order_entry_rush"] * rush)
            .when(act == RETURN)
            .then(ret_base + ret_line * q)
            .when(act == SUPPORT)
            .then(minutes)
            .otherwise(0.0)
            .sum()
            .alias("customer_service")
        ),
        (
            pl.when(act == DELIVERY)
            .then(pick_base + pick_line * pl.col("_lines") + NOMINAL_MINUTES["picking_rush"] * rush)
            .otherwise(0.0)
            .sum()
            .alias("warehouse")
        ),
        pl.when(act == VISIT).then(minutes).otherwise(0.0).sum().alias("sales"),
        pl.when((act == DELIVERY) & pl.col("amount").is_null())
        .then(q)
        .otherwise(0.0)
        .sum()
        .alias("miles"),
        (act == DELIVERY).sum().alias("deliveries"),
        (act == COLLECTION).sum().alias("calls"),
    )
    return {k: float(v or 0) for k, v in totals.row(0, named=True).items()}


def _resources(
    rng: np.random.Generator, month: _Month, events: pl.DataFrame, active: int
) -> pl.DataFrame:
    """Department costs: time-driven departments staffed to demand, pools sized by volume."""
    load = _nominal_minutes(events)
    days_in_month = (month.last - month.first).astype(int) + 1
    part = days_in_month / _month_length(month)
    names, costs, capacity = [], [], []
    for name, (per_fte, fixed, per_fte_overhead) in DEPARTMENTS.items():
        utilisation = float(np.clip(TARGET_UTILISATION + rng.normal(0, 0.03), 0.75, 0.95))
        fte = max(1, math.ceil(load[name] / (MINUTES_PER_FTE * part * utilisation)))
        pay = per_fte * float(rng.uniform(0.98, 1.02))
        names.append(name)
        costs.append((fte * (pay + per_fte_overhead) + fixed) * part)
        capacity.append(str(int(round(fte * MINUTES_PER_FTE * part))))
    logistics = LOGISTICS_FIXED * part + LOGISTICS_PER_MILE * load["miles"]
    logistics += LOGISTICS_PER_DELIVERY * load["deliveries"]
    finance = (FINANCE_FIXED + FINANCE_PER_CUSTOMER * active) * part + FINANCE_PER_CALL * load[
        "calls"
    ]
    names += ["logistics", "finance"]
    costs += [logistics, finance]
    capacity += [None, None]
    cents = pl.Series(np.rint(np.asarray(costs) * 100).astype(np.int64))
    return pl.DataFrame(
        {
            "period": [month.period] * len(names),
            "resource": names,
            "cost_amount": pl.select(_money(pl.lit(cents))).to_series(),
            "practical_capacity_minutes": pl.Series(capacity, dtype=pl.String),
        }
    )


def _month_length(month: _Month) -> int:
    """Days in the calendar month `month` belongs to."""
    first = dt.date.fromisoformat(f"{month.period}-01")
    return (_add_months(first, 1) - first).days


# --------------------------------------------------------------------------- formatting


def _money(cents: pl.Expr) -> pl.Expr:
    """Integer cents as a string with exactly two decimals, by exact decimal arithmetic."""
    return (cents.cast(pl.Decimal(18, 2)) / 100).cast(pl.String)


def _numbered(prefix: str | pl.Expr, number: pl.Expr, width: int, largest: int) -> pl.Expr:
    """An id like INV0000123: prefix + number zero-padded to `width` (`largest` bounds number)."""
    if largest < 10**width:  # fast path: 10**width + n has the padded digits after its leading 1
        digits = (number + 10**width).cast(pl.String).str.slice(1)
    else:
        digits = number.cast(pl.String).str.zfill(width)
    prefix = pl.lit(prefix) if isinstance(prefix, str) else prefix
    return pl.concat_str([prefix, digits])


def _label(codes: pl.Expr, labels: tuple[str, ...]) -> pl.Expr:
    """Small integer codes as their lower-case labels (null stays null)."""
    return codes.replace_strict(dict(enumerate(labels)), default=None, return_dtype=pl.String)


def _iso(frame: pl.DataFrame) -> pl.Expr:
    """The frame's `_day` as YYYY-MM-DD (each distinct day formatted once)."""
    days = frame["_day"].unique()
    return pl.col("_day").replace_strict(
        days, days.dt.to_string("%Y-%m-%d"), return_dtype=pl.String
    )


def _ids(prefix: str, count: int, width: int) -> pl.Series:
    """Ids prefix + 1..count zero-padded, to look up by zero-based index."""
    return pl.select(_numbered(prefix, pl.int_range(1, count + 1), width, count)).to_series()


# --------------------------------------------------------------------------- writing


class _State:
    """Running id counters and rows dated after the month they were generated in."""

    def __init__(self, customers: int, products: int) -> None:
        self.customer_ids = _ids("C", customers, 6)
        self.product_ids = _ids("P", products, 4)
        self.invoices = 0
        self.credit_notes = 0
        self.lines = 0
        self.events = 0
        self.ledger_carry = _empty_ledger()
        self.events_carry = _empty_events()

    def carry(
        self, month: _Month, ledger: pl.DataFrame, events: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """This month's rows (with earlier months' carry); later-dated rows are kept for later."""
        last = month.last.astype(dt.date)
        ledger = self._number_documents(ledger)
        ledger = pl.concat([self.ledger_carry, ledger])
        events = pl.concat([self.events_carry, events])
        self.ledger_carry = ledger.filter(pl.col("_day") > last)
        self.events_carry = events.filter(pl.col("_day") > last)
        ledger = ledger.filter(pl.col("_day") <= last).sort(
            "_day", "_kind", "_doc", maintain_order=True
        )
        events = events.filter(pl.col("_day") <= last).sort(
            "_day", "activity", "cust", maintain_order=True
        )
        return ledger, events

    def _number_documents(self, ledger: pl.DataFrame) -> pl.DataFrame:
        """Replace per-month document indexes by running invoice and credit-note numbers."""
        counts = ledger.group_by("_kind").agg(pl.col("_doc").max() + 1)
        n = dict(zip(counts["_kind"].to_list(), counts["_doc"].to_list(), strict=True))
        out = ledger.with_columns(
            pl.when(pl.col("_kind") == 0)
            .then(pl.col("_doc") + self.invoices)
            .otherwise(pl.col("_doc") + self.credit_notes)
            .alias("_doc")
        )
        self.invoices += n.get(0, 0)
        self.credit_notes += n.get(1, 0)
        return out


def _write_ledger(
    writer: _Writer, state: _State, injector: _Injector, month: _Month, ledger: pl.DataFrame
) -> None:
    """Format the month's ledger lines, add planned bad rows, number lines and write day files."""
    frame = ledger.select(
        "_day",
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_pos"),
        _numbered(
            pl.when(pl.col("_kind") == 0).then(pl.lit("INV")).otherwise(pl.lit("CN")),
            pl.col("_doc") + 1,
            DOCUMENT_DIGITS,
            max(state.invoices, state.credit_notes),
        ).alias("document_id"),
        _label(pl.col("_kind"), ("invoice", "credit_note")).alias("document_type"),
        _iso(ledger).alias("posting_date"),
        pl.lit(state.customer_ids).gather(pl.col("cust")).alias("customer_id"),
        pl.lit(state.product_ids).gather(pl.col("product")).alias("product_id"),
        pl.col("quantity").cast(pl.String),
        _money(pl.col("gross")).alias("gross_amount"),
        _money(pl.col("discount")).alias("discount_amount"),
        _money(pl.col("cogs")).alias("cogs_amount"),
        pl.lit("USD").alias("currency"),
        _label(pl.col("channel"), CHANNELS).alias("channel"),
        _money(pl.col("off")).alias("off_invoice_amount"),
    )
    frame = injector.inject(SALES_LEDGER, month.index, frame)
    frame = frame.with_columns(
        _numbered(
            "L", state.lines + pl.col("_new").cum_sum(), ROW_DIGITS, state.lines + frame.height
        ).alias("line_id")
    )
    state.lines += int(frame["_new"].sum())
    writer.write_days(
        SALES_LEDGER, frame.select("_day", *SALES_LEDGER.column_names), "sales_ledger"
    )


def _write_events(
    writer: _Writer, state: _State, injector: _Injector, month: _Month, events: pl.DataFrame
) -> None:
    """Format the month's events, add planned bad rows, number events and write day files."""
    frame = events.select(
        "_day",
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_pos"),
        _iso(events).alias("event_date"),
        pl.lit(state.customer_ids).gather(pl.col("cust")).alias("customer_id"),
        _label(pl.col("activity"), ACTIVITY_NAMES).alias("activity"),
        pl.col("quantity").cast(pl.String),
        _label(
            pl.when(pl.col("activity") == SUPPORT)
            .then(pl.col("channel").cast(pl.Int16) + len(CHANNELS))
            .otherwise(pl.col("channel").cast(pl.Int16)),
            CHANNELS + TICKET_CHANNELS,
        ).alias("channel"),
        pl.concat_str(
            [
                (pl.col("minutes") // 10).cast(pl.String),
                pl.lit("."),
                (pl.col("minutes") % 10).cast(pl.String),
            ]
        ).alias("minutes"),
        _money(pl.col("amount")).alias("amount"),
        pl.when(pl.col("rush")).then(pl.lit("rush")).otherwise(None).alias("flags"),
    )
    frame = injector.inject(ACTIVITIES, month.index, frame)
    frame = frame.with_columns(
        _numbered(
            "E", state.events + pl.col("_new").cum_sum(), ROW_DIGITS, state.events + frame.height
        ).alias("event_id")
    )
    state.events += int(frame["_new"].sum())
    writer.write_days(ACTIVITIES, frame.select("_day", *ACTIVITIES.column_names), "activities")


class _Writer:
    """Writes landing files as CSV or Parquet on a background thread; counts files and rows.

    Writing overlaps with simulating the next month; at most two months wait to be written.
    """

    def __init__(self, out_dir: Path, file_format: str) -> None:
        self.out_dir = out_dir
        self.file_format = file_format
        self.files: Counter[str] = Counter({s.name: 0 for s in WRITTEN})
        self.rows: Counter[str] = Counter(dict.fromkeys(self.files, 0))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pfd-generate")
        self._pending: deque[Future[None]] = deque()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def write(self, source: Source, frame: pl.DataFrame, stem: str) -> None:
        """Write one file of `source` named `stem` plus the format's suffix."""
        frame = frame.select(source.column_names)
        self._count(source, 1, frame.height)
        self._submit(self._save, source, [(stem, frame)])

    def write_days(self, source: Source, frame: pl.DataFrame, prefix: str) -> None:
        """Write one file per day present in the frame's `_day` column (days without rows: none)."""
        if frame.height == 0:
            return
        parts = frame.partition_by("_day", as_dict=True, maintain_order=True)
        self._count(source, len(parts), frame.height)
        named = [
            (f"{prefix}_{day:%Y-%m-%d}", part.select(source.column_names))
            for (day,), part in parts.items()
        ]
        self._submit(self._save, source, named)

    def _count(self, source: Source, files: int, rows: int) -> None:
        self.files[source.name] += files
        self.rows[source.name] += rows

    def _submit(self, job: Callable[..., None], *args: object) -> None:
        """Queue a write; wait first while two earlier writes are still pending."""
        while len(self._pending) >= 2:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(job, *args))

    def _save(self, source: Source, named: list[tuple[str, pl.DataFrame]]) -> None:
        folder = self.out_dir / source.name
        folder.mkdir(parents=True, exist_ok=True)
        for stem, frame in named:
            if self.file_format == "parquet":
                frame.write_parquet(folder / f"{stem}.parquet")
            else:
                frame.write_csv(folder / f"{stem}.csv")


def _clear(folder: Path) -> None:
    """Delete the landing files (CSV and Parquet) a previous run wrote into `folder`."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in (".csv", ".parquet"):
            path.unlink()


# --------------------------------------------------------------------------- bad rows


class _Injector:
    """Plans and adds a handful of bad rows per kind, at most 5% of any one file."""

    def __init__(
        self, rng: np.random.Generator, months: int, customers: int, enabled: bool
    ) -> None:
        self.rng = rng
        self.customers = customers
        self.counts: Counter[str] = Counter()
        self.plan: dict[int, list[str]] = {}
        if enabled:
            kinds = [k for k in LEDGER_ERRORS + ACTIVITY_ERRORS for _ in range(ERRORS_PER_KIND)]
            for kind, month in zip(kinds, rng.integers(0, months, len(kinds)), strict=True):
                self.plan.setdefault(int(month), []).append(kind)

    def inject(self, source: Source, month: int, frame: pl.DataFrame) -> pl.DataFrame:
        """The frame with this month's planned bad rows of `source`, each after its model row.

        Adds `_new`: 1 for a row that takes a fresh id, 0 for a duplicate that repeats the id of
        the row before it.
        """
        kinds = [
            k for k in self.plan.get(month, []) if (k in LEDGER_ERRORS) == (source is SALES_LEDGER)
        ]
        frame = frame.with_columns(pl.lit(1, dtype=pl.Int64).alias("_new"))
        if not kinds or frame.height == 0:
            return frame
        per_day = frame.group_by("_day").len().sort("_day")
        days, rows = per_day["_day"].to_list(), per_day["len"].to_numpy()
        bad = np.zeros(len(days), dtype=np.int64)
        extra = []
        for kind in kinds:
            fits = np.flatnonzero(rows * MAX_BAD_SHARE >= (bad + 1) * (1 - MAX_BAD_SHARE))
            fresh = fits[bad[fits] == 0]
            pool = fresh if fresh.size else fits
            if pool.size == 0:
                continue
            target = int(pool[self.rng.integers(pool.size)])
            candidates = frame.filter(pl.col("_day") == days[target])
            if source is SALES_LEDGER:
                candidates = candidates.filter(pl.col("document_type") == "invoice")
            if candidates.height == 0:
                continue
            model = candidates.slice(int(self.rng.integers(candidates.height)), 1)
            extra.append(
                self._spoil(kind, model).with_columns(pl.col("_pos").cast(pl.Float64) + 0.5)
            )
            bad[target] += 1
            self.counts[kind] += 1
        if not extra:
            return frame
        frame = frame.with_columns(pl.col("_pos").cast(pl.Float64))
        return pl.concat([frame, *extra]).sort("_pos", maintain_order=True)

    def _spoil(self, kind: str, row: pl.DataFrame) -> pl.DataFrame:
        """A copy of `row` with the defect `kind`."""
        n = self.counts[kind]
        date_col = "posting_date" if kind in LEDGER_ERRORS else "event_date"
        if kind in ("unknown_customer", "activity_unknown_customer"):
            unknown = f"C{self.customers + 1 + n:06d}"
            row = row.with_columns(pl.lit(unknown).alias("customer_id"))
            if kind == "unknown_customer":  # a manual invoice keyed before the master was updated
                row = row.with_columns(pl.lit(f"MAN{n + 1:06d}").alias("document_id"))
            return row
        if kind == "negative_quantity":
            return row.with_columns(
                pl.concat_str([pl.lit("-"), pl.col("quantity")]).alias("quantity")
            )
        if kind in ("bad_date", "activity_bad_date"):
            day = row["_day"][0]
            text = f"{day:%d/%m/%Y}" if n % 2 == 0 else f"{day:%Y}-02-30"
            return row.with_columns(pl.lit(text).alias(date_col))
        return row.with_columns(pl.lit(0, dtype=pl.Int64).alias("_new"))  # duplicate: same id
