"""warehouse.run_on_cursors: independent statements on cursors of one database, at once."""

from __future__ import annotations

import threading

import duckdb
import pytest

from pfd_pipeline.warehouse import run_on_cursors


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
