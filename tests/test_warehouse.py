"""warehouse.run_on_cursors: independent statements on cursors of one database, at once."""

from __future__ import annotations

import contextlib
import threading

import duckdb
import pytest

from pfd_pipeline.warehouse import checkpoint_alongside, run_on_cursors


def test_tasks_run_at_once_on_cursors_and_every_one_finishes(tmp_path):
    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    con.execute(f"ATTACH '{tmp_path / 'next.duckdb'}' AS nxt")
    both_started = threading.Barrier(2, timeout=10)  # fails unless two tasks run at once
    seen = []

    def make(name: str, rows: int):
        def task(cursor: duckdb.DuckDBPyConnection) -> None:
            seen.append(cursor)
            both_started.wait()
            cursor.execute(f"CREATE TABLE nxt.{name} AS SELECT range AS i FROM range({rows})")

        return task

    run_on_cursors(con, [make("a", 10), make("b", 20)], workers=2)
    assert con.execute("SELECT count(*) FROM nxt.a").fetchall() == [(10,)]
    assert con.execute("SELECT count(*) FROM nxt.b").fetchall() == [(20,)]
    assert con not in seen and seen[0] is not seen[1]


def test_the_first_error_is_raised_after_the_other_tasks_finish(tmp_path):
    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    done = []

    def fails(cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute("SELECT * FROM no_such_table")

    def slow(name: str):
        def task(cursor: duckdb.DuckDBPyConnection) -> None:
            cursor.execute(f"CREATE TABLE {name} AS SELECT count(*) AS n FROM range(3000000)")
            done.append(name)

        return task

    with pytest.raises(duckdb.CatalogException, match="no_such_table"):
        run_on_cursors(con, [fails, slow("t1"), slow("t2")], workers=2)
    assert sorted(done) == ["t1", "t2"]


def test_one_worker_runs_the_tasks_in_order_on_the_connection_itself():
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE only_here (step INTEGER)")  # a cursor would not see it

    def insert(step: int):
        return lambda cursor: cursor.execute("INSERT INTO only_here VALUES (?)", [step])

    run_on_cursors(con, [insert(1)], workers=2)  # one task: no cursor either
    run_on_cursors(con, [insert(s) for s in (2, 3, 4)], workers=1)
    assert con.execute("SELECT list(step) FROM only_here").fetchall() == [([1, 2, 3, 4],)]


def wal_bytes(path) -> int:
    wal = path.with_name(path.name + ".wal")
    return wal.stat().st_size if wal.exists() else 0


def test_checkpoint_alongside_empties_the_log_by_the_end_of_the_block(tmp_path):
    path = tmp_path / "work.duckdb"
    con = duckdb.connect(str(path), config={"checkpoint_threshold": "1GB"})
    con.execute("create table t as select range as i from range(1000)")
    con.execute("insert into t select range from range(10)")
    assert wal_bytes(path) > 0

    with checkpoint_alongside(lambda: contextlib.closing(con.cursor())) as failures:
        drawn = sum(range(100_000))  # the block's own work, on this thread
    assert failures == [] and drawn == 4_999_950_000
    assert wal_bytes(path) == 0
    assert con.execute("select count(*) from t").fetchone() == (1010,)


def test_a_checkpoint_beside_an_open_transaction_leaves_it_to_commit(tmp_path):
    path = tmp_path / "work.duckdb"
    con = duckdb.connect(str(path), config={"checkpoint_threshold": "1GB"})
    con.execute("create table t (i integer)")
    con.execute("insert into t values (0)")
    writer = con.cursor()
    writer.execute("begin transaction")
    writer.execute("insert into t values (1)")

    with checkpoint_alongside(lambda: contextlib.closing(con.cursor())) as failures:
        pass
    assert failures == []
    writer.execute("commit")
    assert con.execute("select count(*) from t").fetchone() == (2,)


def test_a_failed_checkpoint_is_reported_not_raised(tmp_path):
    """The block runs to its end and the reason is kept; the next checkpoint (at the latest
    when the database closes) writes what this one did not."""
    closed = duckdb.connect(str(tmp_path / "work.duckdb"))
    closed.close()
    ran = []
    with checkpoint_alongside(lambda: contextlib.nullcontext(closed)) as failures:
        ran.append(True)
    assert ran == [True]
    assert len(failures) == 1 and "closed" in failures[0].lower()
