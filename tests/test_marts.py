"""Marts on hand-computed fixtures: P&L, tiers, cumulative shares, quadrants, whale curve,
trend slopes on series with known slopes, segments, and which months a change rebuilds."""

from __future__ import annotations

import dataclasses
import threading
import time
from decimal import Decimal as D  # noqa: N817 (short, read in long tables of amounts)

import pytest
from mart_helpers import DEFAULTS, JANUARY, add_month, allocated_month, build, mart_store, rows

from pfd_pipeline import marts
from pfd_pipeline.settings import MartSettings

ONE_MONTH = dataclasses.replace(MartSettings(), window_months=1)


@pytest.fixture
def con():
    yield from mart_store()


# December: C03 1000, C01 100, C05 50, C07 10, C10 -5; only C03 (rank 1 of 5) is on top.
DECEMBER = {
    "C03": (2000, 0, 1000, 0),
    "C01": (200, 0, 100, 0),
    "C05": (100, 0, 50, 0),
    "C07": (20, 0, 10, 0),
    "C10": (0, 0, 0, 5),
}


def test_customer_profitability_pnl(con):
    add_month(con, "2025-01", {"C01": (2000, 100, 1000, 400), "C09": (0, 0, 0, 100)})
    con.execute(
        "insert into raw.sales_ledger values ('cn1', 'CN1', 'credit_note', '2025-01-20', 'C01', "
        "'P1', -2, -300, -15, -150, 'EUR', 'web', 0, 1, 1)"
    )
    con.execute("update raw.sales_ledger set off_invoice_amount = 40 where line_id = '2025-01-C01'")
    allocated_month(con, "2025-01")  # the month's allocation again, as new lines would have it
    build(con, ONE_MONTH)
    c01, c09 = rows(con, "select * from marts.customer_profitability order by customer_id")
    assert c01["invoiced_gross"] == D("2000.00")
    assert c01["credit_notes_gross"] == D("-300.00")
    assert c01["gross_revenue"] == D("1700.00")
    assert c01["discounts"] == D("85.00")
    assert c01["off_invoice"] == D("40.00")
    assert c01["net_revenue"] == D("1575.00")  # 1700 - 85 - 40
    assert c01["cogs"] == D("850.00")
    assert c01["gross_margin"] == D("725.00")
    assert c01["cost_to_serve"] == D("400.00")
    assert c01["operating_profit"] == D("325.00")
    assert c01["gross_margin_pct"] == D("46.03")  # 725 / 1575
    assert c01["operating_margin_pct"] == D("20.63")  # 325 / 1575
    assert (c01["orders"], c01["credit_notes"], c01["invoice_lines"]) == (1, 1, 1)
    assert (c01["units_sold"], c01["units_returned"]) == (D(1), D(2))
    assert (c01["main_channel"], c01["top_cost_activity"]) == ("web", "order_entry")
    # cost but no revenue: still a row, margins undefined
    assert c09["net_revenue"] == 0 and c09["operating_profit"] == D("-100.00")
    assert c09["operating_margin_pct"] is None and c09["main_channel"] == "none"
    assert marts.untied(con, ["2025-01"]) == {}


