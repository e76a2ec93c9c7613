"""The landing contract: the sources (feedback optional), their columns, keys and value kinds.

One place describes each source; the pandera schemas, the parser and the summary are built
from it, and a test checks the warehouse DDL (sql/warehouse/raw_tables.sql) against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

MONEY = pl.Decimal(18, 2)
QUANTITY = pl.Decimal(18, 4)
MINUTES = pl.Decimal(18, 2)


@dataclass(frozen=True)
class Kind:
    """How a column is written in a landing file and what type it has once parsed."""

    name: str
    dtype: pl.DataType
    pattern: str  # a raw value must match this regular expression
    description: str
    # Numbers only: the shape of any decimal of this kind (rule `format`); `pattern` adds the
    # digit limits of the type (rule `number_fits_type`), so a number too long for its type is
    # told apart from text that is no number at all.
    shape: str | None = None
    # Numbers only: a value of that shape with more digits than the type holds, i.e. matching
    # `shape` but not `pattern`. One regular expression where the two took two (a test checks
    # that they agree).
    too_long: str | None = None
    # At most this many characters (part of rule `format`). Checked apart from `pattern`: a
    # bounded repeat such as {0,126} makes the regular expression several times slower.
    max_chars: int | None = None


KEY = Kind(
    "key",
    pl.String,
    r"^[^\s\p{Cc}]([^\p{Cc}]*[^\s\p{Cc}])?$",
    "1-128 characters, no leading/trailing spaces, no control characters (tab, line break, NUL)",
    max_chars=128,
)
# Text may span lines (a quoted value with a line break in it, e.g. a two-line name).
TEXT = Kind("text", pl.String, r"(?s)^.*\S.*$", "non-blank text")
LABEL = Kind("label", pl.String, r"^[A-Za-z][A-Za-z0-9_]{0,63}$", "a word: letters, digits, _")
FLAGS = Kind(
    "flags", pl.String, r"^[A-Za-z][A-Za-z0-9_]*(\|[A-Za-z][A-Za-z0-9_]*)*$", "words joined by |"
)
DATE = Kind("date", pl.Date, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "an ISO date YYYY-MM-DD")
PERIOD = Kind("period", pl.String, r"^[0-9]{4}-(0[1-9]|1[0-2])$", "a month YYYY-MM")
AMOUNT = Kind(
    "money",
    MONEY,
    r"^-?[0-9]{1,16}(\.[0-9]{1,2})?$",
    "a decimal with at most 16 digits before and 2 after the point",
    shape=r"^-?[0-9]+(\.[0-9]+)?$",
    too_long=r"^-?([0-9]{17,}(\.[0-9]+)?|[0-9]+\.[0-9]{3,})$",
)
UNITS = Kind(
    "quantity",
    QUANTITY,
    r"^-?[0-9]{1,14}(\.[0-9]{1,4})?$",
    "a decimal with at most 14 digits before and 4 after the point",
    shape=r"^-?[0-9]+(\.[0-9]+)?$",
    too_long=r"^-?([0-9]{15,}(\.[0-9]+)?|[0-9]+\.[0-9]{5,})$",
)
DURATION = Kind(
    "minutes",
    MINUTES,
    r"^[0-9]{1,16}(\.[0-9]{1,2})?$",
    "a non-negative decimal with at most 16 digits before and 2 after the point",
    shape=r"^[0-9]+(\.[0-9]+)?$",
    too_long=r"^([0-9]{17,}(\.[0-9]+)?|[0-9]+\.[0-9]{3,})$",
)
CURRENCY = Kind("currency", pl.String, r"^[A-Z]{3}$", "an ISO 4217 code")
# Any whole number is a score as written (rule `format`); whether it lies in 0..10 is the
# rule `score_in_range`, so that "11" and "-1" are reported for what they are.
SCORE = Kind(
    "score",
    pl.Int16,
    r"^-?[0-9]{1,3}$",
    "a whole number from 0 to 10",
    shape=r"^-?[0-9]+$",
    too_long=r"^-?[0-9]{4,}$",
)


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = True
    default: str | None = None  # value used when an optional column is absent or empty
    lowercase: bool = False  # labels are compared case-insensitively and stored lower case


@dataclass(frozen=True)
class Source:
    name: str  # landing sub-folder and Dagster/raw table name stem
    table: str  # raw table in the work store
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    daily: bool  # one file per business day, partitioned by day in Dagster
    description: str

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


CUSTOMERS = Source(
    name="customers",
    table="raw.customers",
    columns=(
        Column("customer_id", KEY),
        Column("customer_name", TEXT),
        Column("segment", TEXT),
        Column("region", TEXT),
        Column("acquired_on", DATE),
    ),
    key=("customer_id",),
    daily=False,
    description="Customer master: one row per customer; the newest snapshot file wins.",
)

SALES_LEDGER = Source(
    name="sales_ledger",
    table="raw.sales_ledger",
    columns=(
        Column("line_id", KEY),
        Column("document_id", KEY),
        Column("document_type", LABEL, lowercase=True),
        Column("posting_date", DATE),
        Column("customer_id", KEY),
        Column("product_id", KEY),
        Column("quantity", UNITS),
        Column("gross_amount", AMOUNT),
        Column("discount_amount", AMOUNT),
        Column("cogs_amount", AMOUNT),
        Column("currency", CURRENCY),
        Column("channel", LABEL, required=False, lowercase=True),
        Column("off_invoice_amount", AMOUNT, required=False, default="0"),
    ),
    key=("line_id",),
    daily=True,
    description="Sales ledger: one row per invoice or credit-note line, keyed by line_id.",
)

ACTIVITIES = Source(
    name="activities",
    table="raw.activity_events",
    columns=(
        Column("event_id", KEY),
        Column("event_date", DATE),
        Column("customer_id", KEY),
        Column("activity", LABEL, lowercase=True),
        Column("quantity", UNITS, required=False, default="1"),
        Column("channel", LABEL, required=False, lowercase=True),
        Column("minutes", DURATION, required=False),
        Column("amount", AMOUNT, required=False),
        Column("flags", FLAGS, required=False, lowercase=True),
    ),
    key=("event_id",),
    daily=True,
    description="Cost-causing activity events: one row per event, keyed by event_id.",
)

RESOURCES = Source(
    name="resources",
    table="raw.resource_costs",
    columns=(
        Column("period", PERIOD),
        Column("resource", LABEL, lowercase=True),
        Column("cost_amount", AMOUNT),
        Column("practical_capacity_minutes", DURATION, required=False),
    ),
    key=("period", "resource"),
    daily=False,
    description="Departmental resource costs: one row per resource per month.",
)

# Optional: without a feedback/ folder there are simply no survey scores (every customer's
# advocacy is "no response").
FEEDBACK = Source(
    name="feedback",
    table="raw.feedback",
    columns=(
        Column("customer_id", KEY),
        Column("survey_date", DATE),
        Column("score", SCORE),
    ),
    key=("customer_id", "survey_date"),
    daily=False,
    description="Survey answers (NPS, 0-10): one row per customer and survey date.",
)

SOURCES: dict[str, Source] = {
    s.name: s for s in (CUSTOMERS, SALES_LEDGER, ACTIVITIES, RESOURCES, FEEDBACK)
}

DOCUMENT_TYPES = ("invoice", "credit_note")

# ISO 4217 active currency codes (2024 list).
ISO_CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
    MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWG""".split()
)
