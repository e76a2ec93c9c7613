"""A catalogue of bad landing input, each kind through the real ingestion path.

Every test writes tiny landing files into a temporary landing folder and ingests them as the
`raw/*` assets do (`landing.discover`, the asset's own `validation_context`, `ingest_source`
with the configured batch size and reject share); the kinds about a run as a whole (the cost
model, capacity, the config) go through `pfd run` (`cli.main`). Each kind ends in either

- a rejected row: audit.rejected_rows names file, row, column and rule (asserted exactly), or
- a failed file or run: the message names file, row (where there is one), column and rule.

For every file that was read, audit.ingested_files holds rows_read = rows_accepted +
rows_rejected (asserted after every ingest by `_audit`). docs/bad_inputs.md lists the kinds.
"""

from __future__ import annotations

import gc
import json
import shutil
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from pfd_pipeline import cli, landing, warehouse
from pfd_pipeline.assets.ingest import validation_context
from pfd_pipeline.ingest import IngestError, ingest_source
from pfd_pipeline.settings import Settings
from pfd_pipeline.sources import ACTIVITIES, CUSTOMERS, FEEDBACK, RESOURCES, SALES_LEDGER, Source
from pfd_pipeline.validation import RULES
from pfd_pipeline.warehouse import connect

ROOT = Path(__file__).resolve().parent.parent
COST_MODEL = ROOT / "data" / "config" / "cost_model.yaml"
CONFIG = (
    'partitions_start: "2024-06-01"\n'
    "validation:\n"
    "  max_reject_share: 0.5\n"  # one bad row in a three-row file is a rejected row, not a failure
    '  currencies: ["USD"]\n'
)

# fmt: off
HEADER = {
    "customers": "customer_id,customer_name,segment,region,acquired_on",
    "sales_ledger": "line_id,document_id,document_type,posting_date,customer_id,product_id,"
                    "quantity,gross_amount,discount_amount,cogs_amount,currency",
    "activities": "event_id,event_date,customer_id,activity,quantity",
    "resources": "period,resource,cost_amount,practical_capacity_minutes",
    "feedback": "customer_id,survey_date,score",
}
GOOD = {  # a good row per source without its key; a case changes a few values
    "customers": dict(customer_name="Alpha Foods", segment="Retail", region="North",
                      acquired_on="2020-01-01"),
    "sales_ledger": dict(document_id="D1", document_type="invoice", posting_date="2025-01-02",
                         customer_id="C001", product_id="P1", quantity="2", gross_amount="100.00",
                         discount_amount="5.00", cogs_amount="60.00", currency="USD"),
    "activities": dict(event_date="2025-01-02", customer_id="C001", activity="order_entry",
                       quantity="3"),
    "resources": dict(period="2025-01", cost_amount="1000.00", practical_capacity_minutes="9600"),
    "feedback": dict(customer_id="C001", score="8"),
}
KEY = {"customers": "customer_id", "sales_ledger": "line_id", "activities": "event_id",
       "resources": "resource", "feedback": "survey_date"}
FILE = {"customers": "customers/customers_2025-01-01.csv",
        "sales_ledger": "sales_ledger/sales_ledger_2025-01-02.csv",
        "activities": "activities/activities_2025-01-02.csv",
        "resources": "resources/resources_2025-01.csv",
        "feedback": "feedback/nps_2025-01.csv"}
SOURCE = {"customers": CUSTOMERS, "sales_ledger": SALES_LEDGER, "activities": ACTIVITIES,
          "resources": RESOURCES, "feedback": FEEDBACK}
# fmt: on


def row(source: str, key: str, **changes: str) -> str:
    values = {**GOOD[source], KEY[source]: key, **changes}
    return ",".join(values[c] for c in HEADER[source].split(","))