def test_a_month_that_does_not_tie_is_reported_and_rebuilt_by_the_next_run(con):
    add_month(con, "2025-01", {"C01": (2000, 100, 1000, 400), "C02": (500, 0, 200, 50)})
    add_month(con, "2025-02", {"C01": (1000, 0, 500, 100)})
    build(con, ONE_MONTH)
    assert marts.untied(con, ["2025-01", "2025-02"]) == {}
    con.execute(
        "update marts.customer_profitability set net_revenue = net_revenue + 0.01 "
        "where period = '2025-01' and customer_id = 'C02'"
    )
    con.execute("delete from marts.customer_cost_to_serve where period = '2025-02'")
    # only the months asked about are checked
    assert marts.untied(con, ["2025-02"]) == {
        "2025-02": "net revenue off by 0.00, COGS off by 0.00, cost-to-serve off by 100.00"
    }
    off = marts.untied(con, ["2025-01", "2025-02"])
    assert off["2025-01"] == "net revenue off by 0.01, COGS off by 0.00, cost-to-serve off by 0.00"
    assert list(off) == ["2025-01", "2025-02"]
    profitability = marts.marts(ONE_MONTH)[0]
    assert marts.pending(con, profitability, ONE_MONTH) == []
    marts.forget_builds(con, profitability.name, ["2025-01"])
    assert marts.pending(con, profitability, ONE_MONTH) == ["2025-01"]
    assert build(con, ONE_MONTH)["customer_profitability"] == ["2025-01"]
    assert marts.untied(con, ["2025-01"]) == {}


def test_tiers_cumulative_shares_and_quadrants(con):
    add_month(con, "2024-12", DECEMBER)
    add_month(con, "2025-01", JANUARY)
    build(con, ONE_MONTH)
    jan = {
        r["customer_id"]: r
        for r in rows(con, "select * from marts.customer_tiers where period = '2025-01'")
    }
    ranked = sorted(jan, key=lambda c: jan[c]["profit_rank"])
    assert ranked == [f"C{i:02d}" for i in range(1, 11)]
    assert [jan[c]["operating_profit"] for c in ranked] == [
        D(x) for x in (500, 300, 200, 100, 50, 0, -20, -30, -100, -400)
    ]
    assert [jan[c]["cumulative_profit"] for c in ranked] == [
        D(x) for x in (500, 800, 1000, 1100, 1150, 1150, 1130, 1100, 1000, 600)
    ]
    assert [jan[c]["cumulative_profit_pct"] for c in ranked] == [
        D(x)
        for x in (
            "83.3333", "133.3333", "166.6667", "183.3333", "191.6667",
            "191.6667", "188.3333", "183.3333", "166.6667", "100.0000",
        )
    ]  # fmt: skip
    assert [jan[c]["cumulative_customer_pct"] for c in ranked] == [D(10 * i) for i in range(1, 11)]
    # 20 / 70 / 10 of ten customers: two on top, one at the bottom
    assert [jan[c]["tier"] for c in ranked] == (
        ["highly profitable"] * 2 + ["break-even"] * 7 + ["unprofitable"]
    )
    # medians over the nine with revenue: price realisation 95%, cost-to-serve 37.5% of net
    assert jan["C01"]["net_price_realisation_pct"] == D("95.0000")
    assert jan["C01"]["cost_to_serve_pct"] == D("21.0526")  # 400 / 1900
    assert {c: jan[c]["shapiro_quadrant"] for c in ranked} == {
        "C01": "passive",  # 95% >= median, 21% < median
        "C02": "passive",
        "C03": "bargain basement",  # 80%, 12.5%
        "C04": "bargain basement",  # 83.3%, 20%
        "C05": "carriage trade",  # 100%, 37.5% (at the median counts as high)
        "C06": "carriage trade",
        "C07": "aggressive",  # 90%, 55.6%
        "C08": "carriage trade",
        "C09": None,  # no revenue
        "C10": "aggressive",  # 75%, 166.7%
    }
    # December: C03 was the only top customer of five (rank 1 <= 20% of 5)
    assert {c: (jan[c]["previous_tier"], jan[c]["tier_change"]) for c in jan} == {
        "C01": ("break-even", "up"),
        "C02": (None, "new"),
        "C03": ("highly profitable", "down"),
        "C04": (None, "new"),
        "C05": ("break-even", "same"),
        "C06": (None, "new"),
        "C07": ("break-even", "same"),
        "C08": (None, "new"),
        "C09": (None, "new"),
        "C10": ("break-even", "down"),
    }


