"""Ingestion of the hand-made landing fixture in tests/fixtures/tiny gives exact counts.

What the fixture holds (see the files):
- customers: 3 good rows.
- sales_ledger_2025-01-02: L1, L2 good; L3 an invoice with quantity -1; L4 an unknown customer.
- sales_ledger_2025-01-03: L5 discount above gross; L6 a good credit note; L7 first with the
  impossible date 2025-02-30, then again correctly; L2 again with a corrected discount (the later
  file wins); an extra column `note`.
- redelivered_copy_2025-01-04: byte-identical to the 01-02 file under another name.
- activities: E4 without quantity (defaults to 1); E5 for an unknown customer (kept: its cost is
  reported as unassigned later); E6 with quantity 0.
- resources: 3 good rows, logistics without capacity.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import threading
import time
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from pfd_pipeline import ingest, landing, warehouse
from pfd_pipeline.ingest import IngestError, ingest_source, known_customers
from pfd_pipeline.sources import ACTIVITIES, CUSTOMERS, RESOURCES, SALES_LEDGER, SOURCES
from pfd_pipeline.validation import ValidationContext

FIXTURE = Path(__file__).parent / "fixtures" / "tiny"
AS_OF = dt.date(2025, 1, 5)


@pytest.fixture
def landing_dir(tmp_path: Path) -> Path:
    target = tmp_path / "landing"
    shutil.copytree(FIXTURE, target)
    return target


@pytest.fixture
def con(tmp_path: Path):
    connection = warehouse.connect(tmp_path / "wh" / "work.duckdb")
    warehouse.ensure_schema(connection)
    yield connection
    connection.close()


def _ingest(con, landing_dir, source, *, max_share=0.6, run_id="run-1"):
    ctx = ValidationContext(
        as_of=AS_OF,
        known_customers=known_customers(con) if source is SALES_LEDGER else None,
    )
    return ingest_source(
        con,
        source,
        landing.discover(landing_dir, source),
        ctx,
        run_id=run_id,
        batch_rows=4,  # small batches: files are grouped across batches in the test too
        max_reject_share=max_share,
    )


def _ingest_all(con, landing_dir, **kwargs):
    return {
        s.name: _ingest(con, landing_dir, s, **kwargs)
        for s in (CUSTOMERS, RESOURCES, SALES_LEDGER, ACTIVITIES)
    }


def test_fixture_counts_per_file(con, landing_dir):
    _ingest_all(con, landing_dir)
    files = con.execute(
        "SELECT path, status, duplicate_of IS NOT NULL, rows_read, rows_accepted, rows_rejected, "
        "extra_columns FROM audit.ingested_files ORDER BY file_id"
    ).fetchall()
    assert files == [
        ("customers/customers_2025-01-01.csv", "loaded", False, 3, 3, 0, []),
        ("resources/resources_2025-01.csv", "loaded", False, 3, 3, 0, []),
        ("sales_ledger/sales_ledger_2025-01-02.csv", "loaded", False, 4, 2, 2, []),
        ("sales_ledger/sales_ledger_2025-01-03.csv", "loaded", False, 5, 3, 2, ["note"]),
        ("sales_ledger/redelivered_copy_2025-01-04.csv", "duplicate", True, 0, 0, 0, []),
        ("activities/activities_2025-01-02.csv", "loaded", False, 6, 5, 1, []),
    ]


def test_fixture_rejected_rows_name_file_row_column_rule(con, landing_dir):
    _ingest_all(con, landing_dir)
    rejects = con.execute(
        "SELECT source, path, row_number, column_name, rule FROM audit.rejected_rows "
        "ORDER BY file_id, row_number"
    ).fetchall()
    assert rejects == [
        (
            "sales_ledger",
            "sales_ledger/sales_ledger_2025-01-02.csv",
            3,
            "quantity",
            "invoice_quantity_positive",
        ),
        (
            "sales_ledger",
            "sales_ledger/sales_ledger_2025-01-02.csv",
            4,
            "customer_id",
            "customer_known",
        ),
        (
            "sales_ledger",
            "sales_ledger/sales_ledger_2025-01-03.csv",
            1,
            "discount_amount",
            "discount_not_above_gross",
        ),
        (
            "sales_ledger",
            "sales_ledger/sales_ledger_2025-01-03.csv",
            3,
            "posting_date",
            "valid_date",
        ),
        ("activities", "activities/activities_2025-01-02.csv", 6, "quantity", "quantity_positive"),
    ]
    raw = con.execute(
        "SELECT raw_record FROM audit.rejected_rows WHERE rule = 'valid_date'"
    ).fetchall()[0][0]
    assert json.loads(raw)["posting_date"] == "2025-02-30"
    assert json.loads(raw)["line_id"] == "L7"


def test_fixture_raw_tables_hold_latest_version_with_exact_money(con, landing_dir):
    _ingest_all(con, landing_dir)
    ledger = con.execute(
        "SELECT line_id, document_type, quantity, gross_amount, discount_amount, channel, "
        "off_invoice_amount FROM raw.sales_ledger ORDER BY line_id"
    ).fetchall()
    assert ledger == [
        (
            "L1",
            "invoice",
            Decimal("10.0000"),
            Decimal("100.00"),
            Decimal("5.00"),
            "edi",
            Decimal("0.00"),
        ),
        # corrected in the 01-03 file: the later delivery replaces the earlier one
        (
            "L2",
            "invoice",
            Decimal("2.0000"),
            Decimal("50.50"),
            Decimal("1.50"),
            "edi",
            Decimal("0.00"),
        ),
        (
            "L6",
            "credit_note",
            Decimal("-1.0000"),
            Decimal("-10.00"),
            Decimal("-0.50"),
            "edi",
            Decimal("0.00"),
        ),
        (
            "L7",
            "invoice",
            Decimal("1.0000"),
            Decimal("10.00"),
            Decimal("0.00"),
            "web",
            Decimal("1.00"),
        ),
    ]
    events = con.execute(
        "SELECT event_id, customer_id, activity, quantity, minutes, amount, flags "
        "FROM raw.activity_events ORDER BY event_id"
    ).fetchall()
    assert [e[0] for e in events] == ["E1", "E2", "E3", "E4", "E5"]
    assert events[3][3] == Decimal("1.0000")  # absent quantity defaults to one driver unit
    assert events[3][4] == Decimal("25.50")
    assert events[2][5] == Decimal("45.10") and events[2][6] == "rush"
    assert events[4][1] == "C404"  # unknown customer kept, for the cost engine to report
    capacity = con.execute(
        "SELECT resource, cost_amount, practical_capacity_minutes FROM raw.resource_costs "
        "ORDER BY resource"
    ).fetchall()
    assert capacity == [
        ("customer_service", Decimal("25000.00"), Decimal("16000.00")),
        ("logistics", Decimal("12000.00"), None),
        ("warehouse", Decimal("40000.00"), Decimal("24000.00")),
    ]


def test_second_ingest_of_same_folder_changes_nothing(con, landing_dir):
    _ingest_all(con, landing_dir)
    before = {
        s.table: con.execute(f"SELECT * FROM {s.table} ORDER BY ALL").fetchall()
        for s in SOURCES.values()
    }
    outcomes = _ingest_all(con, landing_dir, run_id="run-2")
    assert all(o.files == [] for o in outcomes.values())
    assert outcomes["sales_ledger"].skipped == 3
    after = {
        s.table: con.execute(f"SELECT * FROM {s.table} ORDER BY ALL").fetchall()
        for s in SOURCES.values()
    }
    assert after == before
    assert con.execute("SELECT count(*) FROM audit.ingested_files").fetchall()[0][0] == 6


def test_same_content_under_new_name_is_a_duplicate(con, landing_dir):
    _ingest_all(con, landing_dir)
    shutil.copy(
        landing_dir / "activities" / "activities_2025-01-02.csv",
        landing_dir / "activities" / "resent_activities_2025-01-06.csv",
    )
    outcome = _ingest(con, landing_dir, ACTIVITIES, run_id="run-2")
    assert [(f.status, f.rows_read) for f in outcome.files] == [("duplicate", 0)]
    assert con.execute("SELECT count(*) FROM raw.activity_events").fetchall()[0][0] == 5


def test_key_repeated_in_a_later_file_of_the_run_keeps_the_latest(con, landing_dir):
    """Only files whose key ranges overlap are grouped for repeats: a correction two files later,
    past a file whose range lies between, still replaces the first version; files whose ranges
    touch no other keep every row."""
    _ingest(con, landing_dir, CUSTOMERS)
    folder = landing_dir / "sales_ledger"
    for path in folder.iterdir():
        path.unlink()
    header = "line_id,document_id,document_type,posting_date,customer_id,product_id,quantity,"
    header += "gross_amount,discount_amount,cogs_amount,currency\n"
    days = {
        "2025-01-02": ["K1,D1,invoice,2025-01-02,C001,P1,1,10.00,0.00,5.00,USD"],
        "2025-01-03": ["M1,D2,invoice,2025-01-03,C001,P1,1,20.00,0.00,5.00,USD"],
        "2025-01-04": ["K1,D1,invoice,2025-01-02,C001,P1,1,11.00,0.00,5.00,USD"],
        "2025-01-05": ["N1,D3,invoice,2025-01-04,C002,P1,1,30.00,0.00,5.00,USD"],
    }
    for day, lines in days.items():
        (folder / f"sales_ledger_{day}.csv").write_text(header + "\n".join(lines) + "\n")
    outcome = _ingest(con, landing_dir, SALES_LEDGER)
    rows = con.execute(
        "SELECT line_id, gross_amount FROM raw.sales_ledger ORDER BY line_id"
    ).fetchall()
    assert rows == [("K1", Decimal("11.00")), ("M1", Decimal("20.00")), ("N1", Decimal("30.00"))]
    # the files grouped for repeats, from the ranges taken while validating: the two files of
    # K1 (M1's file lies inside their range, N1's outside); and the run's key range
    ids = {o.file.day.isoformat(): o.file_id for o in outcome.files}
    assert {o.file_id: (o.key_low, o.key_high) for o in outcome.files} == {
        ids["2025-01-02"]: ("K1", "K1"),
        ids["2025-01-03"]: ("M1", "M1"),
        ids["2025-01-04"]: ("K1", "K1"),
        ids["2025-01-05"]: ("N1", "N1"),
    }
    assert ingest.overlapping_files(outcome.files) == [ids["2025-01-02"], ids["2025-01-04"]]
    assert ingest.run_key_range(outcome.files) == {"low": "K1", "high": "N1"}


def test_key_ranges_of_a_batch_per_file():
    """Each file's lowest and highest key among the accepted rows of a batch, its rows in one run
    or (not as batches are made, yet merged all the same) in several."""
    files = {i: ingest.FileOutcome(None, i, "", "loaded") for i in (7, 8, 9)}  # type: ignore[arg-type]
    accepted = pl.DataFrame(
        {"line_id": ["L06", "L01", "L09", "L04", "L03", "L05"], "_file_id": [7, 7, 8, 8, 7, 7]}
    )
    ingest._key_ranges(files, accepted, "line_id")
    ingest._key_ranges(files, accepted.clear(), "line_id")
    assert {i: (f.key_low, f.key_high) for i, f in files.items()} == {
        7: ("L01", "L06"),
        8: ("L04", "L09"),
        9: (None, None),
    }


@pytest.mark.parametrize("seed", range(20))
def test_overlapping_files_are_those_sharing_part_of_their_key_range(seed):
    """The files whose key ranges overlap another's, found by one sweep over the ranges sorted,
    are those that a comparison of every pair finds (what the SQL over the raw rows did):
    ranges nested, touching at one key, equal, apart, of one key; files without accepted rows
    and duplicates left out."""
    rng = random.Random(seed)
    files = []
    for file_id in range(1, rng.randint(1, 30)):
        low = rng.randint(0, 60)
        high = low + rng.choice([0, 0, 1, 3, 10, 40])
        status = "duplicate" if rng.random() < 0.1 else "loaded"
        empty = rng.random() < 0.1
        files.append(
            ingest.FileOutcome(
                file=None,
                file_id=file_id,
                sha256="",
                status=status,
                key_low=None if empty else f"K{low:03d}",
                key_high=None if empty else f"K{high:03d}",
            )
        )
    ranged = [f for f in files if f.status == "loaded" and f.key_low is not None]
    expected = sorted(
        {
            a.file_id
            for a in ranged
            for b in ranged
            if a is not b and a.key_low <= b.key_high and b.key_low <= a.key_high
        }
    )
    assert ingest.overlapping_files(files) == expected


def test_reject_share_above_threshold_fails_and_loads_nothing(con, landing_dir):
    _ingest(con, landing_dir, CUSTOMERS)
    with pytest.raises(IngestError) as failure:
        _ingest(con, landing_dir, SALES_LEDGER, max_share=0.05)
    message = str(failure.value)
    assert "sales_ledger/sales_ledger_2025-01-02.csv: 2 of 4 rows rejected" in message
    assert "row 3, column quantity, rule invoice_quantity_positive" in message
    assert "validation.max_reject_share" in message
    assert con.execute("SELECT count(*) FROM raw.sales_ledger").fetchall()[0][0] == 0
    failed = con.execute("SELECT source, path FROM audit.failed_files ORDER BY path").fetchall()
    assert failed == [
        ("sales_ledger", "sales_ledger/sales_ledger_2025-01-02.csv"),
        ("sales_ledger", "sales_ledger/sales_ledger_2025-01-03.csv"),
    ]


def test_failed_load_after_committed_batches_keeps_only_the_earlier_rows(con, landing_dir):
    """Batches commit one by one; a file failing later takes this run's rows out again."""
    _ingest(con, landing_dir, CUSTOMERS)
    _ingest(con, landing_dir, ACTIVITIES)
    before = con.execute("SELECT * FROM raw.activity_events ORDER BY event_id").fetchall()
    late = landing_dir / "activities" / "activities_2025-01-03.csv"
    late.write_text(
        "event_id,event_date,customer_id,activity,quantity\n"
        "E7,2025-01-03,C001,order_entry,2\n"  # a good row, in a batch of its own
        "E8,2025-01-03,C001,order_entry,0\n"
        "E9,2025-01-03,C001,order_entry,0\n"
        "E1,2025-01-03,C001,order_entry,0\n",
        encoding="utf-8",
    )
    with pytest.raises(IngestError, match="3 of 4 rows rejected"):
        _ingest(con, landing_dir, ACTIVITIES, max_share=0.5, run_id="run-2")
    after = con.execute("SELECT * FROM raw.activity_events ORDER BY event_id").fetchall()
    assert after == before


