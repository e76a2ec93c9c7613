"""The profitability report: built from a small published warehouse, it holds every section,
its figures are the published tables' (hand-computed here), it loads nothing from anywhere, is
the same on every build, and opens in a real headless browser with every chart drawn."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from mart_helpers import JANUARY, add_month, build, fixed_scores

from pfd_pipeline import allocate, cli, marts, publish, summary
from pfd_pipeline.report import (
    ReportError,
    build_report,
    current_report,
    read_report_data,
    render,
    shapiro_matrix,
    write_report,
)
from pfd_pipeline.settings import Settings
from pfd_pipeline.summary import ranked_customers
from pfd_pipeline.warehouse import connect, ensure_schema

SECTIONS = (
    "whale-curve",
    "tiers",
    "shapiro",
    "waterfall",
    "customers",
    "lifetime-value",
    "value-matrix",
    "rising-stars",
    "segments",
    "capacity",
    "reconciliation",
    "data-quality",
)
CHARTS = ("whale-curve", "tiers", "shapiro", "waterfall", "value-matrix", "segments", "capacity")
# CLV as fixed_scores publishes it (the models need more customers than the fixture has): C09
# has no invoice, so no CLV; C05 and C07 became customers in December 2024
CLV = {"C01": 1000, "C02": 250, "C03": 600, "C04": 100, "C05": 700, "C06": 0, "C07": 100,
       "C08": -40, "C10": -300}  # fmt: skip
SURVEYS = [  # (customer, date, score): the latest answer in the 12 months to January counts
    ("C01", "2025-01-10", 10),  # highly profitable promoter: an awesome customer
    ("C03", "2024-12-12", 9),
    ("C03", "2025-01-12", 5),  # highly profitable detractor: at risk
    ("C02", "2025-01-11", 9),  # break-even promoter: a promoter to grow
    ("C04", "2025-01-13", 7),  # break-even passive
    ("C06", "2023-12-01", 10),  # outside the window: no response
    ("C10", "2025-01-15", 10),  # unprofitable promoter: a promoter who loses money
]


@pytest.fixture
def settings(tmp_path) -> Settings:
    """A warehouse whose pfd.duckdb holds December 2024 and January 2025, as after two runs.

    Window profits to 2025-01 (operating profit, Dec + Jan): C01 550, C03 200, C02 100, C04 100,
    C05 50, C06 0, C07 -20, C08 -30, C09 -100, C10 -400; total 450. CLV as in `CLV`, survey
    answers as in `SURVEYS`.
    """
    return published(tmp_path, fixed_scores({c: v / 2.5 for c, v in CLV.items()}, "fitted"))


@pytest.fixture
def unfitted(tmp_path) -> Settings:
    """The same warehouse with the CLV models really run: 9 customers with orders are too few
    (marts.clv.min_customers), so no month is fitted."""
    return published(tmp_path, prepare=None)


def published(tmp_path: Path, prepare) -> Settings:
    settings = Settings(warehouse_dir=tmp_path / "warehouse")
    settings.warehouse_dir.mkdir()
    con = connect(":memory:")
    ensure_schema(con)
    allocate.ensure_tables(con)
    marts.ensure_tables(con)
    publish.ensure_tables(con)
    add_month(con, "2024-12", {"C01": (200, 0, 100, 50), "C02": (300, 0, 100, 400)})
    add_month(con, "2025-01", JANUARY)
    con.execute(
        "update raw.customers set acquired_on = if(customer_id = 'C05', '2024-12-01', "
        "'2024-12-15') where customer_id in ('C05', 'C07')"
    )
    for customer, day, score in SURVEYS:
        con.execute("insert into raw.feedback values (?, ?, ?, 1, 1)", [customer, day, score])
    build(con, prepare=prepare)
    # the allocation's books: customer_service supplied 3,000 in January, 1,780 assigned
    # (the customers' cost), 1,200 unused capacity, 20 unassigned; December 450 + 50 unused
    con.execute(
        """
        insert into marts.allocation_reconciliation values
        ('2024-12', 'customer_service', 'time_driven', 500, 450, 50, 0, 0, 0, 0, 0, 0, 0,
         10000, 9000, 0, 'closed'),
        ('2025-01', 'customer_service', 'time_driven', 3000, 1780, 1200, 20, 0, 0, 0, 0, 20, 0,
         60000, 36000, 0, 'closed')
        """
    )
    # the audit: run-old loaded a ledger file; the publishing run read two more, one rejected
    # row, and found a duplicate
    files = [
        (1, "sales_ledger", "a.csv", "loaded", 100, 100, 0, "run-old"),
        (2, "sales_ledger", "b.csv", "loaded", 40, 39, 1, "run-1"),
        (3, "activities", "c.csv", "loaded", 25, 25, 0, "run-1"),
        (4, "sales_ledger", "b_again.csv", "duplicate", 0, 0, 0, "run-1"),
    ]
    for file_id, source, path, status, read, accepted, rejected, run in files:
        con.execute(
            "insert into audit.ingested_files values (?, ?, ?, 'sha', 1, 1, null, ?, null, ?, ?, "
            "?, [], ?, '2025-01-31 12:00:00')",
            [file_id, source, path, status, read, accepted, rejected, run],
        )
    con.execute(
        "insert into audit.rejected_rows values ('sales_ledger', 2, 'b.csv', 7, 'quantity', "
        "'invoice_quantity_positive', 'quantity must be > 0', 'quantity: invoice_quantity_"
        "positive', '{}', 'run-1')"
    )
    publish.publish_duckdb(con, settings, "run-1")
    con.close()
    return settings


class Page(HTMLParser):
    """Text and table rows per section id, charts per figure, and every URL-bearing attribute.
    Rows of a drill-down table nested in a cell are kept apart (`drill`)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self.drill: dict[str, list[list[str]]] = {}
        self.charts: list[str] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self._section: str | None = None
        self._tables: list[list[list[str]]] = []  # open tables: rows of cells
        self._kinds: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self._section = attrs["id"]
            self.sections[self._section] = ""
            self.rows[self._section] = []
            self.drill[self._section] = []
        elif tag == "figure":
            self.charts.append(attrs["data-chart"])
        elif tag == "table":
            self._tables.append([])
            self._kinds.append(attrs.get("class") or "")
        elif tag == "tr" and self._tables:
            self._tables[-1].append([])
        elif tag in ("td", "th") and self._tables:
            self._tables[-1][-1].append("")
        for name in ("href", "src", "xlink:href", "srcset", "action", "data"):
            if name in attrs:
                self.urls.append(attrs[name])

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None
        elif tag == "table" and self._tables:
            rows, kind = self._tables.pop(), self._kinds.pop()
            target = self.drill if kind == "drill" else self.rows
            target[self._section] += [[c.strip() for c in r] for r in rows]

    def handle_data(self, data):
        if self._section:
            self.sections[self._section] += data + " "
            if self._tables and self._tables[-1] and self._tables[-1][-1]:
                self._tables[-1][-1][-1] += data

    def row(self, section: str, first: str, nth: int = 0) -> list[str]:
        """The `nth` row of a section's tables whose first cell is `first`."""
        found = [r for r in self.rows[section] if r and r[0] == first]
        assert len(found) > nth, (first, self.rows[section])
        return found[nth]


