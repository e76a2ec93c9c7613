"""The report's charts, drawn with matplotlib from rows of the published tables.

Figures are made with `matplotlib.figure.Figure`, never pyplot: they are rendered by the Agg
(PNG) and SVG canvases directly, need no display and leave the caller's backend alone.

Every function takes figures already read from the published file and returns a Figure; `svg`
and `png` turn it into bytes that are the same on every run (fixed hash salt, no date or
software stamp), so a re-run of the same month writes the same report.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Mapping, Sequence
from decimal import Decimal

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.layout_engine import TightLayoutEngine
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, PercentFormatter

TIER_COLOURS = {
    "highly profitable": "#1a7f4b",
    "break-even": "#8a94a6",
    "unprofitable": "#c0392b",
}
INK = "#1f2937"
MUTED = "#6b7280"
ACCENT = "#2563eb"
LOSS = "#c0392b"
GAIN = "#1a7f4b"
STYLE = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial", "sans-serif"],
    "font.size": 10,
    "axes.edgecolor": "#d1d5db",
    "axes.labelcolor": INK,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.8,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "legend.frameon": False,
    "svg.fonttype": "none",  # text stays text: small files, fonts of the viewer's system
    "svg.hashsalt": "pfd-report",  # element ids from a fixed salt, not a random one
    "path.simplify": True,
}


def _figure(width: float, height: float, **subplots) -> tuple[Figure, object]:
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, height))
        axes = fig.subplots(**subplots)
    return fig, axes


def _fit_margins(fig: Figure) -> None:
    """Margins that fit every label, legend and annotation, measured once, just before saving.

    The figures carry no layout engine: with one, `savefig` first draws the whole figure to lay
    it out, and the constrained layout measured every tick label twice; that made up a third of
    the report's time at L (about 0.45 of 1.45 s). Measured once here, then drawn once; names
    from the user's files (segments, resources, activities) are drawn whole
    (tests/test_report.py); the capacity chart, whose labels are the longest, puts its title at
    the figure's edge (`_figure_title`).
    """
    TightLayoutEngine(pad=0.6).execute(fig)


def _figure_title(fig: Figure, title: str) -> None:
    """The chart's title at the figure's left edge rather than its axes': a chart whose labels
    are names from the user's files (a resource of 60 characters) starts its axes far enough
    right to push an axes title past the figure's right edge. Styled as an axes title."""
    with matplotlib.rc_context(STYLE):
        pad = 0.6 * STYLE["font.size"] / 72 / fig.get_figwidth()  # the layout's pad, as a fraction
        fig.suptitle(title, x=pad, ha="left", fontsize=STYLE["axes.titlesize"],
                     fontweight=STYLE["axes.titleweight"])  # fmt: skip


def svg(fig: Figure) -> str:
    """The figure as an inline <svg> element that scales with the page."""
    buffer = io.StringIO()
    with matplotlib.rc_context(STYLE):
        _fit_margins(fig)
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    # Inline in HTML: no XML declaration, DOCTYPE, RDF metadata or namespace declarations (the
    # HTML parser puts <svg> in its namespace), so the page names no URL at all.
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.DOTALL)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    text = text.replace("xlink:href=", "href=")
    return re.sub(
        r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
        r'<svg\1 class="chart" role="img" preserveAspectRatio="xMidYMid meet"',
        text,
        count=1,
    )


def png(fig: Figure, dpi: int = 80) -> bytes:
    buffer = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        _fit_margins(fig)
        fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def money_short(value: float, _pos: object = None) -> str:
    """1,234,567 -> 1.2M; for axes."""
    size = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{value / limit:,.1f}{suffix}".replace(".0" + suffix, suffix)
    return f"{value:,.0f}"


def _f(value: Decimal | float | int | None) -> float:
    return float(value) if value is not None else float("nan")


