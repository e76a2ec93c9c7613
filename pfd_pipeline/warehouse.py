"""The work store (DuckDB): creating its schema, and describing its tables to Dagster."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from queue import Queue
from typing import TypeVar

import dagster as dg
import duckdb
import polars as pl

from pfd_pipeline.settings import PublishSettings
from pfd_pipeline.sql import load_sql

T = TypeVar("T")
DDL = ("warehouse/schemas", "warehouse/raw_tables", "warehouse/audit_tables")
PREVIEW_ROWS = 5
MARTS_SUFFIX = ".marts.duckdb"  # the marts file beside the work store: work.marts.duckdb
IN_MEMORY = ":memory:"
MARTS_ALIAS = "pfd_marts"  # its name in the work store's connections
# What the marts file holds: the marts, and the audit of their builds (written in the same
# transactions as the marts: DuckDB lets a transaction write to one database only).
MARTS_SCHEMAS = ("marts", "audit")
WORK_SCHEMAS = ("raw", "audit", "model")


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and audit schemas and tables if they do not exist yet."""
    for name in DDL:
        con.execute(load_sql(name))


def connect(
    database: Path | str,
    *,
    read_only: bool = False,
    storage_version: str = PublishSettings.storage_version,
) -> duckdb.DuckDBPyConnection:
    """A plain connection for the CLI and tests (assets use the Dagster DuckDB resource), with
    the marts file attached (`attach_marts`). `database` may be ":memory:" (tests): the marts
    are then in memory too."""
    if not read_only and str(database) != IN_MEMORY:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database), read_only=read_only)
    attach_marts(con, database, storage_version, read_only=read_only)
    return con


def marts_path(work_db: Path | str) -> Path | str:
    """The marts file beside the work store (":memory:" beside an in-memory one)."""
    if str(work_db) == IN_MEMORY:
        return IN_MEMORY
    return Path(work_db).with_name(Path(work_db).stem + MARTS_SUFFIX)


def attach_marts(
    con: duckdb.DuckDBPyConnection,
    work_db: Path | str,
    storage_version: str,
    *,
    read_only: bool = False,
) -> None:
    """Attach the marts file (made with `storage_version`, the published file's, so that a full
    publication can copy it) and put its schemas on the search path after the work store's:
    `marts.x` and `audit.x` then name a table in whichever of the two files holds it.

    The marts live in a file of their own so that a full build publishes them by copying that
    file (about 1 s at L) instead of writing every row again (about 21 s). A store made before
    kept them in the work store: they are dropped from it here, once, with the audit of their
    builds, so that every month is allocated and built again into the marts file. Read-only,
    a store without a marts file is read as it is."""
    path = marts_path(work_db)
    if read_only:
        if not Path(path).exists():
            return
        con.execute(f"ATTACH IF NOT EXISTS {sql_literal(path)} AS {MARTS_ALIAS} (READ_ONLY)")
    else:
        if path == IN_MEMORY:
            con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {MARTS_ALIAS}")
        else:
            con.execute(
                f"ATTACH IF NOT EXISTS {sql_literal(path)} AS {MARTS_ALIAS} "
                f"(STORAGE_VERSION {sql_literal(storage_version)})"
            )
        _move_marts_out(con)
        (work,) = con.execute("SELECT current_database()").fetchone()
        for database, schemas in ((work, WORK_SCHEMAS), (MARTS_ALIAS, MARTS_SCHEMAS)):
            for schema in schemas:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.{schema}")
    set_search_path(con)


def set_search_path(con: duckdb.DuckDBPyConnection) -> None:
    """The work store's schemas first, then the marts file's: a `CREATE` of `audit.x` makes
    it in the work store (the marts file's audit tables are created with its name in full)."""
    (work,) = con.execute("SELECT current_database()").fetchone()
    existing = set(
        con.execute("SELECT database_name, schema_name FROM duckdb_schemas()").fetchall()
    )
    path = [
        f"{database}.{schema}"
        for database, schemas in ((work, ("main", *WORK_SCHEMAS)), (MARTS_ALIAS, MARTS_SCHEMAS))
        for schema in schemas
        if (database, schema) in existing
    ]
    con.execute(f"SET search_path = {sql_literal(','.join(path))}")


