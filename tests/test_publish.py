"""Publishing: the DuckDB file and Parquet hold exactly the work store's tables, documented,
readable by a second (read-only, or older) client, and switched without half-written states."""

from __future__ import annotations

import errno
import filecmp
import os
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from mart_helpers import JANUARY, add_month, build

from pfd_pipeline import allocate, marts, publish
from pfd_pipeline.publish import (
    PUBLISHED_TABLES,
    catalog,
    describe,
    ensure_tables,
    publish_duckdb,
    publish_parquet,
    schema_markdown,
    source_of,
)
from pfd_pipeline.settings import Settings
from pfd_pipeline.warehouse import MARTS_ALIAS, connect, ensure_schema

ROOT = Path(__file__).resolve().parent.parent
COMPAT = ROOT / ".venv" / "compat" / "duckdb-1.4.0"


@pytest.fixture(params=["in memory", "on disk"])
def work(request, tmp_path):
    """A work store with two months of marts, as after a run: in memory (a full publication
    writes every table into the next file) and on disk (it copies the marts file)."""
    con = connect(
        ":memory:" if request.param == "in memory" else tmp_path / "store" / "work.duckdb"
    )
    ensure_schema(con)
    allocate.ensure_tables(con)
    marts.ensure_tables(con)
    ensure_tables(con)
    add_month(con, "2024-12", {"C01": (200, 0, 100, 50), "C02": (300, 0, 100, 400)})
    add_month(con, "2025-01", JANUARY)
    build(con)
    yield con
    con.close()


@pytest.fixture
def settings(tmp_path):
    return Settings(warehouse_dir=tmp_path / "warehouse")


def _rows(con, table: str) -> list[tuple]:
    return sorted(con.execute(f"select * from {table}").fetchall(), key=repr)


def test_published_file_is_documented_and_equals_the_work_store(work, settings):
    settings.warehouse_dir.mkdir()
    first = publish_duckdb(work, settings, "run-1")
    assert first.full and first.periods["customer_tiers"] == ["2024-12", "2025-01"]
    reader = duckdb.connect(str(settings.published_db), read_only=True)
    try:
        tables = {
            name: comment
            for name, comment in reader.execute(
                "select table_name, comment from duckdb_tables() where schema_name = 'marts'"
            ).fetchall()
        }
        assert set(tables) == set(PUBLISHED_TABLES)
        # nothing but the published tables: no audit schema, sequence or view of the store
        assert reader.execute(
            "select schema_name from duckdb_schemas() "
            "where database_name = current_database() and not internal order by 1"
        ).fetchall() == [("marts",)]
        assert reader.execute("select count(*) from duckdb_sequences()").fetchall() == [(0,)]
        assert reader.execute(
            "select count(*) from duckdb_views() where not internal"
        ).fetchall() == [(0,)]
        _assert_documented(reader)
        for table in catalog():
            if table != "publication":
                assert _rows(reader, f"marts.{table}") == _rows(work, source_of(table)), table
        money = reader.execute(
            "select data_type from duckdb_columns() where table_name = 'customer_profitability' "
            "and column_name = 'operating_profit'"
        ).fetchall()
        assert money == [("DECIMAL(18,2)",)]
        assert reader.execute("select run_id, latest_period from marts.publication").fetchall() == [
            ("run-1", "2025-01")
        ]
    finally:
        reader.close()


def test_a_reader_holding_the_file_keeps_its_state_and_sees_the_new_one_on_reconnecting(
    work, settings
):
    settings.warehouse_dir.mkdir()
    publish_duckdb(work, settings, "run-1")
    reader = duckdb.connect(str(settings.published_db), read_only=True)
    before = reader.execute("select count(*) from marts.customer_profitability").fetchall()[0][0]
    # late data for December: one new customer, rebuilt and republished while the reader is open
    add_month(work, "2024-12", {"C77": (1000, 0, 500, 0)})
    build(work)
    second = publish_duckdb(work, settings, "run-2")
    assert not second.full
    assert second.periods["customer_profitability"] == ["2024-12"]
    assert second.periods["customer_tiers"] == ["2024-12", "2025-01"]  # January reads December
    assert second.periods["activity_rates"] == ["2024-12"]
    assert (
        reader.execute("select count(*) from marts.customer_profitability").fetchall()[0][0]
        == before
    )
    reader.close()
    reader = duckdb.connect(str(settings.published_db), read_only=True)
    try:
        assert _rows(reader, "marts.customer_profitability") == _rows(
            work, "marts.customer_profitability"
        )
        assert reader.execute("select run_id from marts.publication").fetchall() == [("run-2",)]
    finally:
        reader.close()
    # nothing new: the file is left as it is
    inode = os.stat(settings.published_db).st_ino
    assert not any(publish_duckdb(work, settings, "run-3").periods.values())
    assert os.stat(settings.published_db).st_ino == inode
    assert not list(settings.warehouse_dir.glob(".*.next*"))


