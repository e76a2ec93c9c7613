"""Publishing the BI tables: one DuckDB file (schema `marts`) and Parquet, replaced atomically.

Readers never see a half-written state and never block a run:

- DuckDB: the next file is written beside the published one, checkpointed, then renamed over
  it. A BI client holding the old file open keeps reading the old state; on reconnecting it
  opens the new one. The file is written in a fixed storage version so older clients can open
  it. The next file is the previous publication's file (kept as `.pfd.duckdb.previous`, a hard
  link taken before the rename) brought up to date: the months built since it was published are
  replaced. So a daily run rewrites a month or two instead of copying the whole file, which
  grows with the history. Where there is no such file, or a reader still holds it open (DuckDB's
  lock says so), the published file is copied instead. A full publication leaves a copy of its
  file as the previous one, so that the first run after a full build does not copy it either.
- Parquet: each publication is a new folder under `.parquet-versions/` (unchanged months are
  hard links to the previous folder's files); `parquet` is a symlink switched in one rename.
  The previous folder is kept, so a reader mid-scan finishes on the files it listed.

A run killed at any point leaves the last publication intact; what it had not recorded as
published is published by the next run. The published months are recorded in the work store
(audit.published_periods) only after the rename.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from importlib.metadata import version
from pathlib import Path

import duckdb
import yaml

from pfd_pipeline.errors import PfdError
from pfd_pipeline.faults import crash_point
from pfd_pipeline.marts import MART_TABLES
from pfd_pipeline.settings import Settings
from pfd_pipeline.sql import SQL_DIR, load_sql
from pfd_pipeline.warehouse import MARTS_ALIAS, run_on_cursors, sql_literal

COST_TABLES = ("customer_cost_to_serve", "activity_rates", "allocation_reconciliation")
PERIOD_TABLES = (MART_TABLES[0], *COST_TABLES, *MART_TABLES[1:])
WHOLE_TABLES = {"rejected_rows": "audit.rejected_rows", "ingested_files": "audit.ingested_files"}
PUBLISHED_TABLES = (*PERIOD_TABLES, *WHOLE_TABLES, "publication")
ALIAS = "pfd_publish"
PREVIOUS = "duckdb_previous"  # publication state of the kept previous file, as a target
VERSIONS_DIR = ".parquet-versions"


class PublishError(PfdError):
    """The published tables cannot be written as documented."""


@dataclass(frozen=True)
class TableDoc:
    name: str
    grain: str
    description: str
    columns: dict[str, str]
    partitioned_by: str | None = None


@dataclass
class Publication:
    target: str  # "duckdb" or "parquet"
    path: Path
    full: bool
    periods: dict[str, list[str]] = field(default_factory=dict)  # table -> months written
    seconds: float = 0.0


@cache
def catalog() -> dict[str, TableDoc]:
    """The documented tables, in publication order."""
    raw = yaml.safe_load((SQL_DIR / "publish" / "catalog.yaml").read_text(encoding="utf-8"))
    docs = {
        name: TableDoc(
            name=name,
            grain=spec["grain"],
            description=" ".join(spec["description"].split()),
            columns={str(k): str(v) for k, v in spec["columns"].items()},
            partitioned_by=spec.get("partitioned_by"),
        )
        for name, spec in raw["tables"].items()
    }
    if tuple(docs) != PUBLISHED_TABLES:
        raise PublishError(
            f"catalog.yaml lists {tuple(docs)}, the pipeline publishes {PUBLISHED_TABLES}"
        )
    return docs


def schema_fingerprint(settings: Settings) -> str:
    """Changes when the published schema or storage version changes: then publish in full."""
    digest = hashlib.sha256(settings.publish.storage_version.encode())
    for name in ("publish/catalog.yaml", "marts/mart_tables.sql", "marts/cost_tables.sql"):
        digest.update((SQL_DIR / name).read_bytes())
    return digest.hexdigest()


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(load_sql("publish/publish_state"))


def source_of(table: str) -> str:
    """The work-store table a published table is copied from (a name from the fixed list)."""
    if table in WHOLE_TABLES:
        return WHOLE_TABLES[table]
    if table in PERIOD_TABLES:
        return f"marts.{table}"
    raise PublishError(f"{table} is not a published table")


def pending(
    con: duckdb.DuckDBPyConnection, target: str, fingerprint: str
) -> dict[str, list[str]] | None:
    """Months per table built since they were last published to `target`; None = publish all."""
    state = con.execute(
        "select fingerprint from audit.publications where target = ?", [target]
    ).fetchall()
    if not state or state[0][0] != fingerprint:
        return None
    rows = con.execute(
        """
        select b.table_name, b.period
        from audit.table_builds as b
        left join audit.published_periods as p
            on p.target = $target and p.table_name = b.table_name and p.period = b.period
        where p.build_id is distinct from b.build_id
        order by 1, 2
        """,
        {"target": target},
    ).fetchall()
    periods: dict[str, list[str]] = {t: [] for t in PERIOD_TABLES}
    for table, period in rows:
        periods[table].append(period)
    return periods


def publish_duckdb(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str) -> Publication:
    """Write the next published DuckDB file and rename it over the current one."""
    started = time.perf_counter()
    target = settings.published_db
    fingerprint = schema_fingerprint(settings)
    todo = pending(con, "duckdb", fingerprint) if target.exists() else None
    full = todo is None
    periods = _all_periods(con) if full else todo
    if not full and not any(periods.values()) and not _audit_changed(con, "duckdb"):
        return Publication("duckdb", target, False, periods, time.perf_counter() - started)
    _check_columns(con)
    next_file = target.with_name(f".{target.name}.next")
    previous = target.with_name(f".{target.name}.previous")
    staging = _staging(previous)
    for leftover in (next_file, next_file.with_name(next_file.name + ".wal"), staging):
        leftover.unlink(missing_ok=True)
    written = periods  # the months to replace in the next file
    copied = False
    if not full:
        written = _open_next(con, settings, target, previous, next_file, fingerprint, periods)
    else:
        previous.unlink(missing_ok=True)
        copied = _copy_marts_file(con, settings, next_file)
        if not copied:
            _attach(con, settings, next_file)
    try:
        if copied:
            _drop_unpublished(con)
        elif full:
            con.execute(f"CREATE SCHEMA {ALIAS}.marts")
        # a copied file has every period table already
        tables = (
            [] if copied else [t for t in _largest_first(con, PERIOD_TABLES) if full or written[t]]
        )
        run_on_cursors(
            con,
            [partial(_copy_months, table=t, periods=None if full else written[t]) for t in tables]
            + [partial(_copy_months, table=t, periods=None) for t in WHOLE_TABLES],
            settings.duckdb_threads,
        )
        _write_publication(con, run_id, periods)
        _comment(con)  # only the tables made anew lack their descriptions (describe)
        con.execute(f"CHECKPOINT {ALIAS}")
    finally:
        con.execute(f"DETACH {ALIAS}")
    _fsync(next_file)
    if target.exists() and not full:
        # keep the file being replaced for the next run; its state first, then the link, so
        # that a recorded state is never newer than the file it describes (after a full
        # publication the file replaced is of no use: another schema, or no state)
        _copy_state(con, "duckdb", PREVIOUS)
        previous.unlink(missing_ok=True)
        os.link(target, previous)
    crash_point("before_duckdb_switch")
    os.replace(next_file, target)
    _fsync(target.parent)
    crash_point("after_duckdb_switch")
    _record(con, "duckdb", fingerprint, run_id, periods, full)
    if full:
        _copy_for_next_run(con, target, previous)
    return Publication("duckdb", target, full, periods, time.perf_counter() - started)


def _copy_marts_file(con: duckdb.DuckDBPyConnection, settings: Settings, next_file: Path) -> bool:
    """A full publication's next file as a copy of the marts file, attached: every published
    table is in it already, with its rows and descriptions, so nothing is written again (at
    L: about 1 s against about 21 s writing the tables into a new file). Only when the marts
    file has the storage version the published file must have (else returns False, nothing
    done). Checkpointed first, so that the file holds every committed row; nothing else writes
    to it while the publication runs (the steps before it have finished)."""
    rows = con.execute(
        "SELECT path, tags['storage_version'] FROM duckdb_databases() WHERE database_name = ?",
        [MARTS_ALIAS],
    ).fetchall()
    path, version = rows[0] if rows else (None, None)
    if not path or (version or "").rstrip("+") != settings.publish.storage_version:
        return False  # no marts file (in memory), or one of another storage version
    con.execute(f"CHECKPOINT {MARTS_ALIAS}")
    shutil.copyfile(path, next_file)
    _attach(con, settings, next_file)
    return True


def _drop_unpublished(con: duckdb.DuckDBPyConnection) -> None:
    """In a copy of the marts file: drop what is not published (the build audit, the marts'
    internal tables). Their blocks become free space in the file."""
    schemas = con.execute(
        "SELECT schema_name FROM duckdb_schemas() WHERE database_name = ? AND NOT internal "
        "AND schema_name NOT IN ('marts', 'main')",
        [ALIAS],
    ).fetchall()
    for (schema,) in schemas:
        con.execute(f"DROP SCHEMA {ALIAS}.{schema} CASCADE")
    tables = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'marts'",
        [ALIAS],
    ).fetchall()
    for (table,) in tables:
        if table not in PERIOD_TABLES:
            con.execute(f"DROP TABLE {ALIAS}.marts.{table}")


def _staging(previous: Path) -> Path:
    return previous.with_name(f"{previous.name}.next")


def _copy_for_next_run(con: duckdb.DuckDBPyConnection, target: Path, previous: Path) -> None:
    """After a full publication: a copy of the new file as the previous publication's, which
    the next run brings up to date in place (_open_next) instead of copying the whole published
    file first (1.4 GB at L: 2.3 s of the first daily run after a full build, which now come
    at the end of the build). The copy's state is recorded only once the copy is complete and
    on disk; a run killed before leaves a previous file without a state, never used. A copy
    that cannot be made (a full disk) is a saving missed, not a failed publication: the next
    run copies the published file, as it would have."""
    _copy_state(con, None, PREVIOUS)
    previous.unlink(missing_ok=True)
    staging = _staging(previous)
    try:
        shutil.copyfile(target, staging)
        _fsync(staging)
    except OSError:
        staging.unlink(missing_ok=True)
        return
    os.replace(staging, previous)
    _fsync(previous.parent)
    crash_point("before_previous_recorded")
    _copy_state(con, "duckdb", PREVIOUS)


def _attach(con: duckdb.DuckDBPyConnection, settings: Settings, path: Path) -> None:
    con.execute(
        f"ATTACH {sql_literal(path)} AS {ALIAS} "
        f"(STORAGE_VERSION {sql_literal(settings.publish.storage_version)})"
    )


def _open_next(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    target: Path,
    previous: Path,
    next_file: Path,
    fingerprint: str,
    periods: dict[str, list[str]],
) -> dict[str, list[str]]:
    """Attach the next file: the previous publication's file when it can be brought up to date
    (returns the months it lacks), else a copy of the published file (returns `periods`)."""
    behind = pending(con, PREVIOUS, fingerprint) if previous.exists() else None
    if behind is not None and not previous.samefile(target):
        os.replace(previous, next_file)
        try:
            _attach(con, settings, next_file)
            return behind
        except duckdb.IOException:  # a reader still holds it open: leave it to the reader
            next_file.unlink()
    previous.unlink(missing_ok=True)
    shutil.copyfile(target, next_file)
    _attach(con, settings, next_file)
    return periods


def _copy_state(con: duckdb.DuckDBPyConnection, source: str | None, target: str) -> None:
    """Record `target` as holding exactly what `source` was last recorded as holding (None:
    nothing, so that `target` is not used)."""
    con.execute("BEGIN TRANSACTION")
    try:
        for table in ("audit.published_periods", "audit.publications"):
            con.execute(f"delete from {table} where target = $target", {"target": target})
            if source is not None:
                con.execute(
                    f"insert into {table} select * replace ($target as target) from {table} "
                    "where target = $source",
                    {"source": source, "target": target},
                )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def publish_parquet(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str) -> Publication:
    """Write the next Parquet folder (Hive-partitioned by period) and switch the symlink to it."""
    started = time.perf_counter()
    link = settings.parquet_dir
    fingerprint = schema_fingerprint(settings)
    previous = link.resolve() if link.is_symlink() else None
    todo = pending(con, "parquet", fingerprint) if previous and previous.is_dir() else None
    full = todo is None
    periods = _all_periods(con) if full else todo
    if not full and not any(periods.values()) and not _audit_changed(con, "parquet"):
        return Publication("parquet", link, False, periods, time.perf_counter() - started)
    _check_columns(con)
    versions = link.parent / VERSIONS_DIR
    folder = versions / f"{time.time_ns()}"
    folder.mkdir(parents=True)
    try:
        copies = []
        for table in _largest_first(con, PERIOD_TABLES):
            out = folder / table
            out.mkdir()
            written = sorted(set(periods[table]))
            copies += [partial(_month_to_parquet, table=table, period=p) for p in written]
            if previous is not None and not full:
                for part in sorted((previous / table).glob("period=*")):
                    if part.name.removeprefix("period=") not in written:
                        (out / part.name).mkdir()
                        for file in part.iterdir():
                            _link_or_copy(file, out / part.name / file.name)
        for table in WHOLE_TABLES:
            (folder / table).mkdir()
            copies.append(partial(_table_to_parquet, table=table))
        run_on_cursors(
            con, [partial(copy, folder=folder) for copy in copies], settings.duckdb_threads
        )
        (folder / "publication").mkdir()
        out = folder / "publication" / "data_0.parquet"
        con.execute(
            f"COPY ({_publication_query()}) TO {sql_literal(out)} (FORMAT parquet)",
            _publication_params(con, run_id, periods),
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    _fsync(folder)
    if link.exists() and not link.is_symlink():  # a plain folder from elsewhere: keep it aside
        link.rename(versions / f"replaced-{time.time_ns()}")
    swap = link.with_name(f".{link.name}.next")
    swap.unlink(missing_ok=True)
    swap.symlink_to(Path(VERSIONS_DIR) / folder.name, target_is_directory=True)
    crash_point("before_parquet_switch")
    os.replace(swap, link)
    _fsync(link.parent)
    _record(con, "parquet", fingerprint, run_id, periods, full)
    for old in versions.iterdir():  # keep the new and the previous folders
        if old not in (folder, previous):
            shutil.rmtree(old, ignore_errors=True)
    return Publication("parquet", link, full, periods, time.perf_counter() - started)


def _audit_stamp(con: duckdb.DuckDBPyConnection) -> str:
    """Changes when a file is ingested (rows of the audit tables published whole)."""
    files, rejected = con.execute(
        "select (select coalesce(max(file_id), 0) from audit.ingested_files), "
        "(select count(*) from audit.rejected_rows)"
    ).fetchall()[0]
    return f"{files}:{rejected}"


def _audit_changed(con: duckdb.DuckDBPyConnection, target: str) -> bool:
    stored = con.execute(
        "select audit_stamp from audit.publications where target = ?", [target]
    ).fetchall()
    return not stored or stored[0][0] != _audit_stamp(con)


def _all_periods(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    rows = con.execute("select table_name, period from audit.table_builds order by 1, 2").fetchall()
    periods: dict[str, list[str]] = {t: [] for t in PERIOD_TABLES}
    for table, period in rows:
        periods[table].append(period)
    return periods


# The months of a table to copy, as a list parameter (the cursors of run_on_cursors do not see
# the run connection's temporary tables).
IN_PERIODS = "period IN (SELECT unnest($periods::varchar[]))"


def _copy_months(cursor: duckdb.DuckDBPyConnection, table: str, periods: list[str] | None) -> None:
    """Into the next published file: replace `periods` of `table`, or (None) copy it whole."""
    if periods is None:
        cursor.execute(
            f"CREATE OR REPLACE TABLE {ALIAS}.marts.{table} AS SELECT * FROM {source_of(table)}"
        )
        return
    cursor.execute(f"DELETE FROM {ALIAS}.marts.{table} WHERE {IN_PERIODS}", {"periods": periods})
    cursor.execute(
        f"INSERT INTO {ALIAS}.marts.{table} SELECT * FROM {source_of(table)} WHERE {IN_PERIODS}",
        {"periods": periods},
    )


def _month_to_parquet(
    cursor: duckdb.DuckDBPyConnection, folder: Path, table: str, period: str
) -> None:
    """Write one month of `table` as folder/table/period=.../data_0.parquet, the file a Hive-
    partitioned writer (DuckDB's PARTITION_BY) writes: no period column, no folder for a month
    without rows.

    One COPY per month, two at a time, reads little more than the month: every period table's
    months lie in row groups of their own (the allocation's and customer_profitability's are
    written a month per statement, the other marts in month order). PARTITION_BY first sorts
    every row it writes into its partition in memory: at L, 24 months of customer_cost_to_serve
    took 24.8 CPU s with it, 10.9 a month at a time.
    """
    part = folder / table / f"period={period}"
    part.mkdir()
    out = part / "data_0.parquet"
    (rows,) = cursor.execute(
        f"COPY (SELECT * EXCLUDE (period) FROM {source_of(table)} WHERE period = $period) "
        f"TO {sql_literal(out)} (FORMAT parquet)",
        {"period": period},
    ).fetchone()
    if not rows:
        out.unlink()
        part.rmdir()


def _table_to_parquet(cursor: duckdb.DuckDBPyConnection, folder: Path, table: str) -> None:
    """Write the whole of `table` (one without periods) as folder/table/data_0.parquet."""
    out = folder / table / "data_0.parquet"
    cursor.execute(f"COPY {source_of(table)} TO {sql_literal(out)} (FORMAT parquet)")


def _largest_first(con: duckdb.DuckDBPyConnection, tables: Sequence[str]) -> list[str]:
    """`tables` by the estimated size of their work-store tables, largest first, so that the
    largest copy starts first and the small ones fill in beside it."""
    sizes = dict(
        con.execute(
            "select schema_name || '.' || table_name, estimated_size from duckdb_tables() "
            "where database_name in (current_database(), $marts)",
            {"marts": MARTS_ALIAS},
        ).fetchall()
    )
    return sorted(tables, key=lambda table: -sizes.get(source_of(table), 0))


def _stage_periods(con: duckdb.DuckDBPyConnection, periods: dict[str, list[str]]) -> None:
    tables = [t for t, ps in periods.items() for _ in ps]
    months = [p for ps in periods.values() for p in ps]
    con.execute(
        "create or replace temp table publish_periods as "
        "select unnest($t::varchar[]) as table_name, unnest($p::varchar[]) as period",
        {"t": tables, "p": months},
    )


def _check_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Every work-store column documented, in order, and nothing documented that is missing."""
    for table in (*PERIOD_TABLES, *WHOLE_TABLES):
        schema, _, name = source_of(table).partition(".")
        actual = [
            r[0]
            for r in con.execute(
                "select column_name from duckdb_columns() where schema_name = ? "
                "and table_name = ? order by column_index",
                [schema, name],
            ).fetchall()
        ]
        documented = list(catalog()[table].columns)
        if actual != documented:
            raise PublishError(
                f"{source_of(table)} has columns {actual}, sql/publish/catalog.yaml documents "
                f"{documented}; update the catalog"
            )


def _publication_query() -> str:
    return (
        "select current_localtimestamp() as published_at, $run_id::varchar as run_id, "
        "$first::varchar as first_period, $latest::varchar as latest_period, "
        "$rebuilt::varchar as periods_rebuilt, $version::varchar as pfd_version"
    )


def _publication_params(
    con: duckdb.DuckDBPyConnection, run_id: str, periods: dict[str, list[str]]
) -> dict[str, str | None]:
    first, latest = con.execute(
        "select min(period), max(period) from audit.table_builds"
    ).fetchall()[0]
    rebuilt = sorted({p for ps in periods.values() for p in ps})
    return {
        "run_id": run_id,
        "first": first,
        "latest": latest,
        "rebuilt": ", ".join(rebuilt),
        "version": version("pfd"),
    }


def _write_publication(
    con: duckdb.DuckDBPyConnection, run_id: str, periods: dict[str, list[str]]
) -> None:
    con.execute(
        f"CREATE OR REPLACE TABLE {ALIAS}.marts.publication AS {_publication_query()}",
        _publication_params(con, run_id, periods),
    )


def _comment(con: duckdb.DuckDBPyConnection) -> None:
    """COMMENT ON every published table and column."""
    describe(con, {table: f"{ALIAS}.marts.{table}" for table in catalog()})


def describe(con: duckdb.DuckDBPyConnection, tables: dict[str, str]) -> None:
    """COMMENT ON tables and their columns from catalog.yaml (our own text, never row data), in
    one transaction: one commit instead of one per comment (a few hundred, 1.5 s per run).
    `tables` maps a catalog table to its name in the connection ([database.]schema.table),
    built from the fixed list. Comments that already read as documented are not written again
    (a daily run's marts keep theirs: 0.2 s of COMMENT statements a run at L)."""
    current = _comments(con, tables.values())
    con.execute("BEGIN TRANSACTION")
    try:
        for table, qualified in tables.items():
            doc = catalog()[table]
            text = f"{doc.description} Grain: {doc.grain}."
            if current.get((qualified, None)) != text:
                con.execute(f"COMMENT ON TABLE {qualified} IS {sql_literal(text)}")
            for column, text in doc.columns.items():
                if current.get((qualified, column)) != text:
                    con.execute(f'COMMENT ON COLUMN {qualified}."{column}" IS {sql_literal(text)}')
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _comments(
    con: duckdb.DuckDBPyConnection, qualified: Iterable[str]
) -> dict[tuple[str, str | None], str | None]:
    """The comments of the tables named [database.]schema.table and of their columns, keyed by
    (that name, column or None for the table)."""
    names = {}
    for name in qualified:
        parts = name.split(".")
        database = parts[0] if len(parts) == 3 else None
        names[name] = (database, parts[-2], parts[-1])
    wanted = [list(key) for key in names.values()]
    rows = con.execute(
        """
        with wanted as (
            select w[1] as d, w[2] as s, w[3] as t
            from (select unnest($wanted::varchar[][]) as w)
        ),

        -- a name without its database is the work store's or the marts file's table
        found as (
            select database_name, schema_name, table_name, d
            from duckdb_tables() join wanted on (schema_name, table_name) = (s, t)
            where database_name = coalesce(d, current_database())
                or (d is null and database_name = $marts)
        )
        select f.d, f.schema_name, f.table_name, null as column_name, t.comment
        from duckdb_tables() as t join found as f using (database_name, schema_name, table_name)
        union all
        select f.d, f.schema_name, f.table_name, c.column_name, c.comment
        from duckdb_columns() as c join found as f using (database_name, schema_name, table_name)
        """,
        {"wanted": wanted, "marts": MARTS_ALIAS},
    ).fetchall()
    by_parts = {parts: name for name, parts in names.items()}
    return {
        (by_parts[(database, schema, table)], column): comment
        for database, schema, table, column, comment in rows
    }


def _record(
    con: duckdb.DuckDBPyConnection,
    target: str,
    fingerprint: str,
    run_id: str,
    periods: dict[str, list[str]],
    full: bool,
) -> None:
    """After the rename: the builds now published, so the next run writes only newer ones."""
    _stage_periods(con, periods)
    con.execute("BEGIN TRANSACTION")
    try:
        if full:
            con.execute("delete from audit.published_periods where target = ?", [target])
        con.execute(
            """
            insert or replace into audit.published_periods
            select $target, b.table_name, b.period, b.build_id
            from audit.table_builds as b
            join publish_periods as p using (table_name, period)
            """,
            {"target": target},
        )
        con.execute(
            "insert or replace into audit.publications values "
            "($target, $fingerprint, $stamp, $run_id, current_localtimestamp())",
            {
                "target": target,
                "fingerprint": fingerprint,
                "stamp": _audit_stamp(con),
                "run_id": run_id,
            },
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS publish_periods")


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (no bytes copied); a copy where the file system has no hard links."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


SCHEMA_BEGIN = "<!-- schema:begin (generated by `pfd schema-doc --write README.md`) -->"
SCHEMA_END = "<!-- schema:end -->"


def schema_markdown() -> str:
    """The README's schema section: every published table's grain, description and columns
    with their types, from catalog.yaml and the tables' DDL."""
    from pfd_pipeline import allocate, marts
    from pfd_pipeline.warehouse import IN_MEMORY, connect, ensure_schema

    con = connect(IN_MEMORY)
    try:
        ensure_schema(con)
        allocate.ensure_tables(con)
        marts.ensure_tables(con)
        con.execute(f"create table publication as {_publication_query()} limit 0", _EMPTY)
        lines = []
        for doc in catalog().values():
            schema, _, name = (
                source_of(doc.name) if doc.name != "publication" else "main.publication"
            ).partition(".")
            types = dict(
                con.execute(
                    "select column_name, data_type from duckdb_columns() "
                    "where schema_name = ? and table_name = ?",
                    [schema, name],
                ).fetchall()
            )
            where = (
                f"`parquet/{doc.name}/period=YYYY-MM/`"
                if doc.partitioned_by
                else f"`parquet/{doc.name}/`"
            )
            lines += [
                f"#### `marts.{doc.name}`: {doc.grain}",
                "",
                f"{doc.description} Parquet: {where}.",
                "",
                "| column | type | description |",
                "|---|---|---|",
                *(
                    f"| `{column}` | {types[column]} | {text.replace('|', '/')} |"
                    for column, text in doc.columns.items()
                ),
                "",
            ]
    finally:
        con.close()
    return "\n".join([SCHEMA_BEGIN, "", *lines, SCHEMA_END])


_EMPTY = {"run_id": None, "first": None, "latest": None, "rebuilt": None, "version": None}


def write_schema_section(readme: Path) -> bool:
    """Replace the generated block in the README; True if it changed."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(SCHEMA_BEGIN), text.index(SCHEMA_END) + len(SCHEMA_END)
    updated = text[:start] + schema_markdown() + text[end:]
    readme.write_text(updated, encoding="utf-8")
    return updated != text