def whale_curve(whale: dict) -> Figure:
    """Cumulative % of profit against % of customers ranked by profit, with the 100% line, the
    peak, and the top-group and bottom-group figures marked."""
    fig, ax = _figure(9, 4.8)
    points = whale["curve"]
    x = [_f(p) for p, _ in points]
    with matplotlib.rc_context(STYLE):
        if whale["top_profit_pct"] is None:  # total profit <= 0: shares are meaningless
            ax.set_title("Cumulative operating profit, customers ranked by profit")
            ax.text(
                0.5, 0.5, "Total operating profit is not positive: no whale curve in % of it.",
                transform=ax.transAxes, ha="center", color=LOSS,
            )  # fmt: skip
            ax.set_axis_off()
            return fig
        y = [_f(v) for _, v in points]
        peak_x, peak_y = _f(whale["peak_customer_pct"]), _f(whale["peak_profit_pct"])
        top_x, top_y = _f(whale["top_customers_pct"]), _f(whale["top_profit_pct"])
        bottom_x = 100 - _f(whale["bottom_customers_pct"])
        bottom_loss = -_f(whale["bottom_profit_pct"])
        ax.fill_between(x, y, 0, color=ACCENT, alpha=0.08, linewidth=0)
        ax.plot(x, y, color=ACCENT, linewidth=2.2, label="cumulative % of operating profit")
        ax.axhline(100, color=INK, linestyle="--", linewidth=1, label="100% of profit")
        ax.axhline(0, color=MUTED, linewidth=0.8)
        ax.axvspan(0, top_x, color=GAIN, alpha=0.07, linewidth=0)
        ax.axvspan(bottom_x, 100, color=LOSS, alpha=0.08, linewidth=0)
        ax.plot([peak_x], [peak_y], "o", color=INK, markersize=6, zorder=5)
        ax.annotate(
            f"peak {peak_y:.0f}% with {peak_x:.0f}% of customers",
            (peak_x, peak_y), xytext=(0, 12), textcoords="offset points",
            ha="center", fontweight="bold", color=INK,
        )  # fmt: skip
        ax.plot([top_x], [top_y], "o", color=GAIN, markersize=6, zorder=5)
        ax.annotate(
            f"top {top_x:.0f}% earn {top_y:.0f}%",
            (top_x, top_y), xytext=(8, -6), textcoords="offset points",
            ha="left", va="top", color=GAIN, fontweight="bold",
        )  # fmt: skip
        ax.annotate(
            f"bottom {100 - bottom_x:.0f}%\nlose {bottom_loss:.0f}%",
            (100, 100), xytext=(-6, 10), textcoords="offset points",
            ha="right", va="bottom", color=LOSS, fontweight="bold",
        )  # fmt: skip
        ax.set_xlim(0, 100)
        ax.set_ylim(min(0, *[v for v in y if v == v]) - 10, max(peak_y, 100) * 1.15)
        ax.xaxis.set_major_formatter(PercentFormatter(decimals=0))
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
        ax.set_xlabel("% of customers, most profitable first")
        ax.set_ylabel("cumulative % of operating profit")
        ax.set_title(f"Whale curve, {whale['customers']:,} customers")
        ax.legend(loc="lower center")
    return fig


def tiers(rows: Sequence[tuple[str, int, Decimal]]) -> Figure:
    """Customers and operating profit per tier, side by side: (tier, customers, profit)."""
    fig, (left, right) = _figure(9, 2.6, ncols=2)
    names = [r[0] for r in rows][::-1]
    colours = [TIER_COLOURS.get(n, MUTED) for n in names]
    customers = [r[1] for r in rows][::-1]
    profit = [_f(r[2]) for r in rows][::-1]
    with matplotlib.rc_context(STYLE):
        left.barh(names, customers, color=colours)
        left.set_title("Customers per tier")
        left.xaxis.set_major_formatter(FuncFormatter(money_short))
        for i, n in enumerate(customers):
            left.annotate(f"{n:,}", (n, i), xytext=(3, 0), textcoords="offset points",
                          va="center", color=INK)  # fmt: skip
        left.set_xlim(0, max(customers, default=1) * 1.2)
        right.barh(names, profit, color=colours)
        right.axvline(0, color=MUTED, linewidth=0.8)
        right.set_title("Operating profit per tier")
        right.xaxis.set_major_formatter(FuncFormatter(money_short))
        right.tick_params(axis="y", left=False, labelleft=False)
        for i, v in enumerate(profit):
            right.annotate(money_short(v), (v, i), xytext=(3 if v >= 0 else -3, 0),
                           textcoords="offset points", va="center",
                           ha="left" if v >= 0 else "right", color=INK)  # fmt: skip
        span = max([abs(v) for v in profit] or [1])
        right.set_xlim(min(0, *profit) - 0.25 * span, max(0, *profit) + 0.25 * span)
        for ax in (left, right):
            ax.grid(axis="y", visible=False)
    return fig


