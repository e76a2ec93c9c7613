"""Progress of a long run: one updating line on a terminal, plain log lines otherwise, and the
ingestion loop reports files and rows as it reads them."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
from pathlib import Path

from pfd_pipeline import landing, progress, warehouse
from pfd_pipeline.ingest import ingest_source
from pfd_pipeline.progress import Progress, reporting
from pfd_pipeline.sources import SALES_LEDGER
from pfd_pipeline.validation import ValidationContext

FIXTURE = Path(__file__).parent / "fixtures" / "tiny"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_on_a_terminal_one_line_is_redrawn_in_place_and_cleared_at_the_end():
    stream, clock = io.StringIO(), Clock()
    reporter = Progress(stream, tty=True, clock=clock)
    with reporting(reporter):
        with progress.current().stage("ingest sales_ledger", total=3) as stage:
            for _ in range(3):
                clock.now += 1.0
                stage.advance(rows=1_000)
    out = stream.getvalue()
    assert "\n" not in out, "a terminal gets one line, redrawn, never a new one"
    frames = [f.removesuffix("\x1b[K") for f in out.split("\r") if f]
    assert frames[0] == "ingest sales_ledger: started (3 files)"
    assert frames[1] == "ingest sales_ledger: 1/3 files, 1,000 rows, 1,000 rows/s, 1.0 s"
    assert frames[-2] == "ingest sales_ledger: done, 3/3 files, 3,000 rows, 1,000 rows/s, 3.0 s"
    assert out.endswith("\r\x1b[K"), "the line is cleared so the summary starts clean"
    assert progress.current() is not reporter, "the reporter is uninstalled after the run"


def test_on_a_terminal_redraws_are_limited():
    stream, clock = io.StringIO(), Clock()
    reporter = Progress(stream, tty=True, clock=clock)
    with reporter.stage("allocate", total=1000, unit="months") as stage:
        for _ in range(1000):  # a thousand updates within 0.1 s: no redraw after the first
            stage.advance()
    frames = [f for f in stream.getvalue().split("\r") if f]
    assert len(frames) == 2  # started, done
    assert frames[-1].startswith("allocate: done, 1,000/1,000 months")


def test_in_a_log_plain_lines_at_start_every_interval_and_at_the_end():
    stream, clock = io.StringIO(), Clock()
    reporter = Progress(stream, tty=False, interval=10.0, clock=clock)
    assert not Progress(io.StringIO()).tty, "a StringIO is no terminal: log lines by default"
    with reporter.stage("ingest activities", total=30) as stage:
        for _ in range(30):
            clock.now += 1.0  # one file a second: a line every 10 s, none in between
            stage.advance(rows=500)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()
    assert all(re.match(r"\[pfd \d\d:\d\d:\d\d\] ingest activities: ", line) for line in lines)
    texts = [line.split("] ", 1)[1] for line in lines]
    assert texts == [
        "ingest activities: started (30 files)",
        "ingest activities: 10/30 files, 5,000 rows, 500 rows/s, 10.0 s",
        "ingest activities: 20/30 files, 10,000 rows, 500 rows/s, 20.0 s",
        "ingest activities: 30/30 files, 15,000 rows, 500 rows/s, 30.0 s",
        "ingest activities: done, 30/30 files, 15,000 rows, 500 rows/s, 30.0 s",
    ]
    reporter.close()
    assert stream.getvalue().endswith("\n"), "closing a log writes nothing more"


def test_a_stage_that_fails_is_not_reported_done():
    stream = io.StringIO()
    reporter = Progress(stream, tty=False)
    try:
        with reporter.stage("allocate", total=2, unit="months"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert "done" not in stream.getvalue()
    assert "allocate: started (2 months)" in stream.getvalue()


def test_without_a_reporter_nothing_is_written(capsys):
    with progress.current().stage("marts customer_tiers", 3, "months") as stage:
        stage.advance(3)
    assert capsys.readouterr() == ("", "")


def test_ingestion_reports_each_file_as_it_is_read(tmp_path):
    """The ledger fixture: two new files of 4 and 5 rows and a copy of the first (a duplicate,
    known once hashed, with no rows); the line moves on with every file, not only with every
    batch."""
    landing_dir = tmp_path / "landing"
    shutil.copytree(FIXTURE, landing_dir)
    con = warehouse.connect(tmp_path / "wh" / "work.duckdb")
    warehouse.ensure_schema(con)
    stream = io.StringIO()
    try:
        with reporting(Progress(stream, tty=True, interval=0.0)):
            ingest_source(
                con,
                SALES_LEDGER,
                landing.discover(landing_dir, SALES_LEDGER),
                ValidationContext(as_of=dt.date(2025, 1, 5)),
                run_id="run-1",
                batch_rows=1000,  # one batch for both files
                max_reject_share=0.6,
            )
    finally:
        con.close()
    frames = [f.removesuffix("\x1b[K") for f in stream.getvalue().split("\r") if f]
    counts = [re.sub(r", [\d,]+ rows/s.*", "", f) for f in frames if "/s" in f]
    assert counts[0] == "ingest sales_ledger: 1/3 files, 4 rows"
    assert counts[-1] == "ingest sales_ledger: done, 3/3 files, 9 rows"
    assert len(counts) == 4  # one line per file, then done
    assert frames[0] == "ingest sales_ledger: started (3 files)"
