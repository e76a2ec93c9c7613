"""The profitability report: one self-contained HTML page per month, read from pfd.duckdb.

Every figure comes from the published tables (opened read-only, as a BI tool would); the report
only groups and sums them for display (by tier, by activity, over the window), it never
recomputes profitability. Charts are inline SVG and the style sheet is inline: the page loads
nothing from anywhere, so it opens offline and can be mailed as one file. The same month and the
same publication give the same bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
import tempfile
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np

from pfd_pipeline import charts
from pfd_pipeline.errors import PfdError
from pfd_pipeline.marts import whale_summary
from pfd_pipeline.sql import load_sql
from pfd_pipeline.summary import (
    clv_overview,
    pct_text,
    ranked_customers,
    rising_segments,
    rising_stars,
    top_activity,
    value_matrix,
)

RANKED = 10  # most and least profitable customers listed
RISING = 10  # rising stars listed
TIERS = ("highly profitable", "break-even", "unprofitable")


class ReportError(PfdError):
    """The report cannot be made (nothing published yet, or no such month)."""


@dataclass
class ReportData:
    """What the report shows, as read from the published tables."""

    period: str
    window_start: str
    whale: dict
    tiers: list[dict]
    migrations: list[dict]
    tier_changes: list[dict]
    shapiro: dict  # the month's medians, customers per quadrant and the dots per tier
    pnl: dict
    cost_by_activity: list[dict]
    # the most and least profitable customers with their drill-downs (ranked_customers), maybe
    # still being read beside the rest: `best` and `worst` wait for them
    ranked: Future[tuple[list[dict], list[dict]]]
    segments: list[dict]
    resources: list[dict]
    publication: dict
    quality_run: list[dict]
    quality_all: list[dict]
    rejects: list[dict]
    clv: dict | None  # the month's CLV model fit and totals; None if none is published
    value_matrix: list[dict]
    rising_stars: list[dict]
    rising_segments: list[dict]

    @property
    def best(self) -> list[dict]:
        return self.ranked.result()[0]

    @property
    def worst(self) -> list[dict]:
        return self.ranked.result()[1]


def report_file(reports_dir: Path, period: str) -> Path:
    return reports_dir / f"pfd_report_{period}.html"


def _rows(con: duckdb.DuckDBPyConnection, name: str, params: dict | None = None) -> list[dict]:
    result = con.execute(load_sql(f"report/{name}"), params or {})
    names = [d[0] for d in result.description]
    return [dict(zip(names, r, strict=True)) for r in result.fetchall()]


def shapiro_matrix(con: duckdb.DuckDBPyConnection, month: str) -> dict:
    """The month's Shapiro matrix: its medians (Decimal), customers ranked and drawn, customers
    per quadrant (keyed by its name), and `dots`: per tier, the drawn customers' cost-to-serve
    and net price realised (% of net revenue and of gross, float arrays) in profit-rank order.
    Counted and cut in SQL: only the dots' two numbers per customer come to Python, as arrays."""
    figures = _rows(con, "shapiro", {"month": month})[0]
    tiers = con.execute(load_sql("report/shapiro_tiers"), {"month": month}).fetchall()
    dots = con.execute(load_sql("report/shapiro_dots"), {"month": month}).fetchnumpy()
    cost, price = dots["cost_to_serve_pct"], dots["net_price_realisation_pct"]
    ends = np.cumsum([n for _, n in tiers], dtype=np.int64)
    figures["dots"] = {
        tier: (cost[end - n : end], price[end - n : end])
        for (tier, n), end in zip(tiers, ends, strict=True)
    }
    return figures