def test_the_report_holds_every_section_with_the_published_figures(settings):
    month, page = build_report(settings.published_db)
    assert month == "2025-01"
    html = Page(page)
    assert tuple(html.sections) == SECTIONS
    assert tuple(html.charts) == CHARTS
    text = html.sections

    # headline and whale curve: top 2 of 10 earn 750 of 450 = 167%; the bottom 1 loses 400 =
    # 89%; the peak is 1,000 = 222%; four customers lose money
    assert (
        "The top 20% of customers earn 167% of operating profit; the curve peaks at 222% with "
        "50% of customers, and the bottom 10% lose 89% of it. 4 of 10 customers lose money."
    ) in page
    assert "<title>Customer profitability, 2025-01</title>" in page
    assert "Trailing window 2024-02 to 2025-01" in page
    assert "450.00" in text["whale-curve"]

    # tiers: highly profitable C01 + C03 = 750; break-even 7 customers = 100; unprofitable C10
    assert html.row("tiers", "highly profitable")[1:] == ["2", "2,900.00", "750.00"]
    assert html.row("tiers", "break-even")[1:] == ["7", "2,630.00", "100.00"]
    assert html.row("tiers", "unprofitable")[1:] == ["1", "300.00", "-400.00"]
    # migrations: in December both customers were break-even (the top and bottom groups of 2
    # customers are empty); C01 moved up, C02 stayed, eight customers are new
    assert "1 customers moved up a tier, 0 down, 8 are new and 0 are no longer ranked" in page
    assert html.row("tiers", "break-even", nth=1)[1:] == ["1", "1", "·", "·"]
    assert html.row("tiers", "new")[1:] == ["1", "6", "1", ""]
    assert [r[0] for r in html.rows["tiers"][5:]] == ["break-even", "new"]

    # waterfall over the window: gross 500 + 5,900; discounts 570; COGS 200 + 2,950;
    # cost-to-serve (all order_entry) 450 + 1,780; operating profit 450
    for label, amount, share in (
        ("Gross revenue", "6,400.00", "109.8%"),
        ("Discounts", "-570.00", "-9.8%"),
        ("Off-invoice", "0.00", "0.0%"),
        ("Net revenue", "5,830.00", "100.0%"),
        ("COGS", "-3,150.00", "-54.0%"),
        ("Gross margin", "2,680.00", "46.0%"),
        ("order_entry", "-2,230.00", "-38.3%"),
        ("Operating profit", "450.00", "7.7%"),
    ):
        assert html.row("waterfall", label)[1:] == [amount, share], label

    # customers: best first, worst first; C01's drill-down is 50 + 400 of order_entry
    ranked = [r for r in html.rows["customers"] if r[0].isdigit()]
    drills = [r[0] for r in html.rows["customers"] if r[0].startswith("cost-to-serve drill")]
    assert drills[0] == "cost-to-serve drill-down of C01: 1 activity × resource rows"
    assert len(drills) == 20
    assert [r[1].split()[0] for r in ranked[:10]] == [
        "C01", "C03", "C02", "C04", "C05", "C06", "C07", "C08", "C09", "C10",
    ]  # fmt: skip
    assert [r[1].split()[0] for r in ranked[10:13]] == ["C10", "C09", "C08"]
    assert ranked[0][4:8] == ["2,100.00", "450.00", "550.00", "order_entry 450.00"]
    assert ranked[10][4:7] == ["300.00", "500.00", "-400.00"]
    assert html.drill["customers"][1] == [
        "order_entry", "customer_service", "time_driven", "2", "20", "450.00",
    ]  # fmt: skip

    # lifetime value: 1,000 + 250 + 600 + 100 + 700 + 0 + 100 - 40 - 300 = 2,410 over the nine
    # customers with an invoice; C08 and C10 are expected to lose money
    assert (
        '<div class="kpi-label">CLV, next 12 months</div><div class="kpi-value">2,410</div>'
    ) in page
    assert html.row("lifetime-value", "total CLV")[1] == "2,410.00"
    assert (
        html.row("lifetime-value", "customers fitted (an invoice in the calibration window)")[1]
        == "9"
    )
    assert html.row("lifetime-value", "customers expected to lose money (CLV < 0)")[1] == "2"
    assert html.row("lifetime-value", "model fit of the month")[1] == "fitted"
    assert "discounted 10% a year" in text["lifetime-value"]

    # value matrix: C01 an awesome customer, C03 at risk (its latest answer, 5, counts), C02 a
    # promoter to grow, C04 passive, C10 a promoter who loses money; C05 to C09 did not answer
    # in the window (C06 too long ago): profit 50 + 0 - 20 - 30 - 100, CLV 700 + 0 + 100 - 40
    # (C09, without an invoice, has no CLV)
    matrix = {r[0]: r[1:7] for r in html.rows["value-matrix"] if len(r) == 8}
    assert len(matrix) == 13  # the header and all 12 cells, empty ones too
    assert matrix["awesome customers"] == [
        "highly profitable", "promoter", "1", "10.0%", "550.00", "1,000.00",
    ]  # fmt: skip
    assert matrix["profitable detractors at risk"][2:] == ["1", "10.0%", "200.00", "600.00"]
    assert matrix["promoters to grow"][2:] == ["1", "10.0%", "100.00", "250.00"]
    assert matrix["break-even passives"][2:] == ["1", "10.0%", "100.00", "100.00"]
    assert matrix["break-even, voice unknown"][2:] == ["5", "50.0%", "-100.00", "760.00"]
    assert matrix["promoters who lose money"][2:] == ["1", "10.0%", "-400.00", "-300.00"]
    assert matrix["profitable passives"][2:] == ["0", "0.0%", "0.00", "–"]
    assert html.row("value-matrix", "promoters who lose money")[7] == (
        "re-price or move to a cheaper channel: they love what costs us most"
    )
    # NPS: highly profitable 1 promoter and 1 detractor of 2; break-even 1 promoter and 1
    # passive of 2 respondents (7 customers); unprofitable 1 promoter of 1
    assert html.row("value-matrix", "highly profitable")[1:] == ["2", "2", "+0"]
    assert html.row("value-matrix", "break-even")[1:] == ["7", "2", "+50"]
    assert html.row("value-matrix", "unprofitable")[1:] == ["1", "1", "+100"]

    # rising stars: C05, two months a customer, CLV 700 reaches the top tier's bar, the median
    # (nearest rank) of C03's 600 and C01's 1,000; C07 (CLV 100) is young too but below it.
    # Retail's young customers: median CLV (700 + 100) / 2 = 400, 67% of the bar
    assert html.row("rising-stars", "1")[1:] == [
        "C05 Name C05", "Retail", "2", "break-even", "insufficient history", "700.00",
        "CLV 700.00 reaches the top tier's bar 600.00; 2 months a customer, trend insufficient "
        "history",
    ]  # fmt: skip
    assert html.row("rising-stars", "Retail")[1:] == ["2", "1", "400.00", "67%"]
    assert "lowest profit: 1 listed, highest CLV first" in " ".join(text["rising-stars"].split())

    # segments: Retail's operating margin is 600 / 5,330 = 11.3% in January and
    # -150 / 500 = -30.0% in December (outside the window's first month, 2024-02: not shown)
    assert html.row("segments", "Retail")[1] == "11.3%"
    # capacity and reconciliation: 1,250 unused of 3,500 supplied over the window
    assert html.row("capacity", "customer_service")[1:] == [
        "time_driven", "3,500.00", "1,250.00", "70,000", "45,000",
    ]  # fmt: skip
    assert "Balanced: all 2 resource-months of the window balance to the cent" in page
    assert html.row("reconciliation", "customer_service")[1:] == [
        "3,500.00", "2,230.00", "1,250.00", "20.00", "0.00",
    ]  # fmt: skip

    # data quality: the publishing run (run-1) and all runs, per source; rejects by rule
    quality = [r for r in html.rows["data-quality"] if r[0] != "source"]
    assert quality == [
        ["activities", "1", "0", "25", "25", "0"],  # run-1
        ["sales_ledger", "1", "1", "40", "39", "1"],
        ["activities", "1", "0", "25", "25", "0"],  # all runs
        ["sales_ledger", "2", "1", "140", "139", "1"],
        ["sales_ledger", "invoice_quantity_positive", "1"],
    ]


