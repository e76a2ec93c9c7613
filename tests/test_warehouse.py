"""warehouse.run_on_cursors and run_in_order: statements on cursors of one database, at once."""

from __future__ import annotations

import contextlib
import threading
import time
from decimal import Decimal

import duckdb
import pytest

from pfd_pipeline.definitions import CHECKPOINT_THRESHOLD, MAX_VACUUM_TASKS
from pfd_pipeline.warehouse import checkpoint, run_in_order, run_on_cursors


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


def fails(cursor: duckdb.DuckDBPyConnection) -> None:
    cursor.execute("SELECT * FROM no_such_table")


def slow(name: str, done: list[str]):
    """A task that takes a moment, then notes its name in `done`."""

    def task(cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(f"CREATE TABLE {name} AS SELECT count(*) AS n FROM range(3000000)")
        done.append(name)

    return task


def test_the_first_error_is_raised_after_the_other_tasks_finish(tmp_path):
    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    done: list[str] = []
    with pytest.raises(duckdb.CatalogException, match="no_such_table"):
        run_on_cursors(con, [fails, slow("t1", done), slow("t2", done)], workers=2)
    assert sorted(done) == ["t1", "t2"]


def test_one_worker_runs_the_tasks_in_order_on_the_connection_itself():
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE only_here (step INTEGER)")  # a cursor would not see it

    def insert(step: int):
        return lambda cursor: cursor.execute("INSERT INTO only_here VALUES (?)", [step])

    run_on_cursors(con, [insert(1)], workers=2)  # one task: no cursor either
    run_on_cursors(con, [insert(s) for s in (2, 3, 4)], workers=1)
    assert con.execute("SELECT list(step) FROM only_here").fetchall() == [([1, 2, 3, 4],)]


def test_tasks_in_order_start_once_those_they_wait_for_have_finished(tmp_path):
    """a and b run at once (each waits for the other to start); c waits for a, d for b and c;
    "elsewhere" is not a task, so waiting for it does not hold d back."""
    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    both_started = threading.Barrier(2, timeout=10)
    log: list[str] = []

    def task(name: str, meet: bool = False):
        def run(cursor: duckdb.DuckDBPyConnection) -> str:
            assert cursor is not con
            log.append(f"start {name}")
            if meet:
                both_started.wait()
            cursor.execute(f"CREATE TABLE {name} AS SELECT 1 AS i")
            log.append(f"end {name}")
            return name.upper()

        return run

    tasks = [
        ("a", (), task("a", meet=True)),
        ("b", (), task("b", meet=True)),
        ("c", ("a",), task("c")),
        ("d", ("b", "c", "elsewhere"), task("d")),
    ]
    results = dict(run_in_order(con, tasks, workers=2))
    assert results == {"a": "A", "b": "B", "c": "C", "d": "D"}
    assert log.index("start c") > log.index("end a")
    assert log.index("start d") > max(log.index("end b"), log.index("end c"))


def test_tasks_in_order_stop_starting_after_a_failure_and_raise_it_at_the_end(tmp_path):
    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    done: list[str] = []
    failing = threading.Event()

    def fails_first(cursor: duckdb.DuckDBPyConnection) -> None:
        failing.set()
        fails(cursor)

    def running(cursor: duckdb.DuckDBPyConnection) -> None:
        assert failing.wait(timeout=10)
        time.sleep(0.3)  # finishes well after the failure, which frees a worker for "next"
        slow("t1", done)(cursor)

    tasks = [("running", (), running), ("fails", (), fails_first), ("next", (), slow("t2", done))]
    with pytest.raises(duckdb.CatalogException, match="no_such_table"):
        list(run_in_order(con, tasks, workers=2))
    assert done == ["t1"]  # the task running then finished; the next one never started


def test_tasks_in_order_with_one_worker_run_on_the_connection_in_the_order_given():
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE only_here (step INTEGER)")  # a cursor would not see it

    def insert(step: int):
        return lambda cursor: cursor.execute("INSERT INTO only_here VALUES (?)", [step])

    tasks = [(str(s), (), insert(s)) for s in (1, 2, 3)]
    assert [name for name, _ in run_in_order(con, tasks, workers=1)] == ["1", "2", "3"]
    assert con.execute("SELECT list(step) FROM only_here").fetchall() == [([1, 2, 3],)]


def wal_bytes(path) -> int:
    wal = path.with_name(path.name + ".wal")
    return wal.stat().st_size if wal.exists() else 0


def test_a_checkpoint_empties_the_log(tmp_path):
    path = tmp_path / "work.duckdb"
    con = duckdb.connect(str(path), config={"checkpoint_threshold": "1GB"})
    con.execute("create table t as select range as i from range(1000)")
    con.execute("insert into t select range from range(10)")
    assert wal_bytes(path) > 0

    assert checkpoint(lambda: contextlib.closing(con.cursor())) == []
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

    assert checkpoint(lambda: contextlib.closing(con.cursor())) == []
    writer.execute("commit")
    assert con.execute("select count(*) from t").fetchone() == (2,)


def test_a_failed_checkpoint_is_reported_not_raised(tmp_path):
    """The reason is kept; the next checkpoint (at the latest when the database closes) writes
    what this one did not."""
    closed = duckdb.connect(str(tmp_path / "work.duckdb"))
    closed.close()
    failures = checkpoint(lambda: contextlib.nullcontext(closed))
    assert len(failures) == 1 and "closed" in failures[0].lower()


@pytest.mark.parametrize("rows", [5_000, 130_000])  # a month's rows: under and over a row group
def test_a_month_rewritten_again_and_again_leaves_no_rows_behind(tmp_path, rows):
    """The work store does without DuckDB's merging of row groups (MAX_VACUUM_TASKS). What a
    month's earlier versions occupied must still be given back, or a store rebuilt daily would
    grow with every run: a row group whose rows are all deleted is dropped at the checkpoint.
    Rewriting a closed month (late data) and the open month (a daily run) again and again
    leaves the same row groups, only the live rows stored, and a file that does not grow."""
    path = tmp_path / "work.duckdb"
    config = {"max_vacuum_tasks": MAX_VACUUM_TASKS, "checkpoint_threshold": CHECKPOINT_THRESHOLD}
    con = duckdb.connect(str(path), config=config)
    con.execute("CREATE TABLE m (period VARCHAR, customer_id VARCHAR, amount DECIMAL(18, 2))")
    insert = (
        "INSERT INTO m SELECT $period, 'C' || lpad(range::VARCHAR, 7, '0'), "
        "(range + $version) * 1.25 FROM range($rows)"
    )

    def rewrite(period: str, version: int) -> tuple[int, int, int]:
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM m WHERE period = $period", {"period": period})
        con.execute(insert, {"period": period, "version": version, "rows": rows})
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
        groups, stored = con.execute(  # rows held in storage, deleted ones included
            "SELECT count(DISTINCT row_group_id), sum(count) FROM pragma_storage_info('m') "
            "WHERE column_id = 0 AND segment_type <> 'VALIDITY'"
        ).fetchall()[0]
        return groups, stored, path.stat().st_size

    for month in range(1, 7):
        rewrite(f"2026-{month:02d}", 0)
    states = []
    for version in range(1, 10):
        rewrite("2026-03", version)
        states.append(rewrite("2026-06", version))
    assert len({groups for groups, _, _ in states}) == 1, states
    assert {stored for _, stored, _ in states} == {6 * rows}, states
    sizes = [size for _, _, size in states]
    assert max(sizes[3:]) <= max(sizes[:3]), sizes
    latest = con.execute("SELECT count(*), sum(amount) FROM m WHERE period = '2026-06'")
    assert latest.fetchall() == [(rows, sum(i + 9 for i in range(rows)) * Decimal("1.25"))]
