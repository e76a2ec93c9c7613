"""benchmarks/online_retail.py maps the UCI Online Retail invoices to the landing contract, and
the pipeline runs on what it writes, quirks of the real data included (credit notes, invoices
entered twice under one number, rows without a customer)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
from script_helpers import load_benchmark

from pfd_pipeline import cli

online_retail = load_benchmark("online_retail")

SOURCE = """\
InvoiceNo,InvoiceDate,CustomerID,Country,Quantity,UnitPrice
536365,12/1/2010 8:26,17850,United Kingdom,40,3.91
536366,12/1/2010 8:28,12583,France,2,1.0125
536591,12/1/2010 16:57,14606,United Kingdom,81,2.7826
536591,12/1/2010 16:58,14606,United Kingdom,12,3.89
C536379,12/1/2010 9:41,17850,United Kingdom,-1,27.5
536589,12/1/2010 16:50,(blank),United Kingdom,-10,0
536600,12/2/2010 10:00,12431,Australia,24,2.125
536700,1/4/2011 11:00,17850,United Kingdom,6,4.25
"""


def _source(tmp_path: Path) -> Path:
    path = tmp_path / "online_retail_invoices.csv"
    path.write_text(SOURCE, encoding="utf-8")
    return path


def test_invoices_become_ledger_lines_events_customers_and_resources(tmp_path):
    frames = online_retail.landing_frames(_source(tmp_path))
    ledger = {r["line_id"]: r for r in frames["sales_ledger"].to_dicts()}
    # one number on two rows: two lines of one document
    assert {"536591-1", "536591-2"} <= set(ledger)
    assert ledger["536591-2"]["document_id"] == "536591"
    assert len(ledger) == 8
    credit = ledger["C536379-1"]
    assert credit["document_type"] == "credit_note"
    assert (credit["quantity"], credit["gross_amount"], credit["cogs_amount"]) == (
        "-1",
        "-27.50",
        "-17.05",
    )
    # quantity x unit price to the cent, half to even: 2 x 1.0125 = 2.025 -> 2.02
    assert ledger["536366-1"]["gross_amount"] == "2.02"
    assert Decimal(ledger["536591-1"]["gross_amount"]) == Decimal("225.39")  # 225.3906
    assert ledger["536589-1"]["customer_id"] is None  # "(blank)" is no customer
    # -10 units at 0: zero, unsigned
    assert (ledger["536589-1"]["gross_amount"], ledger["536589-1"]["cogs_amount"]) == (
        "0.00",
        "0.00",
    )
    events = frames["activities"].to_dicts()
    assert {e["activity"] for e in events} == {"order_entry", "delivery", "return_processing"}
    delivery = {e["event_id"]: e for e in events if e["activity"] == "delivery"}
    assert (delivery["D536366-1"]["quantity"], delivery["D536366-1"]["amount"]) == ("400", "18.50")
    assert (delivery["D536600-1"]["quantity"], delivery["D536600-1"]["amount"]) == ("3000", "65.00")
    assert delivery["D536365-1"]["amount"] is None
    assert [e["event_id"] for e in events if e["activity"] == "return_processing"] == ["RC536379-1"]
    customers = {c["customer_id"]: c for c in frames["customers"].to_dicts()}
    assert set(customers) == {"C17850", "C12583", "C14606", "C12431"}
    assert customers["C17850"]["acquired_on"] == "2010-12-01"
    assert customers["C12583"]["region"] == "Europe"
    assert set(frames["resources"]["period"]) == {"2010-12", "2011-01"}


def test_the_pipeline_runs_on_the_written_folder(tmp_path, monkeypatch, capsys):
    out = tmp_path / "retail"
    counts = online_retail.write_project(_source(tmp_path), out)
    assert counts["sales_ledger"] == 8
    assert sorted(p.name for p in (out / "landing" / "sales_ledger").iterdir()) == [
        "sales_ledger_2010-12-01.csv",
        "sales_ledger_2010-12-02.csv",
        "sales_ledger_2011-01-04.csv",
    ]
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    for name in ("PFD_LANDING_DIR", "PFD_WAREHOUSE_DIR", "PFD_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    code = cli.main(
        [
            "run",
            "--landing", str(out / "landing"),
            "--warehouse", str(out / "warehouse"),
            "--config", str(out / "pfd.yaml"),
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    con = duckdb.connect(str(out / "warehouse" / "pfd.duckdb"), read_only=True)
    read, accepted, rejected = con.execute(
        "select sum(rows_read), sum(rows_accepted), sum(rows_rejected) from marts.ingested_files"
    ).fetchone()
    assert (read, rejected) == (8 + 15 + 4 + 10, 3) and accepted == read - rejected
    # the row without a customer: its ledger line and both its events, as `required`
    assert con.execute(
        "select source, column_name, rule from marts.rejected_rows order by all"
    ).fetchall() == [
        ("activities", "customer_id", "required"),
        ("activities", "customer_id", "required"),
        ("sales_ledger", "customer_id", "required"),
    ]
    assert con.execute(
        "select count(distinct period), count(*) filter (where difference <> 0) "
        "from marts.allocation_reconciliation"
    ).fetchone() == (2, 0)
    net = con.execute("select sum(net_revenue) from marts.customer_profitability").fetchone()[0]
    # 156.40 + 2.02 + 225.39 + 46.68 - 27.50 + 51.00 + 25.50
    assert net == Decimal("479.49")
    con.close()