def read_report_data(
    con: duckdb.DuckDBPyConnection, period: str | None = None, beside: Executor | None = None
) -> ReportData:
    """Everything the report shows for `period` (default: the latest published month).

    With `beside`, the customers' drill-downs are read there, on a cursor of their own, while
    the caller goes on (they read every row of the window in customer_cost_to_serve: 0.4-0.6 s
    at L, which `render` overlaps with drawing the charts before them); the caller waits for
    `beside` before closing `con`."""
    whale = whale_summary(con, period)
    if whale is None:
        held = con.execute("select min(period), max(period) from marts.whale_curve").fetchall()[0]
        if held[0] is None:
            raise ReportError("the published file holds no months yet; run `pfd run` first")
        raise ReportError(f"no month {period} in the published tables (they hold {held[0]} to "
                          f"{held[1]})")  # fmt: skip
    month = whale["period"]
    start = con.execute(
        "select min(window_start) from marts.customer_tiers where period = ?", [month]
    ).fetchall()[0][0]
    window = {"month": month, "start": start}
    publication = _rows(con, "publication")[0]
    if beside is None:
        ranked: Future[tuple[list[dict], list[dict]]] = Future()
        ranked.set_result(ranked_customers(con, month, start, limit=RANKED))
    else:
        ranked = beside.submit(_ranked_on_cursor, con.cursor(), month, start)
    return ReportData(
        period=month,
        window_start=start,
        whale=whale,
        tiers=_rows(con, "tiers", {"month": month}),
        migrations=_rows(con, "tier_migrations", {"month": month}),
        tier_changes=_rows(con, "tier_changes", {"month": month}),
        shapiro=shapiro_matrix(con, month),
        pnl=_rows(con, "pnl", window)[0],
        cost_by_activity=_rows(con, "cost_by_activity", window),
        ranked=ranked,
        segments=_rows(con, "segment_trends", window),
        resources=_rows(con, "resources", window),
        publication=publication,
        quality_run=_rows(con, "data_quality", {"run_id": publication["run_id"]}),
        quality_all=_rows(con, "data_quality", {"run_id": None}),
        rejects=_rows(con, "rejects_by_rule"),
        clv=clv_overview(con, month),
        value_matrix=value_matrix(con, month),
        rising_stars=rising_stars(con, month, limit=RISING),
        rising_segments=rising_segments(con, month),
    )


def _ranked_on_cursor(
    cursor: duckdb.DuckDBPyConnection, month: str, start: str
) -> tuple[list[dict], list[dict]]:
    try:
        return ranked_customers(cursor, month, start, limit=RANKED)
    finally:
        cursor.close()


def build_report(published_db: Path, period: str | None = None) -> tuple[str, str]:
    """(month, HTML) of the report for `period` (default: the latest), from the published file."""
    if not published_db.exists():
        raise ReportError(f"no published tables yet at {published_db}; run `pfd run` first")
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        # the drill-downs are read on a thread while the rest is read and drawn; the pool is
        # left (and waited for) before the connection closes
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pfd-report") as beside:
            data = read_report_data(con, period, beside)
            page = render(data)
    finally:
        con.close()
    return data.period, page