def test_rows_of_a_killed_load_are_discarded_by_the_next_one(con, landing_dir):
    """A process killed between batch commits leaves rows of files it never recorded."""
    _ingest(con, landing_dir, CUSTOMERS)
    outcome = _ingest(con, landing_dir, ACTIVITIES)
    recorded = max(f.file_id for f in outcome.files)
    con.execute(
        "INSERT INTO raw.activity_events (event_id, event_date, customer_id, activity, quantity, "
        "_file_id, _row_number) VALUES ('E99', DATE '2025-01-02', 'C001', 'order_entry', 1, ?, 1)",
        [recorded + 5],
    )
    before = con.execute("SELECT count(*) FROM raw.activity_events").fetchall()[0][0]
    late = landing_dir / "activities" / "activities_2025-01-04.csv"
    late.write_text(
        "event_id,event_date,customer_id,activity\nE10,2025-01-04,C001,order_entry\n",
        encoding="utf-8",
    )
    _ingest(con, landing_dir, ACTIVITIES, run_id="run-2")
    ids = [r[0] for r in con.execute("SELECT event_id FROM raw.activity_events").fetchall()]
    assert "E99" not in ids and "E10" in ids
    assert len(ids) == before  # E99 out, E10 in


def test_unreadable_file_fails_with_its_name_and_reason(con, landing_dir):
    bad = landing_dir / "activities" / "activities_2025-01-03.csv"
    bad.write_bytes(b"event_id;event_date;customer_id;activity\nE9;2025-01-03;C001;delivery\n")
    with pytest.raises(IngestError) as failure:
        _ingest(con, landing_dir, ACTIVITIES)
    message = str(failure.value)
    assert "activities/activities_2025-01-03.csv: required column(s) event_id" in message
    assert "delimiter" in message
    assert con.execute("SELECT count(*) FROM raw.activity_events").fetchall()[0][0] == 0