def csv(source: str, *rows: str, header: str | None = None) -> str:
    return "\n".join([header or HEADER[source], *rows]) + "\n"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    (tmp_path / "landing").mkdir()
    shutil.copy(COST_MODEL, tmp_path / "cost_model.yaml")
    (tmp_path / "pfd.yaml").write_text(CONFIG, encoding="utf-8")
    for name in ("PFD_LANDING_DIR", "PFD_WAREHOUSE_DIR", "PFD_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))  # for `pfd run`
    return Settings.load(tmp_path / "landing", tmp_path / "wh", tmp_path / "pfd.yaml")


def write(settings: Settings, relpath: str, content: str | bytes) -> Path:
    path = settings.landing_dir / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


@pytest.fixture
def con(settings: Settings):
    """The work store with a customer master of C001 and C002 already ingested."""
    connection = warehouse.connect(settings.work_db)
    warehouse.ensure_schema(connection)
    write(
        settings,
        FILE["customers"],
        csv("customers", row("customers", "C001"), row("customers", "C002")),
    )
    ingest(connection, settings, CUSTOMERS, run_id="run-0")
    yield connection
    connection.close()


def ingest(con, settings: Settings, source: Source, *, run_id: str = "run-1"):
    """What the raw/<source> asset does with the landing folder's files of this source."""
    return ingest_source(
        con,
        source,
        landing.discover(settings.landing_dir, source),
        validation_context(settings, con, source),
        run_id=run_id,
        batch_rows=settings.validation.batch_rows,
        max_reject_share=settings.validation.max_reject_share,
    )


def ingest_fails(con, settings: Settings, source: Source) -> str:
    """Ingest, expecting the source to fail; nothing of it loaded, the failure kept."""
    with pytest.raises(IngestError) as failure:
        ingest(con, settings, source)
    assert con.execute(f"SELECT count(*) FROM {source.table}").fetchall() == [(0,)]
    assert _audit(con, source) == []
    return str(failure.value)


def _audit(con, source: Source) -> list[tuple]:
    """(path, status, rows read, accepted, rejected, extra columns) of the source's files; every
    file in the audit balances."""
    unbalanced = con.execute(
        "SELECT path FROM audit.ingested_files WHERE rows_read <> rows_accepted + rows_rejected"
    ).fetchall()
    assert unbalanced == []
    return con.execute(
        "SELECT path, status, rows_read, rows_accepted, rows_rejected, extra_columns "
        "FROM audit.ingested_files WHERE source = ? ORDER BY file_id",
        [source.name],
    ).fetchall()


def _rejects(con, source: Source) -> list[tuple]:
    return con.execute(
        "SELECT path, row_number, column_name, rule, message FROM audit.rejected_rows "
        "WHERE source = ? ORDER BY file_id, row_number",
        [source.name],
    ).fetchall()


def _failed(con) -> list[tuple]:
    return con.execute("SELECT source, path, message FROM audit.failed_files").fetchall()


def _keys(con, source: Source) -> list[str]:
    key = KEY[source.name]
    rows = con.execute(f"SELECT {key} FROM {source.table} ORDER BY 1").fetchall()
    return [str(r[0]) for r in rows]  # feedback's key is a date


FAILURE_END = ". Fix or remove the file(s) and run again; files already loaded are not re-read."


def one_file_failure(source: str, path: str, message: str) -> str:
    return (
        f"1 {source} file(s) could not be loaded, so nothing from {source} was loaded in this "
        f"run: {path}: {message}{FAILURE_END}"
    )


# --- rows rejected with their rule ----------------------------------------------------------

# fmt: off
CREDIT_NOTE = dict(document_type="credit_note", quantity="-1", gross_amount="-100.00",
                   discount_amount="-5.00", cogs_amount="-60.00")

# (kind, source, the bad row's changes, column, rule); the bad row is row 2 of three
ROW_KINDS = [
    ("wrong-type-text-in-number", "sales_ledger", {"quantity": "two"}, "quantity", "format"),
    ("wrong-type-decimal-comma", "sales_ledger", {"gross_amount": '"100,50"'}, "gross_amount",
     "format"),
    ("unparseable-date-dd/mm/yyyy", "sales_ledger", {"posting_date": "02/01/2025"},
     "posting_date", "format"),
    ("impossible-date-2025-02-30", "sales_ledger", {"posting_date": "2025-02-30"},
     "posting_date", "valid_date"),
    ("date-far-in-future", "sales_ledger", {"posting_date": "2999-01-01"}, "posting_date",
     "plausible_date"),
    ("date-before-min-date", "activities", {"event_date": "1999-12-31"}, "event_date",
     "plausible_date"),
    ("acquired-in-future", "customers", {"acquired_on": "2999-01-01"}, "acquired_on",
     "not_in_future"),
    ("duplicate-key-within-file", "sales_ledger", {"line_id": "L1"}, "line_id",
     "unique_key_in_file"),
    ("huge-number-20-digits", "sales_ledger", {"gross_amount": "99999999999999999999.99"},
     "gross_amount", "number_fits_type"),
    ("huge-number-1e30", "sales_ledger", {"gross_amount": "1e30"}, "gross_amount", "format"),
    ("too-many-decimals", "sales_ledger", {"cogs_amount": "60.005"}, "cogs_amount",
     "number_fits_type"),
    ("huge-capacity", "resources", {"practical_capacity_minutes": "1" + "0" * 17},
     "practical_capacity_minutes", "number_fits_type"),
    ("negative-quantity-on-invoice", "sales_ledger", {"quantity": "-2"}, "quantity",
     "invoice_quantity_positive"),
    ("discount-above-gross", "sales_ledger", {"discount_amount": "100.01"}, "discount_amount",
     "discount_not_above_gross"),
    ("credit-note-with-positive-amount", "sales_ledger", {**CREDIT_NOTE, "gross_amount": "100.00"},
     "gross_amount", "amount_sign_matches_document"),
    ("credit-note-with-positive-quantity", "sales_ledger", {**CREDIT_NOTE, "quantity": "1"},
     "quantity", "credit_note_quantity_negative"),
    ("unknown-document-type", "sales_ledger", {"document_type": "refund"}, "document_type",
     "domain"),
    ("unknown-customer", "sales_ledger", {"customer_id": "C404"}, "customer_id",
     "customer_known"),
    ("unknown-currency", "sales_ledger", {"currency": "EUR"}, "currency", "currency_accepted"),
    ("not-a-currency", "sales_ledger", {"currency": "XYZ"}, "currency", "iso_currency"),
    ("missing-required-value", "sales_ledger", {"customer_id": ""}, "customer_id", "required"),
    ("control-character-in-key", "sales_ledger", {"product_id": "P\t1"}, "product_id",
     "format"),
    ("unknown-activity", "activities", {"activity": "order_entyr"}, "activity",
     "activity_known"),
    ("activity-quantity-zero", "activities", {"quantity": "0"}, "quantity", "quantity_positive"),
    ("negative-resource-cost", "resources", {"cost_amount": "-1.00"}, "cost_amount",
     "not_negative"),
    ("survey-score-11", "feedback", {"score": "11"}, "score", "score_in_range"),
    ("survey-score-as-word", "feedback", {"score": "nine"}, "score", "format"),
    ("survey-score-decimal", "feedback", {"score": "8.5"}, "score", "format"),
    ("survey-missing-score", "feedback", {"score": ""}, "score", "required"),
    ("survey-unknown-customer", "feedback", {"customer_id": "C404"}, "customer_id",
     "customer_known"),
    ("survey-impossible-date", "feedback", {"survey_date": "2025-02-30"}, "survey_date",
     "valid_date"),
]
# fmt: on


@pytest.mark.parametrize(
    ("source_name", "changes", "column", "rule"),
    [pytest.param(*k[1:], id=k[0]) for k in ROW_KINDS],
)
def test_bad_row_is_rejected_with_its_rule(settings, con, source_name, changes, column, rule):
    source = SOURCE[source_name]
    keys = {
        "customers": ("C100", "C101", "C102"),
        "resources": ("sales", "finance", "logistics"),
        "feedback": ("2025-01-02", "2025-01-03", "2025-01-04"),
    }
    first, bad, last = keys.get(source_name, ("L1", "L2", "L3"))
    if source_name == "customers":  # its own file, newer than the master loaded before
        path = "customers/customers_2025-01-03.csv"
    else:
        path = FILE[source_name]
    bad_key = changes.get(KEY[source_name], bad)
    write(
        settings,
        path,
        csv(
            source_name,
            row(source_name, first),
            row(source_name, bad, **changes),
            row(source_name, last),
        ),
    )
    ingest(con, settings, source)
    master = [(FILE["customers"], "loaded", 2, 2, 0, [])] if source is CUSTOMERS else []
    assert _audit(con, source) == [*master, (path, "loaded", 3, 2, 1, [])]
    assert _rejects(con, source) == [(path, 2, column, rule, RULES[rule])]
    raw = json.loads(
        con.execute(
            "SELECT raw_record FROM audit.rejected_rows WHERE source = ?", [source_name]
        ).fetchall()[0][0]
    )
    assert raw[KEY[source_name]] == bad_key  # the record as delivered
    expected_value = changes[column].strip('"')
    assert raw[column] == (expected_value or None)
    expected_keys = sorted(
        {first, last} | ({"C001", "C002"} if source_name == "customers" else set())
    )
    assert _keys(con, source) == expected_keys


def test_unknown_customer_on_an_activity_event_is_kept_for_the_cost_engine(settings, con):
    """Not a bad row: the allocation reports its cost as unassigned (unknown_customer)."""
    write(
        settings,
        FILE["activities"],
        csv("activities", row("activities", "E1"), row("activities", "E2", customer_id="C404")),
    )
    ingest(con, settings, ACTIVITIES)
    assert _audit(con, ACTIVITIES) == [(FILE["activities"], "loaded", 2, 2, 0, [])]
    assert _keys(con, ACTIVITIES) == ["E1", "E2"]


# --- files that cannot be read ---------------------------------------------------------------


def test_feedback_is_optional_and_a_customer_answers_once_a_day(settings, con):
    """No feedback/ folder: nothing to load, no failure. A customer answering twice on one day
    in one file: the first answer stands; a later file's answer for that day replaces it."""
    assert ingest(con, settings, FEEDBACK).files == []
    write(
        settings,
        FILE["feedback"],
        csv("feedback", row("feedback", "2025-01-02"), row("feedback", "2025-01-02", score="3")),
    )
    write(
        settings,
        "feedback/nps_2025-02.csv",
        csv("feedback", row("feedback", "2025-01-02", score="10")),
    )
    ingest(con, settings, FEEDBACK)
    assert _rejects(con, FEEDBACK) == [
        (FILE["feedback"], 2, "customer_id", "unique_key_in_file", RULES["unique_key_in_file"])
    ]
    assert con.execute(
        "SELECT customer_id, survey_date::varchar, score FROM raw.feedback"
    ).fetchall() == [("C001", "2025-01-02", 10)]
    # the answer's month counts as changed: it is re-scored (from the allocation on)
    assert con.execute(
        "SELECT DISTINCT period FROM audit.changed_periods WHERE source = 'feedback'"
    ).fetchall() == [("2025-01",)]


def test_empty_file_0_bytes_fails_naming_file_and_rule(settings, con):
    write(settings, FILE["sales_ledger"], b"")
    message = ingest_fails(con, settings, SALES_LEDGER)
    reason = "the file is empty (0 bytes, not even a header row) (rule not_empty)"
    assert message == one_file_failure("sales_ledger", FILE["sales_ledger"], reason)
    assert _failed(con) == [("sales_ledger", FILE["sales_ledger"], reason)]


def test_only_blank_lines_fails_like_an_empty_file(settings, con):
    write(settings, FILE["sales_ledger"], "\n\n")
    message = ingest_fails(con, settings, SALES_LEDGER)
    reason = "the file has no header row (only blank lines) (rule not_empty)"
    assert message == one_file_failure("sales_ledger", FILE["sales_ledger"], reason)


def test_header_only_is_a_day_without_rows(settings, con):
    """Not an error: a day without sales is delivered as a header. Loaded, 0 = 0 + 0."""
    write(settings, FILE["sales_ledger"], csv("sales_ledger"))
    write(
        settings,
        "sales_ledger/sales_ledger_2025-01-03.csv",
        csv("sales_ledger", row("sales_ledger", "L1")),
    )
    ingest(con, settings, SALES_LEDGER)
    assert _audit(con, SALES_LEDGER) == [
        (FILE["sales_ledger"], "loaded", 0, 0, 0, []),
        ("sales_ledger/sales_ledger_2025-01-03.csv", "loaded", 1, 1, 0, []),
    ]
    assert _keys(con, SALES_LEDGER) == ["L1"]


def test_wrong_delimiter_fails_naming_the_missing_columns_and_the_delimiter(settings, con):
    text = csv("activities", row("activities", "E1")).replace(",", ";")
    write(settings, FILE["activities"], text)
    message = ingest_fails(con, settings, ACTIVITIES)
    reason = (
        "required column(s) event_id, event_date, customer_id, activity missing; the header has "
        "['event_id;event_date;customer_id;activity;quantity'] (a single column: is the "
        "delimiter something other than a comma?) (rule required_columns)"
    )
    assert message == one_file_failure("activities", FILE["activities"], reason)
    assert _failed(con) == [("activities", FILE["activities"], reason)]


def test_missing_required_column_fails_naming_it(settings, con):
    header = HEADER["sales_ledger"].removesuffix(",currency")
    write(
        settings,
        FILE["sales_ledger"],
        csv("sales_ledger", row("sales_ledger", "L1").removesuffix(",USD"), header=header),
    )
    message = ingest_fails(con, settings, SALES_LEDGER)
    reason = (
        "required column(s) currency missing; the header has ['line_id', 'document_id', "
        "'document_type', 'posting_date', 'customer_id', 'product_id', 'quantity', "
        "'gross_amount', 'discount_amount', 'cogs_amount'] (rule required_columns)"
    )
    assert message == one_file_failure("sales_ledger", FILE["sales_ledger"], reason)


def test_column_named_twice_fails(settings, con):
    """`quantity,Quantity`: which value counts would be a guess (polars alone would crash on the
    lower-cased names, or silently keep the first of two equal names)."""
    header = HEADER["activities"] + ",Quantity"
    write(
        settings,
        FILE["activities"],
        csv("activities", row("activities", "E1") + ",5", header=header),
    )
    message = ingest_fails(con, settings, ACTIVITIES)
    reason = (
        "the header names a column more than once: quantity (as 'quantity', 'Quantity'); "
        "which value counts would be a guess (rule unique_columns)"
    )
    assert message == one_file_failure("activities", FILE["activities"], reason)


def ingest_fails_customers(con, settings: Settings) -> str:
    """Like ingest_fails, for customers (whose master from the fixture stays as it was)."""
    with pytest.raises(IngestError) as failure:
        ingest(con, settings, CUSTOMERS)
    assert _keys(con, CUSTOMERS) == ["C001", "C002"]
    assert [f[0] for f in _audit(con, CUSTOMERS)] == [FILE["customers"]]
    return str(failure.value)


def test_non_utf8_bytes_fail_naming_line_row_and_column(settings, con):
    text = csv(
        "customers",
        row("customers", "C100"),
        row("customers", "C101", customer_name="Caf\xe9 Delta"),
    )
    write(settings, "customers/customers_2025-01-03.csv", text.encode("latin-1"))
    message = ingest_fails_customers(con, settings)
    reason = (
        "not valid UTF-8 text: byte 0xe9 on line 3 (row 2, column customer_name) cannot be "
        "decoded; re-export the file as UTF-8 (rule utf8)"
    )
    assert message == one_file_failure("customers", "customers/customers_2025-01-03.csv", reason)
    assert _failed(con) == [("customers", "customers/customers_2025-01-03.csv", reason)]


def test_utf16_file_fails_as_not_utf8(settings, con):
    write(settings, FILE["activities"], csv("activities", row("activities", "E1")).encode("utf-16"))
    message = ingest_fails(con, settings, ACTIVITIES)
    reason = (
        "not valid UTF-8 text: the file starts with a UTF-16 byte order mark; re-export the "
        "file as UTF-8 (rule utf8)"
    )
    assert message == one_file_failure("activities", FILE["activities"], reason)


def test_row_with_more_values_than_the_header_fails_naming_the_row(settings, con):
    """An unquoted comma in a value shifts every later column: no value of the row is sure."""
    write(
        settings,
        FILE["activities"],
        csv(
            "activities",
            row("activities", "E1"),
            row("activities", "E2", activity="order_entry,rush"),
        ),
    )
    message = ingest_fails(con, settings, ACTIVITIES)
    reason = (
        "row 2 has 6 values but the header has 5 columns; is a value with a comma in it not "
        "quoted? (rule row_width)"
    )
    assert message == one_file_failure("activities", FILE["activities"], reason)


def test_unclosed_quote_fails_naming_the_row_where_it_opens(settings, con):
    write(
        settings,
        FILE["sales_ledger"],
        csv(
            "sales_ledger",
            row("sales_ledger", "L1"),
            row("sales_ledger", "L2", product_id='"P2'),
            row("sales_ledger", "L3"),
        ),
    )
    message = ingest_fails(con, settings, SALES_LEDGER)
    reason = (
        "row 2 cannot be parsed as CSV: unexpected end of data (read up to line 4); is a quote "
        "opened and never closed? (rule csv_syntax)"
    )
    assert message == one_file_failure("sales_ledger", FILE["sales_ledger"], reason)


def test_impossible_date_in_file_name_is_refused(settings, con):
    write(
        settings,
        "sales_ledger/sales_ledger_2025-02-30.csv",
        csv("sales_ledger", row("sales_ledger", "L1")),
    )
    with pytest.raises(landing.FileRejected) as failure:
        landing.discover(settings.landing_dir, SALES_LEDGER)
    assert str(failure.value) == (
        "sales_ledger/sales_ledger_2025-02-30.csv: the date in the file name is not a real date "
        "(day is out of range for month) (rule date_in_name)"
    )


def test_too_many_rejects_fail_the_file_naming_rows_columns_rules(settings, con):
    write(
        settings,
        FILE["sales_ledger"],
        csv(
            "sales_ledger",
            row("sales_ledger", "L1"),
            row("sales_ledger", "L2", quantity="-1"),
            row("sales_ledger", "L3", currency="EUR"),
            row("sales_ledger", "L4", posting_date="2025-13-01"),
        ),
    )
    message = ingest_fails(con, settings, SALES_LEDGER)
    reason = (
        "3 of 4 rows rejected (75.0%, above the 50.0% allowed by validation.max_reject_share; "
        "rule max_reject_share), e.g. row 2, column quantity, rule invoice_quantity_positive "
        f"({RULES['invoice_quantity_positive']}); row 3, column currency, rule "
        f"currency_accepted ({RULES['currency_accepted']}); row 4, column posting_date, rule "
        f"valid_date ({RULES['valid_date']})"
    )
    assert message == one_file_failure("sales_ledger", FILE["sales_ledger"], reason)
    assert _rejects(con, SALES_LEDGER) == []  # nothing of a failed source is recorded as loaded


# --- files that load, with what they carry ------------------------------------------------


def test_unexpected_extra_column_is_accepted_and_listed(settings, con):
    write(
        settings,
        FILE["sales_ledger"],
        csv(
            "sales_ledger",
            row("sales_ledger", "L1") + ",rush",
            header=HEADER["sales_ledger"] + ",Note",
        ),
    )
    ingest(con, settings, SALES_LEDGER)
    assert _audit(con, SALES_LEDGER) == [(FILE["sales_ledger"], "loaded", 1, 1, 0, ["note"])]
    assert _keys(con, SALES_LEDGER) == ["L1"]


def test_duplicate_key_across_files_in_one_run_the_later_file_replaces(settings, con):
    later = "sales_ledger/sales_ledger_2025-01-03.csv"
    write(
        settings,
        FILE["sales_ledger"],
        csv("sales_ledger", row("sales_ledger", "L1"), row("sales_ledger", "L2")),
    )
    write(
        settings,
        later,
        csv(
            "sales_ledger", row("sales_ledger", "L1", gross_amount="90.00", discount_amount="0.00")
        ),
    )
    ingest(con, settings, SALES_LEDGER)
    assert _audit(con, SALES_LEDGER) == [
        (FILE["sales_ledger"], "loaded", 2, 2, 0, []),
        (later, "loaded", 1, 1, 0, []),
    ]
    assert _ledger_l1(con) == [(Decimal("90.00"), Decimal("0.00"), later, 1)]


def test_duplicate_key_across_runs_the_correction_replaces(settings, con):
    later = "sales_ledger/sales_ledger_2025-01-03.csv"
    write(settings, FILE["sales_ledger"], csv("sales_ledger", row("sales_ledger", "L1")))
    ingest(con, settings, SALES_LEDGER, run_id="run-1")
    write(settings, later, csv("sales_ledger", row("sales_ledger", "L1", gross_amount="90.00")))
    ingest(con, settings, SALES_LEDGER, run_id="run-2")
    assert [f[:5] for f in _audit(con, SALES_LEDGER)] == [
        (FILE["sales_ledger"], "loaded", 1, 1, 0),
        (later, "loaded", 1, 1, 0),
    ]
    assert _ledger_l1(con) == [(Decimal("90.00"), Decimal("5.00"), later, 1)]


def _ledger_l1(con) -> list[tuple]:
    return con.execute(
        "SELECT l.gross_amount, l.discount_amount, f.path, l._row_number FROM raw.sales_ledger l "
        "JOIN audit.ingested_files f ON f.file_id = l._file_id WHERE l.line_id = 'L1'"
    ).fetchall()


def test_same_content_under_a_new_name_is_a_duplicate(settings, con):
    text = csv("sales_ledger", row("sales_ledger", "L1"))
    write(settings, FILE["sales_ledger"], text)
    ingest(con, settings, SALES_LEDGER, run_id="run-1")
    resent = "sales_ledger/resent_2025-01-05.csv"
    write(settings, resent, text)
    outcome = ingest(con, settings, SALES_LEDGER, run_id="run-2")
    assert (outcome.skipped, outcome.duplicates, outcome.loaded) == (1, 1, 0)
    assert _audit(con, SALES_LEDGER) == [
        (FILE["sales_ledger"], "loaded", 1, 1, 0, []),
        (resent, "duplicate", 0, 0, 0, []),
    ]
    assert _keys(con, SALES_LEDGER) == ["L1"]


def test_quoted_field_with_embedded_newline_is_one_row(settings, con):
    """A two-line name is text (accepted); a line break in a key is not (rejected). Either way
    the quoted value is one row, and the rows after it keep their numbers."""
    path = "customers/customers_2025-01-03.csv"
    write(
        settings,
        path,
        csv(
            "customers",
            row("customers", "C100", customer_name='"Alpha Foods\nAccounts dept."'),
            row("customers", "C101"),
        ),
    )
    write(
        settings,
        FILE["sales_ledger"],
        csv(
            "sales_ledger",
            row("sales_ledger", "L1"),
            row("sales_ledger", "L2", product_id='"P2\nP3"'),
            row("sales_ledger", "L3"),
        ),
    )
    ingest(con, settings, CUSTOMERS)
    ingest(con, settings, SALES_LEDGER)
    assert _audit(con, CUSTOMERS)[-1] == (path, "loaded", 2, 2, 0, [])
    names = con.execute(
        "SELECT customer_id, customer_name, _row_number FROM raw.customers "
        "WHERE customer_id >= 'C100' ORDER BY 1"
    ).fetchall()
    assert names == [("C100", "Alpha Foods\nAccounts dept.", 1), ("C101", "Alpha Foods", 2)]
    assert _audit(con, SALES_LEDGER) == [(FILE["sales_ledger"], "loaded", 3, 2, 1, [])]
    assert _rejects(con, SALES_LEDGER) == [
        (FILE["sales_ledger"], 2, "product_id", "format", RULES["format"])
    ]
    rows = con.execute("SELECT line_id, _row_number FROM raw.sales_ledger ORDER BY 1").fetchall()
    assert rows == [("L1", 1), ("L3", 3)]


def test_bom_crlf_and_trailing_blank_lines_are_read_cleanly(settings, con):
    """A byte order mark, Windows line ends and blank lines (also ones of commas only, as
    spreadsheets write them) are no rows; blank lines keep their place in the row numbers."""
    text = csv(
        "activities",
        row("activities", "E1"),
        "",
        row("activities", "E2", quantity="0"),
        ",,,,",
        "",
        "",
    )
    write(settings, FILE["activities"], ("\ufeff" + text).replace("\n", "\r\n"))
    ingest(con, settings, ACTIVITIES)
    assert _audit(con, ACTIVITIES) == [(FILE["activities"], "loaded", 2, 1, 1, [])]
    assert _rejects(con, ACTIVITIES) == [
        (FILE["activities"], 3, "quantity", "quantity_positive", RULES["quantity_positive"])
    ]
    events = con.execute(
        "SELECT event_id, activity, quantity, _row_number FROM raw.activity_events"
    ).fetchall()
    assert events == [("E1", "order_entry", Decimal("3.0000"), 1)]


def test_parquet_money_as_binary_float_is_rejected_not_rounded(settings, con):
    """0.1 + 0.2 written as a float is 0.30000000000000004: never rounded to 0.30 silently."""
    base = {k: [v, v] for k, v in GOOD["activities"].items()}
    frame = pl.DataFrame({"event_id": ["E1", "E2"], **base, "amount": [45.5, 0.1 + 0.2]})
    path = settings.landing_dir / "activities" / "activities_2025-01-02.parquet"
    path.parent.mkdir(parents=True)
    frame.write_parquet(path)
    ingest(con, settings, ACTIVITIES)
    relpath = "activities/activities_2025-01-02.parquet"
    assert _audit(con, ACTIVITIES) == [(relpath, "loaded", 2, 1, 1, [])]
    assert _rejects(con, ACTIVITIES) == [
        (relpath, 2, "amount", "number_fits_type", RULES["number_fits_type"])
    ]
    assert con.execute("SELECT event_id, amount FROM raw.activity_events").fetchall() == [
        ("E1", Decimal("45.50"))
    ]


# --- the run as a whole: pfd run ----------------------------------------------------------


def _run(settings: Settings) -> int:
    return cli.main(
        [
            "run",
            "--landing",
            str(settings.landing_dir),
            "--warehouse",
            str(settings.warehouse_dir),
            "--config",
            str(settings.config_path),
        ]
    )


def _run_landing(settings: Settings, resources: str) -> None:
    write(settings, FILE["customers"], csv("customers", row("customers", "C001")))
    write(settings, FILE["sales_ledger"], csv("sales_ledger", row("sales_ledger", "L1")))
    write(settings, FILE["activities"], csv("activities", row("activities", "E1")))
    write(settings, FILE["resources"], resources)


def _work_store_audit(settings: Settings) -> list[tuple]:
    # a failed step's traceback may still hold the run's connection (DuckDB refuses one with
    # another configuration to the same file): collect it first
    gc.collect()
    con = connect(settings.work_db, read_only=True)
    try:
        return con.execute(
            "SELECT source, rows_read, rows_accepted, rows_rejected FROM audit.ingested_files "
            "WHERE rows_read = rows_accepted + rows_rejected ORDER BY source"
        ).fetchall()
    finally:
        con.close()


def _error(capsys) -> str:
    """stderr without the run's progress lines (under pytest stderr is no terminal, so the
    progress is plain log lines starting with "[pfd ")."""
    lines = capsys.readouterr().err.splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("[pfd "))


