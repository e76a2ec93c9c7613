"""The demo data generator: layout, determinism, contract columns, sign rules and bad rows."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest

from pfd_pipeline.generate import ACTIVITY_ERRORS, ACTIVITY_NAMES, LEDGER_ERRORS, generate
from pfd_pipeline.landing import discover, read
from pfd_pipeline.sources import ACTIVITIES, CUSTOMERS, RESOURCES, SALES_LEDGER, SOURCES
from pfd_pipeline.validation import ValidationContext, validate

SMALL = {"customers": 50, "months": 3, "start": dt.date(2024, 11, 1)}
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
TIME_DRIVEN = {"customer_service", "warehouse", "sales"}
POOLS = {"logistics", "finance"}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("clean")
    return out, generate(out, seed=7, **SMALL)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("dirty")
    return out, generate(out, seed=7, with_errors=True, **SMALL)


def _files(out: Path, source: str) -> list[Path]:
    return sorted(p for p in (out / source).iterdir() if p.suffix in (".csv", ".parquet"))


def _read(path: Path) -> pl.DataFrame:
    """A landing file with every value as a string, empty values as null."""
    if path.suffix == ".parquet":
        return pl.read_parquet(path).select(pl.all().cast(pl.String))
    return pl.read_csv(path, infer_schema=False)


def _all(out: Path, source: str) -> pl.DataFrame:
    return pl.concat(
        [_read(p).with_columns(pl.lit(p.name).alias("_file")) for p in _files(out, source)]
    )


def _master(out: Path) -> set[str]:
    return set(_all(out, "customers")["customer_id"])


def test_layout_and_summary(clean: tuple[Path, object]) -> None:
    out, summary = clean
    assert [p.name for p in _files(out, "customers")] == ["customers_2025-01-31.csv"]
    assert [p.name for p in _files(out, "resources")] == [
        "resources_2024-11.csv",
        "resources_2024-12.csv",
        "resources_2025-01.csv",
    ]
    for source, prefix in (("sales_ledger", "sales_ledger_"), ("activities", "activities_")):
        names = [p.name for p in _files(out, source)]
        days = [dt.date.fromisoformat(n.removeprefix(prefix).removesuffix(".csv")) for n in names]
        assert all(day.weekday() < 5 for day in days)  # business days only, no empty files
        assert min(days) >= dt.date(2024, 11, 1) and max(days) <= dt.date(2025, 1, 31)
    for name in SOURCES:
        assert summary.files[name] == len(_files(out, name))
        assert summary.rows[name] == _all(out, name).height
    assert summary.errors_injected == {}


def test_same_seed_gives_identical_bytes(clean: tuple[Path, object], tmp_path: Path) -> None:
    out, _ = clean
    generate(tmp_path, seed=7, **SMALL)
    for name in SOURCES:
        ours, theirs = _files(out, name), _files(tmp_path, name)
        assert [p.name for p in ours] == [p.name for p in theirs]
        for a, b in zip(ours, theirs, strict=True):
            assert a.read_bytes() == b.read_bytes(), a.name


def test_another_seed_gives_other_data(clean: tuple[Path, object], tmp_path: Path) -> None:
    out, _ = clean
    generate(tmp_path, seed=8, **SMALL)
    assert _all(out, "sales_ledger").drop("_file").to_dicts() != (
        _all(tmp_path, "sales_ledger").drop("_file").to_dicts()
    )


def test_regenerating_replaces_the_sources_and_keeps_other_folders(tmp_path: Path) -> None:
    generate(tmp_path, seed=1, customers=20, months=2)
    (tmp_path / "receivables").mkdir()
    (tmp_path / "receivables" / "open_items.csv").write_text("x\n")
    stale = tmp_path / "sales_ledger" / "sales_ledger_2030-01-01.csv"
    stale.write_text("old\n")
    summary = generate(tmp_path, seed=1, customers=20, months=1)
    assert not stale.exists()
    assert (tmp_path / "receivables" / "open_items.csv").exists()
    assert len(_files(tmp_path, "resources")) == 1 == summary.files["resources"]


def test_columns_follow_the_landing_contract(clean: tuple[Path, object]) -> None:
    out, _ = clean
    for name, source in SOURCES.items():
        for path in _files(out, name):
            assert _read(path).columns == source.column_names, path.name


def test_values_match_the_contract_patterns(clean: tuple[Path, object]) -> None:
    out, _ = clean
    for name, source in SOURCES.items():
        frame = _all(out, name)
        for col in source.columns:
            values = frame[col.name].drop_nulls()
            if col.required:
                assert values.len() == frame.height, f"{name}.{col.name} has empty values"
            bad = values.filter(~values.str.contains(col.kind.pattern))
            assert bad.len() == 0, f"{name}.{col.name}: {bad.head(3).to_list()}"
    ledger, events = _all(out, "sales_ledger"), _all(out, "activities")
    for money in ("gross_amount", "discount_amount", "cogs_amount", "off_invoice_amount"):
        assert ledger[money].str.contains(r"^-?\d+\.\d{2}$").all()  # exactly two decimals
    assert events["amount"].drop_nulls().str.contains(r"^\d+\.\d{2}$").all()
    assert set(ledger["currency"]) == {"USD"}
    assert set(ledger["channel"]) <= {"edi", "web", "email", "phone"}
    assert set(ledger["document_type"]) == {"invoice", "credit_note"}


def test_ledger_sign_rules_and_discount_not_above_gross(clean: tuple[Path, object]) -> None:
    out, _ = clean
    money = ("gross_amount", "discount_amount", "cogs_amount", "off_invoice_amount")
    ledger = _all(out, "sales_ledger").with_columns(
        pl.col("quantity").cast(pl.Int64), *[pl.col(c).cast(pl.Decimal(18, 2)) for c in money]
    )
    invoices = ledger.filter(pl.col("document_type") == "invoice")
    notes = ledger.filter(pl.col("document_type") == "credit_note")
    assert notes.height > 0
    assert (invoices["quantity"] > 0).all()
    assert (notes["quantity"] < 0).all()
    for col in money:
        assert (invoices[col] >= 0).all(), col
        assert (notes[col] <= 0).all(), col
    assert (ledger["discount_amount"].abs() <= ledger["gross_amount"].abs()).all()
    assert invoices["document_id"].str.starts_with("INV").all()
    assert notes["document_id"].str.starts_with("CN").all()
    assert (ledger["off_invoice_amount"] != 0).any()


def test_keys_are_unique_and_customers_known(clean: tuple[Path, object]) -> None:
    out, _ = clean
    ledger, events = _all(out, "sales_ledger"), _all(out, "activities")
    assert ledger["line_id"].is_unique().all()
    assert events["event_id"].is_unique().all()
    master = _all(out, "customers")
    assert master["customer_id"].is_unique().all()
    assert set(ledger["customer_id"]) <= set(master["customer_id"])
    assert set(events["customer_id"]) <= set(master["customer_id"])


def test_customers_order_only_while_they_are_customers(clean: tuple[Path, object]) -> None:
    out, _ = clean
    master = _all(out, "customers").select("customer_id", pl.col("acquired_on").str.to_date())
    ledger = _all(out, "sales_ledger").select("customer_id", pl.col("posting_date").str.to_date())
    early = ledger.join(master, on="customer_id").filter(
        pl.col("posting_date") < pl.col("acquired_on")
    )
    assert early.height == 0


def test_activities_cover_every_activity(clean: tuple[Path, object]) -> None:
    out, _ = clean
    events = _all(out, "activities")
    assert set(events["activity"]) == set(ACTIVITY_NAMES)
    by = {a: events.filter(pl.col("activity") == a) for a in ACTIVITY_NAMES}
    ledger = _all(out, "sales_ledger")
    invoices = ledger.filter(pl.col("document_type") == "invoice")["document_id"].n_unique()
    notes = ledger.filter(pl.col("document_type") == "credit_note")["document_id"].n_unique()
    assert by["order_entry"].height == invoices == by["delivery"].height
    assert by["return_processing"].height == notes
    assert by["order_entry"]["channel"].is_not_null().all()
    assert set(by["order_entry"]["flags"].drop_nulls()) == {"rush"}
    assert by["support_ticket"]["minutes"].is_not_null().all()
    assert by["sales_visit"]["minutes"].is_not_null().all()
    assert by["sales_visit"]["amount"].is_not_null().all()
    assert by["delivery"]["amount"].is_not_null().any()  # export carrier invoices
    assert by["delivery"]["amount"].is_null().any()  # domestic: own fleet


def test_resources_capacity_only_for_time_driven_departments(clean: tuple[Path, object]) -> None:
    out, _ = clean
    for path in _files(out, "resources"):
        frame = _read(path)
        period = path.stem.removeprefix("resources_")
        assert set(frame["period"]) == {period}
        assert set(frame["resource"]) == TIME_DRIVEN | POOLS
        for row in frame.iter_rows(named=True):
            assert float(row["cost_amount"]) > 0
            if row["resource"] in TIME_DRIVEN:
                assert int(row["practical_capacity_minutes"]) > 0
            else:
                assert row["practical_capacity_minutes"] is None


def test_generated_data_passes_the_pipeline_validation(clean: tuple[Path, object]) -> None:
    out, _ = clean
    known = frozenset(_master(out))
    ctx = ValidationContext(as_of=dt.date(2025, 1, 31), known_customers=known)
    for source in (CUSTOMERS, SALES_LEDGER, ACTIVITIES, RESOURCES):
        batch = pl.concat([read(f, i)[0] for i, f in enumerate(discover(out, source))])
        result = validate(source, batch, ctx)
        assert result.rejected.height == 0, (source.name, result.rejected.head(3))
        assert result.accepted.height == batch.height


def _bad_rows(out: Path) -> dict[str, pl.DataFrame]:
    """Rows of the dirty data set that break each injected rule."""
    master = _master(out)
    ledger, events = _all(out, "sales_ledger"), _all(out, "activities")

    def bad_date(col: str) -> pl.Expr:
        return ~pl.col(col).str.contains(ISO_DATE) | pl.col(col).str.to_date(strict=False).is_null()

    return {
        "unknown_customer": ledger.filter(~pl.col("customer_id").is_in(master)),
        "negative_quantity": ledger.filter(
            (pl.col("document_type") == "invoice") & pl.col("quantity").str.starts_with("-")
        ),
        "bad_date": ledger.filter(bad_date("posting_date")),
        "duplicate_line": ledger.filter(~pl.col("line_id").is_first_distinct().over("_file")),
        "activity_unknown_customer": events.filter(~pl.col("customer_id").is_in(master)),
        "activity_bad_date": events.filter(bad_date("event_date")),
        "duplicate_event": events.filter(~pl.col("event_id").is_first_distinct().over("_file")),
    }


def test_with_errors_injects_each_kind_as_counted(dirty: tuple[Path, object]) -> None:
    out, summary = dirty
    assert set(summary.errors_injected) == set(LEDGER_ERRORS + ACTIVITY_ERRORS)
    assert all(n > 0 for n in summary.errors_injected.values())
    for kind, rows in _bad_rows(out).items():
        assert rows.height == summary.errors_injected[kind], kind
    assert summary.rows["sales_ledger"] == _all(out, "sales_ledger").height


def test_with_errors_keeps_every_file_at_most_five_percent_bad(
    dirty: tuple[Path, object],
) -> None:
    out, _ = dirty
    bad = pl.concat([rows.select("_file") for rows in _bad_rows(out).values()])
    per_file = bad.group_by("_file").len("bad")
    for source in ("sales_ledger", "activities"):
        sizes = _all(out, source).group_by("_file").len("rows")
        share = sizes.join(per_file, on="_file").with_columns(pl.col("bad") / pl.col("rows"))
        assert (share["bad"] <= 0.05).all(), share.sort("bad").tail(3)


def test_with_errors_leaves_the_clean_rows_alone(
    clean: tuple[Path, object], dirty: tuple[Path, object]
) -> None:
    keep = ["document_id", "posting_date", "customer_id", "product_id", "quantity"]
    clean_rows = _all(clean[0], "sales_ledger").select(keep)
    dirty_rows = _all(dirty[0], "sales_ledger").select(keep)
    assert clean_rows.join(dirty_rows, on=keep, how="anti").height == 0


def test_parquet_holds_the_same_rows_as_csv(clean: tuple[Path, object], tmp_path: Path) -> None:
    out, _ = clean
    summary = generate(tmp_path, seed=7, file_format="parquet", **SMALL)
    for name in SOURCES:
        csv_names = [p.stem for p in _files(out, name)]
        parquet_files = _files(tmp_path, name)
        assert [p.stem for p in parquet_files] == csv_names
        assert all(p.suffix == ".parquet" for p in parquet_files)
        assert summary.files[name] == len(parquet_files)
        from_csv = _all(out, name).drop("_file")
        from_parquet = _all(tmp_path, name).drop("_file")
        assert from_parquet.equals(from_csv), name


def test_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file_format"):
        generate(tmp_path, file_format="xlsx")


@pytest.mark.parametrize("start", [dt.date(2024, 11, 15), dt.date(2025, 2, 28)])
def test_a_window_not_starting_on_the_first(tmp_path: Path, start: dt.date) -> None:
    summary = generate(tmp_path, customers=30, months=2, start=start, seed=3)
    assert summary.files["resources"] == 3  # partial first and last calendar months
    ledger = _all(tmp_path, "sales_ledger")
    days = ledger["posting_date"].str.to_date()
    assert days.min() >= start
    assert re.fullmatch(r"customers_\d{4}-\d{2}-\d{2}\.csv", _files(tmp_path, "customers")[0].name)