def test_non_utf8_file_names_the_line(con, landing_dir):
    bad = landing_dir / "customers" / "customers_2025-01-02.csv"
    bad.write_bytes(
        b"customer_id,customer_name,segment,region,acquired_on\n"
        b"C009,Caf\xe9 Delta,Hospitality,East,2024-01-01\n"
    )
    with pytest.raises(IngestError, match=r"not valid UTF-8 text: byte 0xe9 on line 2"):
        _ingest(con, landing_dir, CUSTOMERS)


def test_parquet_landing_file_loads_like_csv(con, landing_dir):
    csv = landing_dir / "resources" / "resources_2025-01.csv"
    frame = pl.read_csv(csv, schema_overrides={"cost_amount": pl.Decimal(18, 2)})
    csv.unlink()
    frame.with_columns(pl.col("period").str.replace("01", "02")).write_parquet(
        landing_dir / "resources" / "resources_2025-02.parquet"
    )
    outcome = _ingest(con, landing_dir, RESOURCES)
    assert (outcome.rows_read, outcome.rows_accepted) == (3, 3)
    assert con.execute(
        "SELECT sum(cost_amount) FROM raw.resource_costs WHERE period = '2025-02'"
    ).fetchall()[0][0] == Decimal("77000.00")


def _activity_files(folder: Path, days: int) -> None:
    """One activity file a day, three rows each; every third day's second row is rejected."""
    for day in range(1, days + 1):
        rows = [
            f"E{day}01,2025-01-{day:02d},C001,order_entry,1",
            f"E{day}02,2025-01-{day:02d},C002,order_entry,{0 if day % 3 == 0 else 2}",
            f"E{day}03,2025-01-{day:02d},C003,order_entry,3",
        ]
        (folder / f"activities_2025-01-{day:02d}.csv").write_text(
            "event_id,event_date,customer_id,activity,quantity\n" + "\n".join(rows) + "\n",
            encoding="utf-8",
        )