def test_whale_curve_points_and_summary(con):
    add_month(con, "2025-01", JANUARY)
    build(con, ONE_MONTH)
    curve = rows(con, "select * from marts.whale_curve order by customer_pct")
    assert [p["customer_pct"] for p in curve] == list(range(101))
    at = {p["customer_pct"]: p for p in curve}
    assert (at[0]["customers_counted"], at[0]["cumulative_profit_pct"]) == (0, D(0))
    assert (at[15]["customers_counted"], at[15]["cumulative_profit_pct"]) == (1, D("83.3333"))
    assert at[20]["cumulative_profit_pct"] == D("133.3333")
    assert at[100]["cumulative_profit_pct"] == D("100.0000")
    summary = at[100]
    assert summary["customers"] == 10 and summary["total_profit"] == D("600.00")
    assert summary["peak_profit_pct"] == D("191.6667")
    assert summary["peak_customer_pct"] == D("50.0000")  # first reached at rank 5
    assert summary["top_customers_pct"] == D("20.0000")
    assert summary["top_profit_pct"] == D("133.3333")  # (500 + 300) / 600
    assert summary["bottom_customers_pct"] == D("10.0000")
    assert summary["bottom_profit_pct"] == D("-66.6667")  # -400 / 600
    assert summary["unprofitable_customers"] == 4
    assert marts.whale_summary(con)["top_profit_pct"] == D("133.3333")


def test_a_customer_losing_money_is_never_highly_profitable(con):
    add_month(con, "2025-01", {"C01": (100, 0, 50, 60), "C02": (100, 0, 50, 80)})
    build(con, dataclasses.replace(ONE_MONTH, top_share=D("0.5"), bottom_share=D("0")))
    tiers = rows(con, "select customer_id, tier from marts.customer_tiers order by 1")
    assert [t["tier"] for t in tiers] == ["break-even", "break-even"]
    whale = rows(con, "select * from marts.whale_curve where customer_pct = 100")[0]
    assert whale["total_profit"] == D("-40.00") and whale["top_profit_pct"] is None


def _trend_months(margins: dict[str, list[int | None]]) -> dict[str, dict[str, tuple]]:
    """Months 2024-07.. with each customer's operating margin: gross 1000, COGS 500, cost
    500 - 10 x margin, so net revenue is 1000 and the margin is exactly the number given."""
    months: dict[str, dict[str, tuple]] = {}
    for customer, series in margins.items():
        for i, margin in enumerate(series):
            if margin is not None:
                period = f"{2024 + (6 + i) // 12}-{(6 + i) % 12 + 1:02d}"
                months.setdefault(period, {})[customer] = (1000, 0, 500, 500 - 10 * margin)
    return months


