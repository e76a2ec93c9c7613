"""The landing folder: finding each source's files, recognising them again, reading them as text.

A landing file is read with every value as a string, exactly as delivered; validation decides
what the values mean. Reading normalises only what is safe to normalise: header names (trimmed,
lower case), values (trimmed, empty means absent) and label columns (lower case).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pfd_pipeline.sources import Source
from pfd_pipeline.validation import FILE_ID, RAW_RECORD, ROW_NUMBER

SUFFIXES = {".csv": "csv", ".parquet": "parquet"}
_DAY_IN_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


class FileRejected(Exception):
    """A landing file that cannot be ingested at all; the message says why and what to do."""

    def __init__(self, relpath: str, message: str) -> None:
        super().__init__(f"{relpath}: {message}")
        self.relpath = relpath
        self.message = message


@dataclass(frozen=True)
class LandingFile:
    source: Source
    path: Path  # absolute
    relpath: str  # relative to the landing folder, with forward slashes
    size: int
    modified_ns: int
    day: dt.date  # the day the file belongs to: the date in its name, else its modification date

    @property
    def fingerprint(self) -> tuple[str, int, int]:
        """Cheap identity: a file with the same path, size and modification time is not re-read."""
        return (self.relpath, self.size, self.modified_ns)


def file_day(path: Path, modified_ns: int) -> dt.date:
    """The last YYYY-MM-DD in the file name, else the file's modification date (UTC)."""
    matches = _DAY_IN_NAME.findall(path.name)
    if matches:
        year, month, day = (int(x) for x in matches[-1])
        try:
            return dt.date(year, month, day)
        except ValueError as exc:
            raise FileRejected(
                path.name, f"the date in the file name is not a real date ({exc})"
            ) from exc
    return dt.datetime.fromtimestamp(modified_ns / 1e9, tz=dt.UTC).date()


def discover(landing_dir: Path, source: Source) -> list[LandingFile]:
    """Every CSV or Parquet file under landing/<source>/, oldest day first, then by name."""
    folder = landing_dir / source.name
    if not folder.is_dir():
        return []
    found = []
    for path in folder.rglob("*"):
        if not path.is_file() or path.suffix.lower() not in SUFFIXES or path.name.startswith("."):
            continue
        stat = path.stat()
        relpath = path.relative_to(landing_dir).as_posix()
        try:
            day = file_day(path, stat.st_mtime_ns)
        except FileRejected as exc:
            raise FileRejected(relpath, exc.message) from exc
        found.append(LandingFile(source, path, relpath, stat.st_size, stat.st_mtime_ns, day))
    return sorted(found, key=lambda f: (f.day, f.relpath))


def sha256(path: Path) -> str:
    """Content hash: the same bytes under another name are the same delivery."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read(file: LandingFile, file_id: int) -> tuple[pl.DataFrame, list[str]]:
    """The file's rows as normalised strings with _file_id, _row_number and _raw_record.

    Returns the frame (source columns in contract order, absent optional columns as nulls)
    and the names of columns the contract does not know (kept only inside _raw_record).
    Raises FileRejected when the file cannot be read or lacks a required column.
    """
    frame = _read_strings(file)
    frame = frame.rename({c: c.strip().lstrip("\ufeff").lower() for c in frame.columns})
    known = set(file.source.column_names)
    missing = [c for c in file.source.required_columns if c not in frame.columns]
    if missing:
        raise FileRejected(file.relpath, _missing_message(missing, frame.columns))
    extra = [c for c in frame.columns if c not in known]
    raw_record = pl.struct(pl.all()).struct.json_encode() if frame.width else pl.lit("{}")
    columns = []
    for col in file.source.columns:
        if col.name not in frame.columns:
            columns.append(pl.lit(None, dtype=pl.String).alias(col.name))
            continue
        value = pl.col(col.name).str.strip_chars()
        value = pl.when(value == "").then(None).otherwise(value)
        if col.lowercase:
            value = value.str.to_lowercase()
        columns.append(value.alias(col.name))
    out = frame.select(
        *columns,
        pl.lit(file_id, dtype=pl.Int64).alias(FILE_ID),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_NUMBER),
        raw_record.alias(RAW_RECORD),
    )
    return out, extra


def _read_strings(file: LandingFile) -> pl.DataFrame:
    kind = SUFFIXES[file.path.suffix.lower()]
    if file.size == 0:
        raise FileRejected(file.relpath, "the file is empty (0 bytes, not even a header row)")
    try:
        if kind == "parquet":
            frame = pl.read_parquet(file.path)
            return frame.select(pl.all().cast(pl.String))
        return pl.read_csv(
            file.path,
            infer_schema=False,
            encoding="utf8",
            empty_string_is_null=True,
            glob=False,
            raise_if_empty=True,
        )
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise FileRejected(file.relpath, _unreadable_message(file, kind, exc)) from exc


def _unreadable_message(file: LandingFile, kind: str, exc: Exception) -> str:
    if kind == "csv":
        try:
            text = file.path.read_bytes()
            text.decode("utf-8")
        except UnicodeDecodeError as bad:
            line = text[: bad.start].count(b"\n") + 1
            return (
                f"not valid UTF-8 text: byte 0x{text[bad.start]:02x} on line {line} "
                "cannot be decoded; re-export the file as UTF-8"
            )
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"cannot be read as {kind.upper()}: {detail}"


def _missing_message(missing: list[str], found: list[str]) -> str:
    message = f"required column(s) {', '.join(missing)} missing; the header has {found}"
    if len(found) == 1 and any(sep in found[0] for sep in ";\t|"):
        message += " (a single column: is the delimiter something other than a comma?)"
    return message