def test_zero_capacity_for_a_time_driven_resource_fails_the_run(settings, capsys):
    _run_landing(
        settings,
        csv("resources", "2025-01,customer_service,25000.00,0", "2025-01,warehouse,40000.00,24000"),
    )
    assert _run(settings) == cli.EXIT_FAILED
    err = _error(capsys)
    assert err == (
        "pfd: allocate_cost_to_serve failed: resources/resources_2025-01.csv row 1, column "
        "practical_capacity_minutes (rule capacity_positive): resource 'customer_service' has "
        "cost 25000.00 in 2025-01 but its practical capacity is 0.00; it is time-driven in "
        "cost_model.yaml (resources.customer_service.method), so its rate = cost / practical "
        "capacity minutes needs a positive capacity. Deliver the capacity or change the method.\n"
    )
    # every file was read and balances; the zero itself is a valid value of the column
    assert _work_store_audit(settings) == [
        ("activities", 1, 1, 0),
        ("customers", 1, 1, 0),
        ("resources", 2, 2, 0),
        ("sales_ledger", 1, 1, 0),
    ]


def test_cost_model_typo_fails_the_run_naming_the_key(settings, capsys):
    _run_landing(settings, csv("resources", "2025-01,customer_service,25000.00,16000"))
    model = settings.cost_model_path
    text = model.read_text(encoding="utf-8")
    typo = text.replace("        time_equation: {base: 10,", "        time_equaton: {base: 10,")
    assert typo.count("time_equaton") == 1
    model.write_text(typo, encoding="utf-8")
    assert _run(settings) == cli.EXIT_FAILED
    err = _error(capsys)
    assert err == (
        "pfd: raw/activity_events failed: cost_model.yaml: activities.order_entry.costs[1]: "
        "unknown key(s) ['time_equaton']; expected ['time_driven', 'time_equation'] (activity "
        "events are checked against the cost model's activities, rule activity_known, so the "
        "model must load first)\n"
    )
    # nothing of the activities was loaded; the files before it were
    assert [a[0] for a in _work_store_audit(settings)] == ["customers", "resources", "sales_ledger"]


def test_config_typo_in_validation_section_fails_naming_the_key(settings, capsys):
    settings.config_path.write_text(CONFIG.replace("currencies:", "currency:"), encoding="utf-8")
    assert _run(settings) == cli.EXIT_FAILED
    assert capsys.readouterr().err == (
        f"pfd: config file {settings.config_path}: unknown key(s) ['validation.currency']; "
        "expected ['batch_rows', 'currencies', 'max_future_days', 'max_reject_share', "
        "'min_date']\n"
    )
