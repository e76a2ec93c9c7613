"""Reliability, end to end through `pfd run`: idempotent re-runs, re-delivered files,
corrections and late data flowing downstream, kill -9 at every stage, concurrent runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pfd_pipeline import cli
from pfd_pipeline.faults import ENV as CRASH_ENV
from pfd_pipeline.faults import FULL_PUBLICATION_ONLY, POINTS
from pfd_pipeline.publish import PUBLISHED_TABLES
from pfd_pipeline.warehouse import connect

ROOT = Path(__file__).resolve().parent.parent
AUDIT_TABLES = ("ingested_files", "rejected_rows", "publication")
MONTHLY = ("sales_ledger", "activities", "resources")  # sources with files per day or month


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """Three months of demo data for 40 customers, with a few bad rows."""
    landing = tmp_path_factory.mktemp("gen") / "landing"
    args = ["generate", "--out", str(landing), "--customers", "40", "--months", "3"]
    args += ["--start", "2025-01-01", "--seed", "11", "--with-errors"]
    assert cli.main(args) == 0
    return landing


@pytest.fixture
def project(generated, tmp_path, monkeypatch) -> dict[str, Path]:
    landing = tmp_path / "landing"
    shutil.copytree(generated, landing)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))  # in-process runs
    return {"landing": landing, "warehouse": tmp_path / "warehouse"}


def _args(project: dict[str, Path]) -> list[str]:
    return ["--landing", str(project["landing"]), "--warehouse", str(project["warehouse"])]


def snapshot(warehouse: Path, skip: tuple[str, ...] = AUDIT_TABLES) -> dict[str, list[tuple]]:
    """Every published table's rows, sorted, read as a BI client would (read-only)."""
    con = duckdb.connect(str(warehouse / "pfd.duckdb"), read_only=True)
    try:
        return {
            t: sorted(con.execute(f"select * from marts.{t}").fetchall(), key=repr)
            for t in PUBLISHED_TABLES
            if t not in skip
        }
    finally:
        con.close()


def test_rerun_and_redelivered_files_change_nothing(project, capsys):
    assert cli.main(["run", *_args(project)]) == 0
    first = snapshot(project["warehouse"])
    assert len(first["customer_tiers"]) > 0 and len(first["whale_curve"]) == 3 * 101
    inode = os.stat(project["warehouse"] / "pfd.duckdb").st_ino
    capsys.readouterr()

    assert cli.main(["run", *_args(project)]) == 0
    assert "Nothing new" in capsys.readouterr().out
    assert snapshot(project["warehouse"]) == first
    assert os.stat(project["warehouse"] / "pfd.duckdb").st_ino == inode, "nothing rewritten"

    # the same files delivered again: one under its own name touched, one under a new name
    ledger = sorted((project["landing"] / "sales_ledger").iterdir())
    again = ledger[3].with_name(ledger[3].name.replace(".csv", "_resent.csv"))
    shutil.copy(ledger[3], again)
    events = sorted((project["landing"] / "activities").iterdir())[5]
    os.utime(events, (time.time(), time.time() + 10))
    assert cli.main(["run", *_args(project)]) == 0
    assert snapshot(project["warehouse"]) == first
    con = duckdb.connect(str(project["warehouse"] / "pfd.duckdb"), read_only=True)
    try:
        duplicates = con.execute(
            "select path, rows_read, rows_accepted from marts.ingested_files "
            "where status = 'duplicate' order by path"
        ).fetchall()
    finally:
        con.close()
    assert duplicates == [
        (f"activities/{events.name}", 0, 0),
        (f"sales_ledger/{again.name}", 0, 0),
    ]