def test_trend_slopes_on_series_with_known_slopes(con):
    series = {
        "UP": [10, 12, 14, 16, 18, 20],  # slope +2 pp/month
        "DOWN": [20, 18, 16, 14, 12, 10],  # slope -2, five months of decline
        "FLAT": [15, 15, 15, 15, 15, 15],
        "ZIGZAG": [10, 20, 10, 20, 10, 20],  # slope 15 / 17.5 = 0.857...
        "NEW": [None, None, None, None, 10, 30],  # two points: not enough
        "DIP": [30, 30, 30, 29, 28, 27],  # slope -0.63 (stable), but three months falling
    }
    for period, customers in sorted(_trend_months(series).items()):
        add_month(con, period, customers)
    build(con)
    dec = {
        r["customer_id"]: r
        for r in rows(con, "select * from marts.customer_trends where period = '2024-12'")
    }
    slopes = {c: dec[c]["margin_slope_pp"] for c in series}
    assert slopes == {
        "UP": D("2.0000"),
        "DOWN": D("-2.0000"),
        "FLAT": D("0.0000"),
        "ZIGZAG": D("0.8571"),
        "NEW": None,
        "DIP": D("-0.6286"),  # sum (x - 2.5)(y - 29) = -11 over 17.5
    }
    assert {c: dec[c]["months_declining"] for c in series} == {
        "UP": 0, "DOWN": 5, "FLAT": 0, "ZIGZAG": 0, "NEW": 0, "DIP": 3,
    }  # fmt: skip
    assert {c: dec[c]["trend"] for c in series} == {
        "UP": "improving",
        "DOWN": "declining",
        "FLAT": "stable",
        "ZIGZAG": "stable",
        "NEW": "insufficient history",
        "DIP": "declining",  # three consecutive falls (declining_months = 3)
    }
    up = dec["UP"]
    assert (up["profit_3m"], up["profit_6m"]) == (D("540.00"), D("900.00"))
    assert (up["operating_margin_3m_pct"], up["operating_margin_6m_pct"]) == (
        D("18.00"),
        D("15.00"),
    )
    assert up["net_revenue_growth_pct"] == D("0.00")
    assert up["cost_to_serve_growth_pct"] == D("-15.79")  # 960 against 1140
    assert dec["NEW"]["slope_points"] == 2
    # the slope window is slope_months long: in 2024-09 UP has three points, slope still 2
    sep = rows(
        con, "select * from marts.customer_trends where period = '2024-09' and customer_id = 'UP'"
    )
    assert (sep[0]["slope_points"], sep[0]["margin_slope_pp"]) == (3, D("2.0000"))


@pytest.mark.parametrize("many", [1, 10_000])
def test_months_declining_counts_only_the_current_run_of_falls(monkeypatch, con, many):
    """Falls, a rise, then falls again: the streak restarts after the rise (it once counted the
    earlier run too when a rising month shared its group number). Both SQL versions."""
    monkeypatch.setattr(marts, "MANY_MONTHS", many)
    series = {"BOUNCE": [30, 28, 26, 27, 25, 24], "AGAIN": [30, 28, 26, 27, 25, 26]}
    for period, customers in sorted(_trend_months(series).items()):
        add_month(con, period, customers)
    build(con)
    got = rows(
        con,
        "select customer_id, period, months_declining from marts.customer_trends "
        "order by customer_id, period",
    )
    by_customer: dict[str, list[int]] = {}
    for r in got:
        by_customer.setdefault(r["customer_id"], []).append(r["months_declining"])
    assert by_customer == {"BOUNCE": [0, 1, 2, 0, 1, 2], "AGAIN": [0, 1, 2, 0, 1, 0]}


@pytest.mark.parametrize("many", [1, 10_000])
def test_months_declining_stops_at_twelve(monkeypatch, con, many):
    """Fifteen months of falls: the run counts up to 12 and stays there. Both SQL versions."""
    monkeypatch.setattr(marts, "MANY_MONTHS", many)
    for period, customers in sorted(_trend_months({"LONG": list(range(40, 25, -1))}).items()):
        add_month(con, period, customers)
    build(con)
    got = rows(con, "select period, months_declining from marts.customer_trends order by period")
    assert [r["months_declining"] for r in got] == [*range(13), 12, 12]
    assert got[-1]["period"] == "2025-09"


@pytest.mark.parametrize(
    "settings",
    [MartSettings(), dataclasses.replace(MartSettings(), slope_months=3, growth_months=2)],
)
def test_trends_of_many_months_at_once_match_month_by_month(monkeypatch, settings):
    """trend_windows_grid.sql (one pass for many months) gives the rows that
    trend_windows.sql (a join per month) gives, gaps in a customer's months included; also
    when late data rebuilds the months from the third on, with the data starting before them."""
    series = {
        "UP": [10, 12, 14, 16, 18, 20],
        "DOWN": [20, 18, 16, 14, 12, 10],
        "GAPS": [10, None, 12, None, None, 20],
        "LATE": [None, None, None, -5, 10, 30],
        "GONE": [30, 25, None, None, None, None],
        "DIP": [30, 30, 30, 29, 28, 27],
        "BOUNCE": [30, 28, 26, 27, 25, 24],
    }
    results = []
    for many in (1, 10_000):
        monkeypatch.setattr(marts, "MANY_MONTHS", many)
        for con in mart_store():
            for period, customers in sorted(_trend_months(series).items()):
                add_month(con, period, customers)
            build(con, settings)
            results.append(rows(con, "select * from marts.customer_trends order by all"))
            add_month(con, "2024-09", {"LATE2": (1000, 0, 500, 300)})
            assert build(con, settings)["customer_trends"][:2] == ["2024-09", "2024-10"]
            results.append(rows(con, "select * from marts.customer_trends order by all"))
    assert len(results[0]) > 30 and len(results[1]) > len(results[0])
    assert results[0] == results[2] and results[1] == results[3]