QUADRANTS = (  # (label, x position, y position) in axes coordinates: x cost, y price
    ("Passive", 0.02, 0.97, "left", "top"),
    ("Carriage trade", 0.98, 0.97, "right", "top"),
    ("Bargain basement", 0.02, 0.03, "left", "bottom"),
    ("Aggressive", 0.98, 0.03, "right", "bottom"),
)
COST_FLOOR_PCT = 0.1  # a customer without cost-to-serve is drawn here on the log axis
# Above this many customers the dots are drawn as one embedded PNG inside the SVG (axes, lines
# and labels stay vectors): one SVG element per dot would make a page of many megabytes.
RASTER_DOTS = 5_000
EMPTY_DOTS = (np.empty(0), np.empty(0))


def shapiro(
    dots: Mapping[str, tuple[np.ndarray, np.ndarray]], price_median: float, cost_median: float
) -> Figure:
    """Net price realised (y) against cost-to-serve as % of net revenue (x, log), one dot per
    customer coloured by tier, cut at the month's medians into the four named quadrants. `dots`
    holds per tier the (cost-to-serve %, net price %) arrays of its customers."""
    fig, ax = _figure(9, 5.6)
    drawn = sum(len(cost) for cost, _ in dots.values())
    with matplotlib.rc_context(STYLE):
        for tier in ("break-even", "highly profitable", "unprofitable"):
            cost, price = dots.get(tier, EMPTY_DOTS)
            if not len(cost):
                continue
            ax.scatter(
                np.maximum(cost, COST_FLOOR_PCT), price,
                s=9, alpha=0.65, color=TIER_COLOURS[tier], linewidths=0,
                label=f"{tier} ({len(cost):,})", rasterized=drawn > RASTER_DOTS,
            )  # fmt: skip
        ax.set_xscale("log")
        ax.axvline(max(cost_median, COST_FLOOR_PCT), color=INK, linestyle="--", linewidth=1)
        ax.axhline(price_median, color=INK, linestyle="--", linewidth=1)
        for label, x, y, ha, va in QUADRANTS:
            ax.text(x, y, label, transform=ax.transAxes, ha=ha, va=va, fontsize=12,
                    fontweight="bold", color=INK, alpha=0.75)  # fmt: skip
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
        ax.set_xlabel("cost-to-serve, % of net revenue (log scale; dashed: the month's median)")
        ax.set_ylabel("net price realised, % of gross")
        ax.legend(loc="lower right", ncols=3, bbox_to_anchor=(1.0, 1.0), markerscale=2)
    return fig


def waterfall(steps: Sequence[tuple[str, Decimal, str]]) -> Figure:
    """The business from gross revenue to operating profit: steps of (label, amount, kind) with
    kind 'total' (a bar from zero) or 'change' (a bar from the running total)."""
    fig, ax = _figure(10, 4.8)
    running = 0.0
    with matplotlib.rc_context(STYLE):
        for i, (_, amount, kind) in enumerate(steps):
            value = _f(amount)
            if kind == "total":
                bottom, height, colour = 0.0, value, ACCENT if value >= 0 else LOSS
                running = value
            else:
                bottom, height = running, value
                colour = GAIN if value >= 0 else LOSS
                running += value
            ax.bar(i, height, bottom=bottom, color=colour, width=0.7)
            top = max(bottom, bottom + height)
            ax.annotate(money_short(value), (i, top), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8, color=INK)  # fmt: skip
        ax.axhline(0, color=MUTED, linewidth=0.8)
        low, high = ax.get_ylim()
        ax.set_ylim(low, high + 0.08 * (high - low))  # room for the labels above the bars
        ax.set_xticks(range(len(steps)), [s[0] for s in steps], rotation=35, ha="right")
        ax.yaxis.set_major_formatter(FuncFormatter(money_short))
        ax.grid(axis="x", visible=False)
        ax.set_title("From gross revenue to operating profit")
    return fig