def test_the_report_figures_equal_the_published_tables(settings):
    _, page = build_report(settings.published_db)
    html = Page(page)
    con = duckdb.connect(str(settings.published_db), read_only=True)
    try:
        whale = con.execute(
            "select top_profit_pct, bottom_profit_pct, total_profit from marts.whale_curve "
            "where period = '2025-01' and customer_pct = 100"
        ).fetchall()[0]
        assert whale == (Decimal("166.6667"), Decimal("-88.8889"), Decimal("450.00"))
        assert html.row("whale-curve", "total operating profit")[1] == f"{whale[2]:,.2f}"
        tiers = con.execute(
            "select tier, count(*), sum(net_revenue), sum(operating_profit) "
            "from marts.customer_tiers where period = '2025-01' group by all"
        ).fetchall()
        for tier, n, revenue, profit in tiers:
            assert html.row("tiers", tier)[1:] == [f"{n:,}", f"{revenue:,.2f}", f"{profit:,.2f}"]
        pnl = con.execute(
            "select sum(gross_revenue), sum(net_revenue), sum(operating_profit) "
            "from marts.customer_profitability where period between '2024-02' and '2025-01'"
        ).fetchall()[0]
        shown = [html.row("waterfall", s)[1] for s in ("Gross revenue", "Net revenue",
                                                       "Operating profit")]  # fmt: skip
        assert shown == [f"{v:,.2f}" for v in pnl]
        published = dict(
            con.execute(
                "select customer_id, operating_profit from marts.customer_tiers "
                "where period = '2025-01'"
            ).fetchall()
        )
        ranked = [r for r in html.rows["customers"] if r[0].replace(",", "").isdigit()]
        assert len(ranked) == 20
        for row in ranked:
            assert row[6] == f"{published[row[1].split()[0]]:,.2f}", row
        clv = con.execute(
            "select sum(clv), count(*) filter (clv < 0) from marts.customer_lifetime_value "
            "where period = '2025-01'"
        ).fetchall()[0]
        assert clv == (Decimal("2410.00"), 2)
        assert html.row("lifetime-value", "total CLV")[1] == f"{clv[0]:,.2f}"
        cells = con.execute(
            "select cell, profit_tier, advocacy, customers, operating_profit, clv, action "
            "from marts.customer_value_matrix where period = '2025-01' and customers > 0"
        ).fetchall()
        assert len(cells) == 6
        for cell, tier, advocacy, n, profit, value, action in cells:
            row = html.row("value-matrix", cell)
            assert [row[1], row[2], row[3], row[5], row[6], row[7]] == [
                tier, advocacy, f"{n:,}", f"{profit:,.2f}", f"{value:,.2f}", action,
            ], cell  # fmt: skip
        stars = con.execute(
            "select rising_rank, customer_id, tenure_months, clv, reason from marts.rising_stars "
            "where period = '2025-01' order by rising_rank"
        ).fetchall()
        shown = [r for r in html.rows["rising-stars"] if r[0].isdigit()]
        assert [[r[0], r[1].split()[0], r[3], r[6], r[7]] for r in shown] == [
            [f"{rank}", customer, f"{tenure}", f"{value:,.2f}", reason]
            for rank, customer, tenure, value, reason in stars
        ]
        assert len(stars) == 1
    finally:
        con.close()