@pytest.mark.parametrize("window_months", [12, 3])
def test_tier_windows_of_many_months_at_once_match_month_by_month(window_months):
    """tier_windows_grid.sql (one pass for many months) gives the rows tier_windows.sql (each
    month joined to its window) gives: gaps, customers who come late or leave, windows shorter
    than the series, and the months from the third on rebuilt after late data."""
    series = {
        "UP": [10, 12, 14, 16, 18, 20],
        "GAPS": [10, None, 12, None, None, 20],
        "LATE": [None, None, None, -5, 10, 30],
        "GONE": [30, 25, None, None, None, None],
    }
    settings = dataclasses.replace(MartSettings(), window_months=window_months)
    for con in mart_store():
        for period, customers in sorted(_trend_months(series).items()):
            add_month(con, period, customers)
        build(con, settings)
        periods = sorted(_trend_months(series))
        for targets in (periods, periods[2:], periods[-1:]):
            marts._bind(con, targets, settings)
            got = []
            # many months at once; a few, from both parts; again, the latest month's earlier
            # part kept by the time before
            for many in (True, False, False):
                marts.stage_tier_windows(con, settings, many)
                got.append(con.execute("select * from tier_windows order by all").fetchall())
            assert got[0], targets
            assert got[0] == got[1] == got[2], targets
        assert marts.kept_part_usable(con, marts.TIER_PARTS, settings)


def test_every_mart_built_for_many_months_at_once_is_written_in_month_order(con):
    """A month's rows lie together, so that reading one month (a BI filter on the period, the
    Parquet publication's COPY per month) skips the row groups of the others."""
    months = [f"2024-{m:02d}" for m in range(1, 9)]
    for i, period in enumerate(months):
        add_month(con, period, {f"C{c:03d}": (100 + c + i, 0, 50, c % 7) for c in range(120)})
    build(con)
    for table in marts.MART_TABLES:
        scanned = [r[0] for r in con.execute(f"select period from marts.{table}").fetchall()]
        # rising stars lists customers of rising value, none in these flat months
        assert set(scanned) == (set() if table == "rising_stars" else set(months)), table
        assert scanned == sorted(scanned), f"{table} is not in month order"


CP_MONTHS = ["2024-11", "2024-12", "2025-01", "2025-02"]


def _cp_months(con) -> marts.Mart:
    for i, period in enumerate(CP_MONTHS):
        add_month(con, period, {f"C{c:02d}": (100 * c + i, c, 40 * c, c % 3) for c in range(1, 9)})
    return marts.marts(MartSettings())[0]


def test_customer_profitability_two_months_at_a_time_gives_what_one_at_a_time_gives():
    """With two workers each month is a transaction of its own on a cursor of its own: the same
    rows, customer-months and build records as one transaction for all months."""
    results = []
    for workers in (1, 2):
        for con in mart_store():
            cp = _cp_months(con)
            assert cp.by_month
            marts.rebuild(con, cp, CP_MONTHS, MartSettings(), "run", workers)
            results.append(
                [
                    rows(con, "select * from marts.customer_profitability order by all"),
                    rows(con, "select * from marts.customer_months order by all"),
                    rows(con, "select table_name, period from audit.mart_periods order by all"),
                ]
            )
            assert marts.pending(con, cp, MartSettings()) == []
    assert len(results[0][0]) == 32 and len(results[0][2]) == 4
    assert results[0] == results[1]


