"""The Dagster definitions load, and `pfd run` works end to end through Dagster."""

from __future__ import annotations

import base64
import datetime as dt
import gc
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pfd_pipeline import cli, runner, warehouse
from pfd_pipeline.definitions import build_definitions
from pfd_pipeline.settings import Settings
from pfd_pipeline.startup import startup
from pfd_pipeline.warehouse import connect, marts_path

FIXTURE = Path(__file__).parent / "fixtures" / "tiny"
COST_MODEL = Path(__file__).parent.parent / "data" / "config" / "cost_model.yaml"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A landing copy of the tiny fixture, an empty warehouse and a config that tolerates it."""
    landing = tmp_path / "landing"
    shutil.copytree(FIXTURE, landing)
    config = tmp_path / "pfd.yaml"
    shutil.copy(COST_MODEL, tmp_path / "cost_model.yaml")
    config.write_text(
        'partitions_start: "2024-06-01"\n'
        'schedule:\n  cron: "30 5 * * *"\n  timezone: "Europe/Amsterdam"\n'
        'validation:\n  max_reject_share: 0.6\n  min_date: "2020-01-01"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    for name in ("PFD_LANDING_DIR", "PFD_WAREHOUSE_DIR", "PFD_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return {"landing": landing, "warehouse": tmp_path / "wh", "config": config}


def _args(project: dict[str, Path]) -> list[str]:
    return [
        "--landing",
        str(project["landing"]),
        "--warehouse",
        str(project["warehouse"]),
        "--config",
        str(project["config"]),
    ]


def _settings(project: dict[str, Path]) -> Settings:
    return Settings.load(project["landing"], project["warehouse"], project["config"])


def test_definitions_load_with_groups_checks_and_schedule(project):
    defs = build_definitions(_settings(project))
    repo = defs.get_repository_def()
    groups = {node.key.to_user_string(): node.group_name for node in repo.asset_graph.asset_nodes}
    assert groups == {
        "raw/customers": "ingest",
        "raw/sales_ledger": "ingest",
        "raw/activity_events": "ingest",
        "raw/resource_costs": "ingest",
        "raw/feedback": "ingest",
        "audit/ingested_files": "validate",
        "audit/rejected_rows": "validate",
        "marts/customer_cost_to_serve": "allocate",
        "marts/activity_rates": "allocate",
        "marts/allocation_reconciliation": "allocate",
        "marts/customer_profitability": "marts",
        "marts/customer_tiers": "marts",
        "marts/whale_curve": "marts",
        "marts/customer_trends": "marts",
        "marts/segment_profitability": "marts",
        "marts/customer_lifetime_value": "marts",
        "marts/customer_value_matrix": "marts",
        "marts/rising_stars": "marts",
        "publish/duckdb_file": "publish",
        "publish/parquet": "publish",
        "publish/report": "publish",
    }
    checks = {f"{k.asset_key.to_user_string()}:{k.name}" for k in repo.asset_graph.asset_check_keys}
    assert {
        "raw/sales_ledger:customer_known",
        "raw/sales_ledger:key_unique",
        "raw/activity_events:customer_known",
        "audit/ingested_files:rows_balance",
        "audit/ingested_files:reject_share_within_limit",
        "marts/allocation_reconciliation:books_balance",
        "marts/customer_profitability:ties_to_ledger_and_allocation",
        "publish/duckdb_file:matches_work_store",
    } <= checks
    schedule = defs.resolve_schedule_def("daily_refresh")
    assert schedule.cron_schedule == "30 5 * * *"
    assert schedule.execution_timezone == "Europe/Amsterdam"
    ledger = repo.asset_graph.get(dg.AssetKey(["raw", "sales_ledger"]))
    assert ledger.partitions_def.get_first_partition_key() == "2024-06-01"
    assert ledger.backfill_policy == dg.BackfillPolicy.single_run()


def test_module_definitions_load():
    import importlib

    import pfd_pipeline.definitions as module

    importlib.reload(module)
    assert isinstance(module.defs, dg.Definitions)
    module.defs.get_repository_def().load_all_definitions()


def test_cli_run_end_to_end_on_fixture(project, capsys):
    assert cli.main(["run", *_args(project)]) == 0
    out = capsys.readouterr().out
    assert "new files: 1 customers, 3 sales_ledger, 1 activities, 1 resources" in out
    assert "for days 2025-01-02 to 2025-01-04" in out
    assert "  sales_ledger         2      1            9            5         4" in out
    assert "customer_known" in out
    con = connect(project["warehouse"] / "work.duckdb", read_only=True)
    try:
        totals = con.execute(
            "SELECT sum(rows_read), sum(rows_accepted), sum(rows_rejected) "
            "FROM audit.ingested_files"
        ).fetchall()[0]
        assert totals == (21, 16, 5)
        assert con.execute("SELECT count(*) FROM raw.sales_ledger").fetchall()[0][0] == 4
    finally:
        con.close()

    # The run is recorded in the Dagster instance, with metadata the UI shows.
    instance = dg.DagsterInstance.get()
    event = instance.get_latest_materialization_event(dg.AssetKey(["raw", "sales_ledger"]))
    metadata = event.asset_materialization.metadata
    assert metadata["dagster/row_count"].value == 4
    assert [c.name for c in metadata["dagster/column_schema"].schema.columns][:3] == [
        "line_id",
        "document_id",
        "document_type",
    ]

    # The whale curve's metadata holds its picture (a PNG the UI's Markdown shows) and the
    # report's path; the report asset wrote that report after publishing.
    report = project["warehouse"] / "reports" / "pfd_report_2025-01.html"
    whale = instance.get_latest_materialization_event(dg.AssetKey(["marts", "whale_curve"]))
    whale_meta = whale.asset_materialization.metadata
    picture = whale_meta["whale_curve_chart"].value
    prefix = "![Whale curve, 2025-01](data:image/png;base64,"
    assert picture.startswith(prefix) and picture.endswith(")")
    assert base64.b64decode(picture[len(prefix) : -1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert whale_meta["report"].value == str(report)
    published = instance.get_latest_materialization_event(dg.AssetKey(["publish", "report"]))
    assert published.asset_materialization.metadata["path"].value == str(report)
    page = report.read_text(encoding="utf-8")
    assert page.count("<svg") == 7  # every chart, the value matrix too; the fixture's two
    # customers lose money, so the whale curve is drawn without a % curve
    assert "Total operating profit over the window is -12,139.67, not positive; 2 of 2 " in page
    assert f"Report (open in a browser): {report}" in out

    # A second run finds nothing new and changes nothing; a deleted report is written again.
    report.unlink()
    assert cli.main(["run", *_args(project)]) == 0
    assert "Nothing new" in capsys.readouterr().out
    assert report.is_file()


def test_cli_run_failure_is_one_paragraph_naming_file_row_column_rule(project, capsys):
    project["config"].write_text("validation:\n  max_reject_share: 0.05\n", encoding="utf-8")
    assert cli.main(["run", *_args(project)]) == cli.EXIT_FAILED
    # stderr: the progress log (not a terminal), then the failure as one paragraph
    lines = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("[pfd ") for line in lines[:-1])
    err = lines[-1]
    assert err.startswith("pfd: ") and "raw/sales_ledger failed:" in err
    assert "sales_ledger/sales_ledger_2025-01-02.csv: 2 of 4 rows rejected" in err
    assert "row 3, column quantity, rule invoice_quantity_positive" in err


@pytest.mark.parametrize("target", ["duckdb", "parquet"])
def test_a_failed_publication_names_its_asset_and_is_tried_again(
    project, monkeypatch, capsys, target
):
    """The three publications are one Dagster step; its failure names the one that failed.
    The DuckDB file is published first: if it fails, neither the Parquet nor the report is
    written from that run. The next run publishes what is pending."""
    from pfd_pipeline import publish
    from pfd_pipeline.assets import publish as publish_assets

    def broken(con, settings, run_id):
        raise publish.PublishError("the disk is full")

    working = getattr(publish_assets, f"publish_{target}")
    monkeypatch.setattr(publish_assets, f"publish_{target}", broken)
    assert cli.main(["run", *_args(project)]) == cli.EXIT_FAILED
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"publish/{'duckdb_file' if target == 'duckdb' else 'parquet'} failed: " in err, err
    assert "the disk is full" in err
    settings = _settings(project)
    assert settings.published_db.exists() is (target == "parquet")
    assert not list(settings.parquet_dir.glob("*/*"))
    # the report is drawn beside the Parquet, from a published file; none without one
    assert bool(list(settings.reports_dir.glob("*.html"))) is (target == "parquet")

    monkeypatch.setattr(publish_assets, f"publish_{target}", working)
    assert cli.main(["run", *_args(project)]) == 0
    assert settings.published_db.exists() and list(settings.parquet_dir.glob("*/*"))


def test_an_unbalanced_ingest_audit_stops_the_run_before_the_publication(
    project, monkeypatch, capsys
):
    """rows_balance is a blocking check: with a file's rows read <> accepted + rejected in the
    audit, the audit step (the ingest audit and the rejected rows, one step) fails once both are
    recorded, and nothing is published from that run."""
    from pfd_pipeline import ingest

    counting = ingest._count

    def miscounted(members, accepted, rejected):
        counting(members, accepted, rejected)
        next(iter(members.values())).rows_accepted += 1

    monkeypatch.setattr(ingest, "_count", miscounted)
    assert cli.main(["run", *_args(project)]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert "rows_balance" in err, err
    con = duckdb.connect(str(project["warehouse"] / "work.duckdb"), read_only=True)
    try:
        unbalanced = con.execute(
            "SELECT count(*) FROM audit.ingested_files "
            "WHERE rows_read <> rows_accepted + rows_rejected"
        ).fetchall()[0][0]
        rejected = con.execute("SELECT count(*) FROM audit.rejected_rows").fetchall()[0][0]
    finally:
        con.close()
    assert unbalanced > 0 and rejected > 0
    settings = _settings(project)
    assert not settings.published_db.exists()
    assert not list(settings.parquet_dir.glob("*/*"))


def test_the_audit_step_runs_what_is_selected_of_it(project):
    """The ingest audit and the rejected rows are one step: materialising either alone, or
    running one of the audit's checks alone, runs only that (no result for what was not
    selected, and a check selected alone is still evaluated)."""
    from pfd_pipeline.assets.validate import INGEST_AUDIT, REJECTED_ROWS

    settings = _settings(project)
    con = connect(settings.work_db)
    warehouse.ensure_schema(con)
    con.close()
    defs = build_definitions(settings)
    checks = {k.name: k for k in defs.get_repository_def().asset_graph.asset_check_keys}

    def run(selection):
        result = dg.materialize(
            list(defs.assets), selection=selection, resources=defs.resources, raise_on_error=True
        )
        done = {e.asset_key for e in result.get_asset_materialization_events()}
        evaluated = {e.check_name for e in result.get_asset_check_evaluations()}
        return done, evaluated

    for name in ("rows_balance", "reject_share_within_limit"):
        assert run(dg.AssetSelection.checks(checks[name])) == (set(), {name})
    assert run(dg.AssetSelection.assets(REJECTED_ROWS)) == ({REJECTED_ROWS}, set())
    assert run(dg.AssetSelection.assets(INGEST_AUDIT)) == (
        {INGEST_AUDIT},
        {"rows_balance", "reject_share_within_limit"},
    )


def test_the_published_file_check_runs_on_its_own(project):
    """matches_work_store selected alone compares the published file as it is, without
    publishing anything: it passes after a run, and fails once the file lacks rows the work
    store has."""
    from pfd_pipeline.assets.publish import DUCKDB_FILE

    assert cli.main(["run", *_args(project)]) == 0
    settings = _settings(project)
    defs = build_definitions(settings)
    check = dg.AssetCheckKey(DUCKDB_FILE, "matches_work_store")

    def evaluate() -> tuple[bool, str, set]:
        result = dg.materialize(
            list(defs.assets),
            selection=dg.AssetSelection.checks(check),
            resources=defs.resources,
            raise_on_error=True,
        )
        (evaluation,) = result.get_asset_check_evaluations()
        done = {e.asset_key for e in result.get_asset_materialization_events()}
        return evaluation.passed, evaluation.metadata["tables_differing"].value, done

    before = settings.published_db.stat().st_mtime_ns
    assert evaluate() == (True, "none", set())
    assert settings.published_db.stat().st_mtime_ns == before  # nothing published
    con = duckdb.connect(str(settings.published_db))
    con.execute("DELETE FROM marts.whale_curve WHERE customer_pct = 50")
    con.close()
    assert evaluate() == (False, "whale_curve", set())


def test_publishing_the_duckdb_file_checks_it_only_when_the_check_is_selected(project):
    """Publishing the DuckDB file with its check compares the new file's rows with the work
    store's (they match); without it no check is evaluated, and the file's rows per table are
    still in the materialisation."""
    from pfd_pipeline.assets.publish import DUCKDB_FILE

    assert cli.main(["run", *_args(project)]) == 0
    defs = build_definitions(_settings(project))

    def publish(selection: dg.AssetSelection) -> tuple[list, str]:
        result = dg.materialize(
            list(defs.assets), selection=selection, resources=defs.resources, raise_on_error=True
        )
        (event,) = result.get_asset_materialization_events()
        assert event.materialization.asset_key == DUCKDB_FILE
        evaluations = [
            (e.passed, e.metadata["tables_differing"].value)
            for e in result.get_asset_check_evaluations()
        ]
        return evaluations, event.materialization.metadata["rows"].value

    checked, rows = publish(dg.AssetSelection.assets(DUCKDB_FILE))
    assert checked == [(True, "none")]
    assert "| whale_curve |" in rows
    unchecked, rows = publish(dg.AssetSelection.assets(DUCKDB_FILE).without_checks())
    assert unchecked == []
    assert "| whale_curve |" in rows


def _ingested(project) -> tuple[list, dict[str, list]]:
    """The ingest audit (ids, files, outcomes) and the daily raw tables' rows with file ids."""
    con = duckdb.connect(str(project["warehouse"] / "work.duckdb"), read_only=True)
    try:
        audit = con.execute(
            "select file_id, source, path, status, rows_read, rows_accepted, rows_rejected "
            "from audit.ingested_files order by file_id"
        ).fetchall()
        tables = {
            table: con.execute(f"select * from raw.{table} order by all").fetchall()
            for table in ("sales_ledger", "activity_events")
        }
    finally:
        con.close()
    return audit, tables