def test_the_report_loads_nothing_and_is_the_same_on_every_build(settings, tmp_path):
    first = write_report(settings.published_db, settings.reports_dir)
    assert first == settings.reports_dir / "pfd_report_2025-01.html"
    page = first.read_text(encoding="utf-8")
    html = Page(page)
    assert "http://" not in page and "https://" not in page and "//" not in "".join(html.urls)
    assert all(url.startswith("#") for url in html.urls), html.urls  # in-page links only
    assert not {"script", "link", "img", "iframe", "object"} & html.tags
    again = write_report(settings.published_db, settings.reports_dir)
    assert again == first and again.read_bytes() == page.encode("utf-8")
    assert [p.name for p in settings.reports_dir.iterdir()] == ["pfd_report_2025-01.html"]
    # an earlier month, to a file of one's choosing
    out = write_report(settings.published_db, settings.reports_dir, "2024-12", tmp_path / "x.html")
    assert out == tmp_path / "x.html"
    assert "Customer profitability, 2024-12" in out.read_text(encoding="utf-8")


def test_the_report_is_rewritten_when_missing_or_from_another_publication(settings):
    path = current_report(settings.published_db, settings.reports_dir)
    assert path == settings.reports_dir / "pfd_report_2025-01.html" and path.is_file()
    stamp = path.stat().st_mtime_ns
    assert current_report(settings.published_db, settings.reports_dir) == path
    assert path.stat().st_mtime_ns == stamp, "a current report is not written again"
    path.write_text(path.read_text(encoding="utf-8").replace("run-1", "run-0"), encoding="utf-8")
    current_report(settings.published_db, settings.reports_dir)
    assert 'content="run-1"' in path.read_text(encoding="utf-8")


