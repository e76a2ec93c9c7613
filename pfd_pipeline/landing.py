"""The landing folder: finding each source's files, recognising them again, reading them as text.

A landing file is read with every value as a string, exactly as delivered; validation decides
what the values mean. Reading normalises only what is safe to normalise: header names (trimmed,
lower case), values (trimmed, empty means absent) and label columns (lower case). Blank lines of
a CSV file (every value empty) are not rows: they are skipped, but still counted in the row
numbers, so that row N stays line N + 1 of a file without line breaks inside quoted values.

A file that cannot be read as a whole raises FileRejected naming the file, the rule it broke
(FILE_RULES) and, where there is one, the row and column.
"""

from __future__ import annotations

import csv
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
_POLARS_DUPLICATE = re.compile(r"(.*)_duplicated_\d+")  # polars' name for a repeated header
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

# Every rule a whole file can break, with what it asks for (see also ingest.max_reject_share).
FILE_RULES: dict[str, str] = {
    "not_empty": "a file holds at least a header row",
    "utf8": "a CSV file is UTF-8 text",
    "csv_syntax": "a CSV file is well-formed: every quote is closed",
    "row_width": "no CSV row has more values than the header has columns",
    "readable": "the file can be read as CSV or Parquet",
    "unique_columns": "no column appears twice in the header (names compared case-insensitively)",
    "required_columns": "the header has every required column of the source",
    "date_in_name": "a YYYY-MM-DD in the file name is a real date",
    "max_reject_share": "at most validation.max_reject_share of a file's rows are rejected",
}


class FileRejected(Exception):
    """A landing file that cannot be ingested at all; the message says why, what to do, and
    names the rule (one of FILE_RULES)."""

    def __init__(self, relpath: str, reason: str, rule: str) -> None:
        if rule not in FILE_RULES:
            raise KeyError(rule)
        self.relpath = relpath
        self.reason = reason
        self.rule = rule
        self.message = f"{reason} (rule {rule})"
        super().__init__(f"{relpath}: {self.message}")


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
                path.name, f"the date in the file name is not a real date ({exc})", "date_in_name"
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
            raise FileRejected(relpath, exc.reason, exc.rule) from exc
        found.append(LandingFile(source, path, relpath, stat.st_size, stat.st_mtime_ns, day))
    return sorted(found, key=lambda f: (f.day, f.relpath))


# A file up to this size is read into memory once, for its hash and its rows (see `content`).
IN_MEMORY_BYTES = 256 << 20
# Bytes that can put whitespace at the edge of a value (space, tab, vertical tab, form feed), or
# line breaks inside one (a quote); a carriage return is checked apart (see `needs_trimming`).
_EDGE_BYTES = (b" ", b"\t", b"\x0b", b"\x0c", b'"')


def content(file: LandingFile) -> bytes | None:
    """The bytes of a CSV file small enough to hold (IN_MEMORY_BYTES), so that hashing and
    reading it read the disk once; None for a larger file or a Parquet file."""
    if SUFFIXES[file.path.suffix.lower()] != "csv" or file.size > IN_MEMORY_BYTES:
        return None
    return file.path.read_bytes()


def needs_trimming(data: bytes) -> bool:
    """Whether any value of a CSV file with these bytes could start or end with whitespace.

    Not when the file is ASCII (non-ASCII whitespace such as a no-break space is multi-byte) and
    has no space, tab, vertical tab, form feed or quote, and every carriage return ends a line
    (CRLF): then the only whitespace is the line breaks between rows. Five byte searches and
    an ASCII test cost about 2 ms for 10 MB, where trimming every value of such a file costs
    about 20 ms.
    """
    if not data.isascii() or any(b in data for b in _EDGE_BYTES):
        return True
    return b"\r" in data and data.count(b"\r") != data.count(b"\r\n")


def sha256(path: Path, data: bytes | None = None) -> str:
    """Content hash: the same bytes under another name are the same delivery. `data`: the file's
    bytes, when the caller holds them."""
    if data is not None:
        return hashlib.sha256(data).hexdigest()
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
    rows = read_rows(file, file_id)
    record = raw_records(rows.delivered, rows.frame.get_column(ROW_NUMBER))
    return rows.frame.with_columns(record.alias(RAW_RECORD)), rows.extra


