"""Real data: the UCI "Online Retail" invoices as a pfd landing folder, then `pfd run` on it.

    .venv/bin/python benchmarks/online_retail.py ../shared/data/online_retail_invoices.csv \\
        --out /tmp/retail

The source (a UK online wholesaler, 2010-12 to 2011-12; Daqing Chen, UCI Machine Learning
Repository, CC BY 4.0) has one row per invoice: InvoiceNo, InvoiceDate (m/d/Y H:M),
CustomerID, Country, Quantity (units on the invoice), UnitPrice (average per unit). It is
mapped to the landing contract as it stands, quirks included, so that the pipeline meets data
nobody here generated:

- sales ledger: one line per row, day files by invoice date. An InvoiceNo starting with `C` is
  a credit note; the others are invoices. A number that appears on several rows (an invoice
  entered over two minutes) gives lines `-1`, `-2`, ... of one document. gross = quantity x
  unit price to the cent (half to even), COGS 62% of it, no discounts, currency GBP, channel
  web. CustomerID `(blank)` is left empty: those rows (stock adjustments, mostly with negative
  quantities and no price) are rejected by the pipeline as `required`, and kept in
  rejected_rows.
- activities: per invoice row an `order_entry` (quantity 1) and a `delivery` (miles by
  region: UK 40, Europe 400, elsewhere 3,000; a carrier charge outside the UK of 18.50 or
  65.00); per credit note a `return_processing`.
- customers: one per CustomerID, segment Wholesale when its rows average 300 units or more,
  else Retail; region UK, Europe or Rest of world; acquired on its first invoice day.
- resources: the same monthly costs and capacities for every month (illustrative: the data
  set has no costs).

It writes `<out>/landing/`, `<out>/pfd.yaml` (partitions from 2010-12-01, GBP accepted, up to
60% of a day's rows may be rejected: some days are mostly adjustments) with the project's cost
model beside it, and then runs `pfd run` with the warehouse in `<out>/warehouse/` unless
`--no-run` is given.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
EUROPE = {
    "Austria", "Belgium", "Channel Islands", "Cyprus", "Czech Republic", "Denmark", "EIRE",
    "European Community", "Finland", "France", "Germany", "Greece", "Iceland", "Italy",
    "Lithuania", "Malta", "Netherlands", "Norway", "Poland", "Portugal", "Spain", "Sweden",
    "Switzerland",
}  # fmt: skip
MILES = {"UK": "40", "Europe": "400", "Rest of world": "3000"}
CARRIER = {"UK": None, "Europe": "18.50", "Rest of world": "65.00"}
COGS_SHARE = Decimal("0.62")
WHOLESALE_UNITS = 300  # average units per invoice row from which a customer is Wholesale
# period-independent monthly costs: resource, cost, practical capacity minutes (pools: none)
RESOURCES = (
    ("customer_service", "24000.00", "150000"),
    ("warehouse", "61000.00", "420000"),
    ("sales", "9000.00", "20000"),
    ("logistics", "27000.00", None),
    ("finance", "7000.00", None),
)


def _money(value: pl.Expr) -> pl.Expr:
    """An exact decimal as text to the cent, rounded half to even."""
    return value.round(2, mode="half_to_even").cast(pl.Decimal(38, 2)).cast(pl.String)


def landing_frames(source: Path) -> dict[str, pl.DataFrame]:
    """The ledger, activities, customers and resources frames (strings, as delivered), the
    ledger and activities with a `day` column to split them into day files."""
    rows = pl.read_csv(source, infer_schema=False).with_columns(
        day=pl.col("InvoiceDate").str.to_datetime("%m/%d/%Y %H:%M").dt.date(),
        credit=pl.col("InvoiceNo").str.starts_with("C"),
        customer_id=pl.when(pl.col("CustomerID") == "(blank)")
        .then(pl.lit(None, pl.String))
        .otherwise("C" + pl.col("CustomerID")),
        line=(pl.int_range(pl.len()).over("InvoiceNo") + 1).cast(pl.String),
        region=pl.when(pl.col("Country") == "United Kingdom")
        .then(pl.lit("UK"))
        .when(pl.col("Country").is_in(EUROPE))
        .then(pl.lit("Europe"))
        .otherwise(pl.lit("Rest of world")),
    )
    # exact decimal arithmetic, rounded to the cent half to even (COGS from the unrounded gross)
    gross = pl.col("Quantity").cast(pl.Decimal(18, 0)) * pl.col("UnitPrice").cast(
        pl.Decimal(28, 10)
    )
    rows = rows.with_columns(
        gross=_money(gross),
        cogs=_money(gross * pl.lit(COGS_SHARE, pl.Decimal(4, 2))),
        key=pl.col("InvoiceNo") + "-" + pl.col("line"),
    )
    ledger = rows.select(
        line_id="key",
        document_id="InvoiceNo",
        document_type=pl.when("credit").then(pl.lit("credit_note")).otherwise(pl.lit("invoice")),
        posting_date=pl.col("day").cast(pl.String),
        customer_id="customer_id",
        product_id=pl.lit("MIXED"),
        quantity="Quantity",
        gross_amount="gross",
        discount_amount=pl.lit("0.00"),
        cogs_amount="cogs",
        currency=pl.lit("GBP"),
        channel=pl.lit("web"),
        day="day",
    )
    invoices = rows.filter(~pl.col("credit"))
    event = {"event_date": pl.col("day").cast(pl.String), "customer_id": "customer_id"}
    activities = pl.concat(
        [
            invoices.select(
                event_id="O" + pl.col("key"), **event, activity=pl.lit("order_entry"),
                quantity=pl.lit("1"), channel=pl.lit("web"), amount=pl.lit(None, pl.String),
                day="day",
            ),
            invoices.select(
                event_id="D" + pl.col("key"), **event, activity=pl.lit("delivery"),
                quantity=pl.col("region").replace_strict(MILES),
                channel=pl.lit(None, pl.String),
                amount=pl.col("region").replace_strict(CARRIER, return_dtype=pl.String),
                day="day",
            ),
            rows.filter("credit").select(
                event_id="R" + pl.col("key"), **event, activity=pl.lit("return_processing"),
                quantity=pl.lit("1"), channel=pl.lit(None, pl.String),
                amount=pl.lit(None, pl.String), day="day",
            ),
        ]
    )  # fmt: skip
    customers = (
        rows.filter(pl.col("customer_id").is_not_null())
        .group_by("customer_id")
        .agg(
            first=pl.col("day").min(),
            region=pl.col("region").first(),
            units=pl.col("Quantity").cast(pl.Int64).mean(),
        )
        .sort("customer_id")
        .select(
            customer_id="customer_id",
            customer_name="Customer " + pl.col("customer_id").str.slice(1),
            segment=pl.when(pl.col("units") >= WHOLESALE_UNITS)
            .then(pl.lit("Wholesale"))
            .otherwise(pl.lit("Retail")),
            region="region",
            acquired_on=pl.col("first").cast(pl.String),
        )
    )
    months = sorted({d.strftime("%Y-%m") for d in rows["day"]})
    resources = pl.DataFrame(
        [(m, *r) for m in months for r in RESOURCES],
        schema=["period", "resource", "cost_amount", "practical_capacity_minutes"],
        orient="row",
    )
    return {
        "sales_ledger": ledger,
        "activities": activities,
        "customers": customers,
        "resources": resources,
    }


def write_project(source: Path, out: Path) -> dict[str, int]:
    """Write <out>/landing/ (day files for the ledger and activities) and <out>/pfd.yaml."""
    landing = out / "landing"
    shutil.rmtree(landing, ignore_errors=True)
    counts = {}
    for name, frame in landing_frames(source).items():
        folder = landing / name
        folder.mkdir(parents=True)
        counts[name] = frame.height
        if "day" in frame.columns:
            for (day,), part in frame.group_by("day"):
                part.drop("day").write_csv(folder / f"{name}_{day}.csv")
        else:
            frame.write_csv(folder / f"{name}.csv")
    config = (ROOT / "data" / "config" / "pfd.yaml").read_text(encoding="utf-8")
    for pattern, value in (
        (r'partitions_start: "[0-9-]+"', 'partitions_start: "2010-12-01"'),
        (r"currencies: \[[^]]*\]", 'currencies: ["GBP"]'),
        (r"max_reject_share: [0-9.]+", "max_reject_share: 0.6"),
    ):
        config, found = re.subn(pattern, value, config)
        if found != 1:
            raise SystemExit(f"data/config/pfd.yaml: no `{value.split(':')[0]}` setting to set")
    (out / "pfd.yaml").write_text(config, encoding="utf-8")
    shutil.copy(ROOT / "data" / "config" / "cost_model.yaml", out / "cost_model.yaml")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="online_retail_invoices.csv")
    parser.add_argument("--out", type=Path, default=Path("/tmp/pfd-online-retail"))
    parser.add_argument("--no-run", action="store_true", help="write the folder only")
    args = parser.parse_args(argv)
    counts = write_project(args.source, args.out)
    print(", ".join(f"{name}: {n:,} rows" for name, n in counts.items()), f"in {args.out}")
    if args.no_run:
        return 0
    command = [
        str(Path(sys.executable).parent / "pfd"), "run",
        "--landing", str(args.out / "landing"),
        "--warehouse", str(args.out / "warehouse"),
        "--config", str(args.out / "pfd.yaml"),
    ]  # fmt: skip
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