def _load_activities(con, landing_dir: Path, batch_rows: int):
    ctx = ValidationContext(as_of=dt.date(2025, 2, 1))
    files = landing.discover(landing_dir, ACTIVITIES)
    return ingest_source(
        con, ACTIVITIES, files, ctx, run_id="r", batch_rows=batch_rows, max_reject_share=0.5
    )


def _assert_run_fails_and_leaves_nothing(con, landing_dir: Path) -> None:
    """The load of one-file batches fails with "disk full" and leaves no row and no file."""
    with pytest.raises(RuntimeError, match="disk full"):
        _load_activities(con, landing_dir, batch_rows=1)
    time.sleep(1)  # a batch appended after the deletion would show now
    assert con.execute("SELECT count(*) FROM raw.activity_events").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM audit.ingested_files").fetchall() == [(0,)]
    con.close()


def test_batches_on_two_workers_load_what_one_batch_loads(tmp_path):
    """Batches are validated and appended two at a time, each on its own cursor: a file per
    batch gives the same rows, counts and rejects as one batch of everything."""
    results = []
    for batch_rows in (1, 10**6):
        landing_dir = tmp_path / f"landing-{batch_rows}"
        (landing_dir / "activities").mkdir(parents=True)
        _activity_files(landing_dir / "activities", days=20)
        con = warehouse.connect(tmp_path / f"wh-{batch_rows}" / "work.duckdb")
        warehouse.ensure_schema(con)
        outcome = _load_activities(con, landing_dir, batch_rows)
        results.append(
            (
                [(o.rows_read, o.rows_accepted, o.rows_rejected) for o in outcome.files],
                con.execute(
                    "SELECT * EXCLUDE (_file_id) FROM raw.activity_events ORDER BY event_id"
                ).fetchall(),
                con.execute(
                    "SELECT f.path, r.row_number, r.column_name, r.rule "
                    "FROM audit.rejected_rows AS r JOIN audit.ingested_files AS f USING (file_id) "
                    "ORDER BY ALL"
                ).fetchall(),
            )
        )
        con.close()
    (counts, rows, rejects), expected = results
    assert (counts, rows, rejects) == expected
    assert len(rows) == 54 and len(rejects) == 6
    assert counts[2] == (3, 2, 1)