@dataclass(frozen=True)
class FileRows:
    """A file read for validation: normalised rows, and the rows as delivered."""

    frame: pl.DataFrame  # contract columns as normalised strings, _file_id, _row_number
    extra: list[str]  # columns the contract does not know
    delivered: pl.DataFrame  # every column as written (header names normalised), blank rows too


def read_rows(file: LandingFile, file_id: int, data: bytes | None = None) -> FileRows:
    """Like `read`, without the raw record: ingestion builds it only for the rows it rejects
    (`raw_records`), which saves encoding every accepted row as JSON. `data`: the bytes of a CSV
    file, when the caller has read them (`content`); values are then trimmed only if the bytes
    say that some may need it (`needs_trimming`)."""
    frame = _read_strings(file, data)
    trim = data is None or needs_trimming(data)
    frame = frame.rename(dict(zip(frame.columns, _header(file, frame.columns), strict=True)))
    known = set(file.source.column_names)
    missing = [c for c in file.source.required_columns if c not in frame.columns]
    if missing:
        raise FileRejected(
            file.relpath, _missing_message(missing, frame.columns), "required_columns"
        )
    extra = [c for c in frame.columns if c not in known]
    columns = []
    for col in file.source.columns:
        if col.name not in frame.columns:
            columns.append(pl.lit(None, dtype=pl.String).alias(col.name))
            continue
        # read_csv already makes an empty value null; trimming can leave another empty one
        value = pl.col(col.name)
        if trim:
            value = value.str.strip_chars().replace("", None)
        if col.lowercase and _has_upper_case(frame.get_column(col.name)):
            value = value.str.to_lowercase()
        columns.append(value.alias(col.name))
    out = frame.select(
        *columns,
        pl.lit(file_id, dtype=pl.Int64).alias(FILE_ID),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_NUMBER),
    )
    if SUFFIXES[file.path.suffix.lower()] == "csv" and frame.width:
        # A blank line (or one of only commas and spaces) is no row; it keeps its row number.
        # The contract columns are already trimmed (empty = null); only extra columns need it.
        present = [c for c in file.source.column_names if c in frame.columns]
        blank = pl.all_horizontal(
            *(pl.col(c).is_null() for c in present),
            *(pl.col(c).str.strip_chars().fill_null("") == "" for c in extra),
        )
        values = pl.concat([out.select(present), frame.select(extra)], how="horizontal")
        keep = ~values.select(blank).to_series()
        if not keep.all():
            out = out.filter(keep)
    return FileRows(out, extra, frame)


def _has_upper_case(values: pl.Series) -> bool:
    """Whether lower-casing would change any value, tested on the distinct values: a day's file
    holds a handful of labels, and lower-casing every row took 50-120 ns a row (a file of
    201,000 events: 38 ms for its three label columns, 7 ms to find them lower case already)."""
    distinct = values.drop_nulls().unique()
    return bool((distinct.str.to_lowercase() != distinct).any())


def raw_records(delivered: pl.DataFrame, row_numbers: pl.Series) -> pl.Series:
    """The rows (1 = first after the header) as delivered, each as a JSON object."""
    if not delivered.width:
        return pl.Series(RAW_RECORD, ["{}"] * len(row_numbers), dtype=pl.String)
    return (
        delivered.select(pl.all().gather(row_numbers - 1))
        .select(pl.struct(pl.all()).struct.json_encode().alias(RAW_RECORD))
        .to_series()
    )


def _header(file: LandingFile, columns: list[str]) -> list[str]:
    """Header names trimmed and lower case; a name that appears twice rejects the file."""
    written, names = [], []
    for name in columns:
        repeated = _POLARS_DUPLICATE.fullmatch(name)  # polars renames `a,a` to a, a_duplicated_0
        if repeated and repeated.group(1) in columns:
            name = repeated.group(1)
        written.append(name)
        names.append(name.strip().lstrip("\ufeff").strip().lower())
    twice = [n for n in dict.fromkeys(names) if names.count(n) > 1]
    if twice:
        listed = "; ".join(
            f"{n} (as {', '.join(repr(w) for w, m in zip(written, names, strict=True) if m == n)})"
            for n in twice
        )
        raise FileRejected(
            file.relpath,
            f"the header names a column more than once: {listed}; which value counts would be "
            "a guess",
            "unique_columns",
        )
    return names