def test_no_report_without_the_month_or_the_file(settings, tmp_path):
    with pytest.raises(ReportError, match="no month 2030-01 .* hold 2024-12 to 2025-01"):
        build_report(settings.published_db, "2030-01")
    with pytest.raises(ReportError, match="no published tables yet"):
        build_report(tmp_path / "nowhere.duckdb")
    assert current_report(tmp_path / "nowhere.duckdb", tmp_path) is None


def test_cli_report_writes_the_month_asked_for(settings, capsys, tmp_path):
    args = ["--warehouse", str(settings.warehouse_dir)]
    assert cli.main(["report", *args]) == 0
    assert str(settings.reports_dir / "pfd_report_2025-01.html") in capsys.readouterr().out
    out = tmp_path / "december.html"
    assert cli.main(["report", *args, "--period", "2024-12", "--out", str(out)]) == 0
    assert out.is_file() and "Report written in" in capsys.readouterr().out
    assert cli.main(["report", *args, "--period", "1999-01"]) == cli.EXIT_FAILED
    assert capsys.readouterr().err.startswith("pfd: no month 1999-01")


def test_a_month_without_a_clv_fit_says_so(unfitted):
    """The CLV models really run on the fixture: 9 customers with orders are too few."""
    _, page = build_report(unfitted.published_db)
    html = Page(page)
    assert tuple(html.sections) == SECTIONS and tuple(html.charts) == CHARTS
    assert (
        '<div class="kpi-label">CLV, next 12 months</div><div class="kpi-value">not fitted</div>'
    ) in page
    assert " ".join(html.sections["lifetime-value"].split()) == (
        "Lifetime value No lifetime value for 2025-01: the month's CLV model fit "
        "(marts.clv_model_fit) says “not fitted: 9 customers with orders, 2 with repeat orders "
        "(marts.clv.min_customers = 30)”."
    )
    # the matrix still counts customers and profit by tier and survey answer, without CLV
    assert (
        "No CLV in the cells (the CLV models were not fitted for the month): they count "
        "customers and profit only."
    ) in html.sections["value-matrix"]
    assert html.row("value-matrix", "awesome customers")[3:7] == ["1", "10.0%", "550.00", "–"]
    assert html.row("value-matrix", "break-even")[1:] == ["7", "2", "+50"]
    assert " ".join(html.sections["rising-stars"].split()) == (
        "Rising stars No rising stars in 2025-01 (the CLV models were not fitted for the "
        "month): no young customer is on the path to the top tier (marts.rising_stars has no "
        "rows for the month)."
    )