def test_the_daily_sources_load_the_same_side_by_side_as_one_after_the_other(
    project, monkeypatch, tmp_path
):
    """A daily run's ledger and events are loaded side by side (a few days' files), a backfill's
    one after the other; the file ids, the audit and the rows come out the same either way."""
    from pfd_pipeline.assets import ingest as ingest_assets

    threads: dict[str, str] = {}
    loading = ingest_assets._ingest

    def spy(duckdb, settings, source, *args):
        threads[source.name] = threading.current_thread().name
        if source.daily:
            order.append("load")
        if source.name == "sales_ledger":  # the first to draw file ids, but the later to start
            time.sleep(0.3)
        return loading(duckdb, settings, source, *args)

    order: list[str] = []  # the daily sources' loads and the releases of cached blocks
    releasing = ingest_assets.release_cached_blocks

    def release_spy(con, limit):
        order.append("release")
        return releasing(con, limit)

    monkeypatch.setattr(ingest_assets, "_ingest", spy)
    monkeypatch.setattr(ingest_assets, "release_cached_blocks", release_spy)
    runs = {}
    for side_by_side in (True, False):
        monkeypatch.setattr(ingest_assets, "SIDE_BY_SIDE_BYTES", 1 << 30 if side_by_side else 0)
        project["warehouse"] = tmp_path / f"wh_{side_by_side}"
        threads.clear()
        order.clear()
        assert cli.main(["run", *_args(project)]) == 0
        daily = {threads["sales_ledger"], threads["activities"]}
        assert all(t.startswith("pfd-ingest") for t in daily) is side_by_side, threads
        assert len(daily) == (2 if side_by_side else 1)
        # one after the other, each source's cached blocks are released before the next loads
        step = order[order.index("load") :][:4]
        if side_by_side:
            assert step[:3] == ["load", "load", "release"], order
        else:
            assert step == ["load", "release", "load", "release"], order
        runs[side_by_side] = _ingested(project)
    assert runs[True] == runs[False]
    audit, tables = runs[True]
    assert {source for _, source, *_ in audit} >= {"sales_ledger", "activities"}
    assert all(tables.values())