def _read_strings(file: LandingFile, data: bytes | None = None) -> pl.DataFrame:
    kind = SUFFIXES[file.path.suffix.lower()]
    if file.size == 0 or data == b"":
        raise FileRejected(
            file.relpath, "the file is empty (0 bytes, not even a header row)", "not_empty"
        )
    if kind == "csv":
        _check_header_encoding(file, data)
    try:
        if kind == "parquet":
            frame = pl.read_parquet(file.path)
            return frame.select(pl.all().cast(pl.String))
        return pl.read_csv(
            file.path if data is None else data,
            infer_schema=False,
            encoding="utf8",
            empty_string_is_null=True,
            glob=False,
            raise_if_empty=True,
        )
    except pl.exceptions.NoDataError as exc:
        raise FileRejected(
            file.relpath, "the file has no header row (only blank lines)", "not_empty"
        ) from exc
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise _unreadable(file, kind, exc) from exc


def _check_header_encoding(file: LandingFile, data: bytes | None = None) -> None:
    """polars decodes the header leniently (only values strictly): check the first line here."""
    if data is None:
        with file.path.open("rb") as handle:
            head = handle.read(1 << 16)
    else:
        head = data[: 1 << 16]
    if head.startswith(_UTF16_BOMS):
        raise FileRejected(
            file.relpath,
            "not valid UTF-8 text: the file starts with a UTF-16 byte order mark; "
            "re-export the file as UTF-8",
            "utf8",
        )
    first_line = head.split(b"\n", 1)[0]
    if len(first_line) == len(head) and len(head) == 1 << 16:
        return  # a header longer than 64 KiB: left to the reader
    try:
        first_line.decode("utf-8")
    except UnicodeDecodeError as bad:
        raise FileRejected(
            file.relpath,
            f"not valid UTF-8 text: byte 0x{first_line[bad.start]:02x} in the header (line 1) "
            "cannot be decoded; re-export the file as UTF-8",
            "utf8",
        ) from None


def _unreadable(file: LandingFile, kind: str, exc: Exception) -> FileRejected:
    """Why a file cannot be read, with the row (and column) where it can be found."""
    if kind == "csv":
        text = file.path.read_bytes()
        try:
            text.decode("utf-8")
        except UnicodeDecodeError as bad:
            line = text[: bad.start].count(b"\n") + 1
            where = _lossy_cell(file)
            return FileRejected(
                file.relpath,
                f"not valid UTF-8 text: byte 0x{text[bad.start]:02x} on line {line}{where} "
                "cannot be decoded; re-export the file as UTF-8",
                "utf8",
            )
        problem = _csv_problem(file)
        if problem is not None:
            return FileRejected(file.relpath, *problem)
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return FileRejected(file.relpath, f"cannot be read as {kind.upper()}: {detail}", "readable")


def _lossy_cell(file: LandingFile) -> str:
    """' (row N, column C)' of the first value holding an undecodable byte, if it can be told."""
    try:
        frame = pl.read_csv(
            file.path, infer_schema=False, encoding="utf8-lossy", glob=False, raise_if_empty=False
        )
    except pl.exceptions.PolarsError:
        return ""
    first: tuple[int, str] | None = None
    for name in frame.columns:
        hits = frame[name].str.contains("\ufffd", literal=True).arg_true()
        if hits.len() and (first is None or hits[0] < first[0]):
            first = (hits[0], name)
    if first is None:
        return ""
    return f" (row {first[0] + 1}, column {first[1].strip().lower()})"


def _csv_problem(file: LandingFile) -> tuple[str, str] | None:
    """(reason, rule) for the first row that breaks the CSV syntax, read again with Python's csv
    module (only when polars has refused the file, to say where)."""
    with file.path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        row = 0
        try:
            width = len(next(reader, []))
            for row, record in enumerate(reader, start=1):  # noqa: B007 (row used after)
                if len(record) > width:
                    return (
                        f"row {row} has {len(record)} values but the header has {width} "
                        "columns; is a value with a comma in it not quoted?",
                        "row_width",
                    )
        except csv.Error as exc:
            return (
                f"row {row + 1} cannot be parsed as CSV: {exc} (read up to line "
                f"{reader.line_num}); is a quote opened and never closed?",
                "csv_syntax",
            )
    return None


def _missing_message(missing: list[str], found: list[str]) -> str:
    message = f"required column(s) {', '.join(missing)} missing; the header has {found}"
    if len(found) == 1 and any(sep in found[0] for sep in ";\t|"):
        message += " (a single column: is the delimiter something other than a comma?)"
    return message