def _assert_documented(reader: duckdb.DuckDBPyConnection) -> None:
    """Every published table and column carries its catalog.yaml text, in catalog order."""
    for table, doc in catalog().items():
        described = reader.execute(
            "select comment from duckdb_tables() where schema_name = 'marts' and table_name = ?",
            [table],
        ).fetchall()
        assert described == [(f"{doc.description} Grain: {doc.grain}.",)], table
        columns = reader.execute(
            "select column_name, comment from duckdb_columns() "
            "where schema_name = 'marts' and table_name = ? order by column_index",
            [table],
        ).fetchall()
        assert [c for c, _ in columns] == list(doc.columns), table
        assert [text for _, text in columns] == list(doc.columns.values()), table


def _published_equals_work_store(work, settings, run_id: str) -> None:
    """The published file holds the work store's rows, documented, from publication `run_id`
    (a later publication rewrites months of the previous file or of a copy of the published
    one, and must keep every description)."""
    reader = duckdb.connect(str(settings.published_db), read_only=True)
    try:
        _assert_documented(reader)
        for table in PUBLISHED_TABLES:
            if table != "publication":
                assert _rows(reader, f"marts.{table}") == _rows(work, source_of(table)), table
        assert reader.execute("select run_id from marts.publication").fetchall() == [(run_id,)]
    finally:
        reader.close()