def test_a_bad_file_name_fails_the_daily_step_naming_its_source(project):
    """Run from Dagster (no `pfd run` plan before it), the daily step names the source whose
    landing folder holds a file it cannot take, not the step."""
    from pfd_pipeline.definitions import PIPELINE_JOB
    from pfd_pipeline.planning import RANGE_END_TAG, RANGE_START_TAG

    ledger = project["landing"] / "sales_ledger"
    shutil.copy(sorted(ledger.iterdir())[0], ledger / "sales_ledger_2025-02-30.csv")
    job = build_definitions(_settings(project)).resolve_job_def(PIPELINE_JOB)
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance,
            tags={RANGE_START_TAG: "2025-01-01", RANGE_END_TAG: "2025-01-31"},
            asset_selection=[dg.AssetKey(["raw", "sales_ledger"])],
            raise_on_error=False,
        )
    assert not result.success
    message = runner._failure_message(result)
    assert message.startswith("raw/sales_ledger failed: sales_ledger/sales_ledger_2025-02-30.csv")


def test_a_source_that_fails_beside_another_leaves_the_other_loaded(project, capsys):
    """Loaded side by side, the ledger's failure (too many rejects: 50% and 40% of two files)
    fails the run naming it; the events (17% rejected) are loaded and recorded all the same, as
    when each source was a step of its own. When both fail, the message names both."""
    project["config"].write_text("validation:\n  max_reject_share: 0.3\n", encoding="utf-8")
    assert cli.main(["run", *_args(project)]) == cli.EXIT_FAILED
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "raw/sales_ledger failed:" in err and "activity_events" not in err, err
    audit, tables = _ingested(project)
    assert "activities" in {source for _, source, *_ in audit}
    assert "sales_ledger" not in {source for _, source, *_ in audit}
    assert not tables["sales_ledger"] and tables["activity_events"]
    with dg.DagsterInstance.get() as instance:  # the run is recorded in $DAGSTER_HOME
        assert instance.get_latest_materialization_event(dg.AssetKey(["raw", "activity_events"]))
        assert not instance.get_latest_materialization_event(dg.AssetKey(["raw", "sales_ledger"]))

    project["warehouse"] = project["warehouse"].with_name("both_fail")
    project["config"].write_text("validation:\n  max_reject_share: 0.05\n", encoding="utf-8")
    assert cli.main(["run", *_args(project)]) == cli.EXIT_FAILED
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("pfd: raw/sales_ledger failed: 2 sales_ledger file(s)"), err
    assert " raw/activity_events failed: 1 activities file(s) could not be loaded" in err


