"""A smoke run of the scale benchmark on a tiny workload: it runs end to end, its floor query
computes the same per-customer-month totals as the pipeline, and it reports what it measured.
(No timing is asserted: the machines are shared and noisy.)"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from script_helpers import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
bench = load_benchmark("bench")


def run_bench(tmp_path: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """benchmarks/bench.py on a tiny S workload of two months and one daily run, in tmp_path/work,
    its results in `out`; fails the test if the script fails."""
    done = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "bench.py"),
            "--size", "S", "--months", "2", "--days", "1",
            "--workdir", str(tmp_path / "work"), "--json", str(out), *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_benchmark_smoke_run_reports_and_its_floor_matches_the_pipeline(tmp_path):
    out = tmp_path / "bench.json"
    done = run_bench(tmp_path, out, "--customers", "60", "--repeat", "1")
    assert "full build / floor" in done.stdout
    results = json.loads(out.read_text())
    assert results["ledger_lines"] > 0 and results["events"] > 0
    assert results["full_build_seconds"] > 0 and results["floor_seconds"] > 0
    # the floor ran before the build and after it, and the ratio uses their median
    assert len(results["floor_runs"]) == 2
    # and once more after the daily runs, apart from the ratio
    assert results["floor_after_daily_seconds"] > 0
    assert (tmp_path / "work" / "floor_after_daily.parquet").exists()  # not floor.parquet, below
    assert "floor after the daily runs: " in done.stdout
    assert abs(results["floor_seconds"] - sum(results["floor_runs"]) / 2) <= 0.01
    assert set(results["stage_seconds"]) == {"ingest", "validate", "allocate", "marts", "publish"}
    assert results["full_build_peak_rss_gb"] > 0
    # the peak is placed in the Dagster step that ran when it was sampled (or between steps)
    assert results["full_build_peak_rss_step"], results
    assert "peak RSS " in done.stdout
    assert len(results["daily_runs"]) == 1
    # each daily run's peak, and where it was reached; the largest is the one reported
    [(daily_peak, daily_step)] = results["daily_peak_rss_runs"]
    assert daily_peak == results["daily_peak_rss_gb"] > 0 and daily_step
    assert results["full_build_step_seconds"]["allocate_cost_to_serve"] > 0
    assert set(results["daily_step_seconds"]) <= set(results["full_build_step_seconds"])
    assert "marts__from_customer_profitability" in results["daily_step_seconds"]
    # the marts that one step rebuilds report their own seconds, as do the publications
    assert {"marts/customer_trends", "publish/parquet"} <= set(results["daily_asset_seconds"])
    assert set(results["daily_asset_seconds"]) <= set(results["full_build_asset_seconds"])
    assert "slowest steps: " in done.stdout
    # how many cores each run kept busy: the whole run, and each step from the CPU samples
    assert 0 < results["full_build_cores"] <= results["cpus"] + 0.5
    assert 0 < results["floor_cores"] and 0 < results["daily_cores"]
    assert set(results["full_build_step_cores"]) == set(results["full_build_step_seconds"])
    assert results["full_build_step_cores"]["allocate_cost_to_serve"] > 0
    assert "cores busy" in done.stdout and " cores), " in done.stdout
    stats = json.loads((tmp_path / "work" / "warehouse" / "last_run_stats.json").read_text())
    steps = stats["step_seconds"]  # every Dagster step of the last (daily) run, slowest first
    assert any(step.startswith("marts__") for step in steps), steps
    assert list(steps.values()) == sorted(steps.values(), reverse=True)
    spans = stats["step_spans"]
    assert set(spans) == set(steps)
    assert all(start <= end for start, end in spans.values())

    # the floor read the landing folder without the held-back day; the last month differs
    floor_file = tmp_path / "work" / "floor.parquet"
    floor = duckdb.sql(
        f"select period, customer_id, gross_revenue, cogs from read_parquet('{floor_file}') "
        "where gross_revenue is not null"
    )
    published = duckdb.connect(str(tmp_path / "work" / "warehouse" / "pfd.duckdb"), read_only=True)
    pipeline = published.sql(
        "select period, customer_id, gross_revenue, cogs from marts.customer_profitability"
    )
    first_month = min(r[0] for r in pipeline.fetchall())
    expected = sorted(r for r in floor.fetchall() if r[0] == first_month)
    got = sorted(r for r in pipeline.fetchall() if r[0] == first_month and (r[2] != 0 or r[3] != 0))
    assert expected and got == expected


def test_cores_between_interpolates_the_cpu_samples_within_a_span():
    samples = [(100.0, 0.0), (101.0, 2.0), (103.0, 3.0)]  # 2 cores, then half a core
    assert bench.cores_between(samples, 100.0, 101.0) == 2.0
    assert bench.cores_between(samples, 101.0, 103.0) == 0.5
    assert bench.cores_between(samples, 100.5, 102.0) == 1.0  # (2.5 - 1.0) CPU s over 1.5 s
    assert bench.cores_between(samples, 99.0, 100.0) == 0.0  # before the first sample
    assert bench.cores_between(samples, 102.0, 102.0) == 0.0  # an empty span


def test_tree_usage_counts_a_busy_child_process():
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        first = bench.tree_usage(child.pid)
        time.sleep(0.5)
        rss, cpu = bench.tree_usage(child.pid)
    finally:
        child.kill()
        child.wait()
    assert rss > 0 and cpu > first[1]


def test_history_landing_links_the_first_months_and_holds_back_their_last_days(tmp_path):
    landing = tmp_path / "landing"
    names = {
        "sales_ledger": ["sales_ledger_2024-11-28.csv", "sales_ledger_2024-11-29.csv",
                         "sales_ledger_2024-12-02.csv"],
        "activities": ["activities_2024-11-27.csv", "activities_2024-11-29.csv",
                       "activities_2024-12-02.csv"],
        "resources": ["resources_2024-11.csv", "resources_2024-12.csv"],
        "feedback": ["nps_2024-12.csv"],
        "customers": ["customers_2024-12-31.csv"],
    }  # fmt: skip
    for source, files in names.items():
        (landing / source).mkdir(parents=True)
        for name in files:
            (landing / source / name).write_text(name)
    folder = tmp_path / "history"
    held = bench.history_landing(landing, folder, months=1, days=2)
    linked = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.csv"))
    # November's files but its last two days, its resource costs and the whole customer master
    assert linked == [
        "activities/activities_2024-11-27.csv",
        "customers/customers_2024-12-31.csv",
        "resources/resources_2024-11.csv",
    ]
    assert [[p.name for p in day] for day in held] == [
        ["sales_ledger_2024-11-28.csv"],  # no events that day
        ["activities_2024-11-29.csv", "sales_ledger_2024-11-29.csv"],
    ]
    assert all(p.parent.parent == landing for day in held for p in day)  # the originals
    assert (folder / "activities" / "activities_2024-11-27.csv").stat().st_nlink == 2  # a link
    # made again from scratch: no file of a longer history is left behind
    assert bench.history_landing(landing, folder, months=2, days=0) == []
    assert len(list(folder.rglob("*.csv"))) == sum(len(files) for files in names.values())
    bench.history_landing(landing, folder, months=1, days=0)
    assert not list(folder.rglob("*2024-12-0*.csv"))


def test_month_counts_are_increasing_positive_numbers():
    assert bench.month_counts("6,12,24") == [6, 12, 24]
    for bad in ("12,6", "0,6", "6,6", "six"):
        with pytest.raises((argparse.ArgumentTypeError, ValueError)):
            bench.month_counts(bad)


def test_history_smoke_run_builds_each_history_and_runs_the_same_days_on_each(tmp_path):
    out = tmp_path / "history.json"
    done = run_bench(tmp_path, out, "--customers", "40", "--history", "1,2")
    assert "daily run after 2 months / after 1 months: " in done.stdout
    results = json.loads(out.read_text())
    one, two = results["histories"]
    assert (one["months"], two["months"]) == (1, 2)
    assert 0 < one["ledger_lines"] < two["ledger_lines"] and 0 < one["events"] < two["events"]
    for history in (one, two):
        assert len(history["daily_runs"]) == 1 and history["daily_rows"][0] > 0
        assert history["daily_seconds"] == history["daily_runs"][0] > 0
        assert set(history["daily_stage_seconds"]) >= {"ingest", "allocate", "marts", "publish"}
    assert results["daily_growth"] == round(two["daily_seconds"] / one["daily_seconds"], 3)
    # each history's warehouse holds its own months, the held-back day added to its rows
    for history in (one, two):
        published = tmp_path / "work" / f"history-{history['months']}" / "warehouse" / "pfd.duckdb"
        with duckdb.connect(str(published), read_only=True) as con:
            (periods,) = con.execute(
                "select count(distinct period) from marts.customer_profitability"
            ).fetchone()
            (rows,) = con.execute(
                "select sum(rows_read) from marts.ingested_files "
                "where source in ('sales_ledger', 'activities')"
            ).fetchone()
        assert periods == history["months"]
        assert rows == history["ledger_lines"] + history["events"] + history["daily_rows"][0]


def test_validation_gets_its_share_of_the_ingest_wall_time():
    """Validation's busy seconds, scaled to each source's wall time where the source's parts
    overlap, then to the steps' wall time where the sources do."""
    from pfd_pipeline.runner import validation_seconds

    # a reader (hash 1, read 5) beside two workers (validate 6, load 2) and a merge of 1 (15 busy
    # seconds) in 10 wall seconds: 6 x 10 / 15
    assert validation_seconds(10.0, [(10.0, 6.0, 15.0)]) == pytest.approx(4.0)
    # parts that cover only part of the wall (checks, metadata): validation's own seconds
    assert validation_seconds(10.0, [(10.0, 2.0, 5.0)]) == pytest.approx(2.0)
    # two sources side by side in one 12-second step: 4 + 2 scaled by 12 / 20
    assert validation_seconds(12.0, [(10.0, 6.0, 15.0), (10.0, 2.0, 5.0)]) == pytest.approx(3.6)
    # one after the other in two steps of 20 seconds in all: 4 + 2
    assert validation_seconds(20.0, [(10.0, 6.0, 15.0), (10.0, 2.0, 5.0)]) == pytest.approx(6.0)
    assert validation_seconds(0.0, []) == 0.0  # nothing ingested
