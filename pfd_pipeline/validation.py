"""Row-level validation of landing data with pandera (polars backend).

Each source is checked by two pandera schemas built from its contract in `sources.py`:

1. the *raw* schema checks every value as written (strings): required, format, digits that fit
   the decimal type, domain;
2. rows that pass are parsed to their types, and the *typed* schema checks values and rows:
   plausible dates, sign rules, discount not above gross, keys unique in the file, customer
   known, currency accepted, activity known to the cost model.

A row that breaks any rule is rejected with the first rule it broke (in column order) and the
list of all of them; every other row is accepted. Nothing is dropped silently.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl
from pandera.config import ValidationDepth, config_context

from pfd_pipeline.sources import (
    ACTIVITIES,
    CURRENCY,
    CUSTOMERS,
    DATE,
    DOCUMENT_TYPES,
    FEEDBACK,
    FLAGS,
    ISO_CURRENCIES,
    LABEL,
    PERIOD,
    RESOURCES,
    SALES_LEDGER,
    Column,
    Source,
)

# Internal columns carried next to the data through validation and into the raw tables.
FILE_ID = "_file_id"
ROW_NUMBER = "_row_number"
RAW_RECORD = "_raw_record"
POSITION = "_pos"

# Every rule a row can break, with the sentence a data engineer reads in rejected_rows.
RULES: dict[str, str] = {
    "required": "a value is required",
    "format": "value is not in the expected format",
    "number_fits_type": (
        "number has more digits than its column holds (money and minutes: 16 before and 2 after "
        "the point, quantities: 14 and 4); it is never rounded or cut"
    ),
    "valid_date": "not a real calendar date",
    "domain": "value is not one of the allowed values",
    "iso_currency": "not an ISO 4217 currency code",
    "currency_accepted": (
        "currency is not one the pipeline accepts (validation.currencies); without fx_rates "
        "amounts in other currencies cannot be added up"
    ),
    "plausible_date": "date is outside the plausible range",
    "not_in_future": "date is in the future",
    "unique_key_in_file": "key repeats an earlier row of the same file",
    "invoice_quantity_positive": "an invoice line must have quantity > 0",
    "credit_note_quantity_negative": "a credit-note line must have quantity < 0",
    "amount_sign_matches_document": "amount must be >= 0 on an invoice and <= 0 on a credit note",
    "discount_not_above_gross": "discount must not be larger than the gross amount",
    "customer_known": "customer_id is not in the customer master",
    "activity_known": (
        "activity is not one the cost model's activities are driven by (driver events); "
        "its events could not be costed"
    ),
    "quantity_positive": "driver quantity must be > 0",
    "not_negative": "value must not be negative",
    "score_in_range": "survey score must be a whole number from 0 to 10",
}
_RULE_BY_MESSAGE = {message: rule for rule, message in RULES.items()}


@dataclass(frozen=True)
class ValidationContext:
    """What validation needs beyond the rows: today's date, the date bounds, known customers,
    accepted currencies and the activities the cost model knows."""

    as_of: dt.date
    min_date: dt.date = dt.date(2000, 1, 1)
    max_future_days: int = 1
    # None: the customer check is skipped; a run passes the master's ids as a Series
    # (ingest.known_customers), tests a set
    known_customers: frozenset[str] | pl.Series | None = None
    currencies: frozenset[str] | None = None  # None: any ISO 4217 code is accepted
    known_activities: frozenset[str] | None = None  # None: the activity check is skipped

    @property
    def max_date(self) -> dt.date:
        return self.as_of + dt.timedelta(days=self.max_future_days)


@dataclass(frozen=True)
class ValidationResult:
    accepted: pl.DataFrame  # typed source columns + _file_id, _row_number
    # _file_id, _row_number, column_name, rule, message, failures, raw_record
    rejected: pl.DataFrame


def _check(rule: str, build: Callable[[pl.Expr], pl.Expr]) -> pa.Check:
    """A pandera check named after one of RULES; `build` maps the column to a boolean per row.

    Nulls pass: whether a value is required is its own rule.
    """
    if rule not in RULES:
        raise KeyError(rule)

    def fn(data: pa.PolarsData) -> pl.LazyFrame | bool:
        col = pl.col(data.key)
        return _passed_or_rows(data.lazyframe.select((build(col) | col.is_null()).alias(data.key)))

    return pa.Check(fn, name=rule, error=RULES[rule])


def _passed_or_rows(rows: pl.LazyFrame) -> pl.LazyFrame | bool:
    """A check's result per row, or True if every row passed (a null passes, as pandera's
    `ignore_na` has it): pandera then skips what it does per row for a check that may have
    failed (a null-filled copy of the result, its `all`, the failure cases' frame)."""
    done = rows.collect()
    return True if done.to_series().all() else done.lazy()


def _is_real_date(c: pl.Expr) -> pl.Expr:
    return c.str.to_date("%Y-%m-%d", strict=False).is_not_null()


# Kinds whose values repeat within a file (a day's dates, labels, codes): whether a batch's
# values all pass their rules is tested once per distinct value. Keys, numbers and text are
# mostly distinct and are tested row by row.
_DISTINCT_KINDS = frozenset({DATE, LABEL, FLAGS, CURRENCY, PERIOD})


def _value_rules(col: Column) -> list[tuple[str, Callable[[pl.Expr], pl.Expr]]]:
    """The rules on a column's value as written, in order: (rule, test per value)."""
    kind = col.kind
    if kind.max_chars is not None:
        rules = [
            (
                "format",
                lambda c, p=kind.pattern, n=kind.max_chars: (
                    c.str.contains(p) & (c.str.len_chars() <= n)
                ),
            )
        ]
    elif kind.shape is None:
        rules = [("format", lambda c, p=kind.pattern: c.str.contains(p))]
    else:  # a number: not a number at all is `format`, too many digits `number_fits_type`
        rules = [
            ("format", lambda c, s=kind.shape: c.str.contains(s)),
            ("number_fits_type", lambda c, t=kind.too_long: ~c.str.contains(t)),
        ]
    if kind is DATE:
        rules.append(("valid_date", _is_real_date))
    if col.name == "currency":
        rules.append(("iso_currency", lambda c: c.is_in(sorted(ISO_CURRENCIES))))
    if col.name == "document_type":
        rules.append(("domain", lambda c: c.is_in(list(DOCUMENT_TYPES))))
    return rules


def _every_rule(col: Column) -> Callable[[pl.Expr], pl.Expr]:
    """A test per value that holds exactly when every rule of `_value_rules` holds. A number's
    `pattern` is its shape with the type's digits, so one regular expression covers both its
    rules (a test checks that `too_long` is the shape without the pattern)."""
    rules = _value_rules(col)
    if col.kind.shape is not None:  # `format` and `number_fits_type` as the one pattern
        pattern = ("format", lambda c, p=col.kind.pattern: c.str.contains(p))
        rules = [pattern, *(r for r in rules if r[0] not in ("format", "number_fits_type"))]
    builds = [build for _, build in rules]
    return lambda c: functools.reduce(operator.and_, (build(c) for build in builds))


def cleared_columns(source: Source, batch: pl.DataFrame) -> frozenset[str]:
    """The columns whose every value in the batch passes every rule on the value as written,
    found in one pass over the batch: the raw schema then checks them for nulls only.

    Most batches have no bad value at all, and the rules one by one cost more than this: each
    pandera check is a pass of its own, a number's two rules are two regular expressions where
    its pattern is one, and a date's or a label's rules each took the distinct values again
    (a batch of 495,000 ledger lines: the raw checks 410 -> 269 ns a line of CPU, this pass
    255 of it; 954,000 events 164 -> 117). A column with a bad value is checked rule by rule,
    row by row.
    """
    tests = []
    for col in source.columns:
        if col.name not in batch.columns:  # not cleared: the schema reports it missing
            continue
        values = pl.col(col.name)
        if col.kind in _DISTINCT_KINDS:
            values = values.drop_nulls().unique()
        tests.append(_every_rule(col)(values).all().alias(col.name))  # nulls pass
    passed = batch.select(tests).row(0, named=True)
    return frozenset(name for name, ok in passed.items() if ok)


def raw_schema(source: Source, cleared: frozenset[str] = frozenset()) -> pa.DataFrameSchema:
    """Checks on values as written in the file, before any parsing; the `cleared` columns
    (`cleared_columns`) are checked for nulls only."""
    columns = {
        col.name: pa.Column(
            pl.String,
            checks=[]
            if col.name in cleared
            else [_check(rule, build) for rule, build in _value_rules(col)],
            nullable=not col.required,
        )
        for col in source.columns
    }
    return pa.DataFrameSchema(columns, strict=False, name=f"{source.name}_raw")


def parse(source: Source, frame: pl.DataFrame) -> pl.DataFrame:
    """Cast rows that passed the raw schema to their types; defaults fill absent optional values."""
    exprs = []
    for col in source.columns:
        value = pl.col(col.name)
        if col.default is not None:
            value = value.fill_null(pl.lit(col.default))
        if col.kind.dtype == pl.Date:
            value = value.str.to_date("%Y-%m-%d")
        elif col.kind.dtype != pl.String:
            value = value.cast(col.kind.dtype)
        exprs.append(value.alias(col.name))
    return frame.with_columns(exprs)


def _between(low: dt.date, high: dt.date) -> Callable[[pl.Expr], pl.Expr]:
    return lambda c: c.is_between(pl.lit(low), pl.lit(high))


def _unique_in_file(key: tuple[str, ...]) -> pa.Check:
    """Only the second and later rows with a key are rejected: the first one stands.

    Files mostly number their rows in order, so a single-column key first gets a cheap test:
    when the rows come file by file and the key grows strictly within each file, no key can
    repeat, and the hash of every key per file (70 ns a row) is skipped for about 10 ns a row.
    """
    rule = "unique_key_in_file"

    def fn(data: pa.PolarsData) -> pl.LazyFrame | bool:
        first = pl.struct(list(key)).is_first_distinct().over(FILE_ID)
        if len(key) == 1:
            k, file = pl.col(key[0]), pl.col(FILE_ID)
            same_file = file == file.shift(1)
            ordered = (file >= file.shift(1)) & (~same_file | (k > k.shift(1)))
            if data.lazyframe.select(ordered.slice(1).all(ignore_nulls=False)).collect().item():
                return True
        return _passed_or_rows(data.lazyframe.select(first.alias(data.key)))

    return pa.Check(fn, name=rule, error=RULES[rule])


def _sign_matches_document() -> pa.Check:
    return _check(
        "amount_sign_matches_document",
        lambda c: pl.when(pl.col("document_type") == "invoice").then(c >= 0).otherwise(c <= 0),
    )


def _typed_checks(source: Source, ctx: ValidationContext) -> dict[str, list[pa.Check]]:
    plausible = _check("plausible_date", _between(ctx.min_date, ctx.max_date))
    checks: dict[str, list[pa.Check]] = {source.key[0]: [_unique_in_file(source.key)]}
    if source is SALES_LEDGER:
        checks["posting_date"] = [plausible]
        checks["quantity"] = [
            _check(
                "invoice_quantity_positive",
                lambda c: (pl.col("document_type") != "invoice") | (c > 0),
            ),
            _check(
                "credit_note_quantity_negative",
                lambda c: (pl.col("document_type") != "credit_note") | (c < 0),
            ),
        ]
        for amount in ("gross_amount", "cogs_amount", "off_invoice_amount"):
            checks[amount] = [_sign_matches_document()]
        checks["discount_amount"] = [
            _sign_matches_document(),
            _check("discount_not_above_gross", lambda c: c.abs() <= pl.col("gross_amount").abs()),
        ]
    elif source is ACTIVITIES:
        checks["event_date"] = [plausible]
        checks["quantity"] = [_check("quantity_positive", lambda c: c > 0)]
    elif source is RESOURCES:
        checks["cost_amount"] = [_check("not_negative", lambda c: c >= 0)]
    elif source is FEEDBACK:
        checks["survey_date"] = [plausible]
        checks["score"] = [_check("score_in_range", lambda c: c.is_between(0, 10))]
    elif source is CUSTOMERS:
        checks["acquired_on"] = [
            _check("not_in_future", lambda c: c <= pl.lit(ctx.max_date)),
            _check("plausible_date", lambda c: c >= pl.lit(dt.date(1900, 1, 1))),
        ]
    # Revenue for a customer the master does not know is a data error. Activity events for an
    # unknown customer are accepted: the cost engine reports their cost as unassigned with its
    # reason, so that cost is never lost from the reconciliation.
    # A survey answer of a customer the master does not know cannot be matched to a profit.
    if source in (SALES_LEDGER, FEEDBACK) and ctx.known_customers is not None:
        known = _values(ctx.known_customers)
        # appended: customer_id is also the first key column of feedback (unique_key_in_file)
        checks.setdefault("customer_id", []).append(
            _check("customer_known", lambda c: c.is_in(known))
        )
    # Amounts in several currencies cannot be added up without exchange rates.
    if source is SALES_LEDGER and ctx.currencies is not None:
        accepted = _values(ctx.currencies)
        checks["currency"] = [_check("currency_accepted", lambda c: c.is_in(accepted))]
    # An event of an activity the cost model does not drive would silently cost nothing (its
    # minutes end up as unused capacity): reject it so that a misspelt or new activity shows.
    if source is ACTIVITIES and ctx.known_activities is not None:
        activities = _values(ctx.known_activities)
        checks["activity"] = [_check("activity_known", lambda c: c.is_in(activities))]
    return checks


def _values(values: frozenset[str] | pl.Series) -> pl.Expr:
    """The values as a one-row list literal for `is_in` (a Series as it is: 0.4 ms for the
    200,000 customers at L)."""
    if isinstance(values, pl.Series):
        return pl.lit(values.implode())
    return _set_values(values)


@functools.lru_cache(maxsize=4)  # a run has three: customers, currencies, activities
def _set_values(values: frozenset[str]) -> pl.Expr:
    """A set's values, sorted, as `_values`. Cached: the schema is built for every batch (a
    frozenset keeps its hash, so the lookup is cheap)."""
    return pl.lit(pl.Series(sorted(values), dtype=pl.String).implode())


def typed_schema(source: Source, ctx: ValidationContext) -> pa.DataFrameSchema:
    """Checks on parsed values and on rows (sign rules, keys, known customers)."""
    extra = _typed_checks(source, ctx)
    columns = {
        col.name: pa.Column(
            col.kind.dtype, checks=extra.get(col.name, []), nullable=not col.required
        )
        for col in source.columns
    }
    return pa.DataFrameSchema(columns, strict=False, name=f"{source.name}_typed")


def _failures(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> pl.DataFrame:
    """(index, column, rule) for every failing cell; raises if a failure is not tied to a row.

    The row checks always run: PANDERA_VALIDATION_ENABLED=False or PANDERA_VALIDATION_DEPTH=
    SCHEMA_ONLY in the environment would otherwise accept every row without a word.
    """
    try:
        with config_context(
            validation_enabled=True, validation_depth=ValidationDepth.SCHEMA_AND_DATA
        ):
            schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        unplaced = cases.filter(pl.col("index").is_null())
        if unplaced.height:
            raise ValueError(f"{schema.name}: failures not tied to a row:\n{unplaced}") from exc
        return cases.select(
            pl.col("index").cast(pl.Int64),
            pl.col("column").alias("column_name"),
            # pandera reports a custom check by its error text; map it back to the rule name
            pl.col("check").replace({**_RULE_BY_MESSAGE, "not_nullable": "required"}).alias("rule"),
        )
    return pl.DataFrame(schema={"index": pl.Int64, "column_name": pl.String, "rule": pl.String})


def _not_among(failures: pl.DataFrame) -> pl.Expr:
    """True for the rows whose position is not among the failures' (the order stays; a filter
    is several times cheaper than an anti join, which copies every row even when none fail)."""
    return ~pl.col(POSITION).is_in(failures.get_column(POSITION).implode())


def validate(source: Source, batch: pl.DataFrame, ctx: ValidationContext) -> ValidationResult:
    """Split a batch of raw rows (strings, with _file_id/_row_number/_raw_record) into accepted
    and rejected.

    Every source column must be present (absent optional columns as null String columns).
    Row order matters: within a file, the first row with a key stands, so joins keep the order.
    """
    batch = batch.with_row_index(POSITION).with_columns(pl.col(POSITION).cast(pl.Int64))
    raw = raw_schema(source, cleared_columns(source, batch))
    raw_fail = _failures(raw, batch).with_columns(pl.col("index").alias(POSITION))
    passed = batch.filter(_not_among(raw_fail))
    typed = parse(source, passed)
    typed_fail = _failures(typed_schema(source, ctx), typed).join(
        typed.select(pl.col(POSITION))
        .with_row_index("index")
        .with_columns(pl.col("index").cast(pl.Int64)),
        on="index",
    )
    failures = pl.concat([raw_fail, typed_fail], how="diagonal_relaxed")
    order = {name: i for i, name in enumerate(source.column_names)}
    per_row = (
        failures.with_columns(
            pl.col("column_name").replace_strict(order, default=len(order)).alias("_order")
        )
        .sort(POSITION, "_order", "rule")
        .group_by(POSITION, maintain_order=True)
        .agg(
            pl.col("column_name").first(),
            pl.col("rule").first(),
            pl.concat_str([pl.col("column_name"), pl.col("rule")], separator=": ").alias("_all"),
        )
        .with_columns(
            pl.col("rule").replace_strict(RULES, default=None).alias("message"),
            pl.col("_all").list.join("; ").alias("failures"),
        )
    )
    if RAW_RECORD not in batch.columns:  # ingestion adds it for the rejected rows only
        batch = batch.with_columns(pl.lit(None, dtype=pl.String).alias(RAW_RECORD))
    rejected = (
        per_row.join(batch.select(POSITION, FILE_ID, ROW_NUMBER, RAW_RECORD), on=POSITION)
        .select(
            FILE_ID,
            ROW_NUMBER,
            "column_name",
            "rule",
            "message",
            "failures",
            pl.col(RAW_RECORD).alias("raw_record"),
        )
        .sort(FILE_ID, ROW_NUMBER)
    )
    accepted = typed.filter(_not_among(per_row)).select(*source.column_names, FILE_ID, ROW_NUMBER)
    return ValidationResult(accepted=accepted, rejected=rejected)
