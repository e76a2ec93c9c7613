"""Ingesting one source: new landing files are read, validated in batches and merged in one go.

For each source and run:

1. files already seen (same path, size and modification time) are skipped without reading;
   a file whose content (sha256) was loaded before is recorded as a duplicate and loads nothing;
2. new files are read one at a time and validated in batches of up to `batch_rows` rows
   (pandera is called per batch, not per file), so memory is bounded by the batch;
3. accepted rows go to a staging table, rejected rows to a staging reject table;
4. if any file cannot be read, lacks a required column or has too many rejects, the run stops
   with one message naming every such file, and nothing of this source is merged;
5. otherwise, in one transaction: rows are merged into the raw table (a key delivered again
   replaces its earlier version), files and rejects are recorded in the audit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import duckdb
import polars as pl

from pfd_pipeline import progress
from pfd_pipeline.landing import FileRejected, LandingFile, read, sha256
from pfd_pipeline.sources import CUSTOMERS, Source
from pfd_pipeline.sql import load_sql
from pfd_pipeline.validation import FILE_ID, ValidationContext, validate

MAX_LISTED_FAILURES = 10
MAX_LISTED_REJECTS = 3


class IngestError(Exception):
    """A run stopped because of landing files; the message names each file, row, column and rule."""


@dataclass
class FileOutcome:
    file: LandingFile
    file_id: int
    sha256: str
    status: str  # 'loaded' or 'duplicate'
    duplicate_of: int | None = None
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    extra_columns: list[str] = field(default_factory=list)


@dataclass
class SourceOutcome:
    source: Source
    files: list[FileOutcome]
    skipped: int  # files seen in an earlier run, not read again

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_accepted(self) -> int:
        return sum(f.rows_accepted for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def loaded(self) -> int:
        return sum(f.status == "loaded" for f in self.files)

    @property
    def duplicates(self) -> int:
        return sum(f.status == "duplicate" for f in self.files)


def stage_table(source: Source) -> str:
    return f"stage_{source.name}"


def seen_fingerprints(con: duckdb.DuckDBPyConnection, source: Source) -> set[tuple[str, int, int]]:
    """(path, size, modification time) of every file of this source recorded in the audit."""
    rows = con.execute(
        "SELECT path, size_bytes, modified_ns FROM audit.ingested_files WHERE source = ?",
        [source.name],
    ).fetchall()
    return {(p, s, m) for p, s, m in rows}


def new_files(con: duckdb.DuckDBPyConnection, files: Iterable[LandingFile]) -> list[LandingFile]:
    """The files not yet recorded in the audit under the same path, size and modification time."""
    files = list(files)
    seen: set[tuple[str, int, int]] = set()
    for source in {f.source for f in files}:
        seen |= seen_fingerprints(con, source)
    return [f for f in files if f.fingerprint not in seen]


def ingest_source(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    files: list[LandingFile],
    ctx: ValidationContext,
    *,
    run_id: str,
    batch_rows: int,
    max_reject_share: float,
) -> SourceOutcome:
    """Ingest the given landing files of one source; see the module docstring for the steps."""
    candidates = new_files(con, files)
    skipped = len(files) - len(candidates)
    outcomes = _identify(con, source, candidates)
    _create_stage(con, source)
    failures: list[tuple[str, str]] = []  # (file, why it cannot be loaded)
    to_load = [o for o in outcomes if o.status == "loaded"]
    with progress.current().stage(f"ingest {source.name}", total=len(to_load)) as shown:
        for batch, members in _batches(to_load, batch_rows, failures, shown.advance):
            result = validate(source, batch, ctx)
            _count(members, result.accepted, result.rejected)
            _insert(con, stage_table(source), result.accepted)
            _insert(con, "stage_rejects", result.rejected)
    failures += _reject_share_failures(con, to_load, max_reject_share)
    outcome = SourceOutcome(source, outcomes, skipped)
    if failures:
        _record_failures(con, source, failures, run_id)
        raise IngestError(_failure_paragraph(source, failures))
    _commit(con, source, outcome, run_id)
    return outcome


def _identify(
    con: duckdb.DuckDBPyConnection, source: Source, files: list[LandingFile]
) -> list[FileOutcome]:
    """Give each new file an id and decide whether its content was loaded before."""
    if not files:
        return []
    loaded = dict(
        con.execute(
            "SELECT sha256, min(file_id) FROM audit.ingested_files "
            "WHERE source = ? AND status = 'loaded' GROUP BY sha256",
            [source.name],
        ).fetchall()
    )
    ids = [
        r[0]
        for r in con.execute(
            "SELECT nextval('audit.file_id_seq') FROM range(?)", [len(files)]
        ).fetchall()
    ]
    outcomes = []
    for file, file_id in zip(files, ids, strict=True):
        digest = sha256(file.path)
        if digest in loaded:
            outcomes.append(FileOutcome(file, file_id, digest, "duplicate", loaded[digest]))
        else:
            loaded[digest] = file_id
            outcomes.append(FileOutcome(file, file_id, digest, "loaded"))
    return outcomes


def _create_stage(con: duckdb.DuckDBPyConnection, source: Source) -> None:
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {stage_table(source)} AS "
        f"SELECT * FROM {source.table} LIMIT 0"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stage_rejects (_file_id BIGINT, _row_number BIGINT, "
        "column_name VARCHAR, rule VARCHAR, message VARCHAR, failures VARCHAR, raw_record VARCHAR)"
    )


def _batches(
    outcomes: list[FileOutcome],
    batch_rows: int,
    failures: list[tuple[str, str]],
    on_read: Callable[[int, int], None],
) -> Iterator[tuple[pl.DataFrame, dict[int, FileOutcome]]]:
    """Read files one by one; yield batches of about `batch_rows` rows, never splitting a file.
    `on_read(files, rows)` is told of every file read (for the run's progress)."""
    frames: list[pl.DataFrame] = []
    members: dict[int, FileOutcome] = {}
    rows = 0
    for outcome in outcomes:
        try:
            frame, extra = read(outcome.file, outcome.file_id)
        except FileRejected as exc:
            failures.append((exc.relpath, exc.message))
            on_read(1, 0)
            continue
        on_read(1, frame.height)
        outcome.rows_read = frame.height
        outcome.extra_columns = extra
        frames.append(frame)
        members[outcome.file_id] = outcome
        rows += frame.height
        if rows >= batch_rows:
            yield pl.concat(frames), members
            frames, members, rows = [], {}, 0
    if frames:
        yield pl.concat(frames), members


def _count(members: dict[int, FileOutcome], accepted: pl.DataFrame, rejected: pl.DataFrame) -> None:
    for frame, attr in ((accepted, "rows_accepted"), (rejected, "rows_rejected")):
        for file_id, n in frame.group_by(FILE_ID).len().iter_rows():
            setattr(members[file_id], attr, n)


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    if frame.height:
        con.register("_batch", frame.to_arrow())
        try:
            con.execute(f"INSERT INTO {table} SELECT * FROM _batch")
        finally:
            con.unregister("_batch")


def _reject_share_failures(
    con: duckdb.DuckDBPyConnection, outcomes: list[FileOutcome], max_share: float
) -> list[tuple[str, str]]:
    """One (file, message) per file whose share of rejected rows is above the threshold."""
    messages = []
    for o in outcomes:
        if o.rows_read and o.rows_rejected / o.rows_read > max_share:
            examples = con.execute(
                "SELECT _row_number, column_name, rule, message FROM stage_rejects "
                "WHERE _file_id = ? ORDER BY _row_number LIMIT ?",
                [o.file_id, MAX_LISTED_REJECTS],
            ).fetchall()
            listed = "; ".join(
                f"row {row}, column {col}, rule {rule} ({msg})" for row, col, rule, msg in examples
            )
            messages.append(
                (
                    o.file.relpath,
                    f"{o.rows_rejected} of {o.rows_read} rows rejected "
                    f"({o.rows_rejected / o.rows_read:.1%}, above the {max_share:.1%} allowed by "
                    f"validation.max_reject_share; rule max_reject_share), e.g. {listed}",
                )
            )
    return messages


def _failure_paragraph(source: Source, failures: list[tuple[str, str]]) -> str:
    listed = [f"{path}: {message}" for path, message in failures[:MAX_LISTED_FAILURES]]
    more = len(failures) - len(listed)
    text = (
        f"{len(failures)} {source.name} file(s) could not be loaded, so nothing from "
        f"{source.name} was loaded in this run: " + " | ".join(listed)
    )
    if more:
        text += f" | and {more} more (see audit.failed_files)"
    return text + ". Fix or remove the file(s) and run again; files already loaded are not re-read."


def _record_failures(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    failures: list[tuple[str, str]],
    run_id: str,
) -> None:
    now = dt.datetime.now()
    con.executemany(
        "INSERT INTO audit.failed_files VALUES (?, ?, ?, ?, ?)",
        [[source.name, path, message, run_id, now] for path, message in failures],
    )


def _commit(
    con: duckdb.DuckDBPyConnection, source: Source, outcome: SourceOutcome, run_id: str
) -> None:
    files = pl.DataFrame(
        [
            {
                "file_id": o.file_id,
                "source": source.name,
                "path": o.file.relpath,
                "sha256": o.sha256,
                "size_bytes": o.file.size,
                "modified_ns": o.file.modified_ns,
                "partition_day": o.file.day if source.daily else None,
                "status": o.status,
                "duplicate_of": o.duplicate_of,
                "rows_read": o.rows_read,
                "rows_accepted": o.rows_accepted,
                "rows_rejected": o.rows_rejected,
                "extra_columns": o.extra_columns,
            }
            for o in outcome.files
        ],
        schema={
            "file_id": pl.Int64,
            "source": pl.String,
            "path": pl.String,
            "sha256": pl.String,
            "size_bytes": pl.Int64,
            "modified_ns": pl.Int64,
            "partition_day": pl.Date,
            "status": pl.String,
            "duplicate_of": pl.Int64,
            "rows_read": pl.Int64,
            "rows_accepted": pl.Int64,
            "rows_rejected": pl.Int64,
            "extra_columns": pl.List(pl.String),
        },
    )
    key = ", ".join(source.key)
    key_match = " AND ".join(f"t.{k} = s.{k}" for k in source.key)
    merge = load_sql("ingest/merge").format(
        table=source.table, stage=stage_table(source), key=key, key_match=key_match
    )
    con.register("stage_files", files.to_arrow())
    try:
        con.execute("BEGIN TRANSACTION")
        _record_changed_periods(con, source, run_id, key_match)
        con.execute(merge)
        con.execute(load_sql("ingest/record_files"), {"run_id": run_id})
        con.execute(load_sql("ingest/record_rejects"), {"run_id": run_id})
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("stage_files")
        con.execute(f"DROP TABLE IF EXISTS {stage_table(source)}")
        con.execute("DROP TABLE IF EXISTS stage_rejects")


# The month of each source's rows (identifiers from the fixed contract, aliased `t`).
PERIOD_EXPR = {
    "sales_ledger": "strftime(t.posting_date, '%Y-%m')",
    "activities": "strftime(t.event_date, '%Y-%m')",
    "resources": "t.period",
}


def _record_changed_periods(
    con: duckdb.DuckDBPyConnection, source: Source, run_id: str, key_match: str
) -> None:
    """Note which months this source's new rows touch, before the merge replaces old versions."""
    if source is CUSTOMERS:
        con.execute(load_sql("ingest/changed_periods_customers"), {"run_id": run_id})
        return
    sql = load_sql("ingest/changed_periods").format(
        table=source.table,
        stage=stage_table(source),
        key_match=key_match,
        period_expr=PERIOD_EXPR[source.name],
    )
    con.execute(sql, {"source": source.name, "run_id": run_id})


def known_customers(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Customer ids in the master, for the ledger's customer_known rule."""
    return frozenset(r[0] for r in con.execute("SELECT customer_id FROM raw.customers").fetchall())