def test_env_vars_do_what_the_flags_do(project, monkeypatch, capsys):
    monkeypatch.setenv("PFD_LANDING_DIR", str(project["landing"]))
    monkeypatch.setenv("PFD_WAREHOUSE_DIR", str(project["warehouse"]))
    monkeypatch.setenv("PFD_CONFIG", str(project["config"]))
    assert cli.main(["run"]) == 0
    assert str(project["warehouse"] / "work.duckdb") in capsys.readouterr().out


def test_second_run_while_one_holds_the_lock_stops_clearly(project, capsys):
    settings = _settings(project)
    with cli.run_lock(settings):
        assert cli.main(["run", *_args(project)]) == cli.EXIT_BUSY
    assert "another pfd run (pid" in capsys.readouterr().err
    assert not (project["warehouse"] / "work.duckdb").exists()


def test_file_dated_before_partitions_start_is_refused(project, capsys):
    old = project["landing"] / "sales_ledger" / "sales_ledger_2023-12-31.csv"
    shutil.copy(project["landing"] / "sales_ledger" / "sales_ledger_2025-01-02.csv", old)
    assert cli.main(["run", *_args(project)]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert (
        "sales_ledger/sales_ledger_2023-12-31.csv: dated 2023-12-31, before partitions_start" in err
    )


def test_schedule_requests_one_run_for_the_new_days_then_skips(project):
    settings = _settings(project)
    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def("daily_refresh")
    when = dt.datetime(2026, 1, 1, 5, 30, tzinfo=dt.UTC)
    with dg.build_schedule_context(scheduled_execution_time=when) as context:
        requests = schedule.evaluate_tick(context).run_requests
    assert len(requests) == 1
    assert requests[0].tags["dagster/asset_partition_range_start"] == "2025-01-02"
    assert requests[0].tags["dagster/asset_partition_range_end"] == "2025-01-04"
    selected = set(requests[0].asset_selection)  # the fixture has no feedback file
    assert dg.AssetKey(["raw", "sales_ledger"]) in selected
    assert dg.AssetKey(["raw", "feedback"]) not in selected
    assert dg.AssetKey(["publish", "report"]) in selected

    assert cli.main(["run", *_args(project)]) == 0
    with dg.build_schedule_context(scheduled_execution_time=when) as context:
        result = schedule.evaluate_tick(context)
    assert result.run_requests == []
    assert "no new files" in result.skip_message


def test_cli_generate_then_run_on_a_small_generated_folder(project, tmp_path, capsys):
    landing = tmp_path / "generated"
    assert (
        cli.main(
            [
                "generate",
                "--out",
                str(landing),
                "--customers",
                "60",
                "--months",
                "2",
                "--start",
                "2025-03-01",
                "--seed",
                "7",
                "--with-errors",
            ]
        )
        == 0
    )
    project["landing"] = landing
    assert cli.main(["run", *_args(project)]) == 0
    out = capsys.readouterr().out
    assert "for days 2025-03-" in out
    con = connect(project["warehouse"] / "work.duckdb", read_only=True)
    try:
        per_source = dict(
            con.execute(
                "SELECT source, sum(rows_rejected) FROM audit.ingested_files GROUP BY source"
            ).fetchall()
        )
        rules = {
            r[0] for r in con.execute("SELECT DISTINCT rule FROM audit.rejected_rows").fetchall()
        }
        unbalanced = con.execute(
            "SELECT count(*) FROM audit.ingested_files "
            "WHERE rows_read <> rows_accepted + rows_rejected"
        ).fetchall()[0][0]
        ledger_rows = con.execute("SELECT count(*) FROM raw.sales_ledger").fetchall()[0][0]
        # orders and credit notes (counted by the allocation, read by the mart) are the
        # distinct documents of the customer's month, whatever their lines
        documents = con.execute(
            "SELECT strftime(posting_date, '%Y-%m'), customer_id, "
            "count(DISTINCT document_id) FILTER (document_type = 'invoice'), "
            "count(DISTINCT document_id) FILTER (document_type = 'credit_note'), count(*) "
            "FROM raw.sales_ledger GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        mart = con.execute(
            "SELECT period, customer_id, orders, credit_notes, invoice_lines + credit_note_lines "
            "FROM marts.customer_profitability WHERE invoice_lines + credit_note_lines > 0 "
            "ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()
    assert mart == documents
    assert sum(lines for *_, lines in documents) == ledger_rows
    assert any(lines > orders + credit_notes for _, _, orders, credit_notes, lines in documents)
    assert any(credit_notes for _, _, _, credit_notes, _ in documents)
    assert unbalanced == 0
    # the generator injects 4 rows of each ledger error kind; in activities 4 bad dates and 4
    # duplicate events are rejected (events of unknown customers are kept for the cost engine)
    assert per_source == {
        "customers": 0,
        "resources": 0,
        "sales_ledger": 16,
        "activities": 8,
        "feedback": 0,
    }
    # every kind is caught by its rule (bad dates come as 2025-02-30 and as 31/01/2025)
    assert rules == {
        "customer_known",
        "invoice_quantity_positive",
        "unique_key_in_file",
        "valid_date",
        "format",
    }
    assert ledger_rows == 1530  # seed 7, 60 customers, 2 months, after rejects


def test_late_data_and_model_edits_rebuild_the_months_and_say_so(project, capsys):
    assert cli.main(["run", *_args(project)]) == 0
    out = capsys.readouterr().out
    assert "first allocation: 2025-01" in out
    assert "all balance to the cent" in out
    # the ingest steps' wall time, split between ingest and validate: validation's busy seconds,
    # scaled where a source's parts (its reader and workers) or the sources overlap
    stats = json.loads((project["warehouse"] / "last_run_stats.json").read_text(encoding="utf-8"))
    ingest_wall = sum(v for k, v in stats["step_seconds"].items() if k.startswith("raw__"))
    parts = stats["ingest_step_seconds"]
    sources = [
        (
            stats["asset_seconds"][f"raw/{table}"],
            parts[f"{table}.validate"],
            sum(v for k, v in parts.items() if k.startswith(f"{table}.")),
        )
        for table in {k.split(".")[0] for k in parts}
    ]
    stages = stats["stage_seconds"]
    moved = stages["validate"] - stats["step_seconds"]["audit"]
    assert stages["ingest"] + moved == pytest.approx(ingest_wall, abs=0.01)
    assert moved == pytest.approx(runner.validation_seconds(ingest_wall, sources), abs=0.01)
    # at most validation's busy seconds (fewer where the parts overlap, as at L)
    assert 0 < moved <= sum(v for k, v in parts.items() if k.endswith(".validate")) + 0.01

    late = project["landing"] / "activities" / "activities_2025-03-02.csv"
    late.write_text(
        "event_id,event_date,customer_id,activity,quantity,channel\n"
        "E90,2025-01-15,C001,support_ticket,1,phone\n",
        encoding="utf-8",
    )
    assert cli.main(["run", *_args(project)]) == 0
    out = capsys.readouterr().out
    assert "late data for a closed month: 2025-01" in out
    # only the source with a new file is loaded; everything downstream is rebuilt
    assets = _assets_of_last_run(project)
    assert [a for a in assets if a.startswith("raw/")] == ["raw/activity_events"], assets
    steps = _steps_of_last_run(project)
    assert {"allocate_cost_to_serve", "marts__customer_profitability", "publish"} <= steps

    model = project["config"].parent / "cost_model.yaml"
    model.write_text(
        model.read_text(encoding="utf-8").replace("standard_rate: 0.45", "standard_rate: 0.50"),
        encoding="utf-8",
    )
    assert cli.main(["run", *_args(project)]) == 0
    out = capsys.readouterr().out
    assert "1 month(s) to re-allocate" in out
    assert "cost model changed: 2025-01" in out
    assert not [a for a in _assets_of_last_run(project) if a.startswith("raw/")]
    steps = _steps_of_last_run(project)
    assert not [s for s in steps if s.startswith("raw__")], steps
    assert {"allocate_cost_to_serve", "publish"} <= steps

    model.write_text("resources: {}\nactivities: {}\nbogus: 1\n", encoding="utf-8")
    assert cli.main(["run", *_args(project)]) == cli.EXIT_FAILED
    assert "cost_model.yaml: unknown key(s) ['bogus']" in capsys.readouterr().err


def test_late_ledger_lines_recount_the_closed_months_orders(project, capsys):
    """customer_profitability's orders and credit notes come from the allocation's count of the
    month's documents: late lines for a closed month, a correction that moves a line to another
    document among them, are counted before the mart is rebuilt."""
    assert cli.main(["run", *_args(project)]) == 0
    late = project["landing"] / "sales_ledger" / "sales_ledger_2025-03-02.csv"
    late.write_text(
        "line_id,document_id,document_type,posting_date,customer_id,product_id,quantity,"
        "gross_amount,discount_amount,cogs_amount,currency,channel\n"
        "L90,INV90,invoice,2025-01-20,C001,P1,1,10.00,0.00,6.00,USD,web\n"
        "L91,INV90,invoice,2025-01-20,C001,P2,1,20.00,0.00,12.00,USD,web\n"
        "L92,CN90,credit_note,2025-01-21,C001,P1,-1,-10.00,0.00,-6.00,USD,web\n"
        "L1,INV91,invoice,2025-01-02,C001,P1,10,100.00,5.00,60.00,USD,EDI\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    assert cli.main(["run", *_args(project)]) == 0
    assert "late data for a closed month: 2025-01" in capsys.readouterr().out
    con = connect(project["warehouse"] / "work.duckdb", read_only=True)
    try:
        documents = con.execute(
            "SELECT strftime(posting_date, '%Y-%m'), customer_id, "
            "count(DISTINCT document_id) FILTER (document_type = 'invoice'), "
            "count(DISTINCT document_id) FILTER (document_type = 'credit_note') "
            "FROM raw.sales_ledger GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        mart = con.execute(
            "SELECT period, customer_id, orders, credit_notes FROM marts.customer_profitability "
            "WHERE invoice_lines + credit_note_lines > 0 ORDER BY ALL"
        ).fetchall()
        c001 = con.execute(
            "SELECT orders, credit_notes FROM marts.customer_profitability "
            "WHERE period = '2025-01' AND customer_id = 'C001'"
        ).fetchall()
    finally:
        con.close()
    assert mart == documents
    # INV1 (L2 left), INV90 and INV91 (L1 moved there); CN1 and CN90
    assert c001 == [(3, 2)]


def test_a_store_allocated_before_customer_documents_allocates_every_month_again(project, capsys):
    """marts.customer_documents is written by the allocation and read by
    customer_profitability: a store made before it existed allocates every month again at the
    next run, with no new file, and the marts come out the same."""
    assert cli.main(["run", *_args(project)]) == 0
    work = project["warehouse"] / "work.duckdb"

    def read(query: str) -> list[tuple]:
        con = connect(work, read_only=True)
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()

    profitability = read("SELECT * FROM marts.customer_profitability ORDER BY ALL")
    documents = read("SELECT * FROM marts.customer_documents ORDER BY ALL")
    months = read("SELECT period FROM audit.allocated_periods ORDER BY 1")
    assert documents and months
    con = connect(work)
    con.execute("DROP TABLE marts.customer_documents")
    con.close()
    capsys.readouterr()
    assert cli.main(["run", *_args(project)]) == 0
    out = capsys.readouterr().out
    assert f"{len(months)} month(s) to re-allocate" in out
    assert "first allocation: " + ", ".join(m for (m,) in months) in out
    assert read("SELECT * FROM marts.customer_documents ORDER BY ALL") == documents
    assert read("SELECT * FROM marts.customer_profitability ORDER BY ALL") == profitability
    assert cli.main(["run", *_args(project)]) == 0  # then nothing is left to do
    assert "Nothing new" in capsys.readouterr().out


def _steps_of_last_run(project) -> set[str]:
    stats = json.loads((project["warehouse"] / "last_run_stats.json").read_text(encoding="utf-8"))
    return set(stats["step_seconds"])


def _assets_of_last_run(project) -> list[str]:
    """The assets the last run materialised that report their seconds (each raw table, mart and
    publication), sorted."""
    stats = json.loads((project["warehouse"] / "last_run_stats.json").read_text(encoding="utf-8"))
    return sorted(stats["asset_seconds"])


def test_the_pfd_command_prints_everything_and_exits_with_the_run_code(project):
    """`pfd` skips the interpreter's teardown: the output is still complete and the exit code is
    the run's."""
    # buffered output, as when `pfd` writes to a pipe or a file
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "PYTHONUNBUFFERED")}
    command = [sys.executable, "-m", "pfd_pipeline.cli", "run", *_args(project)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1].startswith("Report (open in a browser): "), done.stdout
    old = project["landing"] / "sales_ledger" / "sales_ledger_2023-12-31.csv"
    shutil.copy(project["landing"] / "sales_ledger" / "sales_ledger_2025-01-02.csv", old)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == cli.EXIT_FAILED
    assert "dated 2023-12-31, before partitions_start" in done.stderr


def test_a_run_disposes_of_the_dagster_instance_it_made_and_not_of_one_given(project, monkeypatch):
    """`pfd` exits without the interpreter's teardown, so the run itself must dispose of the
    instance it made (an ephemeral one removes its temporary folder then)."""
    made = []

    def instance() -> dg.DagsterInstance:
        made.append(dg.DagsterInstance.ephemeral())
        dispose = made[-1].dispose
        made[-1].dispose = lambda: (made.append("disposed"), dispose())
        return made[0]

    monkeypatch.setattr(runner, "dagster_instance", instance)
    monkeypatch.delenv("DAGSTER_HOME")
    assert cli.main(["run", *_args(project)]) == 0
    assert made[1:] == ["disposed"]

    given = dg.DagsterInstance.ephemeral()
    dispose, given.dispose = given.dispose, lambda: pytest.fail("the caller disposes of it")
    (project["landing"] / "activities" / "activities_2025-01-05.csv").write_text(
        "event_id,event_date,customer_id,activity,quantity,channel\n"
        "E91,2025-01-05,C001,support_ticket,1,phone\n",
        encoding="utf-8",
    )
    runner.run_pipeline(_settings(project), instance=given)
    assert given.get_runs(), "the run was recorded in the instance given"
    dispose()


def test_the_collector_is_off_while_a_run_starts_and_its_start_is_frozen_until_it_ends(
    project, monkeypatch
):
    """The objects a run makes as it starts (imports, definitions, the Dagster instance) are made
    with the collector off and frozen while the run executes; afterwards they are thawed and
    the collector is as it was."""
    seen = {}
    make_instance, write_stats = runner.dagster_instance, runner.write_run_stats

    def instance() -> dg.DagsterInstance:
        seen["instance made with the collector on"] = gc.isenabled()
        return make_instance()

    def stats(*args, **kwargs) -> None:
        seen["collector on while the run executes"] = gc.isenabled()
        seen["frozen while the run executes"] = gc.get_freeze_count()
        write_stats(*args, **kwargs)

    monkeypatch.setattr(runner, "dagster_instance", instance)
    monkeypatch.setattr(runner, "write_run_stats", stats)
    monkeypatch.delenv("DAGSTER_HOME")
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert cli.main(["run", *_args(project)]) == 0
    assert seen["instance made with the collector on"] is False
    assert seen["collector on while the run executes"] is True
    assert seen["frozen while the run executes"] > 100_000, "Dagster's objects are frozen"
    assert gc.isenabled() and gc.get_freeze_count() == 0, "thawed, the collector on again"


def test_startup_thaws_on_an_error_and_leaves_a_disabled_collector_disabled():
    with pytest.raises(RuntimeError), startup():
        assert not gc.isenabled()
        raise RuntimeError("a run that fails as it starts")
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        with startup() as started:
            started()
            assert gc.get_freeze_count() > 0
            assert not gc.isenabled(), "it was off before: started() does not turn it on"
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()


def test_a_failure_in_a_step_of_several_assets_names_the_asset():
    """The marts after customer_profitability are one step; the run's message names the mart
    that failed (an error of any kind), not the step."""
    from pfd_pipeline.assets import failing_as
    from pfd_pipeline.runner import _failure_message

    first, second = dg.AssetKey(["marts", "first"]), dg.AssetKey(["marts", "second"])

    @dg.multi_asset(name="marts__several", specs=[dg.AssetSpec(first), dg.AssetSpec(second)])
    def several():
        yield dg.MaterializeResult(asset_key=first)
        failing_as(second, lambda: 1 / 0)

    result = dg.materialize([several], raise_on_error=False)
    assert not result.success
    assert _failure_message(result) == "marts/second failed: ZeroDivisionError: division by zero"


def test_a_daily_run_starts_the_lifetime_value_first_beside_the_tiers(project, monkeypatch):
    """Two at a time, the marts step starts the lifetime value (a daily run's longest mart,
    which the value matrix and rising stars wait for) first, and the rest in build order."""
    from pfd_pipeline import marts
    from pfd_pipeline.assets import marts as mart_assets

    given: list[str] = []
    started: list[str] = []
    workers_seen: list[int] = []
    real = mart_assets.run_in_order

    def recording(con, tasks, workers):
        workers_seen.append(workers)
        given.extend(name for name, _, _ in tasks)

        def starting(name, task):
            def run(cursor):
                started.append(name)
                return task(cursor)

            return run

        return real(con, [(n, w, starting(n, t)) for n, w, t in tasks], workers)

    monkeypatch.setattr(mart_assets, "run_in_order", recording)
    assert cli.main(["run", *_args(project)]) == 0
    later = [m.name for m in marts.marts(_settings(project).marts)][1:]
    assert workers_seen == [2]
    assert given == ["customer_lifetime_value"] + [n for n in later if n != given[0]]
    assert set(started[:2]) == {"customer_lifetime_value", "customer_tiers"}
    assert sorted(started) == sorted(later)


def test_a_store_with_its_marts_in_the_work_store_moves_them_to_the_marts_file(project, capsys):
    """A store made before the marts file kept its marts and their build audit in work.duckdb:
    its next run, with no new file, drops them there and builds every month again into the
    marts file; the published tables come out the same."""
    assert cli.main(["run", *_args(project)]) == 0
    work = project["warehouse"] / "work.duckdb"
    published = project["warehouse"] / "pfd.duckdb"

    def read(path: Path, query: str) -> list[tuple]:
        con = duckdb.connect(str(path), read_only=True)
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()

    profitability = "SELECT * FROM marts.customer_profitability ORDER BY ALL"
    before = read(published, profitability)
    months = read(marts_path(work), "SELECT period FROM audit.allocated_periods ORDER BY 1")
    assert before and months
    # the old layout: the marts file's schemas copied into the work store, the file removed
    con = duckdb.connect(str(work))
    con.execute(f"ATTACH '{marts_path(work)}' AS old (READ_ONLY)")
    con.execute("CREATE SCHEMA marts")
    for (table,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'old' "
        "AND schema_name = 'marts'"
    ).fetchall():
        con.execute(f"CREATE TABLE marts.{table} AS FROM old.marts.{table}")
    for table in ("allocated_periods", "mart_periods"):
        con.execute(f"CREATE TABLE audit.{table} AS FROM old.audit.{table}")
    con.execute("CREATE SEQUENCE audit.build_seq START 1000")
    con.close()
    marts_path(work).unlink()
    capsys.readouterr()
    assert cli.main(["run", *_args(project)]) == 0
    out = capsys.readouterr().out
    assert "first allocation: " + ", ".join(m for (m,) in months) in out
    assert read(published, profitability) == before
    assert read(marts_path(work), profitability) == before
    # nothing of the marts is left in the work store
    assert (
        read(
            work,
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name = 'marts' "
            "OR table_name IN ('allocated_periods', 'mart_periods')",
        )
        == []
    )
    assert read(work, "SELECT sequence_name FROM duckdb_sequences()") == [("file_id_seq",)]
    assert cli.main(["run", *_args(project)]) == 0  # then nothing is left to do
    assert "Nothing new" in capsys.readouterr().out