def test_a_month_that_fails_stops_the_rest_and_leaves_the_month_beside_it_built(monkeypatch, con):
    """Two at a time, the month in flight beside a failing one still commits; no month starts
    after the failure (as in the allocation), and every month not committed stays pending."""
    cp = _cp_months(con)
    bind = marts._bind
    failed = threading.Event()

    def failing(cursor, periods, settings):
        if periods == ["2024-11"]:
            failed.set()
            raise RuntimeError("November cannot be built")
        if periods == ["2024-12"]:  # in flight beside November: finishes after it failed
            failed.wait(30)
            time.sleep(0.2)
        bind(cursor, periods, settings)

    monkeypatch.setattr(marts, "_bind", failing)
    with pytest.raises(RuntimeError, match="November"):
        marts.rebuild(con, cp, CP_MONTHS, MartSettings(), "run", 2)
    assert marts.pending(con, cp, MartSettings()) == ["2024-11", "2025-01", "2025-02"]
    built = rows(con, "select distinct period from marts.customer_profitability order by 1")
    assert [r["period"] for r in built] == ["2024-12"]


def test_segment_rollup_and_erosion_while_growing(con):
    # Retail grows (revenue 1000 -> 1000 -> 1000 then 2000 x 3) while its margin falls 10 points
    for i, period in enumerate(["2024-07", "2024-08", "2024-09", "2024-10", "2024-11", "2024-12"]):
        grow = i >= 3
        add_month(
            con,
            period,
            {"R1": (2000 if grow else 1000, 0, 1000 if grow else 500, (1200 if grow else 400))},
        )
        add_month(con, period, {"W1": (1000, 0, 500, 300)}, segment="Wholesale")
    build(con)
    dec = {
        (r["grouping_level"], r["segment"]): r
        for r in rows(con, "select * from marts.segment_profitability where period = '2024-12'")
    }
    retail = dec[("segment", "Retail")]
    assert retail["net_revenue_growth_pct"] == D("100.00")
    assert (retail["operating_margin_prior_pct"], retail["operating_margin_recent_pct"]) == (
        D("10.00"), D("-10.00"),
    )  # fmt: skip
    assert retail["margin_change_pp"] == D("-20.00") and retail["eroding_while_growing"]
    assert not dec[("segment", "Wholesale")]["eroding_while_growing"]
    total = dec[("all", "All")]
    assert total["net_revenue"] == D("3000.00") and total["customers"] == 2
    levels = {
        r[0]
        for r in con.execute(
            "select distinct grouping_level from marts.segment_profitability"
        ).fetchall()
    }
    assert levels == {
        "segment, region, channel",
        "segment, region",
        "segment",
        "region",
        "channel",
        "all",
    }


def test_a_change_rebuilds_the_month_and_the_windows_that_read_it(con):
    for month in range(1, 13):
        add_month(con, f"2025-{month:02d}", {"C01": (100, 0, 50, 10), "C02": (100, 0, 50, 60)})
    first = build(con)
    assert all(len(months) == 12 for months in first.values())
    assert all(not months for months in build(con).values())  # nothing changed: nothing to do
    # late data for March: the allocation rebuilds March
    add_month(con, "2025-03", {"C02": (500, 0, 100, 0)})
    again = build(con)
    assert again["customer_profitability"] == ["2025-03"]
    assert again["whale_curve"] == again["customer_tiers"]
    assert again["customer_tiers"] == [f"2025-{m:02d}" for m in range(3, 13)]  # window 12
    assert again["customer_trends"] == [f"2025-{m:02d}" for m in range(3, 13)]
    assert again["segment_profitability"] == [
        "2025-03",
        "2025-04",
        "2025-05",
        "2025-06",
        "2025-07",
        "2025-08",
    ]
    # other settings: everything is rebuilt with them
    wider = dataclasses.replace(MartSettings(), window_months=6)
    assert all(len(months) == 12 for months in build(con, wider).values())