def test_a_correction_replaces_and_late_data_rebuilds_everything_downstream(project, capsys):
    assert cli.main(["run", *_args(project)]) == 0
    before = snapshot(project["warehouse"])
    capsys.readouterr()
    ledger_dir = project["landing"] / "sales_ledger"
    header = next(iter(sorted(ledger_dir.iterdir()))).read_text(encoding="utf-8").splitlines()[0]
    columns = header.split(",")
    con = connect(project["warehouse"] / "work.duckdb", read_only=True)
    try:
        row = con.execute(
            f"select {', '.join(columns)} from raw.sales_ledger where document_type = 'invoice' "
            "and posting_date < '2025-02-01' order by line_id limit 1"
        ).fetchall()[0]
    finally:
        con.close()
    original = dict(zip(columns, row, strict=True))
    line_id, customer, gross = (
        original["line_id"],
        original["customer_id"],
        original["gross_amount"],
    )
    # a later file corrects January's line (a closed month by now): gross up by 1,000.00
    corrected = {**original, "gross_amount": gross + 1000}
    late = ledger_dir / "sales_ledger_2025-03-31_correction.csv"
    cells = ["" if corrected[c] is None else str(corrected[c]) for c in columns]
    late.write_text(header + "\n" + ",".join(cells) + "\n", encoding="utf-8")
    assert cli.main(["run", *_args(project)]) == 0
    out = capsys.readouterr().out
    assert "late data for a closed month: 2025-01" in out
    assert "customer_tiers             3 month(s): 2025-01 to 2025-03" in out
    assert "customer_trends            3 month(s): 2025-01 to 2025-03" in out
    after = snapshot(project["warehouse"])
    con = connect(project["warehouse"] / "work.duckdb", read_only=True)
    try:
        assert con.execute(
            "select count(*), any_value(gross_amount) from raw.sales_ledger where line_id = ?",
            [line_id],
        ).fetchall() == [(1, gross + 1000)]
    finally:
        con.close()

    def january(snap):
        return {r[1]: r for r in snap["customer_profitability"] if r[0] == "2025-01"}[customer]

    # January's profit of the customer rises by exactly the correction (columns 11 and 15 are
    # net_revenue and operating_profit); its tiers in every later month (12-month window) too
    old, new = january(before), january(after)
    assert new[11] - old[11] == 1000
    assert new[15] - old[15] == 1000
    profit_col = 10  # customer_tiers.operating_profit
    for month in ("2025-01", "2025-02", "2025-03"):
        old_t = {r[1]: r for r in before["customer_tiers"] if r[0] == month}
        new_t = {r[1]: r for r in after["customer_tiers"] if r[0] == month}
        assert new_t[customer][profit_col] - old_t[customer][profit_col] == 1000, month
    assert after["whale_curve"] != before["whale_curve"]


def _run_subprocess(project, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in (CRASH_ENV, "DAGSTER_HOME")}
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "pfd_pipeline.cli", "run", *_args(project)],
        env=env, capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip


def test_a_run_killed_at_any_stage_leaves_the_publication_intact(project, generated):
    """kill -9 at every crash point of a run with new data: readers see the last publication,
    and the next run completes and publishes exactly what an uninterrupted run would."""
    march = [p for s in MONTHLY for p in (project["landing"] / s).glob("*2025-03*")]
    for path in march:
        path.unlink()
    assert _run_subprocess(project).returncode == 0
    published = snapshot(project["warehouse"])
    assert {r[0] for r in published["customer_profitability"]} == {"2025-01", "2025-02"}

    # March arrives; every run of it dies somewhere, a reader must always see February's state
    for path in march:
        shutil.copy(generated / path.relative_to(project["landing"]), path)
    seen = {}
    points = [p for p in POINTS if p not in FULL_PUBLICATION_ONLY]  # March is not a full one
    for point in points:
        result = _run_subprocess(project, crash_at=point)
        assert result.returncode == -9, (point, result.stderr[-2000:])
        seen[point] = snapshot(project["warehouse"])
    finished = _run_subprocess(project)
    assert finished.returncode == 0, finished.stderr[-2000:]
    final = snapshot(project["warehouse"])
    assert {r[0] for r in final["customer_profitability"]} == {"2025-01", "2025-02", "2025-03"}
    # before the first switch a reader sees February's publication; from the switch on, the
    # whole of March (the file is complete when renamed); never anything in between
    switched = points.index("after_duckdb_switch")
    for point in points:
        assert seen[point] == (published if points.index(point) < switched else final), point

    # the same landing folder, never interrupted
    clean = {"landing": project["landing"], "warehouse": project["warehouse"].with_name("clean")}
    assert _run_subprocess(clean).returncode == 0
    assert final == snapshot(clean["warehouse"])
    leftovers = [p.name for p in project["warehouse"].iterdir() if ".next" in p.name]
    assert leftovers == []
    parquet_versions = list((project["warehouse"] / ".parquet-versions").iterdir())
    assert len(parquet_versions) <= 2


def test_two_runs_at_once_one_waits_its_turn_nothing_is_corrupted(project):
    env = {k: v for k, v in os.environ.items() if k not in (CRASH_ENV, "DAGSTER_HOME")}
    command = [sys.executable, "-m", "pfd_pipeline.cli", "run", *_args(project)]
    first = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    time.sleep(1.0)
    second = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == cli.EXIT_BUSY, second.stderr
    assert "another pfd run" in second.stderr and "nothing was changed" in second.stderr
    # the run that got through published everything; a third run finds nothing new
    third = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    assert third.returncode == 0 and "Nothing new" in third.stdout
    assert len(snapshot(project["warehouse"])["whale_curve"]) == 3 * 101