def cursor_of(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A cursor of `con`'s database with the search path set (a cursor does not inherit it;
    set on the cursor, so that `con` may be busy meanwhile)."""
    new = con.cursor()
    set_search_path(new)
    return new


def _move_marts_out(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the marts and their build audit from a work store made before the marts file."""
    (work,) = con.execute("SELECT current_database()").fetchone()
    (old,) = con.execute(
        "SELECT count(*) FROM duckdb_schemas() WHERE database_name = ? AND schema_name = 'marts'",
        [work],
    ).fetchone()
    if not old:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DROP SCHEMA {work}.marts CASCADE")
        # the audit of the marts' builds, now in the marts file
        con.execute(f"DROP VIEW IF EXISTS {work}.audit.table_builds")
        con.execute(f"DROP TABLE IF EXISTS {work}.audit.mart_periods")
        con.execute(f"DROP TABLE IF EXISTS {work}.audit.allocated_periods")
        con.execute(f"DROP SEQUENCE IF EXISTS {work}.audit.build_seq")
        # published months were recorded with the old builds' numbers: publish everything anew
        for (table,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
            "AND schema_name = 'audit' AND table_name IN ('published_periods', 'publications')",
            [work],
        ).fetchall():
            con.execute(f"DELETE FROM {work}.audit.{table}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _attached(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_databases() WHERE database_name = ?", [name]
        ).fetchone()[0]
    )


def sql_literal(value: object) -> str:
    """A SQL string literal for a path or name the pipeline itself controls (never row data)."""
    text = str(value)
    if "\x00" in text:
        raise ValueError(f"refusing a NUL byte in {text!r}")
    return "'" + text.replace("'", "''") + "'"


def table_metadata(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, dg.MetadataValue]:
    """Row count, column schema and a short Markdown preview of a table, for the Dagster UI.

    `table` is a schema-qualified name from the pipeline's own fixed list, never from data.
    """
    schema_name, _, table_name = table.partition(".")
    described = con.execute(
        """
        SELECT column_name, data_type, is_nullable, coalesce(comment, '')
        FROM duckdb_columns()
        WHERE schema_name = ? AND table_name = ?
        ORDER BY column_index
        """,
        [schema_name, table_name],
    ).fetchall()
    if not described:
        raise ValueError(f"table {table} does not exist")
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    preview = con.execute(f"SELECT * FROM {table} LIMIT {PREVIEW_ROWS}").fetchall()
    preview_header = [d[0] for d in con.description]
    columns = [
        dg.TableColumn(
            name,
            dtype,
            description=comment or None,
            constraints=dg.TableColumnConstraints(nullable=nullable),
        )
        for name, dtype, nullable, comment in described
    ]
    return {
        "dagster/row_count": dg.MetadataValue.int(int(rows)),
        "dagster/column_schema": dg.MetadataValue.table_schema(dg.TableSchema(columns=columns)),
        "dagster/table_name": dg.MetadataValue.text(table),
        "preview": dg.MetadataValue.md(markdown_table(preview_header, preview)),
    }