def test_a_publication_without_clv_rows_or_tables_says_so(settings):
    con = duckdb.connect(str(settings.published_db))
    for table in ("clv_model_fit", "customer_lifetime_value", "customer_value_matrix",
                  "rising_stars"):  # fmt: skip
        con.execute(f"delete from marts.{table} where period = '2025-01'")
    con.close()
    _, page = build_report(settings.published_db)
    html = Page(page)
    assert tuple(html.sections) == SECTIONS
    assert tuple(html.charts) == tuple(c for c in CHARTS if c != "value-matrix")
    assert '<div class="kpi-label">CLV</div><div class="kpi-value">–</div>' in page
    assert (
        "No CLV model fit is published for 2025-01 (marts.clv_model_fit has no row for the month)"
    ) in page
    assert (
        "No customer value matrix is published for 2025-01 (marts.customer_value_matrix has no "
        "rows for the month)"
    ) in page
    assert "No rising stars in 2025-01 (no CLV model fit is published for the month)" in page
    # a file published before the CLV tables existed
    con = duckdb.connect(str(settings.published_db))
    for table in ("clv_model_fit", "customer_lifetime_value", "customer_value_matrix",
                  "rising_stars"):  # fmt: skip
        con.execute(f"drop table if exists marts.{table}")
    con.close()
    assert build_report(settings.published_db)[1] == page


# --- in a real browser ------------------------------------------------------------------------