def test_the_marts_step_runs_two_at_a_time_only_for_a_few_months(con):
    """The step after customer_profitability runs its marts two at a time for a daily run's
    month or two; with MANY_MONTHS months or more to rebuild (a full build, late data for an
    old month) one at a time, since each keeps both cores busy and their memory would add up."""
    from pfd_pipeline.assets.marts import _many_months
    from pfd_pipeline.settings import Settings

    settings = Settings()
    first, *later = marts.marts(settings.marts)
    months = [f"2025-{m:02d}" for m in range(1, marts.MANY_MONTHS + 1)]
    for period in months:
        add_month(con, period, {"C01": (200, 0, 100, 50)})
    marts.rebuild(con, first, months, settings.marts, "run")
    assert _many_months(con, later, settings)  # every month of every mart is pending
    # a mart that reads another mart has nothing pending until that one is rebuilt, so only
    # those that read customer_profitability alone can tell
    whale = next(m for m in later if m.name == "whale_curve")
    assert marts.pending(con, whale, settings.marts) == []
    for mart in later:
        marts.rebuild(con, mart, marts.pending(con, mart, settings.marts), settings.marts, "run")
    add_month(con, "2025-05", {"C01": (300, 0, 100, 50)})  # a daily run's new month
    marts.rebuild(con, first, ["2025-05"], settings.marts, "run")
    assert not _many_months(con, later, settings)


def _temporary(con) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "select view_name from duckdb_views() where temporary and not internal "
            "union all select table_name from duckdb_tables() where temporary"
        ).fetchall()
    ]


@pytest.mark.parametrize("many", [1, 10_000])
def test_a_rebuild_leaves_no_temp_tables_or_views_behind(monkeypatch, con, many):
    """Every temp table and view a mart's prepare step leaves (TEMP_TABLES, TEMP_VIEWS) is
    dropped when the rebuild ends, for a few months and for many, and when it fails."""
    monkeypatch.setattr(marts, "MANY_MONTHS", many)
    for period in ("2025-01", "2025-02", "2025-03"):
        add_month(con, period, JANUARY)
    build(con, ONE_MONTH)
    assert _temporary(con) == []
    trends = next(m for m in marts.marts(ONE_MONTH) if m.name == "customer_trends")
    clv = next(m for m in marts.marts(ONE_MONTH) if m.name == "customer_lifetime_value")

    def prepare_then_fail(con, settings, many):
        trends.prepare(con, settings, many)
        clv.prepare(con, settings, many)
        raise RuntimeError("after the prepare steps")

    failing = dataclasses.replace(trends, prepare=prepare_then_fail)
    with pytest.raises(RuntimeError, match="after the prepare steps"):
        marts.rebuild(con, failing, ["2025-03"], ONE_MONTH, "run")
    assert _temporary(con) == []