def test_a_batch_failing_on_a_worker_takes_the_run_out_again(tmp_path, monkeypatch):
    """When one worker fails, the other finishes its batch before the run's rows are deleted,
    and the error reaches the caller."""
    landing_dir = tmp_path / "landing"
    (landing_dir / "activities").mkdir(parents=True)
    _activity_files(landing_dir / "activities", days=8)
    con = warehouse.connect(tmp_path / "wh" / "work.duckdb")
    warehouse.ensure_schema(con)
    real, calls, sixth_started = ingest.validate, [], threading.Event()

    def failing(source, frame, ctx):
        calls.append(frame.height)
        if len(calls) == 5:
            sixth_started.wait(timeout=30)  # the next batch starts on the other worker
            raise RuntimeError("disk full")
        if len(calls) == 6:  # still validating when the other batch fails
            sixth_started.set()
            time.sleep(0.5)
        return real(source, frame, ctx)

    monkeypatch.setattr(ingest, "validate", failing)
    _assert_run_fails_and_leaves_nothing(con, landing_dir)
    assert len(calls) == 6


def test_a_failure_recording_rejects_waits_for_the_workers(tmp_path, monkeypatch):
    """The rejects are recorded by the caller while the workers go on; when that fails, the
    batch still appending finishes before the run's rows are deleted."""
    landing_dir = tmp_path / "landing"
    (landing_dir / "activities").mkdir(parents=True)
    _activity_files(landing_dir / "activities", days=8)  # day 3 has the first rejected row
    con = warehouse.connect(tmp_path / "wh" / "work.duckdb")
    warehouse.ensure_schema(con)
    real_validate, real_insert, calls = ingest.validate, ingest._insert, []

    def slow_fourth(source, frame, ctx):
        calls.append(frame.height)
        if len(calls) == 4:  # on the other worker when day 3's rejects are recorded
            time.sleep(0.5)
        return real_validate(source, frame, ctx)

    def failing_insert(con, table, frame):
        if table == "stage_rejects" and frame.height:
            raise RuntimeError("disk full")
        real_insert(con, table, frame)

    monkeypatch.setattr(ingest, "validate", slow_fourth)
    monkeypatch.setattr(ingest, "_insert", failing_insert)
    _assert_run_fails_and_leaves_nothing(con, landing_dir)
    assert len(calls) == 4