def test_the_next_file_is_the_previous_publication_brought_up_to_date(work, settings):
    settings.warehouse_dir.mkdir()
    target = settings.published_db
    previous = target.with_name(f".{target.name}.previous")
    assert publish_duckdb(work, settings, "run-1").full
    first = os.stat(target).st_ino
    # a full publication leaves a copy of its file for the next run to bring up to date
    copy = os.stat(previous).st_ino
    assert copy != first and filecmp.cmp(previous, target, shallow=False)
    assert not list(settings.warehouse_dir.glob(".*.next*"))
    add_month(work, "2024-12", {"C77": (1000, 0, 500, 0)})
    build(work)
    second_publication = publish_duckdb(work, settings, "run-2")
    assert second_publication.periods["customer_profitability"] == ["2024-12"]
    second = os.stat(target).st_ino
    assert second == copy, "run-1's copy, brought up to date, is published: nothing copied"
    assert os.stat(previous).st_ino == first, "run-1's file is kept for the next run"
    _published_equals_work_store(work, settings, "run-2")

    # run-3 brings run-1's file up to date: December (run-2's change) and January (its own)
    add_month(work, "2025-01", {"C78": (700, 0, 100, 0)})
    build(work)
    third = publish_duckdb(work, settings, "run-3")
    assert os.stat(target).st_ino == first, "the previous file became the published one"
    assert os.stat(previous).st_ino == second
    assert third.periods["customer_profitability"] == ["2025-01"]
    _published_equals_work_store(work, settings, "run-3")

    # a reader (another process: DuckDB's lock is per process) still holds run-2's file: it is
    # left alone and the published file copied
    script = (
        "import sys, duckdb; con = duckdb.connect(sys.argv[1], read_only=True); "
        "q = 'select count(*), sum(operating_profit) from marts.customer_profitability'; "
        "print(con.execute(q).fetchall(), flush=True); sys.stdin.read(); "
        "print(con.execute(q).fetchall(), flush=True)"
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", script, str(previous)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        held = reader.stdout.readline()
        add_month(work, "2025-01", {"C79": (900, 0, 100, 0)})
        build(work)
        publish_duckdb(work, settings, "run-4")
        assert os.stat(target).st_ino not in (first, second)
    finally:
        out, _ = reader.communicate("", timeout=60)
    assert out == held, "the reader's file did not change under it"
    _published_equals_work_store(work, settings, "run-4")
    assert os.stat(previous).st_ino == first
    assert not list(settings.warehouse_dir.glob(".*.next*"))

    # a link left by a run killed before its switch is the published file itself: never reused
    os.unlink(previous)
    os.link(target, previous)
    add_month(work, "2024-12", {"C80": (100, 0, 10, 0)})
    build(work)
    publish_duckdb(work, settings, "run-5")
    _published_equals_work_store(work, settings, "run-5")


def test_a_full_publication_stopped_before_its_copy_is_recorded_leaves_the_copy_unused(
    work, settings, monkeypatch
):
    """The copy a full publication leaves for the next run counts only once its state is
    recorded: stopped between the two (as by kill -9 at that crash point), the state of an
    earlier copy must not describe the new one; the next run copies the published file instead,
    and a copy left half-made is removed."""
    settings.warehouse_dir.mkdir()
    target = settings.published_db
    previous = target.with_name(f".{target.name}.previous")
    publish_duckdb(work, settings, "run-0")  # full: its copy's state is recorded
    work.execute("delete from audit.publications where target = 'duckdb'")  # next one in full

    def stop_at(name):
        if name == "before_previous_recorded":
            raise KeyboardInterrupt(name)

    monkeypatch.setattr(publish, "crash_point", stop_at)
    with pytest.raises(KeyboardInterrupt):
        publish_duckdb(work, settings, "run-1")
    monkeypatch.undo()
    _published_equals_work_store(work, settings, "run-1")
    # mark the unrecorded copy: if the next run took it up, the mark would be published
    marked = duckdb.connect(str(previous))
    marked.execute("create table marts.unrecorded_copy as select 1 as x")
    marked.close()
    staging = previous.with_name(previous.name + ".next")
    staging.write_bytes(b"half a copy")
    add_month(work, "2024-12", {"C77": (1000, 0, 500, 0)})
    build(work)
    publish_duckdb(work, settings, "run-2")
    _published_equals_work_store(work, settings, "run-2")
    reader = duckdb.connect(str(target), read_only=True)
    try:
        tables = {r[0] for r in reader.execute("select table_name from duckdb_tables()").fetchall()}
    finally:
        reader.close()
    assert "unrecorded_copy" not in tables
    assert not staging.exists()


def test_a_full_publication_whose_copy_cannot_be_made_still_publishes(work, settings, monkeypatch):
    """No room for the copy left for the next run: the publication stands, no half copy is
    left, and the next run copies the published file as before."""
    settings.warehouse_dir.mkdir()
    target = settings.published_db
    previous = target.with_name(f".{target.name}.previous")
    real_copy = publish.shutil.copyfile

    def disk_full(source, destination):
        real_copy(source, destination)
        if Path(source) == target:  # the copy of the published file, not of the marts file
            raise OSError(errno.ENOSPC, "No space left on device", str(destination))

    monkeypatch.setattr(publish.shutil, "copyfile", disk_full)
    assert publish_duckdb(work, settings, "run-1").full
    monkeypatch.undo()
    _published_equals_work_store(work, settings, "run-1")
    assert not previous.exists()
    assert not list(settings.warehouse_dir.glob(".*.next*"))
    add_month(work, "2024-12", {"C77": (1000, 0, 500, 0)})
    build(work)
    publish_duckdb(work, settings, "run-2")
    _published_equals_work_store(work, settings, "run-2")


def test_parquet_is_hive_partitioned_by_period_and_reuses_unchanged_months(work, settings):
    settings.warehouse_dir.mkdir()
    publish_parquet(work, settings, "run-1")
    root = settings.parquet_dir
    assert root.is_symlink()
    assert sorted(p.name for p in (root / "customer_profitability").iterdir()) == [
        "period=2024-12",
        "period=2025-01",
    ]
    for table in PUBLISHED_TABLES:
        if table == "publication":
            continue
        expected = work.execute(f"select count(*) from {source_of(table)}").fetchall()[0][0]
        if expected == 0:  # the fixture has no resources: nothing allocated, no files
            continue
        glob = root / table / "**" / "*.parquet"
        read = duckdb.sql(f"select count(*) from read_parquet('{glob}', hive_partitioning = 1)")
        assert read.fetchall()[0][0] == expected, table
    files = root / "customer_profitability" / "*" / "*.parquet"
    profit = duckdb.sql(
        f"select period, sum(operating_profit) from read_parquet('{files}', hive_partitioning = 1) "
        "group by all order by 1"
    ).fetchall()
    assert (
        profit
        == work.execute(
            "select period, sum(operating_profit) from marts.customer_profitability "
            "group by all order by 1"
        ).fetchall()
    )
    assert profit[1][1] == Decimal("600.00")  # January's hand-computed total
    old = (root / "customer_profitability" / "period=2024-12").resolve()
    december = next(old.iterdir())
    # January changes; December's files are hard links to the previous folder's
    add_month(work, "2025-01", {"C77": (1000, 0, 500, 0)})
    build(work)
    publish_parquet(work, settings, "run-2")
    new_december = next((root / "customer_profitability" / "period=2024-12").iterdir())
    assert new_december.stat().st_ino == december.stat().st_ino
    assert old.exists(), "the previous folder stays for readers still scanning it"
    files = root / "customer_profitability" / "period=2025-01" / "*.parquet"
    january = duckdb.sql(f"select sum(operating_profit) from read_parquet('{files}')")
    january = january.fetchall()[0][0]
    assert january == Decimal("1100.00")
    assert len(list((settings.warehouse_dir / ".parquet-versions").iterdir())) == 2


def test_a_month_written_alone_is_the_file_partition_by_writes(work, tmp_path):
    """The publication's COPY per month writes what DuckDB's Hive-partitioned writer
    (PARTITION_BY) writes: the same folders and files, columns and rows; no folder for a month
    without rows (2024-11 has none)."""
    months = ["2024-11", "2024-12", "2025-01"]
    for table in publish.PERIOD_TABLES:
        together, alone = tmp_path / "together" / table, tmp_path / "alone" / table
        together.mkdir(parents=True)
        alone.mkdir(parents=True)
        work.execute(
            f"COPY (SELECT * FROM {publish.source_of(table)} WHERE {publish.IN_PERIODS}) "
            f"TO '{together}' (FORMAT parquet, PARTITION_BY (period), OVERWRITE_OR_IGNORE, "
            "FILENAME_PATTERN 'data_{i}')",
            {"periods": months},
        )
        for month in months:
            publish._month_to_parquet(work, alone.parent, table, month)
        files = sorted(str(f.relative_to(together)) for f in together.rglob("*"))
        assert files == sorted(str(f.relative_to(alone)) for f in alone.rglob("*")), table
        for name in files:
            if not name.endswith(".parquet"):
                continue
            a, b = str(together / name), str(alone / name)
            schema = "select name, type, logical_type from parquet_schema(?)"
            assert work.execute(schema, [a]).fetchall() == work.execute(schema, [b]).fetchall()
            rows = "select * from read_parquet(?) order by all"
            assert work.execute(rows, [a]).fetchall() == work.execute(rows, [b]).fetchall()
    written = sorted(p.name for p in (tmp_path / "alone" / "customer_profitability").iterdir())
    assert written == ["period=2024-12", "period=2025-01"]


def test_the_published_file_opens_in_duckdb_1_4(work, settings):
    assert COMPAT.is_dir(), f"{COMPAT} is missing: `make test` installs it"
    settings.warehouse_dir.mkdir()
    publish_duckdb(work, settings, "run-1")
    add_month(work, "2025-01", {"C77": (1000, 0, 500, 0)})
    build(work)
    publish_duckdb(work, settings, "run-2")  # an incremental publication keeps the version
    script = (
        "import sys, duckdb; con = duckdb.connect(sys.argv[1], read_only=True); "
        "print(duckdb.__version__, con.execute('select count(*), sum(operating_profit) "
        "from marts.customer_tiers where period = \\'2025-01\\'').fetchall()[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(settings.published_db)],
        env={**os.environ, "PYTHONPATH": str(COMPAT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "1.4.0"
    # January's 600, December's 50 - 200 (C01, C02), and C77's 500: window of 12 months
    assert "(11, Decimal('950.00'))" in out.stdout


def test_readme_documents_every_published_table_and_column():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert schema_markdown() in readme, "run `pfd schema-doc --write README.md`"
    for table, doc in catalog().items():
        assert f"`marts.{table}`" in readme
        for column in doc.columns:
            assert f"| `{column}` |" in readme


class _Recording:
    """A connection that records the statements run through it."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con, self.statements = con, []

    def execute(self, sql, *args):
        self.statements.append(sql)
        return self.con.execute(sql, *args)


def test_describe_writes_only_the_comments_that_differ_from_the_catalog(work, tmp_path):
    """In the store (schema.table: the marts file's, found through the search path) and in an
    attached file (database.schema.table)."""
    work.execute(f"ATTACH '{tmp_path / 'next.duckdb'}' AS nxt")
    work.execute("CREATE SCHEMA nxt.marts")
    work.execute("CREATE TABLE nxt.marts.customer_tiers AS FROM marts.customer_tiers")
    docs = catalog()
    for tables, stale in (
        (
            {"customer_tiers": "nxt.marts.customer_tiers"},
            ["COMMENT ON TABLE nxt.marts.customer_tiers IS 'stale'",
             "COMMENT ON COLUMN nxt.marts.customer_tiers.tier IS NULL"],
        ),
        (
            {"whale_curve": "marts.whale_curve"},
            ["COMMENT ON COLUMN marts.whale_curve.period IS 'stale'"],
        ),
    ):  # fmt: skip
        describe(work, tables)
        for sql in stale:
            work.execute(sql)
        recording = _Recording(work)
        describe(recording, tables)
        written = [sql for sql in recording.statements if sql.startswith("COMMENT")]
        assert [sql.split(" IS ")[0] for sql in written] == [
            sql.split(" IS ")[0].replace(".tier", '."tier"').replace(".period", '."period"')
            for sql in stale
        ]
        ((table, qualified),) = tables.items()
        database = "nxt" if qualified.startswith("nxt.") else MARTS_ALIAS
        assert work.execute(
            "select comment from duckdb_tables() where database_name = ? and table_name = ?",
            [database, table],
        ).fetchall() == [(f"{docs[table].description} Grain: {docs[table].grain}.",)]
        columns = work.execute(
            "select column_name, comment from duckdb_columns() "
            "where database_name = ? and table_name = ?",
            [database, table],
        ).fetchall()
        assert dict(columns) == docs[table].columns
        recording.statements.clear()
        describe(recording, tables)
        assert not [sql for sql in recording.statements if sql.startswith("COMMENT")]


def test_a_full_publication_copies_the_marts_file_when_it_has_the_storage_version(
    work, settings, monkeypatch
):
    """On disk, the marts file (written with the published file's storage version) is copied
    and no published table is written again; in memory, or with another storage version, every
    table is written into the next file. The published tables are the same either way."""
    settings.warehouse_dir.mkdir()
    (marts_file,) = work.execute(
        "select path from duckdb_databases() where database_name = ?", [MARTS_ALIAS]
    ).fetchone()
    copied, written = [], []
    real_copy, real_months = publish.shutil.copyfile, publish._copy_months
    monkeypatch.setattr(
        publish.shutil, "copyfile", lambda s, d: (copied.append(Path(s)), real_copy(s, d))[1]
    )
    monkeypatch.setattr(
        publish,
        "_copy_months",
        lambda c, table, periods: (written.append(table), real_months(c, table, periods))[1],
    )
    publish_duckdb(work, settings, "run-1")
    whole = sorted(publish.WHOLE_TABLES)
    if marts_file is None:  # in memory: no file to copy; only the published file is copied
        assert copied == [settings.published_db]  # for the next run
        assert sorted(written) == sorted([*publish.PERIOD_TABLES, *whole])
    else:
        assert copied[0] == Path(marts_file)
        assert sorted(written) == whole  # from the work store's audit
    _published_equals_work_store(work, settings, "run-1")
    if marts_file is not None:  # another storage version: written anew
        settings.published_db.unlink()
        copied.clear(), written.clear()
        other = replace(settings, publish=replace(settings.publish, storage_version="v1.2.0"))
        publish_duckdb(work, other, "run-2")
        assert Path(marts_file) not in copied
        assert sorted(written) == sorted([*publish.PERIOD_TABLES, *whole])
        _published_equals_work_store(work, other, "run-2")