def test_a_daily_run_reads_the_earlier_parts_it_kept_and_gets_what_a_full_build_gets(
    monkeypatch,
):
    """A rebuild of the latest month keeps the earlier parts of its windows (tiers, trends, CLV
    inputs), also one of many months at once (the grids); a rebuild of that month alone then
    reads them and the month alone. Every mart then holds what a store built at once from the
    same rows holds: with declines, gaps, customers new in the month and a credit note. Late
    data for an earlier month, or other settings, and the kept parts are not read; a rebuild of
    two months then gives what a fresh build gives too, and so do a new month's first day (which
    makes its own parts) and second (which reads them)."""
    series = {
        "UP": [10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36],
        "DOWN": [40, 38, 36, 34, 32, 30, 28, 26, 24, 22, 20, 18, 16, 14],
        "GAPS": [10, None, 12, None, None, 20, 5, None, 7, 3, None, 2, 1, None],
        "LATE": [None] * 9 + [-5, 10, 30, 25, 20],
        "GONE": [30, 25, 20, None, None, None, None, None, None, None, None, None, None, 4],
        "BOUNCE": [30, 28, 26, 27, 25, 24, 23, 22, 25, 21, 20, 19, 18, 17],
    }
    months = sorted(_trend_months(series).items())
    last, before = months[-1][0], months[-2][0]
    days = [
        (last, {"NEW": (500, 0, 200, 50)}),  # the month's first daily run keeps the parts
        (last, {"UP2": (300, 10, 100, 20), "DOWN": (200, 0, 150, 90)}),  # reads them
    ]
    late = (before, {"GONE": (700, 0, 300, 400)})
    calls = []
    stage_parts = marts.stage_parts

    def spy(con, parts, settings, month_only):
        calls.append((parts.table, month_only))
        stage_parts(con, parts, settings, month_only)

    monkeypatch.setattr(marts, "stage_parts", spy)

    def credit_note(con):
        con.execute(
            "insert into raw.sales_ledger values ('CN', 'DCN', 'credit_note', ?, 'UP', 'P1', -1, "
            "-100, 0, -40, 'EUR', 'web', 0, 1, 1)",
            [f"{last}-03"],
        )

    def tables(con):
        return {
            t: con.execute(f"select * from marts.{t} order by all").fetchall()
            for t in marts.MART_TABLES
        }

    def fresh(*added):
        for con in mart_store():
            credit_note(con)
            for period, customers in months:
                add_month(con, period, customers)
            for period, customers in added:
                add_month(con, period, customers)
            build(con)
            return tables(con)

    for con in mart_store():
        credit_note(con)
        for period, customers in months:
            add_month(con, period, customers)
        build(con)
        # fourteen months at once: the grids, and the latest month's earlier parts kept
        parts = ("tier_parts", "trend_parts", "clv_parts")
        assert sorted(calls) == sorted((p, False) for p in parts)
        calls.clear()
        for period, customers in days:
            add_month(con, period, customers)
            assert build(con)["customer_trends"] == [last]
        assert sorted(calls) == sorted((p, True) for p in parts for _ in days)
        assert tables(con) == fresh(*days)

        marts._bind(con, [last], DEFAULTS)
        assert marts.kept_part_usable(con, marts.TREND_PARTS, DEFAULTS)
        other = dataclasses.replace(DEFAULTS, window_months=6)
        assert not marts.kept_part_usable(con, marts.TIER_PARTS, other)
        add_month(con, *late)
        profitability = marts.marts(DEFAULTS)[0]
        marts.rebuild(con, profitability, [before], DEFAULTS, "late")
        marts._bind(con, [last], DEFAULTS)
        for kind in (marts.TIER_PARTS, marts.TREND_PARTS, marts.CLV_PARTS):
            assert not marts.kept_part_usable(con, kind, DEFAULTS)
        calls.clear()
        assert build(con)["customer_trends"] == [before, last]
        assert set(calls) == {(p, False) for p in parts}
        assert tables(con) == fresh(*days, late)

        # a new month: its first day makes its parts (those kept are the month before's), its
        # second reads them
        year, month = int(last[:4]), int(last[5:])
        new = f"{year + month // 12}-{month % 12 + 1:02d}"
        rollover = [(new, {"UP": (900, 0, 400, 100), "NEW": (300, 0, 100, 40)})]
        rollover.append((new, {"BOUNCE": (500, 0, 250, 60)}))
        for day, (period, customers) in enumerate(rollover):
            calls.clear()
            add_month(con, period, customers)
            assert build(con)["customer_trends"] == [new]
            assert set(calls) == {(p, day == 1) for p in parts}
        assert tables(con) == fresh(*days, late, *rollover)