def test_key_unique_check_groups_the_files_whose_key_ranges_overlap():
    """The check after the merge: a key in two of the run's files is found (their key ranges
    overlap, so their keys are grouped); files of disjoint ranges cannot share a key. Rows of an
    earlier run (file 1) are compared with the run's by their keys, not by ranges."""
    from pfd_pipeline.assets.ingest import _check_results

    con = warehouse.connect(Path(":memory:"))
    warehouse.ensure_schema(con)
    con.execute(
        "insert into raw.customers values ('C1', 'One', 'Retail', 'North', '2024-01-01', 1, 1)"
    )

    ranges: dict[int, tuple[str, str]] = {}  # what validating the file would have taken

    def lines(file_id: int, *ids: str) -> None:
        ranges[file_id] = (min(ids), max(ids))
        for n, line_id in enumerate(ids, 1):
            con.execute(
                "insert into raw.sales_ledger values (?, 'D1', 'invoice', '2025-01-02', 'C1', "
                "'P1', 1, 10, 0, 5, 'EUR', 'web', 0, ?, ?)",
                [line_id, file_id, n],
            )

    def duplicated(*file_ids: int) -> int:
        files = [
            ingest.FileOutcome(None, f, "", "loaded", key_low=ranges[f][0], key_high=ranges[f][1])  # type: ignore[arg-type]
            for f in file_ids
        ]
        outcome = ingest.SourceOutcome(SALES_LEDGER, files, 0)
        check = next(
            c for c in _check_results(con, SALES_LEDGER, outcome) if c.check_name == "key_unique"
        )
        assert check.passed == (check.metadata["duplicated_keys"].value == 0)
        return check.metadata["duplicated_keys"].value

    lines(1, "L01", "L02")
    lines(2, "L03", "L05")
    lines(3, "L04", "L06")  # overlaps file 2, no key in common
    lines(4, "L07", "L08")
    assert duplicated(2, 3, 4) == 0
    lines(5, "L05", "L09")  # L05 again: overlaps files 2 and 3
    assert duplicated(2, 3, 4, 5) == 1
    con.execute("delete from raw.sales_ledger where _file_id = 5")
    lines(5, "L02")  # a key of the earlier run's file 1
    assert duplicated(5) == 1