def markdown_table(header: list[str], rows: list[tuple]) -> str:
    """A Markdown table for Dagster metadata; "_(none)_" when there are no rows."""
    if not rows:
        return "_(none)_"
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += [
        "| " + " | ".join("" if v is None else str(v).replace("|", "\\|") for v in row) + " |"
        for row in rows
    ]
    return "\n".join(lines)


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether `schema.table` exists (e.g. before the first run created it)."""
    schema_name, _, table_name = table.partition(".")
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
            [schema_name, table_name],
        ).fetchall()[0][0]
    )


def execute_with_frame(con: duckdb.DuckDBPyConnection, statement: str, frame: pl.DataFrame) -> None:
    """Run `statement`, which reads `frame` as the table `_frame` (registered for it only)."""
    con.register("_frame", frame.to_arrow())
    try:
        con.execute(statement)
    finally:
        con.unregister("_frame")


# What DuckDB may keep while its cached blocks are dropped (see release_cached_blocks).
RELEASE_TO = "256MB"


def release_cached_blocks(con: duckdb.DuckDBPyConnection, memory_limit: str) -> None:
    """Drop the table blocks DuckDB keeps in memory after a load, then set `memory_limit` back.

    Blocks a load wrote stay cached (they are on disk too) until the memory limit forces them
    out, so at L the ledger's load ran with about 1 GB of the events' blocks still resident; a
    moment's lower limit evicts them (blocks in use stay). If DuckDB refuses the lower limit,
    nothing is dropped and the run goes on; the configured limit is set back either way.
    """
    try:
        con.execute("SET memory_limit = $limit", {"limit": RELEASE_TO})
    except duckdb.Error:  # a saving missed, never a failed run
        pass
    finally:
        con.execute("SET memory_limit = $limit", {"limit": memory_limit})


@contextmanager
def cursor_pool(
    con: duckdb.DuckDBPyConnection, count: int
) -> Iterator[Callable[[Callable[[duckdb.DuckDBPyConnection], T]], T]]:
    """`count` cursors of `con`'s database; yields call(task), which runs task(cursor) on a free
    one. The cursors are closed when the block ends (wait for the tasks before that)."""
    cursors: Queue[duckdb.DuckDBPyConnection] = Queue()
    for _ in range(count):
        cursors.put(cursor_of(con))

    def call(task: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        cursor = cursors.get()
        try:
            return task(cursor)
        finally:
            cursors.put(cursor)

    try:
        yield call
    finally:
        while not cursors.empty():
            cursors.get().close()


def run_on_cursors(
    con: duckdb.DuckDBPyConnection,
    tasks: Sequence[Callable[[duckdb.DuckDBPyConnection], object]],
    workers: int,
) -> None:
    """Run independent tasks `workers` at a time, each given a cursor of `con`'s database, in
    the order given (largest first); wait for all of them and raise the first error.

    A cursor is a connection of its own: it sees the database and what is attached to it, not
    `con`'s temporary tables or open transaction. DuckDB spreads one statement over its threads
    by row group, so a statement writing a few row groups (a month of a mart at L, 200,000 rows)
    keeps one core busy whatever `threads` says; two such statements at once keep two busy.
    """
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            task(con)
        return
    count = min(workers, len(tasks))
    with (
        cursor_pool(con, count) as call,
        ThreadPoolExecutor(max_workers=count, thread_name_prefix="pfd-cursor") as pool,
    ):
        futures = [pool.submit(call, task) for task in tasks]
    for future in futures:
        future.result()


def run_in_order(
    con: duckdb.DuckDBPyConnection,
    tasks: Sequence[tuple[str, Collection[str], Callable[[duckdb.DuckDBPyConnection], T]]],
    workers: int,
) -> Iterator[tuple[str, T]]:
    """Run tasks (name, the names it waits for, function) `workers` at a time, each on a cursor
    of `con`'s database once the tasks it waits for have finished; yield (name, result) as each
    finishes. Names that are not among `tasks` count as finished. One worker runs them on `con`
    itself, in the order given (which must then put every task after those it waits for).

    After a task fails no further one starts; the first error is raised once the tasks running
    have finished. A caller that stops early waits for the running ones too.
    """
    if workers <= 1 or len(tasks) <= 1:
        for name, _, task in tasks:
            yield name, task(con)
        return
    names = {name for name, _, _ in tasks}
    waits = {name: set(before) & names for name, before, _ in tasks}
    functions = {name: task for name, _, task in tasks}
    waiting = [name for name, _, _ in tasks]
    finished: set[str] = set()
    count = min(workers, len(tasks))
    with (
        cursor_pool(con, count) as call,
        ThreadPoolExecutor(max_workers=count, thread_name_prefix="pfd-cursor") as pool,
    ):
        running: dict[Future[T], str] = {}
        error: BaseException | None = None
        while True:
            ready = [name for name in waiting if waits[name] <= finished] if error is None else []
            for name in ready[: count - len(running)]:
                waiting.remove(name)
                running[pool.submit(call, functions[name])] = name
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                if future.exception() is not None:
                    error = error or future.exception()
                    continue
                finished.add(name)
                yield name, future.result()
    if error is not None:
        raise error
    if waiting:
        raise ValueError(f"tasks that wait for each other: {waiting}")


def checkpoint(
    connection: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
) -> list[str]:
    """Checkpoint the work store and the marts file; return why, if either failed.

    A checkpoint that fails is left to the next one, at the latest when the database closes: a
    saving missed, never a failed run.
    """
    failures: list[str] = []
    try:
        with connection() as con:
            try:  # caught inside, so that the connection is closed
                con.execute("CHECKPOINT")
                if _attached(con, MARTS_ALIAS):
                    con.execute(f"CHECKPOINT {MARTS_ALIAS}")
            except duckdb.Error as exc:
                failures.append(str(exc))
    except duckdb.Error as exc:
        failures.append(str(exc))
    return failures
