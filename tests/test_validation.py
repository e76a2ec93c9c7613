"""Row validation (pfd_pipeline.validation) of the five sources, without files or a warehouse.

`validate` gets what `landing.read` hands over: every contract column as a String (an absent
optional column as a null String column, empty values as null, label columns already lower
case), plus _file_id, _row_number and _raw_record. The helper `batch` below builds exactly that.

Validation itself does not lower-case label columns (sources.Column.lowercase is applied by
landing.read); `test_validation_does_not_lowercase` pins that division of labour.

To keep the file fast, the bad-row catalogue is validated as one batch per source (each case in
its own file, between two good rows) and every case then checks its own rows as one test id.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandera.config import ValidationDepth, config_context
from polars.testing import assert_frame_equal

from pfd_pipeline import validation
from pfd_pipeline.sources import (
    ACTIVITIES,
    CUSTOMERS,
    MINUTES,
    MONEY,
    QUANTITY,
    RESOURCES,
    SALES_LEDGER,
    SOURCES,
    Source,
)
from pfd_pipeline.validation import (
    FILE_ID,
    RAW_RECORD,
    ROW_NUMBER,
    RULES,
    ValidationContext,
    ValidationResult,
    validate,
)

AS_OF = dt.date(2025, 1, 15)  # max_date is 2025-01-16 (max_future_days=1), min_date 2000-01-01
CTX = ValidationContext(
    as_of=AS_OF,
    # feedback rows are keyed by customer: the keys the cases use are known customers too
    known_customers=frozenset({"C1", "C2", "C3", "A", "B", "X"}),
    currencies=frozenset({"EUR", "USD", "GBP", "CHF"}),
    known_activities=frozenset({"order_entry", "visit", "support"}),
)

REJECTED_SCHEMA = pl.Schema(
    {
        FILE_ID: pl.Int64,
        ROW_NUMBER: pl.Int64,
        "column_name": pl.String,
        "rule": pl.String,
        "message": pl.String,
        "failures": pl.String,
        "raw_record": pl.String,
    }
)
ACCEPTED_SCHEMAS = {
    "customers": {
        "customer_id": pl.String,
        "customer_name": pl.String,
        "segment": pl.String,
        "region": pl.String,
        "acquired_on": pl.Date,
    },
    "sales_ledger": {
        "line_id": pl.String,
        "document_id": pl.String,
        "document_type": pl.String,
        "posting_date": pl.Date,
        "customer_id": pl.String,
        "product_id": pl.String,
        "quantity": QUANTITY,
        "gross_amount": MONEY,
        "discount_amount": MONEY,
        "cogs_amount": MONEY,
        "currency": pl.String,
        "channel": pl.String,
        "off_invoice_amount": MONEY,
    },
    "activities": {
        "event_id": pl.String,
        "event_date": pl.Date,
        "customer_id": pl.String,
        "activity": pl.String,
        "quantity": QUANTITY,
        "channel": pl.String,
        "minutes": MINUTES,
        "amount": MONEY,
        "flags": pl.String,
    },
    "resources": {
        "period": pl.String,
        "resource": pl.String,
        "cost_amount": MONEY,
        "practical_capacity_minutes": MINUTES,
    },
    "feedback": {"customer_id": pl.String, "survey_date": pl.Date, "score": pl.Int16},
}


def accepted_schema(source: Source) -> pl.Schema:
    return pl.Schema({**ACCEPTED_SCHEMAS[source.name], FILE_ID: pl.Int64, ROW_NUMBER: pl.Int64})


def raw_record(row: dict) -> str:
    return json.dumps({k: v for k, v in row.items() if not k.startswith("_")})


def batch(source: Source, rows: list[dict], *, file_id: int = 1) -> pl.DataFrame:
    """Rows as landing.read gives them: all contract columns as String, absent ones null.

    A row may set _file_id and _row_number; otherwise _file_id is `file_id` and _row_number
    counts the rows of each file from 1. _raw_record is the JSON of the row's own values.
    """
    records, counters = [], {}
    for row in rows:
        fid = row.get(FILE_ID, file_id)
        counters[fid] = counters.get(fid, 0) + 1
        record = {c: row.get(c) for c in source.column_names}
        record[FILE_ID] = fid
        record[ROW_NUMBER] = row.get(ROW_NUMBER, counters[fid])
        record[RAW_RECORD] = raw_record(row)
        records.append(record)
    schema = {c: pl.String for c in source.column_names}
    schema |= {FILE_ID: pl.Int64, ROW_NUMBER: pl.Int64, RAW_RECORD: pl.String}
    return pl.DataFrame(records, schema=schema)


def check_totals(frame: pl.DataFrame, result: ValidationResult, source: Source) -> None:
    """Every input row is either accepted or rejected, once; both frames have their schema."""
    assert result.accepted.schema == accepted_schema(source)
    assert result.rejected.schema == REJECTED_SCHEMA
    assert result.accepted.height + result.rejected.height == frame.height
    ids_in = sorted(frame.select(FILE_ID, ROW_NUMBER).rows())
    ids_out = result.accepted.select(FILE_ID, ROW_NUMBER).rows()
    ids_out += result.rejected.select(FILE_ID, ROW_NUMBER).rows()
    assert sorted(ids_out) == ids_in


def _frame(columns: dict[str, list], source: Source, file_id: int = 1) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    data = {**columns, FILE_ID: [file_id] * n, ROW_NUMBER: list(range(1, n + 1))}
    return pl.DataFrame(data, schema=accepted_schema(source))


# --- good frames ---------------------------------------------------------------------------


def test_good_customers_accepted_with_types():
    rows = [
        dict(
            customer_id="C1",
            customer_name="Acme GmbH",
            segment="retail",
            region="north",
            acquired_on="2019-03-01",
        ),
        dict(
            customer_id="C2",
            customer_name="Müller & Söhne, Ltd.",
            segment="wholesale",
            region="south",
            acquired_on="2025-01-15",
        ),  # today
        dict(
            customer_id="C3",
            customer_name="Gamma",
            segment="online",
            region="export",
            acquired_on="1900-01-01",
        ),  # lowest plausible date
        dict(
            customer_id="C4",
            customer_name="Delta",
            segment="retail",
            region="north",
            acquired_on="2025-01-16",
        ),  # as_of + max_future_days is still allowed
    ]
    frame = batch(CUSTOMERS, rows)
    result = validate(CUSTOMERS, frame, CTX)
    expected = _frame(
        {
            "customer_id": ["C1", "C2", "C3", "C4"],
            "customer_name": ["Acme GmbH", "Müller & Söhne, Ltd.", "Gamma", "Delta"],
            "segment": ["retail", "wholesale", "online", "retail"],
            "region": ["north", "south", "export", "north"],
            "acquired_on": [
                dt.date(2019, 3, 1),
                dt.date(2025, 1, 15),
                dt.date(1900, 1, 1),
                dt.date(2025, 1, 16),
            ],
        },
        CUSTOMERS,
    )
    assert_frame_equal(result.accepted, expected)
    assert result.rejected.height == 0
    check_totals(frame, result, CUSTOMERS)


def test_good_sales_ledger_accepted_with_types():
    rows = [
        dict(
            line_id="L1",
            document_id="D1",
            document_type="invoice",
            posting_date="2025-01-02",
            customer_id="C1",
            product_id="P1",
            quantity="3",
            gross_amount="1234.56",
            discount_amount="34.56",
            cogs_amount="800.1",
            currency="EUR",
            channel="web",
            off_invoice_amount="12.5",
        ),
        # optional columns empty: channel stays null, off_invoice_amount defaults to 0
        dict(
            line_id="L2",
            document_id="D2",
            document_type="invoice",
            posting_date="2000-01-01",
            customer_id="C2",
            product_id="P2",
            quantity="0.0001",
            gross_amount="0",
            discount_amount="0",
            cogs_amount="0",
            currency="USD",
        ),
        # a credit note: negative quantity and amounts, discount equal to gross is allowed
        dict(
            line_id="L3",
            document_id="CN1",
            document_type="credit_note",
            posting_date="2025-01-16",
            customer_id="C1",
            product_id="P1",
            quantity="-1",
            gross_amount="-100.00",
            discount_amount="-100.00",
            cogs_amount="-60",
            currency="GBP",
            channel="edi",
            off_invoice_amount="-2.50",
        ),
        # the largest values the types hold
        dict(
            line_id="L4",
            document_id="D3",
            document_type="invoice",
            posting_date="2025-01-15",
            customer_id="C3",
            product_id="P3",
            quantity="99999999999999.9999",
            gross_amount="9999999999999999.99",
            discount_amount="0.01",
            cogs_amount="0.5",
            currency="CHF",
            channel="phone",
            off_invoice_amount="0",
        ),
    ]
    frame = batch(SALES_LEDGER, rows, file_id=42)
    result = validate(SALES_LEDGER, frame, CTX)
    d = Decimal
    expected = _frame(
        {
            "line_id": ["L1", "L2", "L3", "L4"],
            "document_id": ["D1", "D2", "CN1", "D3"],
            "document_type": ["invoice", "invoice", "credit_note", "invoice"],
            "posting_date": [
                dt.date(2025, 1, 2),
                dt.date(2000, 1, 1),
                dt.date(2025, 1, 16),
                dt.date(2025, 1, 15),
            ],
            "customer_id": ["C1", "C2", "C1", "C3"],
            "product_id": ["P1", "P2", "P1", "P3"],
            "quantity": [d("3.0000"), d("0.0001"), d("-1.0000"), d("99999999999999.9999")],
            "gross_amount": [d("1234.56"), d("0.00"), d("-100.00"), d("9999999999999999.99")],
            "discount_amount": [d("34.56"), d("0.00"), d("-100.00"), d("0.01")],
            "cogs_amount": [d("800.10"), d("0.00"), d("-60.00"), d("0.50")],
            "currency": ["EUR", "USD", "GBP", "CHF"],
            "channel": ["web", None, "edi", "phone"],
            "off_invoice_amount": [d("12.50"), d("0.00"), d("-2.50"), d("0.00")],
        },
        SALES_LEDGER,
        file_id=42,
    )
    assert_frame_equal(result.accepted, expected)
    # exact decimals, not floats: the scale is part of the value
    assert [str(v) for v in result.accepted["gross_amount"]] == [
        "1234.56",
        "0.00",
        "-100.00",
        "9999999999999999.99",
    ]
    assert result.rejected.height == 0
    check_totals(frame, result, SALES_LEDGER)


def test_good_activities_accepted_with_types():
    rows = [
        dict(
            event_id="E1",
            event_date="2025-01-10",
            customer_id="C1",
            activity="order_entry",
            quantity="2",
            channel="edi",
            minutes="12.5",
            amount="45.10",
            flags="rush|export",
        ),
        # all optional columns empty: quantity defaults to 1; an unknown customer is accepted
        dict(event_id="E2", event_date="2000-01-01", customer_id="C404", activity="visit"),
        dict(
            event_id="E3",
            event_date="2025-01-16",
            customer_id="C2",
            activity="support",
            quantity="0.0001",
            channel="phone",
            minutes="0",
            amount="0",
            flags="rush",
        ),
    ]
    frame = batch(ACTIVITIES, rows)
    result = validate(ACTIVITIES, frame, CTX)
    d = Decimal
    expected = _frame(
        {
            "event_id": ["E1", "E2", "E3"],
            "event_date": [dt.date(2025, 1, 10), dt.date(2000, 1, 1), dt.date(2025, 1, 16)],
            "customer_id": ["C1", "C404", "C2"],
            "activity": ["order_entry", "visit", "support"],
            "quantity": [d("2.0000"), d("1.0000"), d("0.0001")],
            "channel": ["edi", None, "phone"],
            "minutes": [d("12.50"), None, d("0.00")],
            "amount": [d("45.10"), None, d("0.00")],
            "flags": ["rush|export", None, "rush"],
        },
        ACTIVITIES,
    )
    assert_frame_equal(result.accepted, expected)
    assert result.rejected.height == 0
    check_totals(frame, result, ACTIVITIES)


def test_good_resources_accepted_with_types():
    rows = [
        dict(
            period="2025-01",
            resource="sales_support",
            cost_amount="10000.00",
            practical_capacity_minutes="9600",
        ),
        dict(period="2025-01", resource="logistics", cost_amount="2500.5"),  # no capacity
        dict(
            period="2024-12",
            resource="sales_support",
            cost_amount="0",
            practical_capacity_minutes="4800.25",
        ),
    ]
    frame = batch(RESOURCES, rows)
    result = validate(RESOURCES, frame, CTX)
    d = Decimal
    expected = _frame(
        {
            "period": ["2025-01", "2025-01", "2024-12"],
            "resource": ["sales_support", "logistics", "sales_support"],
            "cost_amount": [d("10000.00"), d("2500.50"), d("0.00")],
            "practical_capacity_minutes": [d("9600.00"), None, d("4800.25")],
        },
        RESOURCES,
    )
    assert_frame_equal(result.accepted, expected)
    assert result.rejected.height == 0
    check_totals(frame, result, RESOURCES)


# --- the bad-row catalogue -----------------------------------------------------------------

# A good row per source; each case changes a few values of it. The key is set per row.
# fmt: off
BASE = {
    "customers": dict(customer_name="Acme", segment="retail", region="north",
                      acquired_on="2020-05-01"),
    "sales_ledger": dict(document_id="D1", document_type="invoice", posting_date="2025-01-10",
                         customer_id="C1", product_id="P1", quantity="2", gross_amount="100.00",
                         discount_amount="10.00", cogs_amount="60.00", currency="EUR",
                         channel="web", off_invoice_amount="1.00"),
    "activities": dict(event_date="2025-01-10", customer_id="C1", activity="order_entry",
                       quantity="3", channel="edi", minutes="12.50", amount="45.00",
                       flags="rush|export"),
    "resources": dict(period="2025-01", cost_amount="1000.00", practical_capacity_minutes="9600"),
    "feedback": dict(survey_date="2025-01-10", score="9"),
}
CREDIT_NOTE = dict(document_type="credit_note", quantity="-1", gross_amount="-100.00",
                   discount_amount="-10.00", cogs_amount="-60.00", off_invoice_amount="-1.00")
KEY_COLUMN = {"customers": "customer_id", "sales_ledger": "line_id", "activities": "event_id",
              "resources": "resource",  # resources: key (period, resource), period is the same
              "feedback": "customer_id"}  # feedback: key (customer_id, survey_date)
# fmt: on


def keyed(source: str, key: str) -> dict:
    return {**BASE[source], KEY_COLUMN[source]: key}


def case(source, changes, column, rule, failures=None, *, id):
    return pytest.param(source, changes, column, rule, failures or f"{column}: {rule}", id=id)


AFTER_MAX_DATE = str(AS_OF + dt.timedelta(days=2))  # just beyond as_of + max_future_days
DIGITS_17 = "12345678901234567"

# fmt: off
_CASES = [
    # customers
    case("customers", {"customer_name": None}, "customer_name", "required",
         id="customers-missing-name"),
    case("customers", {"acquired_on": None}, "acquired_on", "required",
         id="customers-missing-acquired_on"),
    case("customers", {"customer_id": " X"}, "customer_id", "format",
         id="customers-key-leading-space"),
    case("customers", {"customer_id": "K" * 129}, "customer_id", "format",
         id="customers-key-129-characters"),
    case("customers", {"customer_id": "K\u00e9" + "\u00e9" * 126 + "K"}, "customer_id", "format",
         id="customers-key-129-characters-not-ascii"),
    case("customers", {"customer_name": "   "}, "customer_name", "format",
         id="customers-blank-name"),
    case("customers", {"customer_name": "\n \r\n"}, "customer_name", "format",
         id="customers-name-only-line-breaks"),
    case("customers", {"acquired_on": "2025-02-30"}, "acquired_on", "valid_date",
         id="customers-date-2025-02-30"),
    case("customers", {"acquired_on": "31/01/2025"}, "acquired_on", "format",
         "acquired_on: format; acquired_on: valid_date", id="customers-date-31/01/2025"),
    case("customers", {"acquired_on": AFTER_MAX_DATE}, "acquired_on", "not_in_future",
         id="customers-acquired-in-future"),
    case("customers", {"acquired_on": "1899-12-31"}, "acquired_on", "plausible_date",
         id="customers-acquired-before-1900"),
    case("customers", {"customer_id": "A"}, "customer_id", "unique_key_in_file",
         id="customers-duplicate-key"),
    # sales ledger
    case("sales_ledger", {"line_id": None}, "line_id", "required", id="ledger-missing-key"),
    case("sales_ledger", {"posting_date": None}, "posting_date", "required",
         id="ledger-missing-date"),
    case("sales_ledger", {"currency": None}, "currency", "required",
         id="ledger-missing-currency"),
    case("sales_ledger", {"quantity": "12,5"}, "quantity", "format", id="ledger-quantity-12,5"),
    case("sales_ledger", {"gross_amount": "1e5"}, "gross_amount", "format",
         id="ledger-amount-1e5"),
    case("sales_ledger", {"gross_amount": "100.005"}, "gross_amount", "number_fits_type",
         id="ledger-amount-3-decimals"),
    case("sales_ledger", {"gross_amount": DIGITS_17}, "gross_amount", "number_fits_type",
         id="ledger-amount-17-digits"),
    case("sales_ledger", {"gross_amount": "99999999999999999999.99"}, "gross_amount",
         "number_fits_type", id="ledger-amount-20-digits"),
    case("sales_ledger", {"gross_amount": "1e30"}, "gross_amount", "format",
         id="ledger-amount-1e30"),
    case("sales_ledger", {"gross_amount": "-"}, "gross_amount", "format",
         id="ledger-amount-minus-only"),
    # digits of another script are not a number to the parser (it raised on the whole batch)
    case("sales_ledger", {"gross_amount": "\u0661\u0662"}, "gross_amount", "format",
         id="ledger-amount-arabic-indic-digits"),
    case("sales_ledger", {"quantity": "\uff11"}, "quantity", "format",
         id="ledger-quantity-fullwidth-digit"),
    case("sales_ledger", {"quantity": "123456789012345"}, "quantity", "number_fits_type",
         id="ledger-quantity-15-digits"),
    case("sales_ledger", {"quantity": "1.00001"}, "quantity", "number_fits_type",
         id="ledger-quantity-5-decimals"),
    case("sales_ledger", {"posting_date": "2025-02-30"}, "posting_date", "valid_date",
         id="ledger-date-2025-02-30"),
    case("sales_ledger", {"posting_date": "31/01/2025"}, "posting_date", "format",
         "posting_date: format; posting_date: valid_date", id="ledger-date-31/01/2025"),
    case("sales_ledger", {"document_type": "refund"}, "document_type", "domain",
         id="ledger-unknown-document-type"),
    case("sales_ledger", {"currency": "XYZ"}, "currency", "iso_currency",
         id="ledger-currency-XYZ"),
    case("sales_ledger", {"currency": "usd"}, "currency", "format",
         "currency: format; currency: iso_currency", id="ledger-currency-usd"),
    case("sales_ledger", {"currency": "JPY"}, "currency", "currency_accepted",
         id="ledger-currency-not-accepted"),
    case("sales_ledger", {"channel": "web shop"}, "channel", "format",
         id="ledger-channel-not-a-label"),
    case("sales_ledger", {"posting_date": "1999-12-31"}, "posting_date", "plausible_date",
         id="ledger-date-before-min"),
    case("sales_ledger", {"posting_date": AFTER_MAX_DATE}, "posting_date", "plausible_date",
         id="ledger-date-after-max"),
    case("sales_ledger", {"quantity": "0"}, "quantity", "invoice_quantity_positive",
         id="ledger-invoice-quantity-0"),
    case("sales_ledger", {"quantity": "-2"}, "quantity", "invoice_quantity_positive",
         id="ledger-invoice-quantity-negative"),
    case("sales_ledger", {**CREDIT_NOTE, "quantity": "1"}, "quantity",
         "credit_note_quantity_negative", id="ledger-credit-note-quantity-positive"),
    case("sales_ledger", {**CREDIT_NOTE, "quantity": "0"}, "quantity",
         "credit_note_quantity_negative", id="ledger-credit-note-quantity-0"),
    case("sales_ledger", {"gross_amount": "-100.00"}, "gross_amount",
         "amount_sign_matches_document", id="ledger-invoice-negative-gross"),
    case("sales_ledger", {"discount_amount": "-10.00"}, "discount_amount",
         "amount_sign_matches_document", id="ledger-invoice-negative-discount"),
    case("sales_ledger", {"cogs_amount": "-60.00"}, "cogs_amount",
         "amount_sign_matches_document", id="ledger-invoice-negative-cogs"),
    case("sales_ledger", {"off_invoice_amount": "-1.00"}, "off_invoice_amount",
         "amount_sign_matches_document", id="ledger-invoice-negative-off-invoice"),
    case("sales_ledger", {**CREDIT_NOTE, "gross_amount": "100.00"}, "gross_amount",
         "amount_sign_matches_document", id="ledger-credit-note-positive-gross"),
    case("sales_ledger", {"discount_amount": "100.01"}, "discount_amount",
         "discount_not_above_gross", id="ledger-invoice-discount-above-gross"),
    case("sales_ledger", {**CREDIT_NOTE, "discount_amount": "-100.01"}, "discount_amount",
         "discount_not_above_gross", id="ledger-credit-note-discount-above-gross"),
    case("sales_ledger", {"line_id": "A"}, "line_id", "unique_key_in_file",
         id="ledger-duplicate-key"),
    case("sales_ledger", {"product_id": "P\t1"}, "product_id", "format",
         id="ledger-key-with-tab"),
    case("sales_ledger", {"product_id": "P\x001"}, "product_id", "format",
         id="ledger-key-with-nul"),
    case("sales_ledger", {"product_id": "P1\nP2"}, "product_id", "format",
         id="ledger-key-with-line-break"),
    case("sales_ledger", {"customer_id": "C404"}, "customer_id", "customer_known",
         id="ledger-unknown-customer"),
    # activities
    case("activities", {"event_id": None}, "event_id", "required", id="activities-missing-key"),
    case("activities", {"activity": None}, "activity", "required",
         id="activities-missing-activity"),
    case("activities", {"activity": "order entry"}, "activity", "format",
         id="activities-activity-not-a-label"),
    case("activities", {"activity": "order_entyr"}, "activity", "activity_known",
         id="activities-activity-not-in-cost-model"),
    case("activities", {"event_date": "2025-02-30"}, "event_date", "valid_date",
         id="activities-date-2025-02-30"),
    case("activities", {"event_date": "31/01/2025"}, "event_date", "format",
         "event_date: format; event_date: valid_date", id="activities-date-31/01/2025"),
    case("activities", {"event_date": "1999-12-31"}, "event_date", "plausible_date",
         id="activities-date-before-min"),
    case("activities", {"event_date": AFTER_MAX_DATE}, "event_date", "plausible_date",
         id="activities-date-after-max"),
    case("activities", {"quantity": "0"}, "quantity", "quantity_positive",
         id="activities-quantity-0"),
    case("activities", {"quantity": "-1"}, "quantity", "quantity_positive",
         id="activities-quantity-negative"),
    case("activities", {"quantity": "1.5e2"}, "quantity", "format",
         id="activities-quantity-exponent"),
    case("activities", {"minutes": "-5"}, "minutes", "format", id="activities-minutes-negative"),
    case("activities", {"minutes": "1.234"}, "minutes", "number_fits_type",
         id="activities-minutes-3-decimals"),
    case("activities", {"amount": DIGITS_17}, "amount", "number_fits_type",
         id="activities-amount-17-digits"),
    case("activities", {"flags": "rush||export"}, "flags", "format", id="activities-bad-flags"),
    case("activities", {"event_id": "A"}, "event_id", "unique_key_in_file",
         id="activities-duplicate-key"),
    # resources
    case("resources", {"period": None}, "period", "required", id="resources-missing-period"),
    case("resources", {"cost_amount": None}, "cost_amount", "required",
         id="resources-missing-cost"),
    case("resources", {"period": "2025-13"}, "period", "format", id="resources-period-month-13"),
    case("resources", {"period": "2025-1"}, "period", "format", id="resources-period-2025-1"),
    case("resources", {"resource": "sales support"}, "resource", "format",
         id="resources-resource-not-a-label"),
    case("resources", {"cost_amount": "-0.01"}, "cost_amount", "not_negative",
         id="resources-negative-cost"),
    case("resources", {"cost_amount": "1,000.00"}, "cost_amount", "format",
         id="resources-cost-thousands-separator"),
    case("resources", {"cost_amount": DIGITS_17 + ".00"}, "cost_amount", "number_fits_type",
         id="resources-cost-17-digits"),
    case("resources", {"practical_capacity_minutes": DIGITS_17}, "practical_capacity_minutes",
         "number_fits_type", id="resources-capacity-17-digits"),
    case("resources", {"practical_capacity_minutes": "-1"}, "practical_capacity_minutes",
         "format", id="resources-negative-capacity"),
    case("resources", {"resource": "A"}, "period", "unique_key_in_file",
         id="resources-duplicate-key"),
    # feedback
    case("feedback", {"score": None}, "score", "required", id="feedback-missing-score"),
    case("feedback", {"survey_date": None}, "survey_date", "required",
         id="feedback-missing-date"),
    case("feedback", {"score": "7.5"}, "score", "format", id="feedback-score-decimal"),
    case("feedback", {"score": "ten"}, "score", "format", id="feedback-score-word"),
    case("feedback", {"score": "11"}, "score", "score_in_range", id="feedback-score-11"),
    case("feedback", {"score": "-1"}, "score", "score_in_range", id="feedback-score-negative"),
    case("feedback", {"score": "1234"}, "score", "number_fits_type",
         id="feedback-score-4-digits"),
    case("feedback", {"survey_date": "2025-02-30"}, "survey_date", "valid_date",
         id="feedback-date-2025-02-30"),
    case("feedback", {"survey_date": AFTER_MAX_DATE}, "survey_date", "plausible_date",
         id="feedback-date-in-future"),
    case("feedback", {"customer_id": "C9"}, "customer_id", "customer_known",
         id="feedback-unknown-customer"),
    case("feedback", {"customer_id": "A"}, "customer_id", "unique_key_in_file",
         id="feedback-duplicate-key"),
]
# fmt: on
# each case gets its own _file_id in the catalogue batch of its source
CATALOGUE = [pytest.param(*p.values, 100 + i, id=p.id) for i, p in enumerate(_CASES)]


def _catalogue_rows(source: str) -> list[dict]:
    """Per case its own file: good row "A", the bad row, good row "B" (row numbers 1, 2, 3)."""
    rows = []
    for param in CATALOGUE:
        name, changes, *_, file_id = param.values
        if name == source:
            rows += [
                {**keyed(name, "A"), FILE_ID: file_id},
                {**keyed(name, "X"), **changes, FILE_ID: file_id},
                {**keyed(name, "B"), FILE_ID: file_id},
            ]
    return rows


@pytest.fixture(scope="module")
def catalogue_results() -> dict[str, tuple[pl.DataFrame, ValidationResult]]:
    out = {}
    for name, source in SOURCES.items():
        frame = batch(source, _catalogue_rows(name))
        out[name] = (frame, validate(source, frame, CTX))
    return out


def test_catalogue_covers_every_rule():
    assert {p.values[3] for p in CATALOGUE} == set(RULES)


def test_catalogue_batches_add_up(catalogue_results):
    for name, (frame, result) in catalogue_results.items():
        check_totals(frame, result, SOURCES[name])
        cases = sum(1 for p in CATALOGUE if p.values[0] == name)
        assert result.rejected.height == cases, name
        assert result.accepted.height == 2 * cases, name


@pytest.mark.parametrize(("source", "changes", "column", "rule", "failures", "file_id"), CATALOGUE)
def test_bad_row_rejected(catalogue_results, source, changes, column, rule, failures, file_id):
    frame, result = catalogue_results[source]
    bad = frame.filter(pl.col(FILE_ID) == file_id, pl.col(ROW_NUMBER) == 2)
    rejected = result.rejected.filter(pl.col(FILE_ID) == file_id)
    assert rejected.rows(named=True) == [
        {
            FILE_ID: file_id,
            ROW_NUMBER: 2,
            "column_name": column,
            "rule": rule,
            "message": RULES[rule],
            "failures": failures,
            "raw_record": bad[RAW_RECORD].item(),
        }
    ]
    # the raw record is the original row, untouched (e.g. "12,5" and "usd" as written)
    assert json.loads(rejected["raw_record"].item()) == {**keyed(source, "X"), **changes}
    # the good rows around it in the same file are accepted
    accepted = result.accepted.filter(pl.col(FILE_ID) == file_id)
    assert accepted[ROW_NUMBER].to_list() == [1, 3]
    assert accepted[KEY_COLUMN[source]].to_list() == ["A", "B"]


# --- rows breaking several rules -----------------------------------------------------------


def test_two_raw_rules_first_by_column_order():
    """posting_date (4th column) comes before currency (11th) although 'format' < 'valid_date'.

    The batch's columns are reversed: the contract's column order counts, not the frame's.
    """
    row = {**keyed("sales_ledger", "L1"), "posting_date": "2025-02-30", "currency": "usd"}
    frame = batch(SALES_LEDGER, [row])
    frame = frame.select(list(reversed(frame.columns)))
    result = validate(SALES_LEDGER, frame, CTX)
    assert result.rejected.select("column_name", "rule", "message", "failures").rows() == [
        (
            "posting_date",
            "valid_date",
            RULES["valid_date"],
            "posting_date: valid_date; currency: format; currency: iso_currency",
        )
    ]
    assert result.accepted.height == 0


def test_two_typed_rules_first_by_column_order():
    """quantity comes before gross_amount although 'amount_sign…' sorts before 'invoice…'."""
    rows = [
        {**keyed("sales_ledger", "L1"), "quantity": "-2", "gross_amount": "-100.00"},
        {**keyed("sales_ledger", "L2"), "line_id": None, "quantity": "x"},
        keyed("sales_ledger", "L3"),
    ]
    frame = batch(SALES_LEDGER, rows)
    result = validate(SALES_LEDGER, frame, CTX)
    assert result.rejected.select(ROW_NUMBER, "column_name", "rule", "failures").rows() == [
        (
            1,
            "quantity",
            "invoice_quantity_positive",
            "quantity: invoice_quantity_positive; gross_amount: amount_sign_matches_document",
        ),
        (2, "line_id", "required", "line_id: required; quantity: format"),
    ]
    assert result.accepted["line_id"].to_list() == ["L3"]
    check_totals(frame, result, SALES_LEDGER)


# --- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SOURCES))
def test_duplicate_key_only_within_a_file(name):
    """A key repeated in one file: the second row is rejected. In another file of the same
    batch the key is accepted (the later file wins when merged downstream)."""
    source = SOURCES[name]
    rows = [
        {**keyed(name, "A"), FILE_ID: 1},
        {**keyed(name, "B"), FILE_ID: 1},
        {**keyed(name, "A"), FILE_ID: 1},
        {**keyed(name, "A"), FILE_ID: 2},
        {**keyed(name, "B"), FILE_ID: 2},
    ]
    frame = batch(source, rows)
    result = validate(source, frame, CTX)
    key_column = source.key[0]
    assert result.rejected.select(FILE_ID, ROW_NUMBER, "column_name", "rule").rows() == [
        (1, 3, key_column, "unique_key_in_file")
    ]
    assert result.accepted.select(FILE_ID, ROW_NUMBER).rows() == [(1, 1), (1, 2), (2, 1), (2, 2)]
    check_totals(frame, result, source)


@pytest.mark.parametrize(
    ("files_and_keys", "rejected"),
    [
        # keys growing within each file: the cheap test passes, nothing repeats
        ([(1, "A"), (1, "B"), (2, "A"), (2, "C")], []),
        # a key repeated next to itself breaks the order: the second row is rejected
        ([(1, "A"), (1, "B"), (1, "B"), (1, "C")], [(1, 3)]),
        # rows of a file not together: the order test cannot vouch for them
        ([(1, "A"), (2, "B"), (1, "A")], [(1, 2)]),
        ([(2, "A"), (1, "B"), (1, "C"), (2, "A")], [(2, 2)]),
    ],
)
def test_unique_key_in_file_with_and_without_ordered_keys(files_and_keys, rejected):
    rows = [{**keyed("sales_ledger", key), FILE_ID: file} for file, key in files_and_keys]
    result = validate(SALES_LEDGER, batch(SALES_LEDGER, rows), CTX)
    assert result.rejected.select(FILE_ID, ROW_NUMBER).rows() == rejected
    assert result.rejected["rule"].to_list() == ["unique_key_in_file"] * len(rejected)


def test_first_row_rejected_by_format_does_not_block_its_correction():
    """The fixture case L7: a row with an impossible date, then the same key written correctly."""
    rows = [
        {**keyed("sales_ledger", "L7"), "posting_date": "2025-02-30"},
        keyed("sales_ledger", "L7"),
    ]
    result = validate(SALES_LEDGER, batch(SALES_LEDGER, rows), CTX)
    assert result.rejected.select(ROW_NUMBER, "rule").rows() == [(1, "valid_date")]
    assert result.accepted.select("line_id", ROW_NUMBER).rows() == [("L7", 2)]


# --- customers known or not ----------------------------------------------------------------


def test_unknown_customer_rejected_in_ledger_accepted_in_activities():
    ledger = [keyed("sales_ledger", "L1"), {**keyed("sales_ledger", "L2"), "customer_id": "C9"}]
    result = validate(SALES_LEDGER, batch(SALES_LEDGER, ledger), CTX)
    assert result.rejected.select(ROW_NUMBER, "column_name", "rule").rows() == [
        (2, "customer_id", "customer_known")
    ]
    events = [keyed("activities", "E1"), {**keyed("activities", "E2"), "customer_id": "C9"}]
    result = validate(ACTIVITIES, batch(ACTIVITIES, events), CTX)
    assert result.rejected.height == 0
    assert result.accepted["customer_id"].to_list() == ["C1", "C9"]


def test_customer_check_skipped_without_customer_master():
    ledger = [{**keyed("sales_ledger", "L1"), "customer_id": "C9"}]
    ctx = ValidationContext(as_of=AS_OF, known_customers=None)
    result = validate(SALES_LEDGER, batch(SALES_LEDGER, ledger), ctx)
    assert result.rejected.height == 0
    assert result.accepted["customer_id"].to_list() == ["C9"]


def test_currency_and_activity_checks_skipped_without_their_lists():
    ctx = ValidationContext(as_of=AS_OF)  # currencies and known_activities are None
    ledger = [{**keyed("sales_ledger", "L1"), "currency": "JPY"}]
    result = validate(SALES_LEDGER, batch(SALES_LEDGER, ledger), ctx)
    assert result.rejected.height == 0
    assert result.accepted["currency"].to_list() == ["JPY"]
    events = [{**keyed("activities", "E1"), "activity": "teleport"}]
    result = validate(ACTIVITIES, batch(ACTIVITIES, events), ctx)
    assert result.rejected.height == 0
    assert result.accepted["activity"].to_list() == ["teleport"]


def test_key_of_128_characters_accepted():
    """The key limit counts characters, not bytes: 128 accented letters are 256 bytes."""
    rows = [keyed("customers", "K" * 128), keyed("customers", "\u00e9" * 128)]
    result = validate(CUSTOMERS, batch(CUSTOMERS, rows), CTX)
    assert result.rejected.height == 0
    assert result.accepted["customer_id"].str.len_chars().to_list() == [128, 128]


def test_text_may_span_lines_keys_may_not():
    """A quoted value with a line break: a two-line name is text; a key with one is not."""
    rows = [{**keyed("customers", "C1"), "customer_name": "Müller & Söhne\nAccounts dept."}]
    result = validate(CUSTOMERS, batch(CUSTOMERS, rows), CTX)
    assert result.accepted["customer_name"].to_list() == ["Müller & Söhne\nAccounts dept."]
    rows = [{**keyed("customers", "C1\nC2")}]
    result = validate(CUSTOMERS, batch(CUSTOMERS, rows), CTX)
    assert result.rejected.select("column_name", "rule").rows() == [("customer_id", "format")]


def test_empty_customer_master_rejects_every_ledger_line():
    ledger = [keyed("sales_ledger", "L1")]
    ctx = ValidationContext(as_of=AS_OF, known_customers=frozenset())
    result = validate(SALES_LEDGER, batch(SALES_LEDGER, ledger), ctx)
    assert result.rejected["rule"].to_list() == ["customer_known"]


def test_context_bounds_are_used():
    ctx = ValidationContext(
        as_of=dt.date(2024, 6, 30),
        min_date=dt.date(2024, 1, 1),
        max_future_days=0,
        known_customers=frozenset({"C1"}),
    )
    dates = ["2023-12-31", "2024-01-01", "2024-06-30", "2024-07-01"]
    rows = [{**keyed("sales_ledger", f"L{i}"), "posting_date": d} for i, d in enumerate(dates)]
    result = validate(SALES_LEDGER, batch(SALES_LEDGER, rows), ctx)
    assert result.rejected.select(ROW_NUMBER, "rule").rows() == [
        (1, "plausible_date"),
        (4, "plausible_date"),
    ]
    assert result.accepted["posting_date"].to_list() == [dt.date(2024, 1, 1), dt.date(2024, 6, 30)]


# --- rejected rows keep their identity -----------------------------------------------------


def test_rejected_rows_keep_file_row_and_raw_record():
    rows = [
        {**keyed("activities", "E1"), FILE_ID: 7, ROW_NUMBER: 11, "quantity": "0"},
        {**keyed("activities", "E2"), FILE_ID: 7, ROW_NUMBER: 12},
        {
            **keyed("activities", "E3"),
            FILE_ID: 7,
            ROW_NUMBER: 13,
            "event_date": "2025-13-01",
            "channel": "Ünïcode",
        },
        {**keyed("activities", "E1"), FILE_ID: 3, ROW_NUMBER: 5},
        {**keyed("activities", "E4"), FILE_ID: 3, ROW_NUMBER: 6, "minutes": "-1"},
    ]
    frame = batch(ACTIVITIES, rows)
    result = validate(ACTIVITIES, frame, CTX)
    records = frame.select(FILE_ID, ROW_NUMBER, RAW_RECORD).rows()
    expected = [
        (3, 6, "minutes", "format", records[4][2]),
        (7, 11, "quantity", "quantity_positive", records[0][2]),
        (7, 13, "event_date", "valid_date", records[2][2]),
    ]
    got = result.rejected.select(FILE_ID, ROW_NUMBER, "column_name", "rule", "raw_record")
    assert got.rows() == expected
    assert json.loads(result.rejected["raw_record"][2])["channel"] == "Ünïcode"
    assert result.accepted.select(FILE_ID, ROW_NUMBER, "event_id").rows() == [
        (7, 12, "E2"),
        (3, 5, "E1"),
    ]
    check_totals(frame, result, ACTIVITIES)


# --- edge cases: empty batch, every row rejected, missing columns --------------------------


@pytest.mark.parametrize("name", list(SOURCES))
def test_empty_batch(name):
    source = SOURCES[name]
    frame = batch(source, [])
    result = validate(source, frame, CTX)
    assert result.accepted.height == 0
    assert result.rejected.height == 0
    check_totals(frame, result, source)


EVERY_ROW_BAD = {
    # one row failing the raw schema, one failing a typed rule
    "customers": [
        {**keyed("customers", "C1"), "acquired_on": None},
        {**keyed("customers", "C2"), "acquired_on": "2999-01-01"},
    ],
    "sales_ledger": [
        {**keyed("sales_ledger", "L1"), "currency": "eur"},
        {**keyed("sales_ledger", "L2"), "customer_id": "C404"},
    ],
    "activities": [
        {**keyed("activities", "E1"), "minutes": "x"},
        {**keyed("activities", "E2"), "quantity": "0"},
    ],
    "resources": [
        {**keyed("resources", "r1"), "period": "2025"},
        {**keyed("resources", "r2"), "cost_amount": "-1"},
    ],
    "feedback": [
        {**keyed("feedback", "C1"), "score": "9.5"},
        {**keyed("feedback", "C2"), "score": "12"},
    ],
}


@pytest.mark.parametrize("name", list(SOURCES))
@pytest.mark.parametrize("which", ["raw-only", "raw-and-typed"])
def test_every_row_rejected(name, which):
    source = SOURCES[name]
    rows = EVERY_ROW_BAD[name] if which == "raw-and-typed" else EVERY_ROW_BAD[name][:1] * 2
    frame = batch(source, rows)
    result = validate(source, frame, CTX)
    assert result.accepted.height == 0
    assert result.rejected[ROW_NUMBER].to_list() == [1, 2]
    check_totals(frame, result, source)


def test_missing_optional_column_must_be_added_by_the_caller():
    """validate needs every contract column; landing.read adds absent ones as null Strings."""
    frame = batch(SALES_LEDGER, [keyed("sales_ledger", "L1")]).drop("channel")
    with pytest.raises(ValueError, match="failures not tied to a row"):
        validate(SALES_LEDGER, frame, CTX)


def test_extra_columns_are_ignored():
    frame = batch(RESOURCES, [keyed("resources", "r1")]).with_columns(note=pl.lit("x"))
    result = validate(RESOURCES, frame, CTX)
    assert result.accepted.columns == [*RESOURCES.column_names, FILE_ID, ROW_NUMBER]
    assert result.rejected.height == 0


# --- label case --------------------------------------------------------------------------------


def test_validation_does_not_lowercase():
    """Lower-casing label columns is landing.read's job: validate takes values as given, so an
    upper-case document type is outside the domain and other labels pass through unchanged."""
    rows = [
        {**keyed("sales_ledger", "L1"), "document_type": "Invoice"},
        {**keyed("sales_ledger", "L2"), "channel": "Web"},
    ]
    result = validate(SALES_LEDGER, batch(SALES_LEDGER, rows), CTX)
    assert result.rejected.select(ROW_NUMBER, "column_name", "rule").rows() == [
        (1, "document_type", "domain")
    ]
    assert result.accepted["channel"].to_list() == ["Web"]


@pytest.mark.parametrize(
    "setting",
    [{"validation_enabled": False}, {"validation_depth": ValidationDepth.SCHEMA_ONLY}],
    ids=["validation-disabled", "schema-only"],
)
def test_pandera_settings_cannot_switch_the_row_checks_off(setting):
    """PANDERA_VALIDATION_ENABLED / PANDERA_VALIDATION_DEPTH (here via config_context) must not
    turn validation into accepting every row."""
    rows = [
        keyed("sales_ledger", "L1"),
        {**keyed("sales_ledger", "L2"), "quantity": "-1"},
        {**keyed("sales_ledger", "L3"), "currency": "usd"},
    ]
    with config_context(**setting):
        result = validate(SALES_LEDGER, batch(SALES_LEDGER, rows), CTX)
    assert result.rejected.select(ROW_NUMBER, "rule").rows() == [
        (2, "invoice_quantity_positive"),
        (3, "format"),
    ]
    assert result.accepted["line_id"].to_list() == ["L1"]


NUMBER_KINDS = sorted(
    {c.kind for s in SOURCES.values() for c in s.columns if c.kind.shape is not None},
    key=lambda k: k.name,
)


@pytest.mark.parametrize("kind", NUMBER_KINDS, ids=lambda k: k.name)
def test_too_long_is_shape_and_not_pattern(kind):
    """number_fits_type tests one regular expression (`too_long`); it must fail exactly the
    values that have the number's shape but do not match its pattern with the type's digits."""
    digits = ["", "0", "7", "12", "123", "1234", "9" * 14, "9" * 15, "9" * 16, "9" * 17, "9" * 30]
    values = [
        f"{sign}{whole}{point}{fraction}"
        for sign, whole, point, fraction in itertools.product(
            ["", "-", "+"], digits, ["", ".", ".."], ["", "5", "50", "505", "5050", "50505"]
        )
    ] + ["1e5", " 1", "1 ", "a", "١٢", "1,5", "0x10", "--1", "1.2.3"]
    frame = pl.DataFrame({"v": values})
    c = pl.col("v")
    got = frame.select(c.str.contains(kind.too_long)).to_series()
    want = frame.select(c.str.contains(kind.shape) & ~c.str.contains(kind.pattern)).to_series()
    assert got.to_list() == want.to_list()
    assert got.sum() > 0 and (~got).sum() > 0  # both outcomes occur


# Values for the property tests below: good ones repeated, and for each kind checked per distinct
# value a few that break its rules (format, valid_date, domain, iso_currency); numbers and keys
# for the columns cleared in one pass (format, number_fits_type).
_POOLS = {
    "gross_amount": ["10.00", "-2.5", "7", "1.234", "12345678901234567", "1e5", "1.", None],
    "quantity": ["1", "2.5", "3.12345", "x", None],
    "minutes": ["4.5", "12", "-1", "1.005", None],
    "document_id": ["D1", "D2", " D3", "D\t4", "x" * 129],
    "document_type": ["invoice", "credit_note", "Invoice", "refund", "in voice", "x" * 70],
    "posting_date": ["2024-03-01", "2024-03-02", "2024-02-30", "2024-3-01", "01.03.2024", None],
    "currency": ["EUR", "USD", "eur", "XXY", "EURO", None],
    "channel": ["web", "field", "_web", "web-shop", None],
    "event_date": ["2024-03-01", "2024-03-02", "2023-02-29", "2024-03-1", None],
    "activity": ["order_entry", "visit", "support", "9visit", "visit!"],
    "flags": ["rush", "rush|gift", "rush||gift", "|rush", None],
}


def _mixed_batch(source: Source, data) -> pl.DataFrame:
    n = data.draw(st.integers(min_value=1, max_value=40), label="rows")
    rows = []
    for i in range(n):
        row = keyed(source.name, f"K{i}")
        for column, pool in _POOLS.items():
            if column in row:
                # mostly the row's good value, sometimes one of the pool (good or bad)
                if data.draw(st.integers(0, 3), label=f"{column} changed") == 0:
                    row[column] = data.draw(st.sampled_from(pool), label=column)
        rows.append(row)
    return batch(source, rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), source=st.sampled_from([SALES_LEDGER, ACTIVITIES]))
def test_rules_tested_per_distinct_value_reject_what_row_by_row_rejects(data, source):
    """Dates, labels, flags and currencies are first tested once per distinct value of the
    batch; the rows accepted and rejected (with every rule broken) must be exactly those of the
    same rules tested row by row, however good and bad values repeat."""
    frame = _mixed_batch(source, data)
    fast = validate(source, frame, CTX)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(validation, "_DISTINCT_KINDS", frozenset())
        slow = validate(source, frame, CTX)
    assert_frame_equal(fast.accepted, slow.accepted)
    assert_frame_equal(fast.rejected, slow.rejected)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), source=st.sampled_from([SALES_LEDGER, ACTIVITIES]))
def test_columns_cleared_in_one_pass_reject_what_the_rules_one_by_one_reject(data, source):
    """The raw checks skip the columns whose values all pass every rule (one pass over the
    batch, a number's two rules as its one pattern); the rows accepted and rejected must be
    exactly those of every rule checked on every column."""
    frame = _mixed_batch(source, data)
    fast = validate(source, frame, CTX)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(validation, "cleared_columns", lambda source, batch: frozenset())
        slow = validate(source, frame, CTX)
    assert_frame_equal(fast.accepted, slow.accepted)
    assert_frame_equal(fast.rejected, slow.rejected)


def test_cleared_columns_are_those_without_a_bad_value():
    rows = [keyed("sales_ledger", f"L{i}") for i in range(5)]
    rows[2] = {**rows[2], "gross_amount": "1.234", "posting_date": "2024-02-30"}
    frame = batch(SALES_LEDGER, rows)
    cleared = validation.cleared_columns(SALES_LEDGER, frame)
    assert cleared == set(SALES_LEDGER.column_names) - {"gross_amount", "posting_date"}
    assert validation.cleared_columns(SALES_LEDGER, frame.drop("channel")) == cleared - {"channel"}


def test_rules_tested_per_distinct_value_when_all_pass(monkeypatch):
    """A batch whose distinct values all pass is cleared without testing row by row (the
    point of the distinct test: the rows' regular expressions are never run)."""
    calls: list[str] = []
    row_by_row = validation._is_real_date

    def counted(c):
        calls.append("valid_date")
        return row_by_row(c)

    monkeypatch.setattr(validation, "_is_real_date", counted)
    good = batch(ACTIVITIES, [keyed("activities", f"E{i}") for i in range(50)])
    assert validate(ACTIVITIES, good, CTX).rejected.height == 0
    assert calls == ["valid_date"]  # built once, on the distinct values
    bad = batch(
        ACTIVITIES,
        [keyed("activities", "E1"), {**keyed("activities", "E2"), "event_date": "2024-02-30"}],
    )
    calls.clear()
    result = validate(ACTIVITIES, bad, CTX)
    assert result.rejected.select(ROW_NUMBER, "rule").rows() == [(2, "valid_date")]
    assert calls == ["valid_date", "valid_date"]  # the distinct values, then row by row
