"""CLV, advocacy and rising stars as marts, on hand-computed fixtures: what the SQL prepares for
the models, the CLV arithmetic, NPS categories and value-matrix cells, and rising stars on a
constructed series. The models themselves are tested in test_clv.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal as D  # noqa: N817 (short, read in long tables of amounts)

import numpy as np
import polars as pl
import pytest
from mart_helpers import (
    JANUARY,
    add_month,
    allocated_month,
    build,
    fixed_scores,
    mart_store,
    rows,
)

from pfd_pipeline import clv, marts, summary
from pfd_pipeline.settings import ConfigError, MartSettings, Settings
from pfd_pipeline.warehouse import execute_with_frame

ONE_MONTH = dataclasses.replace(MartSettings(), window_months=1)


@pytest.fixture
def con():
    yield from mart_store()


def customer(con, customer_id: str, acquired: str, segment: str = "Retail") -> None:
    con.execute(
        "insert into raw.customers values (?, ?, ?, 'North', ?, 1, 1)",
        [customer_id, f"Name {customer_id}", segment, acquired],
    )


def line(con, line_id: str, day: str, customer_id: str, net: int, cogs: int, credit=False):
    kind, sign = ("credit_note", -1) if credit else ("invoice", 1)
    con.execute(
        "insert into raw.sales_ledger values (?, ?, ?, ?, ?, 'P1', ?, ?, 0, ?, 'USD', 'web', 0, "
        "1, 1)",
        [line_id, f"D{line_id}", kind, day, customer_id, sign, net, cogs],
    )


def allocated(con, period: str, costs: dict[str, int]) -> None:
    for customer_id, cost in costs.items():
        con.execute(
            "insert into marts.customer_cost_to_serve values "
            "(?, ?, 'order_entry', 'customer_service', 'time_driven', 1, 10, 1, ?, 'closed')",
            [period, customer_id, cost],
        )
    allocated_month(con, period)


# --- what the SQL prepares, and the CLV arithmetic ---------------------------------------------


def tiny_case(con) -> None:
    """One customer: invoices on 6 Jan (margin 100), 20 Jan (60) and 3 Feb (40), a credit note
    on 10 Feb (margin -20); cost-to-serve 30 in January and 30 in February."""
    customer(con, "A", "2024-06-01")
    line(con, "1", "2025-01-06", "A", 300, 200)
    line(con, "2", "2025-01-20", "A", 160, 100)
    line(con, "3", "2025-02-03", "A", 140, 100)
    line(con, "4", "2025-02-10", "A", -50, -30, credit=True)
    allocated(con, "2025-01", {"A": 30})
    allocated(con, "2025-02", {"A": 30})


def test_clv_inputs_and_arithmetic_on_a_hand_computed_case(con):
    tiny_case(con)
    build(con, ONE_MONTH, fixed_scores({"A": 30.0}))
    feb = rows(con, "select * from marts.customer_lifetime_value where period = '2025-02'")[0]
    # three purchase days (the credit-note day is none); x = 2
    assert (feb["orders"], feb["repeat_orders"]) == (3, 2)
    assert (feb["first_order_date"], feb["last_order_date"]) == (
        dt.date(2025, 1, 6),
        dt.date(2025, 2, 3),
    )
    assert feb["recency_weeks"] == D("4.0000")  # 28 days
    assert feb["age_weeks"] == D("7.7143")  # 6 Jan to 1 Mar: 54 days
    assert feb["mean_repeat_margin"] == D("40.00")  # (60 + 40 - 20) / 2
    assert feb["cost_to_serve_per_order"] == D("20.00")  # 60 / 3
    assert feb["expected_margin_per_order"] == D("50.00")  # 20 + 30 (fixed_scores)
    assert feb["expected_profit_per_order"] == D("30.00")
    assert feb["expected_profit"] == D("90.00")  # 3 orders x 30
    assert feb["clv"] == D("75.00")  # 2.5 discounted orders x 30
    assert feb["p_alive"] == D("0.8000")
    # operating profit: January 160 - 30, February (140 - 50) - (100 - 30) - 30
    assert feb["historical_profit"] == D("120.00")
    assert feb["tenure_months"] == 9  # June 2024 to the end of February 2025
    assert feb["calibration_start"] == "2023-03"  # 24 months ending with 2025-02
    jan = rows(con, "select * from marts.customer_lifetime_value where period = '2025-01'")[0]
    assert (jan["orders"], jan["repeat_orders"], jan["mean_repeat_margin"]) == (2, 1, D("60.00"))
    assert jan["cost_to_serve_per_order"] == D("15.00")
    assert rows(con, "select period, status from marts.clv_model_fit order by 1") == [
        {"period": "2025-01", "status": "fixed"},
        {"period": "2025-02", "status": "fixed"},
    ]


def test_a_month_with_too_few_customers_is_not_fitted(con):
    tiny_case(con)
    build(con, ONE_MONTH)
    fit = rows(con, "select * from marts.clv_model_fit where period = '2025-02'")[0]
    assert fit["status"].startswith("not fitted: 1 customers with orders")
    assert fit["customers_fitted"] == 1 and fit["bgnbd_r"] is None
    feb = rows(con, "select * from marts.customer_lifetime_value where period = '2025-02'")[0]
    assert (feb["margin_model"], feb["clv"], feb["p_alive"]) == ("not fitted", None, None)
    assert feb["historical_profit"] == D("120.00")


def test_models_fitted_on_a_population_and_loss_makers_kept_negative(con):
    """40 customers with 1 to 8 orders; L1 (one order) and L2 (two) sell below cost. The month
    is fitted; L2, a repeat buyer, keeps its own negative margin per order and a negative CLV,
    while L1 has no repeat order yet and is valued like any newcomer."""
    for i in range(40):
        cid = f"C{i:02d}" if i >= 2 else f"L{i + 1}"
        customer(con, cid, "2020-01-01")
        for k in range(1 + i % 8):
            day = dt.date(2025, 1, 2) + dt.timedelta(days=(7 * k + i) % 150)
            margin = -25 if cid.startswith("L") else 20 + (i * 7) % 60
            line(con, f"{cid}-{k}", day.isoformat(), cid, 100, 100 - margin)
    for month in ("2025-01", "2025-02", "2025-03", "2025-04", "2025-05"):
        allocated(con, month, {"C05": 10})
    build(con, ONE_MONTH)
    fit = rows(con, "select * from marts.clv_model_fit where period = '2025-05'")[0]
    assert fit["status"].startswith("fitted")
    assert fit["customers_fitted"] == 40
    assert fit["non_positive_margin_customers"] == 1
    assert fit["margin_customers"] == fit["repeat_customers"] - 1 == 34
    values = {
        r["customer_id"]: r
        for r in rows(con, "select * from marts.customer_lifetime_value where period = '2025-05'")
    }
    assert values["L2"]["margin_model"] == "own mean (margin not positive)"
    assert values["L2"]["expected_margin_per_order"] == D("-25.00")
    assert values["L2"]["clv"] < 0
    assert values["L1"]["margin_model"] in (
        "population mean (no repeat order)",
        "repeat buyers' mean (no repeat order)",
    )
    for r in values.values():
        assert 0 <= r["p_alive"] <= 1
        if r["expected_profit_per_order"] > 0:
            assert 0 < r["clv"] <= r["expected_profit"]
    # fitting the month again gives the same numbers, to the last digit
    before = rows(con, "select * from marts.clv_model_fit where period = '2025-05'")
    clv_mart = next(m for m in marts.marts(ONE_MONTH) if m.name == "customer_lifetime_value")
    marts.rebuild(con, clv_mart, ["2025-05"], ONE_MONTH, "again")
    assert rows(con, "select * from marts.clv_model_fit where period = '2025-05'") == before
    again = rows(con, "select * from marts.customer_lifetime_value where period = '2025-05'")
    assert {r["customer_id"]: r for r in again} == values


# --- advocacy and the value matrix --------------------------------------------------------------

SURVEYS = [  # (customer, date, score)
    ("C01", "2025-01-10", 10),  # highly profitable promoter: an awesome customer
    ("C02", "2025-01-11", 6),  # highly profitable detractor (6 is a detractor): at risk
    ("C03", "2025-01-12", 9),  # break-even promoter (9 is a promoter)
    ("C04", "2025-01-13", 7),  # passive
    ("C05", "2024-12-20", 3),  # answered twice: the latest answer (8, passive) counts
    ("C05", "2025-01-14", 8),
    ("C06", "2023-12-01", 10),  # outside the 12-month window: no response
    ("C10", "2025-01-15", 9),  # unprofitable promoter: a promoter who loses money
]


def test_nps_categories_and_value_matrix_cells(con):
    add_month(con, "2025-01", JANUARY)
    for cid, day, score in SURVEYS:
        con.execute("insert into raw.feedback values (?, ?, ?, 1, 1)", [cid, day, score])
    build(con, ONE_MONTH)
    advocacy = dict(
        con.execute(
            "select customer_id, advocacy from marts.customer_lifetime_value order by 1"
        ).fetchall()
    )
    assert advocacy == {
        "C01": "promoter",
        "C02": "detractor",
        "C03": "promoter",
        "C04": "passive",
        "C05": "passive",
        "C06": "no response",
        "C07": "no response",
        "C08": "no response",
        "C10": "promoter",  # C09 has no invoice, so no CLV row
    }
    cells = {
        (r["profit_tier"], r["advocacy"]): r
        for r in rows(con, "select * from marts.customer_value_matrix where period = '2025-01'")
    }
    assert len(cells) == 12  # every cell, empty ones too
    counts = {k: (v["cell"], v["customers"], v["operating_profit"]) for k, v in cells.items()}
    assert counts[("highly profitable", "promoter")] == ("awesome customers", 1, D("500.00"))
    assert counts[("highly profitable", "detractor")] == (
        "profitable detractors at risk",
        1,
        D("300.00"),
    )
    assert counts[("highly profitable", "passive")] == ("profitable passives", 0, D("0"))
    assert counts[("break-even", "promoter")] == ("promoters to grow", 1, D("200.00"))
    assert counts[("break-even", "passive")] == ("break-even passives", 2, D("150.00"))
    # C06, C07, C08 and C09 (no invoice, so no survey match): 0 - 20 - 30 - 100
    assert counts[("break-even", "no response")] == ("break-even, voice unknown", 4, D("-150.00"))
    assert counts[("unprofitable", "promoter")] == ("promoters who lose money", 1, D("-400.00"))
    assert sum(v["customers"] for v in cells.values()) == 10
    nps = {k[0]: v["tier_nps"] for k, v in cells.items()}
    # highly profitable: 1 promoter, 1 detractor; break-even: 1 promoter of 3 respondents
    assert nps == {
        "highly profitable": D("0.0"),
        "break-even": D("33.3"),
        "unprofitable": D("100.0"),
    }
    assert cells[("break-even", "passive")]["share_of_customers_pct"] == D("20.00")
    # the summary's reader (also for the report) returns the grid in order
    grid = summary.value_matrix(con, "2025-01")
    assert [(c["tier_order"], c["advocacy_order"]) for c in grid][:3] == [(1, 1), (1, 2), (1, 3)]
    assert grid[0]["cell"] == "awesome customers" and len(grid) == 12


def test_advocacy_thresholds_are_settings(con):
    add_month(con, "2025-01", JANUARY)
    for cid, day, score in SURVEYS:
        con.execute("insert into raw.feedback values (?, ?, ?, 1, 1)", [cid, day, score])
    strict = dataclasses.replace(ONE_MONTH, promoter_min_score=10, detractor_max_score=7)
    build(con, strict)
    advocacy = dict(
        con.execute("select customer_id, advocacy from marts.customer_lifetime_value").fetchall()
    )
    assert (advocacy["C01"], advocacy["C03"], advocacy["C04"], advocacy["C05"]) == (
        "promoter",
        "passive",
        "detractor",
        "passive",
    )


# --- rising stars ---------------------------------------------------------------------------

MONTHS = ("2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06")


def test_rising_stars_on_a_constructed_series(con):
    """Two established top customers, five small old ones and three young ones:
    Y1 (since March) whose margin climbs 10, 20, 30, 40% and whose run-rate reaches the top
    tier; Y2 (since May) whose CLV reaches the top tier's; Y3 (since February) with a high CLV
    but a falling margin; and the old C03 with a high CLV but too long a customer."""
    for cid, acquired in [("Y1", "2025-03-01"), ("Y2", "2025-05-01"), ("Y3", "2025-02-01")]:
        customer(con, cid, acquired)
    series = {  # month -> customer: (gross, discount, cogs, cost-to-serve)
        m: {
            "C01": (10_000, 0, 5_000, 0),
            "C02": (4_000, 0, 2_000, 0),
            **{f"C0{i}": (300, 0, 200, 0) for i in range(3, 8)},
        }
        for m in MONTHS
    }
    for month, (gross, cogs) in zip(
        MONTHS[2:], [(1000, 900), (2000, 1600), (4000, 2800), (8000, 4800)], strict=True
    ):
        series[month]["Y1"] = (gross, 0, cogs, 0)  # margins 10, 20, 30, 40 %
    for month in MONTHS[4:]:
        series[month]["Y2"] = (500, 0, 400, 0)
    for month, cogs in zip(MONTHS[2:], [600, 700, 800, 900], strict=True):
        series[month]["Y3"] = (1000, 0, cogs, 0)  # margins 40, 30, 20, 10 %
    for month, customers in series.items():
        add_month(con, month, customers)
    clv = {"C01": 50_000, "C02": 15_000, "C03": 25_000, "Y1": 100, "Y2": 20_000, "Y3": 30_000}
    build(con, MartSettings(), fixed_scores({c: v / 2.5 for c, v in clv.items()}))

    stars = rows(con, "select * from marts.rising_stars where period = '2025-06' order by 2")
    assert [(s["rising_rank"], s["customer_id"]) for s in stars] == [(1, "Y2"), (2, "Y1")]
    y2, y1 = stars
    # CLV bar: the median (nearest rank) of the top tier's CLV 15,000 and 50,000 = 15,000
    assert y2["top_tier_clv_bar"] == D("15000.00")
    assert y2["clv"] == D("20000.00")
    assert y2["reason"] == (
        "CLV 20,000.00 reaches the top tier's bar 15,000.00; 2 months a customer, "
        "trend insufficient history"
    )
    # run-rate: (400 + 1200 + 3200) x 4 = 19,200 against C02's 6 x 2,000 = 12,000
    assert y1["trend"] == "improving" and y1["tenure_months"] == 4
    assert y1["run_rate_profit"] == D("19200.00")
    assert y1["top_tier_profit_bar"] == D("12000.00")
    assert y1["reason"].startswith(
        "improving, run-rate profit 19,200.00 already reaches the top tier's lowest 12,000.00"
    )
    assert y1["tier"] == "break-even"
    # the segment: three young customers (Y1, Y2, Y3), two of them listed; median CLV of the
    # young 20,000 against the bar 15,000
    assert (y1["segment_young_customers"], y1["segment_rising_stars"]) == (3, 2)
    assert y1["segment_clv_vs_top_tier_pct"] == D("133.33")
    # Y3 is declining: not listed although its CLV is above the bar
    trend = con.execute(
        "select trend from marts.customer_trends where period = '2025-06' and customer_id = 'Y3'"
    ).fetchall()
    assert trend == [("declining",)]
    # the summary's readers (also for the report)
    assert [r["customer_id"] for r in summary.rising_stars(con, "2025-06")] == ["Y2", "Y1"]
    assert summary.rising_segments(con, "2025-06") == [
        {
            "segment": "Retail",
            "young_customers": 3,
            "rising_stars": 2,
            "young_median_clv": D("20000.00"),
            "clv_vs_top_tier_pct": D("133.33"),
        }
    ]


# --- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("marts:\n  clv:\n    horizon: 12\n", r"marts\.clv\.horizon"),
        ("marts:\n  advocacy:\n    promoter_min: 9\n", r"marts\.advocacy\.promoter_min"),
        ("marts:\n  clv:\n    annual_discount_rate: 1.5\n", r"annual_discount_rate"),
        (
            "marts:\n  advocacy:\n    promoter_min_score: 7\n    detractor_max_score: 7\n",
            "detractor_max_score must be below",
        ),
    ],
)
def test_clv_and_advocacy_settings_are_checked(tmp_path, section, message):
    config = tmp_path / "pfd.yaml"
    config.write_text(section, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        Settings.load(tmp_path / "landing", tmp_path / "warehouse", config)


def test_clv_settings_change_the_fingerprint(tmp_path):
    config = tmp_path / "pfd.yaml"
    config.write_text("marts:\n  clv:\n    annual_discount_rate: 0.08\n", encoding="utf-8")
    settings = Settings.load(tmp_path / "landing", tmp_path / "warehouse", config).marts
    assert settings.clv_annual_discount_rate == D("0.08")
    assert settings.fingerprint() != MartSettings().fingerprint()


def test_clv_inputs_for_few_months_match_the_grid(con):
    """clv_buyers.sql (the two parts of each month end's window added up, for a daily run's
    month, also from the earlier part kept) gives the inputs clv_buyers_grid.sql (running totals
    on a grid, for many months) gives: credit notes, gaps of months without orders, a customer
    who stops, one who starts late and two whose credit note comes months before the first
    purchase included, one of them first buying in the month itself; with the calibration
    window longer than the history, and with one of five months, which leaves the earliest
    months out of the later windows (the credit note of the customer first buying in the last
    month still inside its window)."""
    tiny_case(con)
    for i in range(12):
        cid = f"C{i:02d}"
        customer(con, cid, "2023-01-01")
        for k in range(1 + i % 5):
            day = dt.date(2024, 11, 4) + dt.timedelta(days=(23 * k + 9 * i) % 200)
            line(con, f"{cid}-{k}", day.isoformat(), cid, 100 + 10 * k, 60 + i)
        if i % 3 == 0:
            line(con, f"{cid}-r", "2025-03-12", cid, -40, -25, credit=True)
    # a credit note months before the customer's first purchase in the window
    customer(con, "CN", "2023-01-01")
    line(con, "CN-r", "2024-11-20", "CN", -30, -20, credit=True)
    line(con, "CN-1", "2025-01-15", "CN", 100, 60)
    line(con, "CN-2", "2025-04-02", "CN", 80, 50)
    # and one whose first purchase is in the last month, after a credit note months before
    customer(con, "CL", "2023-01-01")
    line(con, "CL-r", "2025-02-10", "CL", -30, -20, credit=True)
    line(con, "CL-1", "2025-06-05", "CL", 90, 40)
    costs = {"2024-12": {"C01": 7}, "2025-02": {"C02": 11, "C03": 5}}
    for month in ("2024-11", "2024-12", "2025-03", "2025-04", "2025-05", "2025-06"):
        allocated(con, month, costs.get(month, {}))
    allocated(con, "2025-02", {"A": 30, **costs["2025-02"]})
    build(con, ONE_MONTH)
    periods = [
        r[0]
        for r in con.execute(
            "select distinct period from marts.customer_months order by 1"
        ).fetchall()
    ]
    assert len(periods) >= 6
    five_months = dataclasses.replace(ONE_MONTH, clv_calibration_months=5)
    starts = {}
    for settings in (ONE_MONTH, five_months):
        for targets in (periods, periods[-1:], periods[2:3]):
            marts._bind(con, targets, settings)
            got = []
            # the grid; both parts of each window; for the latest month alone, its earlier part
            # kept by the time before
            for many in (True, False, False):
                clv.stage_inputs(con, settings, many)
                got.append(con.execute("select * from clv_inputs order by all").fetchall())
            assert got[0] and got[0] == got[1] == got[2], (settings, targets)
            assert {r[0] for r in got[0]} == set(targets)
            if targets == periods:
                starts[settings] = {r[3] for r in got[0] if r[0] == periods[-1]}
            if targets == periods[-1:]:
                assert marts.kept_part_usable(con, marts.CLV_PARTS, settings)
                assert ("2025-06", "CL") in {(r[0], r[1]) for r in got[0]}
    # the five months' window of the last month starts later: its earliest purchases are out
    assert min(starts[five_months]) > min(starts[ONE_MONTH])


def test_scores_of_more_customers_than_a_row_group_all_arrive(con, monkeypatch):
    """Every customer's score reaches clv_scores, also past one DuckDB row group (122,880 rows):
    DuckDB 2.0 loses rows inserted in a transaction into a temp table created there from an
    empty Arrow frame, which scores built up month by month with inserts once ran into."""
    customers = 130_000
    k = np.arange(customers)

    def inputs(con, settings, many):
        for period in ("2026-09", "2026-10"):
            frame = pl.DataFrame(
                {
                    "period": period,
                    "customer_id": [f"C{i:06d}" for i in k],
                    "repeat_purchases": k % 5,
                    "recency_weeks": (k % 5) * 4.0,
                    "age_weeks": 30.0 + k % 7,
                    "margin": 20.0 + k % 11,
                }
            ).select(
                pl.exclude("margin"),
                pl.when(pl.col("repeat_purchases") > 0)
                .then(pl.col("margin"))
                .alias("mean_repeat_margin"),
            )
            statement = "insert into clv_inputs select * from _frame"
            if period == "2026-09":
                statement = "create or replace temp table clv_inputs as select * from _frame"
            execute_with_frame(con, statement, frame)

    monkeypatch.setattr(clv, "stage_inputs", inputs)
    con.execute("begin transaction")
    clv.stage_scores(con, MartSettings(), False)
    got = con.execute(
        "select period, count(*), count(p_alive) from clv_scores group by all order by all"
    ).fetchall()
    con.execute("rollback")
    assert got == [("2026-09", customers, customers), ("2026-10", customers, customers)]


def test_historical_profit_carries_over_months_and_follows_late_changes(con):
    """The historical profit (marts.customer_history) is the month before's plus the month's
    operating profit: a customer without profit in a month keeps its total, a late change to an
    early month reaches every month after it, and a month rebuilt on its own (a daily run) reads
    the month before it."""
    add_month(con, "2025-01", {"A": (100, 0, 60, 10), "B": (50, 0, 20, 5)})
    add_month(con, "2025-02", {"C": (80, 0, 30, 0)})
    add_month(con, "2025-03", {"A": (40, 0, 10, 0)})
    scores = fixed_scores({"A": 1.0, "B": 1.0, "C": 1.0})
    history = "select period, customer_id, historical_profit from marts.customer_history"

    def totals():
        return con.execute(history + " order by all").fetchall()

    build(con, ONE_MONTH, scores)
    assert totals() == [
        ("2025-01", "A", D("30.00")),
        ("2025-01", "B", D("25.00")),
        ("2025-02", "A", D("30.00")),
        ("2025-02", "B", D("25.00")),
        ("2025-02", "C", D("50.00")),
        ("2025-03", "A", D("60.00")),
        ("2025-03", "B", D("25.00")),
        ("2025-03", "C", D("50.00")),
    ]
    march = "select customer_id, historical_profit from marts.customer_lifetime_value "
    march += "where period = '2025-03' order by 1"
    assert con.execute(march).fetchall() == [
        ("A", D("60.00")),
        ("B", D("25.00")),
        ("C", D("50.00")),
    ]

    line(con, "late", "2025-01-20", "A", 7, 0)  # late data for January: A's profit + 7
    allocated(con, "2025-01", {})
    assert build(con, ONE_MONTH, scores)["customer_lifetime_value"] == [
        "2025-01",
        "2025-02",
        "2025-03",
    ]
    assert [r for r in totals() if r[1] == "A"] == [
        ("2025-01", "A", D("37.00")),
        ("2025-02", "A", D("37.00")),
        ("2025-03", "A", D("67.00")),
    ]

    line(con, "late-march", "2025-03-20", "C", 5, 0)  # March alone: C's profit + 5
    allocated(con, "2025-03", {})
    before = [r for r in totals() if r[0] < "2025-03"]
    assert build(con, ONE_MONTH, scores)["customer_lifetime_value"] == ["2025-03"]
    assert [r for r in totals() if r[0] < "2025-03"] == before
    assert [r for r in totals() if r[0] == "2025-03"] == [
        ("2025-03", "A", D("67.00")),
        ("2025-03", "B", D("25.00")),
        ("2025-03", "C", D("55.00")),
    ]
    assert con.execute(march).fetchall() == [
        ("A", D("67.00")),
        ("B", D("25.00")),
        ("C", D("55.00")),
    ]
    # the same totals as summing every month to date
    direct = con.execute(
        "select t.period, c.customer_id, sum(c.operating_profit) "
        "from (select distinct period from marts.customer_profitability) as t "
        "join marts.customer_profitability as c on c.period <= t.period group by all order by all"
    ).fetchall()
    assert totals() == direct


def test_a_store_without_customer_history_rebuilds_the_lifetime_value(con):
    """customer_history is internal and written with customer_lifetime_value: a store made
    before it existed rebuilds every month of the lifetime value to fill it."""
    tiny_case(con)
    build(con, ONE_MONTH, fixed_scores({"A": 30.0}))
    con.execute("drop table marts.customer_history")
    marts.ensure_tables(con)
    assert build(con, ONE_MONTH, fixed_scores({"A": 30.0}))["customer_lifetime_value"] == [
        "2025-01",
        "2025-02",
    ]
    assert con.execute(
        "select period, historical_profit from marts.customer_history order by 1"
    ).fetchall() == [("2025-01", D("130.00")), ("2025-02", D("120.00"))]


def test_a_store_without_customer_months_rebuilds_them_and_drops_customer_days(con):
    """customer_months is internal and filled with customer_profitability's months: a store made
    before it existed (with the customer_days it replaced) rebuilds every month of
    customer_profitability to fill it, and the old table goes."""
    add_month(con, "2025-01", JANUARY)
    build(con, ONE_MONTH)
    months = rows(con, "select * from marts.customer_months order by all")
    assert len(months) == 9  # C09 has no ledger line
    con.execute("drop table marts.customer_months")
    con.execute("create table marts.customer_days (period varchar, customer_id varchar)")
    marts.ensure_tables(con)
    assert not con.execute(
        "select count(*) from duckdb_tables() where schema_name = 'marts' "
        "and table_name = 'customer_days'"
    ).fetchall()[0][0]
    assert build(con, ONE_MONTH)["customer_profitability"] == ["2025-01"]
    assert rows(con, "select * from marts.customer_months order by all") == months
    marts.ensure_tables(con)  # nothing to fill: nothing rebuilt
    assert build(con, ONE_MONTH)["customer_profitability"] == []


def test_months_scored_at_once_give_what_one_at_a_time_gives(con, monkeypatch):
    """stage_scores scores SCORE_WORKERS months at a time on threads: the fits and scores are
    the same, to the last digit and in month order, as scoring them one after another."""
    k = np.arange(2_000)
    periods = [f"2026-{m:02d}" for m in range(3, 9)]

    def inputs(con, settings, many):
        frames = [
            pl.DataFrame(
                {
                    "period": period,
                    "customer_id": [f"C{i:05d}" for i in k],
                    "repeat_purchases": (k * (n + 3)) % 6,
                    "recency_weeks": ((k * (n + 3)) % 6) * 3.0 + n,
                    "age_weeks": 40.0 + k % 9 + 4 * n,
                    "mean_repeat_margin": 15.0 + (k + n) % 13,
                }
            )
            for n, period in enumerate(periods)
        ]
        execute_with_frame(
            con,
            "create or replace temp table clv_inputs as select * from _frame",
            pl.concat(frames),
        )

    monkeypatch.setattr(clv, "stage_inputs", inputs)
    results = {}
    for workers in (1, 3):
        monkeypatch.setattr(clv, "SCORE_WORKERS", workers)
        clv.stage_scores(con, MartSettings(), True)
        results[workers] = (
            con.execute("select * from clv_scores").fetchall(),
            con.execute("select * from clv_fits").fetchall(),
        )
    scores, fits = results[1]
    assert [f[0] for f in fits] == periods
    assert len(scores) == len(periods) * len(k)
    assert results[3] == results[1]