@pytest.mark.parametrize(
    ("text", "trim"),
    [
        (b"a,b\n1,2\n", False),
        (b"a,b\r\n1,2\r\n", False),  # CRLF line ends
        (b"a,b\n1 ,2\n", True),  # a space
        (b"a,b\n1,\t2\n", True),
        (b"a,b\n1,2\x0b\n", True),
        (b"a,b\n1,\x0c2\n", True),
        (b'a,b\n"\n1",2\n', True),  # a quoted value may start with a line break
        (b"a,b\n1,2\r\n3,\r4\n", True),  # a carriage return that ends no line
        (b"a,b\n1,2\xc2\xa0\n", True),  # a no-break space (not ASCII)
        (b"a,b\n1,\xc3\xa9\n", True),  # any non-ASCII byte
    ],
)
def test_needs_trimming_from_the_bytes(text, trim):
    assert landing.needs_trimming(text) is trim


@pytest.mark.parametrize(
    "text",
    [
        b"event_id,event_date,customer_id,activity,quantity\nE1,2025-01-02,C1,Picking,2\n"
        b",,,,\nE2,2025-01-02,C2,picking,\n",
        b"event_id,event_date,customer_id,activity,quantity\r\nE1,2025-01-02,C1,picking,2\r\n",
        b"event_id,event_date,customer_id,activity,quantity\nE1 , 2025-01-02,C1,\tpicking,2\n"
        b' ,"\nC2",x,"",3\n',
        b"event_id,event_date,customer_id,activity,quantity\nE1,2025-01-02,C1\xc2\xa0,pick,1\n",
    ],
    ids=["clean", "crlf", "spaces-tabs-quotes", "no-break-space"],
)
def test_rows_read_from_bytes_equal_rows_read_trimmed(tmp_path, text):
    """Reading from the bytes (trimming only where `needs_trimming` says) gives the rows that
    trimming every value gives."""
    path = tmp_path / "activities" / "activities_2025-01-02.csv"
    path.parent.mkdir()
    path.write_bytes(text)
    (file,) = landing.discover(tmp_path, ACTIVITIES)
    data = landing.content(file)
    assert data == text
    from_bytes = landing.read_rows(file, 7, data)
    trimmed = landing.read_rows(file, 7)  # no bytes: every value trimmed
    assert from_bytes.frame.equals(trimmed.frame)
    assert from_bytes.delivered.equals(trimmed.delivered)
    assert landing.sha256(file.path, data) == landing.sha256(file.path)
    assert from_bytes.frame.height >= 1


@pytest.mark.parametrize(
    ("activities", "expected"),
    [
        (["picking", "picking", "visit"], ["picking", "picking", "visit"]),
        (["picking", "Picking", "VISIT"], ["picking", "picking", "visit"]),
        (["picking", None, "ÉTÉ_Visit"], ["picking", None, "été_visit"]),
    ],
    ids=["already-lower", "mixed", "non-ascii-and-empty"],
)
def test_label_columns_are_lower_cased_when_read(tmp_path, activities, expected):
    """Label columns (activity, channel, flags; the ledger's document type and channel) come out
    of landing in lower case, whether every value, some or none needed it (lower-casing is
    skipped when no distinct value changes)."""
    lines = ["event_id,event_date,customer_id,activity,quantity,channel,flags"]
    for i, activity in enumerate(activities):
        lines.append(f"E{i},2025-01-02,C1,{activity or ''},1,Web,Rush|gift")
    path = tmp_path / "activities" / "activities_2025-01-02.csv"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (file,) = landing.discover(tmp_path, ACTIVITIES)
    rows = landing.read_rows(file, 1, landing.content(file))
    assert rows.frame.get_column("activity").to_list() == expected
    assert rows.frame.get_column("channel").to_list() == ["web"] * len(activities)
    assert rows.frame.get_column("flags").to_list() == ["rush|gift"] * len(activities)
    # the rows as delivered keep the case they were written in
    assert rows.delivered.get_column("channel").to_list() == ["Web"] * len(activities)