CHROMIUM = Path(os.environ.get("PFD_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER = "PFD_REQUIRE_BROWSER"


def _chromium() -> Path:
    """Debian's chromium; CI installs it (.ci/run) and sets PFD_REQUIRE_BROWSER=1."""
    if CHROMIUM.exists():
        return CHROMIUM
    message = (
        f"no chromium at {CHROMIUM} (apt-get install chromium); the browser test opens the "
        "report in it"
    )
    if os.environ.get(REQUIRE_BROWSER) == "1":
        pytest.fail(f"{REQUIRE_BROWSER}=1 but {message}")
    pytest.skip(message)


def open_in_browser(report: Path, screenshot: Path, chromium: Path) -> dict:
    """Open the report in headless chromium, take a full-page screenshot, and return what the
    page did: console errors, requests, and every chart's drawn size and element count."""
    from playwright.sync_api import sync_playwright

    seen: dict = {"errors": [], "requests": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on(
                "console",
                lambda m: seen["errors"].append(m.text) if m.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("requestfailed", lambda r: seen["errors"].append(f"failed: {r.url}"))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.goto(report.as_uri(), wait_until="load")
            seen["charts"] = page.eval_on_selector_all(
                "figure",
                """figures => figures.map(f => {
                    const chart = f.querySelector('svg, img');
                    const box = chart ? chart.getBoundingClientRect() : {width: 0, height: 0};
                    return {name: f.dataset.chart, width: box.width, height: box.height,
                            drawn: chart ? chart.querySelectorAll('path, use, text').length : 0};
                })""",
            )
            seen["title"] = page.title()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return seen


def test_the_report_renders_in_headless_chromium(settings, tmp_path):
    chromium = _chromium()
    report = write_report(settings.published_db, settings.reports_dir)
    screenshot = tmp_path / "report.png"
    seen = open_in_browser(report, screenshot, chromium)
    assert seen["errors"] == []
    assert seen["requests"] == [report.as_uri()], "the page loads nothing but itself"
    assert seen["title"] == "Customer profitability, 2025-01"
    assert [c["name"] for c in seen["charts"]] == list(CHARTS)
    for chart in seen["charts"]:
        assert chart["width"] > 300 and chart["height"] > 100, chart
        assert chart["drawn"] > 10, chart
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000
    keep = os.environ.get("PFD_REPORT_SCREENSHOT")  # e.g. to look at it
    if keep:
        shutil.copy(screenshot, keep)


def test_books_that_do_not_balance_are_reported_as_such(settings):
    con = duckdb.connect(str(settings.published_db))
    con.execute(
        "update marts.allocation_reconciliation set difference = 0.01 where period = '2025-01'"
    )
    con.close()
    _, page = build_report(settings.published_db)
    assert '<p class="status bad">1 of 2 resource-months do NOT balance' in page
    assert "Balanced" not in page
    assert Page(page).row("reconciliation", "customer_service")[-1] == "0.01"


def test_the_shapiro_lines_cut_the_customers_into_their_published_quadrants(settings):
    con = duckdb.connect(str(settings.published_db), read_only=True)
    try:
        shapiro = read_report_data(con).shapiro
        rows = con.execute(
            "select shapiro_quadrant, net_price_realisation_pct, cost_to_serve_pct "
            "from marts.customer_tiers where period = '2025-01'"
        ).fetchall()
    finally:
        con.close()
    plotted = [r for r in rows if r[2] is not None]
    assert len(rows) == 10 and len(plotted) == 9  # C09 has no revenue
    assert (shapiro["customers"], shapiro["plotted"]) == (10, 9)
    high_price = {"passive": True, "carriage trade": True, "bargain basement": False,
                  "aggressive": False}  # fmt: skip
    high_cost = {"passive": False, "carriage trade": True, "bargain basement": False,
                 "aggressive": True}  # fmt: skip
    for quadrant, price, cost in plotted:
        assert (price >= shapiro["price_median"]) == high_price[quadrant], (quadrant, price)
        assert (cost >= shapiro["cost_median"]) == high_cost[quadrant], (quadrant, cost)
    assert {r[0] for r in plotted} == set(high_price)


def test_the_shapiro_figures_from_sql_equal_those_of_every_customer_row(settings):
    """The medians, quadrant counts and dots (counted and cut in SQL, the dots as doubles) are
    what the customers' rows give in Python: the window medians over every row of the month,
    a count per published quadrant, float() of each decimal in profit-rank order per tier."""
    con = duckdb.connect(str(settings.published_db), read_only=True)
    try:
        for month in ("2024-12", "2025-01"):
            shapiro = shapiro_matrix(con, month)
            rows = con.execute(
                "select tier, shapiro_quadrant, net_price_realisation_pct, cost_to_serve_pct, "
                "median(net_price_realisation_pct) over (), median(cost_to_serve_pct) over () "
                "from marts.customer_tiers where period = ? order by profit_rank",
                [month],
            ).fetchall()
            plotted = [r for r in rows if r[2] is not None and r[3] is not None]
            assert (shapiro["price_median"], shapiro["cost_median"]) == rows[0][4:]
            assert (shapiro["customers"], shapiro["plotted"]) == (len(rows), len(plotted))
            for quadrant in ("passive", "carriage trade", "bargain basement", "aggressive"):
                assert shapiro[quadrant] == sum(r[1] == quadrant for r in rows), quadrant
            assert set(shapiro["dots"]) == {r[0] for r in plotted}
            for tier, (cost, price) in shapiro["dots"].items():
                shown = [r for r in plotted if r[0] == tier]
                assert cost.tolist() == [float(r[3]) for r in shown], tier
                assert price.tolist() == [float(r[2]) for r in shown], tier
    finally:
        con.close()


def test_the_waterfall_and_drill_downs_equal_the_customer_rows(settings):
    """The P&L summed from segment_profitability's monthly totals is every customer row's sum;
    the most and least profitable customers, read in one query with one drill-down query for
    both lists, are those of a query per list (the lists overlap with 10 customers)."""
    con = duckdb.connect(str(settings.published_db), read_only=True)
    try:
        data = read_report_data(con)
        names = ["gross_revenue", "discounts", "off_invoice", "net_revenue", "cogs",
                 "gross_margin", "cost_to_serve", "operating_profit"]  # fmt: skip
        sums = con.execute(
            "select sum(gross_revenue), sum(discounts), sum(off_invoice), sum(net_revenue), "
            "sum(cogs), sum(gross_margin), sum(cost_to_serve), sum(operating_profit) "
            "from marts.customer_profitability where period between ? and ?",
            [data.window_start, data.period],
        ).fetchall()[0]
        assert data.pnl == dict(zip(names, sums, strict=True))
        for limit in (3, 10):
            best, worst = ranked_customers(con, data.period, data.window_start, limit=limit)
            for listed, least in ((best, False), (worst, True)):
                expected = con.execute(
                    "select customer_id from marts.customer_tiers where period = ? "
                    "order by if(?, -profit_rank, profit_rank) limit ?",
                    [data.period, least, limit],
                ).fetchall()
                assert [c["customer_id"] for c in listed] == [r[0] for r in expected]
                for c in listed:
                    costs = con.execute(
                        "select activity, resource, method, sum(driver_units), sum(minutes), "
                        "sum(cost) from marts.customer_cost_to_serve where customer_id = ? "
                        "and period between ? and ? group by all "
                        "order by sum(cost) desc, activity, resource",
                        [c["customer_id"], data.window_start, data.period],
                    ).fetchall()
                    assert [tuple(d.values()) for d in c["costs"]] == costs, c["customer_id"]
        assert data.best == ranked_customers(con, data.period, data.window_start, limit=10)[0]
    finally:
        con.close()


def test_drill_downs_read_beside_the_drawing_give_the_same_page(settings):
    """build_report reads the customers' drill-downs on a thread while it draws the charts;
    the lists and the page are those of reading everything first, on one connection."""
    con = duckdb.connect(str(settings.published_db), read_only=True)
    try:
        summary._RANKED.clear()
        inline = read_report_data(con)
        summary._RANKED.clear()
        with ThreadPoolExecutor(max_workers=1) as beside:
            read_beside = read_report_data(con, beside=beside)
            assert (read_beside.best, read_beside.worst) == (inline.best, inline.worst)
            assert inline.best and inline.worst and inline.best[0]["costs"]
    finally:
        con.close()
    summary._RANKED.clear()
    assert build_report(settings.published_db) == (inline.period, render(inline))


def test_ranked_customers_are_read_again_when_the_published_file_changes(settings, tmp_path):
    """The report's lists are kept for the CLI's summary of the same file; another file, or the
    same file rewritten, is read again, and the answer handed out is a copy."""
    con = duckdb.connect(str(settings.published_db), read_only=True)
    try:
        best, _ = ranked_customers(con, "2025-01", "2024-12", limit=3)
        best[0]["costs"].clear()  # a caller's change is not kept
        again, _ = ranked_customers(con, "2025-01", "2024-12", limit=2)
        assert [c["customer_id"] for c in again] == ["C01", "C03"]
        assert again[0]["costs"]
    finally:
        con.close()
    copy = tmp_path / "copy.duckdb"
    shutil.copy(settings.published_db, copy)
    with duckdb.connect(str(settings.published_db)) as con:
        con.execute("delete from marts.customer_tiers where customer_id = 'C01'")
    for path, expected in ((settings.published_db, ["C03", "C02"]), (copy, ["C01", "C03"])):
        con = duckdb.connect(str(path), read_only=True)
        try:
            best, _ = ranked_customers(con, "2025-01", "2024-12", limit=2)
        finally:
            con.close()
        assert [c["customer_id"] for c in best] == expected, path


def test_long_names_from_the_users_files_stay_inside_every_chart():
    """Segment, resource and activity names come from the user's files; the margins are measured
    for each chart as it is saved, so a long name is drawn whole, inside the figure."""
    from pfd_pipeline import charts

    long = "a segment with a rather long name from the customer master"
    figures = {
        "segments": charts.segment_trends(
            {
                long: [("2025-01", Decimal("12.5")), ("2025-02", Decimal("-3"))],
                "all customers": [("2025-01", Decimal("10")), ("2025-02", Decimal("2"))],
            },
            "all customers",
        ),
        "capacity": charts.unused_capacity(
            [
                ("warehouse_and_distribution_centre_staff", Decimal("123456.78"), 0.85),
                ("sales", Decimal("2000"), None),
            ]
        ),
        # a name of 60 characters pushed the title (placed at the axes' left edge) and the
        # largest bar's value past the figure's right edge
        "capacity, longer names": charts.unused_capacity(
            [
                (
                    "warehouse_and_distribution_centre_staff_of_the_northern_hub",
                    Decimal("123456.78"),
                    0.85,
                ),
                ("returns_processing_and_quality_inspection", Decimal("98000"), 0.4),
                ("sales", Decimal("2000"), None),
            ]
        ),
        "waterfall": charts.waterfall(
            [
                ("Gross revenue", Decimal("1000000"), "total"),
                ("returns_processing_and_quality_inspection_by_hand", Decimal("-250000"), "change"),
                ("Operating profit", Decimal("750000"), "total"),
            ]
        ),
        "tiers": charts.tiers(
            [("highly profitable", 10, Decimal("5000")), ("unprofitable", 3, Decimal("-90000"))]
        ),
    }
    for name, fig in figures.items():
        charts.svg(fig)  # lays the figure out as the report does
        renderer = fig._get_renderer()
        texts = " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))
        assert name == "tiers" or any(
            part in texts for part in (long, "warehouse_and_", "returns_processing")
        )
        for ax in fig.axes:  # everything drawn: ticks, labels, title, legend, bar values
            drawn = ax.get_tightbbox(renderer)
            assert fig.bbox.x0 - 0.5 <= drawn.x0 and drawn.x1 <= fig.bbox.x1 + 0.5, name
            assert fig.bbox.y0 - 0.5 <= drawn.y0 and drawn.y1 <= fig.bbox.y1 + 0.5, name