def write_report(
    published_db: Path, reports_dir: Path, period: str | None = None, out: Path | None = None
) -> Path:
    """Write the report (atomically: a temporary file renamed over the target); return its path."""
    month, page = build_report(published_db, period)
    target = out or report_file(reports_dir, month)
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(f".{target.name}.*"):  # from a run killed mid-write
        leftover.unlink(missing_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(page)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def current_report(published_db: Path, reports_dir: Path) -> Path | None:
    """The latest month's report, written first if it is missing or was made from another
    publication (a run killed between publishing and the report); None before any month."""
    if not published_db.exists():
        return None
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        month, run_id = con.execute(
            "select (select max(period) from marts.whale_curve), "
            "(select any_value(run_id) from marts.publication)"
        ).fetchall()[0]
    finally:
        con.close()
    if month is None:
        return None
    path = report_file(reports_dir, month)
    stamp = f'<meta name="pfd-publication" content="{_e(run_id)}">'
    if path.exists():
        with path.open(encoding="utf-8") as stream:
            if stamp in stream.read(2048):
                return path
    return write_report(published_db, reports_dir, month)


def whale_markdown(whale: dict) -> str:
    """The whale curve as a Markdown image (PNG data URI), for Dagster metadata."""
    encoded = base64.b64encode(charts.png(charts.whale_curve(whale))).decode("ascii")
    return f"![Whale curve, {whale['period']}](data:image/png;base64,{encoded})"


# --- rendering ---------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def money(value: Decimal | int | None) -> str:
    return "–" if value is None else f"{value:,.2f}"


def whole(value: Decimal | int | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _table(
    header: list[str], rows: list[list[object] | str], numeric: set[int], css: str = ""
) -> str:
    """An HTML table; columns in `numeric` are right-aligned. A row given as a string is one
    cell across the whole table (e.g. a drill-down under the row before it)."""
    head = "".join(
        f"<th{' class=num' if i in numeric else ''}>{_e(h)}</th>" for i, h in enumerate(header)
    )
    body = "".join(
        f'<tr class="sub"><td colspan="{len(header)}">{row}</td></tr>'
        if isinstance(row, str)
        else "<tr>"
        + "".join(
            f"<td{' class=num' if i in numeric else ''}>{cell}</td>" for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _figure(fig_svg: str, caption: str, name: str) -> str:
    return f'<figure data-chart="{name}">{fig_svg}<figcaption>{_e(caption)}</figcaption></figure>'


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def headline(data: ReportData) -> str:
    """The whale curve in one sentence."""
    w = data.whale
    if w["top_profit_pct"] is None:
        return (
            f"Total operating profit over the window is {money(w['total_profit'])}, not positive; "
            f"{w['unprofitable_customers']:,} of {w['customers']:,} customers lose money."
        )
    return (
        f"The top {pct_text(w['top_customers_pct'])} of customers earn "
        f"{pct_text(w['top_profit_pct'])} of operating profit; the curve peaks at "
        f"{pct_text(w['peak_profit_pct'])} with {pct_text(w['peak_customer_pct'])} of customers, "
        f"and the bottom {pct_text(w['bottom_customers_pct'])} lose "
        f"{pct_text(-w['bottom_profit_pct'])} of it. {w['unprofitable_customers']:,} of "
        f"{w['customers']:,} customers lose money."
    )


def render(data: ReportData) -> str:
    """The report as one HTML page (inline CSS and SVG, no script, nothing loaded)."""
    w = data.whale
    window = f"{data.window_start} to {data.period}"
    kpis = [
        ("Customers ranked", f"{w['customers']:,}"),
        ("Operating profit", whole(w["total_profit"])),
        (f"Top {pct_text(w['top_customers_pct'])} earn", _pct_or_dash(w["top_profit_pct"])),
        (
            f"Bottom {pct_text(w['bottom_customers_pct'])} lose",
            _pct_or_dash(None if w["bottom_profit_pct"] is None else -w["bottom_profit_pct"]),
        ),
        ("Losing money", f"{w['unprofitable_customers']:,}"),
        (_clv_label(data.clv), _clv_value(data.clv)),
    ]
    kpi_html = "".join(
        f'<div class="kpi"><div class="kpi-label">{_e(label)}</div>'
        f'<div class="kpi-value">{_e(value)}</div></div>'
        for label, value in kpis
    )
    order = [
        _whale_section,
        _tier_section,
        _shapiro_section,
        _waterfall_section,
        _customers_section,
        _lifetime_value_section,
        _value_matrix_section,
        _rising_stars_section,
        _segments_section,
        _capacity_section,
        _reconciliation_section,
        _quality_section,
    ]
    # drawn in page order, but the customers last: their drill-downs may still be being read
    drawn = {part: part(data) for part in sorted(order, key=lambda p: p is _customers_section)}
    sections = [drawn[part] for part in order]
    toc = "".join(
        f'<a href="#{anchor}">{_e(title)}</a>'
        for anchor, title in (
            ("whale-curve", "Whale curve"),
            ("tiers", "Tiers"),
            ("shapiro", "Shapiro matrix"),
            ("waterfall", "Waterfall"),
            ("customers", "Customers"),
            ("lifetime-value", "CLV"),
            ("value-matrix", "Value matrix"),
            ("rising-stars", "Rising stars"),
            ("segments", "Segments"),
            ("capacity", "Unused capacity"),
            ("reconciliation", "Reconciliation"),
            ("data-quality", "Data quality"),
        )
    )
    title = f"Customer profitability, {data.period}"
    published = _when(data.publication["published_at"])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="pfd {_e(data.publication["pfd_version"])}">
<meta name="pfd-publication" content="{_e(data.publication["run_id"])}">
<title>{_e(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<p class="eyebrow">pfd · Profit by Design</p>
<h1>{_e(title)}</h1>
<p class="window">Trailing window {_e(window)} · operating profit after cost-to-serve ·
published {_e(published)} by run {_e(data.publication["run_id"][:8])}</p>
<p class="headline">{_e(headline(data))}</p>
<div class="kpis">{kpi_html}</div>
<nav>{toc}</nav>
</header>
<main>
{"".join(sections)}
</main>
<footer>Read from the published tables (schema <code>marts</code>) of pfd.duckdb; every figure is
in <code>marts.whale_curve</code>, <code>marts.customer_tiers</code>,
<code>marts.customer_profitability</code>, <code>marts.customer_cost_to_serve</code>,
<code>marts.customer_lifetime_value</code>, <code>marts.clv_model_fit</code>,
<code>marts.customer_value_matrix</code>, <code>marts.rising_stars</code>,
<code>marts.segment_profitability</code>, <code>marts.allocation_reconciliation</code>,
<code>marts.ingested_files</code> and <code>marts.rejected_rows</code>.</footer>
</body>
</html>
"""


def _when(stamp: dt.datetime | None) -> str:
    return "–" if stamp is None else f"{stamp:%Y-%m-%d %H:%M}"


def _pct_or_dash(value: Decimal | None) -> str:
    return "–" if value is None else pct_text(value)


def _whale_section(data: ReportData) -> str:
    w = data.whale
    body = _figure(
        charts.svg(charts.whale_curve(w)),
        "Customers ranked by operating profit over the window, most profitable first; the curve "
        "rises while customers add profit and falls where they destroy it (marts.whale_curve).",
        "whale-curve",
    )
    if w["top_profit_pct"] is not None:
        body += _table(
            ["figure", "value"],
            [
                ["total operating profit", money(w["total_profit"])],
                [
                    "peak",
                    f"{pct_text(w['peak_profit_pct'])} of profit with "
                    f"{pct_text(w['peak_customer_pct'])} of customers",
                ],
                [
                    f"top {pct_text(w['top_customers_pct'])} of customers",
                    f"earn {pct_text(w['top_profit_pct'])} of profit",
                ],
                [
                    f"bottom {pct_text(w['bottom_customers_pct'])} of customers",
                    f"lose {pct_text(-w['bottom_profit_pct'])} of profit",
                ],
            ],
            numeric=set(),
            css="compact",
        )
    return _section("whale-curve", "The whale curve", body)


def _tier_section(data: ReportData) -> str:
    chart = charts.tiers([(t["tier"], t["customers"], t["operating_profit"]) for t in data.tiers])
    tier_rows = [
        [
            _tier_dot(t["tier"]),
            f"{t['customers']:,}",
            money(t["net_revenue"]),
            money(t["operating_profit"]),
        ]
        for t in data.tiers
    ]
    moves = {(m["previous_tier"], m["tier"]): m["customers"] for m in data.migrations}
    before = [*TIERS, "new"]
    after = [*TIERS, "left"]

    def cell(b: str, a: str) -> str:
        if b == "new" and a == "left":  # cannot happen: a new customer is ranked now
            return ""
        return f"{moves[(b, a)]:,}" if (b, a) in moves else "·"

    matrix = [
        [f"<b>{_e(b)}</b>", *(cell(b, a) for a in after)]
        for b in before
        if any((b, a) in moves for a in after)
    ]
    changes = {c["tier_change"]: c["customers"] for c in data.tier_changes}
    gone = sum(n for (_, a), n in moves.items() if a == "left")
    body = (
        _figure(
            charts.svg(chart),
            "Customers and operating profit over the window per tier (marts.customer_tiers).",
            "tiers",
        )  # fmt: skip
        + _table(
            ["tier", "customers", "net revenue", "operating profit"],
            tier_rows,
            numeric={1, 2, 3},
        )
        + "<h3>Tier migrations since the month before</h3>"
        + f'<p class="note">{changes.get("up", 0):,} customers moved up a tier, '
        f"{changes.get('down', 0):,} down, {changes.get('new', 0):,} are new "
        f"and {gone:,} are no longer ranked. Rows: tier the month before; columns: tier now.</p>"
        + _table(["before \\ now", *after], matrix, numeric={1, 2, 3, 4}, css="matrix")
    )
    return _section("tiers", "Customers and profit per tier", body)


def _shapiro_section(data: ReportData) -> str:
    s = data.shapiro
    if not s["plotted"]:
        return _section("shapiro", "The Shapiro matrix", "<p>No customer with net revenue.</p>")
    price_median = float(s["price_median"])
    cost_median = float(s["cost_median"])
    left_out = s["customers"] - s["plotted"]
    chart = charts.shapiro(s["dots"], price_median, cost_median)
    caption = (
        "One dot per customer, coloured by tier; dashed lines at the month's medians "
        f"(net price {price_median:.1f}%, cost-to-serve {cost_median:.1f}% of net revenue) cut "
        "the quadrants (marts.customer_tiers.shapiro_quadrant)."
    )
    if left_out:
        caption += f" {left_out:,} customers without positive net revenue are not drawn."
    quadrants = [
        [_e(q), f"{s[q]:,}", _e(meaning)]
        for q, meaning in (
            ("passive", "high price, low cost to serve: protect"),
            ("carriage trade", "high price, high cost: worth it while the price holds"),
            ("bargain basement", "low price, low cost: efficient, keep lean"),
            ("aggressive", "low price, high cost: re-price or move to a cheaper channel"),
        )
    ]
    body = _figure(charts.svg(chart), caption, "shapiro") + _table(
        ["quadrant", "customers", "what it means"], quadrants, numeric={1}, css="compact"
    )
    return _section("shapiro", "The Shapiro matrix", body)


def waterfall_steps(data: ReportData) -> list[tuple[str, Decimal, str]]:
    """The waterfall's bars: totals and the changes between them, cost-to-serve by activity."""
    p = data.pnl
    steps = [
        ("Gross revenue", p["gross_revenue"], "total"),
        ("Discounts", -p["discounts"], "change"),
        ("Off-invoice", -p["off_invoice"], "change"),
        ("Net revenue", p["net_revenue"], "total"),
        ("COGS", -p["cogs"], "change"),
        ("Gross margin", p["gross_margin"], "total"),
    ]
    steps += [(a["activity"], -a["cost"], "change") for a in data.cost_by_activity]
    other = p["cost_to_serve"] - sum((a["cost"] for a in data.cost_by_activity), Decimal(0))
    if other:  # never expected: customer_profitability ties to the allocation (a check)
        steps.append(("other cost-to-serve", -other, "change"))
    steps.append(("Operating profit", p["operating_profit"], "total"))
    return steps


def _waterfall_section(data: ReportData) -> str:
    steps = waterfall_steps(data)
    p = data.pnl
    rows = [
        [_e(label) if kind == "change" else f"<b>{_e(label)}</b>", money(amount),
         _share(amount, p["net_revenue"])]
        for label, amount, kind in steps
    ]  # fmt: skip
    body = _figure(
        charts.svg(charts.waterfall(steps)),
        f"All customers over {data.window_start} to {data.period} "
        "(marts.customer_profitability; cost-to-serve by activity from "
        "marts.customer_cost_to_serve).",
        "waterfall",
    ) + _table(["step", "amount", "% of net revenue"], rows, numeric={1, 2}, css="compact")
    return _section("waterfall", "The business waterfall", body)


def _share(amount: Decimal, base: Decimal) -> str:
    return "–" if not base or base <= 0 else f"{amount * 100 / base:,.1f}%"


def _customers_section(data: ReportData) -> str:
    def table(customers: list[dict]) -> str:
        rows = []
        for c in customers:
            top = top_activity(c["costs"])
            drill = _table(
                ["activity", "resource", "method", "driver units", "minutes", "cost"],
                [
                    [_e(d["activity"]), _e(d["resource"]), _e(d["method"]),
                     f"{d['driver_units']:,.0f}" if d["driver_units"] is not None else "–",
                     f"{d['minutes']:,.0f}" if d["minutes"] is not None else "–",
                     money(d["cost"])]
                    for d in c["costs"]
                ],
                numeric={3, 4, 5},
                css="drill",
            )  # fmt: skip
            rows.append(
                [
                    f"{c['profit_rank']:,}",
                    f"<b>{_e(c['customer_id'])}</b> {_e(c['customer_name'])}",
                    _e(c["segment"]),
                    _e(c["shapiro_quadrant"] or "–"),
                    money(c["net_revenue"]),
                    money(c["cost_to_serve"]),
                    money(c["operating_profit"]),
                    f"{_e(top[0])} {money(top[1])}" if top else "none",
                ]
            )
            rows.append(
                f"<details><summary>cost-to-serve drill-down of {_e(c['customer_id'])}: "
                f"{len(c['costs']):,} activity × resource rows</summary>{drill}</details>"
            )
        return _table(
            ["rank", "customer", "segment", "quadrant", "net revenue", "cost-to-serve",
             "operating profit", "biggest cost-to-serve activity"],
            rows,
            numeric={0, 4, 5, 6},
            css="customers",
        )  # fmt: skip

    body = (
        f'<p class="note">Over the window {_e(data.window_start)} to {_e(data.period)}; open a '
        "customer's drill-down for its cost by activity and resource "
        "(marts.customer_cost_to_serve).</p>"
        f"<h3>The {RANKED} most profitable customers</h3>{table(data.best)}"
        f"<h3>The {RANKED} least profitable customers</h3>{table(data.worst)}"
    )
    return _section("customers", "Most and least profitable customers", body)


def _clv_fitted(fit: dict | None) -> bool:
    return fit is not None and fit["clv"] is not None


def _no_clv(fit: dict | None) -> str:
    """Why the month has no CLV, in a few words."""
    if fit is None:
        return "no CLV model fit is published for the month"
    return "the CLV models were not fitted for the month"


def _clv_label(fit: dict | None) -> str:
    months = fit["horizon_months"] if fit is not None and fit["horizon_months"] else None
    return f"CLV, next {months} months" if months else "CLV"


def _clv_value(fit: dict | None) -> str:
    if fit is None:
        return "–"
    return whole(fit["clv"]) if _clv_fitted(fit) else "not fitted"


def _lifetime_value_section(data: ReportData) -> str:
    fit = data.clv
    title = "Lifetime value"
    if fit is None:
        return _section(
            "lifetime-value",
            title,
            f'<p class="note">No CLV model fit is published for {_e(data.period)} '
            "(marts.clv_model_fit has no row for the month).</p>",
        )
    if not _clv_fitted(fit):
        return _section(
            "lifetime-value",
            title,
            f'<p class="status warn">No lifetime value for {_e(data.period)}: the month\'s CLV '
            f"model fit (marts.clv_model_fit) says “{_e(fit['status'])}”.</p>",
        )
    rate = fit["annual_discount_rate"]
    sentence = (
        f"Expected operating profit of the next {fit['horizon_months']} months, discounted "
        f"{'–' if rate is None else f'{rate * 100:.0f}%'} a year (an estimate, not a booked "
        f"amount): {money(fit['clv'])} over {fit['customers_fitted']:,} customers fitted; "
        f"{fit['negative_clv_customers']:,} of them are expected to lose money."
    )
    rows = [
        ["total CLV", money(fit["clv"])],
        ["customers fitted (an invoice in the calibration window)", f"{fit['customers_fitted']:,}"],
        ["customers expected to lose money (CLV < 0)", f"{fit['negative_clv_customers']:,}"],
        ["repeat buyers with a margin ≤ 0, valued at their own margin",
         f"{fit['non_positive_margin_customers']:,}"],
        ["model fit of the month", _e(fit["status"])],
        ["BG/NBD r, α (weeks), a, b", _params(fit, "bgnbd_r", "bgnbd_alpha_weeks", "bgnbd_a",
                                               "bgnbd_b")],
        ["Gamma-Gamma p, q, γ", _params(fit, "gamma_gamma_p", "gamma_gamma_q",
                                        "gamma_gamma_gamma")],
    ]  # fmt: skip
    body = (
        f'<p class="note">{_e(sentence)} BG/NBD for how often and how long a customer orders, '
        "Gamma-Gamma for the margin per order, less its cost-to-serve per order "
        "(marts.customer_lifetime_value, marts.clv_model_fit).</p>"
        + _table(["figure", "value"], rows, numeric={1}, css="compact")
    )
    return _section("lifetime-value", title, body)


def _params(fit: dict, *names: str) -> str:
    values = [fit[n] for n in names]
    return (
        "–"
        if all(v is None for v in values)
        else ", ".join("–" if v is None else f"{v:.3f}" for v in values)
    )


def _value_matrix_section(data: ReportData) -> str:
    cells = data.value_matrix
    title = "Customer value matrix"
    if not cells:
        return _section(
            "value-matrix",
            title,
            f'<p class="note">No customer value matrix is published for {_e(data.period)} '
            "(marts.customer_value_matrix has no rows for the month).</p>",
        )
    rows = [
        [_e(c["cell"]), _tier_dot(c["profit_tier"]), _e(c["advocacy"]), f"{c['customers']:,}",
         _pct1(c["share_of_customers_pct"]), money(c["operating_profit"]),
         money(c["clv"]) if c["customers_with_clv"] else "–", _e(c["action"])]
        for c in cells
    ]  # fmt: skip
    tiers: dict[str, dict] = {}
    for c in cells:
        tier = tiers.setdefault(
            c["profit_tier"], {"customers": 0, "respondents": 0, "nps": c["tier_nps"]}
        )
        tier["customers"] += c["customers"]
        if c["advocacy"] != "no response":
            tier["respondents"] += c["customers"]
    nps = [
        [_tier_dot(name), f"{t['customers']:,}", f"{t['respondents']:,}",
         "–" if t["nps"] is None else f"{t['nps']:+.0f}"]
        for name, t in tiers.items()
    ]  # fmt: skip
    note = (
        f'<p class="note">Every customer ranked in {_e(data.period)}, by profit tier (operating '
        "profit over the window) and advocacy (their latest survey answer makes them a promoter, "
        "passive or detractor; no response without one); CLV sums the customers with a lifetime "
        "value.</p>"
    )
    if not _clv_fitted(data.clv):
        note += (
            f'<p class="note">No CLV in the cells ({_e(_no_clv(data.clv))}): they count '
            "customers and profit only.</p>"
        )
    body = (
        note
        + _figure(
            charts.svg(charts.value_matrix(cells)),
            "Each cell shaded by its operating profit over the window (green earns, red loses) "
            "(marts.customer_value_matrix).",
            "value-matrix",
        )
        + _table(
            [
                "cell",
                "profit tier",
                "advocacy",
                "customers",
                "% of customers",
                "operating profit",
                "CLV",
                "what to do",
            ],
            rows,
            numeric={3, 4, 5, 6},
        )  # fmt: skip
        + "<h3>Net promoter score by tier</h3>"
        + '<p class="note">% promoters − % detractors among the tier\'s respondents.</p>'
        + _table(
            ["profit tier", "customers", "respondents", "net promoter score"],
            nps,
            numeric={1, 2, 3},
            css="compact",
        )
    )
    return _section("value-matrix", title, body)


def _tier_dot(tier: str) -> str:
    colour = charts.TIER_COLOURS.get(tier, "#999")
    dot = f'<span class="dot" style="background:{colour}"></span>'
    return f'<span class="nowrap">{dot}{_e(tier)}</span>'


def _rising_stars_section(data: ReportData) -> str:
    title = "Rising stars"
    if not data.rising_stars:
        why = "" if _clv_fitted(data.clv) else f" ({_no_clv(data.clv)})"
        return _section(
            "rising-stars",
            title,
            f'<p class="note">No rising stars in {_e(data.period)}{_e(why)}: no young customer '
            "is on the path to the top tier (marts.rising_stars has no rows for the month).</p>",
        )
    listed = sum(s["rising_stars"] for s in data.rising_segments)
    stars = [
        [f"{r['rising_rank']:,}", f"<b>{_e(r['customer_id'])}</b> {_e(r['customer_name'])}",
         _e(r["segment"]), f"{r['tenure_months']:,}", _tier_dot(r["tier"]), _e(r["trend"]),
         money(r["clv"]), _e(r["reason"])]
        for r in data.rising_stars
    ]  # fmt: skip
    segments = [
        [_e(s["segment"]), f"{s['young_customers']:,}", f"{s['rising_stars']:,}",
         money(s["young_median_clv"]), _pct_or_dash(s["clv_vs_top_tier_pct"])]
        for s in data.rising_segments
    ]  # fmt: skip
    shown = (
        f"{listed:,} listed" if listed <= len(stars) else f"the top {len(stars):,} of {listed:,}"
    )
    body = (
        f'<p class="note">Young customers, not yet highly profitable and not declining, whose '
        "CLV reaches the top tier's bar or whose improving run-rate profit already reaches the "
        f"top tier's lowest profit: {shown}, highest CLV first (marts.rising_stars).</p>"
        + _table(
            [
                "rank",
                "customer",
                "segment",
                "months a customer",
                "tier",
                "trend",
                "CLV",
                "why listed",
            ],
            stars,
            numeric={0, 3, 6},
        )  # fmt: skip
        + "<h3>Segments whose young customers look most like the top tier</h3>"
        + '<p class="note">Median CLV of the segment\'s young customers against the top '
        "tier's CLV bar; segments with at least one rising star.</p>"
        + _table(
            [
                "segment",
                "young customers",
                "rising stars",
                "median CLV of the young",
                "% of the top tier's bar",
            ],
            segments,
            numeric={1, 2, 3, 4},
            css="compact",
        )  # fmt: skip
    )
    return _section("rising-stars", title, body)


def _segments_section(data: ReportData) -> str:
    series: dict[str, list[tuple[str, Decimal | None]]] = {}
    total = "All customers"
    for r in data.segments:
        name = total if r["grouping_level"] == "all" else r["segment"]
        series.setdefault(name, []).append((r["period"], r["operating_margin_pct"]))
    if not series:
        return _section("segments", "Segment margin trends", "<p>No segment rows.</p>")
    latest = [
        [_e(name), _pct1(points[-1][1]), _pct1(points[0][1])] for name, points in series.items()
    ]
    body = _figure(
        charts.svg(charts.segment_trends(series, total)),
        "Operating margin per month, by customer segment (marts.segment_profitability, "
        "grouping_level 'segment' and 'all').",
        "segments",
    ) + _table(
        ["segment", f"margin {data.period}", f"margin {data.window_start}"],
        latest,
        numeric={1, 2},
        css="compact",
    )
    return _section("segments", "Segment margin trends", body)


def _pct1(value: Decimal | None) -> str:
    return "–" if value is None else f"{value:,.1f}%"


def _capacity_section(data: ReportData) -> str:
    rows = [
        (
            r["resource"],
            r["unused_capacity_cost"],
            float(r["minutes_used"] / r["practical_capacity_minutes"])
            if r["practical_capacity_minutes"]
            else None,
        )
        for r in data.resources
        if r["unused_capacity_cost"]
    ]
    table = _table(
        ["resource", "method", "cost supplied", "unused capacity", "capacity (min)", "used (min)"],
        [
            [_e(r["resource"]), _e(r["method"] or "not in model"), money(r["cost_supplied"]),
             money(r["unused_capacity_cost"]), whole(r["practical_capacity_minutes"]),
             whole(r["minutes_used"])]
            for r in data.resources
            if r["practical_capacity_minutes"] is not None
        ],
        numeric={2, 3, 4, 5},
    )  # fmt: skip
    if rows:
        chart = _figure(
            charts.svg(charts.unused_capacity(rows)),
            "Cost of practical capacity not used over the window; it is reported, not charged "
            "to customers (marts.allocation_reconciliation).",
            "capacity",
        )
    else:
        chart = '<p class="note">No unused capacity in the window.</p>'
    return _section("capacity", "Unused capacity by resource", chart + table)


def _reconciliation_section(data: ReportData) -> str:
    months = sum(r["months"] for r in data.resources)
    off = sum(r["months_not_balancing"] for r in data.resources)
    if months == 0:
        status = '<p class="status ok">No cost was allocated in the window.</p>'
    elif off == 0:
        status = (
            f'<p class="status ok">Balanced: all {months:,} resource-months of the window '
            "balance to the cent (supplied = assigned + unused capacity + unassigned).</p>"
        )
    else:
        status = (
            f'<p class="status bad">{off:,} of {months:,} resource-months do NOT balance; see '
            "marts.allocation_reconciliation.</p>"
        )
    rows = [
        [_e(r["resource"]), money(r["cost_supplied"]), money(r["cost_assigned"]),
         money(r["unused_capacity_cost"]), money(r["unassigned_total"]), money(r["difference"])]
        for r in data.resources
    ]  # fmt: skip
    totals = [
        "<b>total</b>",
        *(
            f"<b>{money(sum((r[k] for r in data.resources), Decimal(0)))}</b>"
            for k in (
                "cost_supplied",
                "cost_assigned",
                "unused_capacity_cost",
                "unassigned_total",
                "difference",
            )
        ),
    ]
    body = status + _table(
        ["resource", "supplied", "assigned", "unused capacity", "unassigned", "difference"],
        [*rows, totals],
        numeric={1, 2, 3, 4, 5},
    )
    return _section("reconciliation", "Reconciliation", body)


def _quality_section(data: ReportData) -> str:
    pub = data.publication

    def table(rows: list[dict]) -> str:
        if not rows:
            return '<p class="note">No landing files were read by this run.</p>'
        return _table(
            ["source", "files loaded", "duplicates", "rows read", "accepted", "rejected"],
            [
                [_e(r["source"]), f"{r['files_loaded']:,}", f"{r['files_duplicate']:,}",
                 f"{r['rows_read']:,}", f"{r['rows_accepted']:,}", f"{r['rows_rejected']:,}"]
                for r in rows
            ],
            numeric={1, 2, 3, 4, 5},
        )  # fmt: skip

    rejects = (
        _table(
            ["source", "rule", "rows rejected"],
            [[_e(r["source"]), _e(r["rule"]), f"{r['rows_rejected']:,}"] for r in data.rejects],
            numeric={2},
            css="compact",
        )
        if data.rejects
        else '<p class="note">No row was ever rejected.</p>'
    )
    body = (
        f'<p class="note">Published {_e(_when(pub["published_at"]))} by run {_e(pub["run_id"])}; '
        f"months {_e(pub['first_period'])} to {_e(pub['latest_period'])}; rows read = accepted + "
        "rejected for every file (marts.ingested_files, marts.rejected_rows).</p>"
        f"<h3>The run that published these tables</h3>{table(data.quality_run)}"
        f"<h3>All runs</h3>{table(data.quality_all)}"
        f"<h3>Rejected rows by rule (all runs)</h3>{rejects}"
    )
    return _section("data-quality", "Data quality", body)


CSS = """
:root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --bg:#f8fafc; --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header, main, footer { max-width: 1120px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; }
.eyebrow { text-transform: uppercase; letter-spacing: .08em; color: var(--muted);
  font-size: 12px; margin: 0; }
h1 { font-size: 30px; margin: 4px 0 2px; }
.window { color: var(--muted); margin: 0 0 12px; }
.headline { font-size: 19px; font-weight: 600; margin: 8px 0 16px; max-width: 60em; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; }
.kpi { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 10px;
  display: flex; flex-direction: column; justify-content: space-between; }
.kpi-label { color: var(--muted); font-size: 12px; }
.kpi-value { font-size: 22px; font-weight: 700; font-variant-numeric: tabular-nums; }
nav { margin: 18px 0 6px; display: flex; flex-wrap: wrap; gap: 6px 13px; }
nav a { color: var(--accent); text-decoration: none; font-size: 14px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 12px;
  padding: 18px 22px; margin: 18px 0; }
h2 { font-size: 20px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
figure { margin: 0 0 12px; }
figcaption, .note { color: var(--muted); font-size: 13px; }
svg.chart { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0 4px; }
table.compact { width: auto; min-width: 50%; }
table.matrix { width: auto; }
th, td { padding: 5px 9px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; background: #f9fafb; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.drill { margin: 4px 0 8px; font-size: 12px; width: auto; min-width: 60%; }
tr.sub > td { padding-top: 0; color: var(--muted); font-size: 12px; }
tr:has(+ tr.sub) > td { border-bottom: 0; }
details summary { cursor: pointer; }
.nowrap { white-space: nowrap; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%;
  margin-right: 6px; }
.status { font-weight: 600; padding: 8px 12px; border-radius: 8px; }
.status.ok { background: #ecfdf5; color: #065f46; }
.status.bad { background: #fef2f2; color: #991b1b; }
.status.warn { background: #fffbeb; color: #92400e; }
footer { color: var(--muted); font-size: 12px; padding-bottom: 30px; }
@media print { body { background: #fff; } nav { display: none; }
  section { break-inside: avoid; border: 0; } }
"""