def segment_trends(series: dict[str, list[tuple[str, Decimal | None]]], total: str) -> Figure:
    """Operating margin % per segment over the months; `total` (all customers) dashed."""
    fig, ax = _figure(9, 4.2)
    with matplotlib.rc_context(STYLE):
        for name, points in series.items():
            months = [p for p, _ in points]
            values = [_f(v) for _, v in points]
            if name == total:
                ax.plot(months, values, color=INK, linestyle="--", linewidth=2, label=name)
            else:
                ax.plot(months, values, marker="o", markersize=3, linewidth=1.6, label=name)
        ax.axhline(0, color=MUTED, linewidth=0.8)
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
        ax.tick_params(axis="x", rotation=45)
        ax.set_ylabel("operating margin, % of net revenue")
        ax.set_title("Operating margin by segment")
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def unused_capacity(rows: Sequence[tuple[str, Decimal, float | None]]) -> Figure:
    """Cost of unused capacity per resource: (resource, cost, utilisation 0..1 or None)."""
    fig, ax = _figure(9, 0.5 + 0.45 * max(len(rows), 2))
    names = [r[0] for r in rows][::-1]
    costs = [_f(r[1]) for r in rows][::-1]
    used = [r[2] for r in rows][::-1]
    with matplotlib.rc_context(STYLE):
        ax.barh(names, costs, color="#f59e0b")
        largest = max(costs, default=0)
        for i, (cost, share) in enumerate(zip(costs, used, strict=True)):
            text = money_short(cost) + (f"  ({share:.0%} used)" if share is not None else "")
            # The value goes inside a bar of at least half the largest, else after its end: the
            # room after a bar shrinks with the axes, which long resource names narrow, while
            # the text keeps its width.
            inside = largest > 0 and cost >= largest / 2
            ax.annotate(text, (cost, i), xytext=(-4 if inside else 3, 0),
                        textcoords="offset points", ha="right" if inside else "left",
                        va="center", color=INK)  # fmt: skip
        ax.set_xlim(0, largest * 1.35 or 1)
        ax.xaxis.set_major_formatter(FuncFormatter(money_short))
        ax.grid(axis="y", visible=False)
    _figure_title(fig, "Unused capacity by resource (cost not charged to customers)")
    return fig


ADVOCACY = ("promoter", "passive", "detractor", "no response")


def value_matrix(cells: Sequence[dict]) -> Figure:
    """Profit tier (rows) x advocacy (columns) as a grid of named cells, each shaded by its
    operating profit (green earns, red loses; the deeper, the more) and labelled with its
    customers, profit and CLV; cells as in marts.customer_value_matrix."""
    fig, ax = _figure(9, 4.4)
    tier_names = list(dict.fromkeys(c["profit_tier"] for c in cells))
    columns = [a for a in ADVOCACY if any(c["advocacy"] == a for c in cells)]
    biggest = max((abs(_f(c["operating_profit"])) for c in cells), default=0.0) or 1.0
    with matplotlib.rc_context(STYLE):
        for c in cells:
            x, y = (
                columns.index(c["advocacy"]),
                len(tier_names) - 1 - tier_names.index(c["profit_tier"]),
            )
            profit = _f(c["operating_profit"])
            if c["customers"]:
                colour, alpha = (GAIN if profit >= 0 else LOSS), 0.12 + 0.6 * abs(profit) / biggest
            else:
                colour, alpha = "#f3f4f6", 1.0
            ax.add_patch(
                Rectangle((x + 0.02, y + 0.03), 0.96, 0.94, facecolor=colour, alpha=alpha,
                          edgecolor="none")
            )  # fmt: skip
            clv = money_short(_f(c["clv"])) if c["customers_with_clv"] else "–"
            ax.text(x + 0.5, y + 0.7, textwrap.fill(c["cell"], 20), ha="center", va="center",
                    fontsize=9, fontweight="bold", color=INK, linespacing=1.2)  # fmt: skip
            ax.text(
                x + 0.5, y + 0.3,
                f"{c['customers']:,} customers\nprofit {money_short(profit)} · CLV {clv}",
                ha="center", va="center", fontsize=8.5, color=INK if c["customers"] else MUTED,
                linespacing=1.4,
            )  # fmt: skip
        ax.set_xlim(0, len(columns))
        ax.set_ylim(0, len(tier_names))
        ax.set_xticks([i + 0.5 for i in range(len(columns))], columns)
        ax.set_yticks([i + 0.5 for i in range(len(tier_names))], tier_names[::-1])
        ax.xaxis.tick_top()
        ax.tick_params(length=0)
        for label in ax.get_yticklabels():
            label.set_color(TIER_COLOURS.get(label.get_text(), INK))
            label.set_fontweight("bold")
        ax.grid(visible=False)
        for side in ("left", "bottom", "top", "right"):
            ax.spines[side].set_visible(False)
        ax.set_title("Profit tier × advocacy (latest survey answer)", pad=24)
    return fig
