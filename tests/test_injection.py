"""No injection: values from data files and the cost model never become SQL text, and paths
from configuration stay inside their folders."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import duckdb
import pytest

from pfd_pipeline.settings import ConfigError, Settings

PACKAGE = Path(__file__).resolve().parent.parent / "pfd_pipeline"

# Every expression interpolated into SQL text anywhere in the package. Each is a table, schema
# or column name taken from a fixed list in the code, a path the pipeline controls (quoted by
# warehouse.sql_literal), or a constant; none can carry a value read from a landing file or the
# cost model. A new interpolation must be added here, on purpose, after the same check.
ALLOWED = {
    "table",  # allocate/marts.TEMP_TABLES, publish.PUBLISHED_TABLES, warehouse callers' names
    # cost_model: the fixed model.* table names; publish: a source_of() part; clv: its two
    # fixed temp tables
    "name",
    "source.table",  # sources.SOURCES
    "key_match(source)",  # "t.<key> = s.<key>" for the key columns of sources.Source.key
    "source.key[0]",  # the first of those key columns
    "repeated_keys_sql(source)",  # sql/ingest/repeated_keys.sql with those same names
    "ALIAS",
    "source_of(table)",
    "sql_literal(path)",  # publish._attach, warehouse.attach_marts: files the pipeline names
    "sql_literal(settings.publish.storage_version)",  # checked against v\d+.\d+.\d+ at load
    "sql_literal(storage_version)",  # the same setting, passed to warehouse.attach_marts
    "sql_literal(out)",
    "MARTS_ALIAS",  # warehouse: the marts file's fixed name in a connection
    "work",  # warehouse: current_database(), the work store's name (its file's stem)
    "database",  # warehouse.attach_marts: the work store's or MARTS_ALIAS
    "schema",  # warehouse: WORK_SCHEMAS, MARTS_SCHEMAS; publish: the next file's own schemas
    "sql_literal(','.join(path))",  # warehouse.set_search_path: those databases and schemas
    "IN_PERIODS",  # publish: a constant filter on the period column, months as a parameter
    "_publication_query()",
    "qualified",  # publish.describe: built from the catalog's table names
    "sql_literal(text)",  # publish.describe: the catalog's own text
    "column",  # catalog.yaml column names, checked against the tables before publishing
    "PREVIEW_ROWS",
    "mart.name",  # marts.rebuild: Mart.name, fixed names of sql/marts files
    "view",  # marts.TEMP_VIEWS
    "s.table",  # runner: sources.SOURCES
}


def _sql_interpolations() -> dict[str, set[str]]:
    """Source text of every {expression} in an f-string passed to .execute()/.sql()."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "generate.py":  # writes landing files, runs no SQL on data
            continue
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "sql")
                and node.args
            ):
                continue
            for part in ast.walk(node.args[0]):
                if isinstance(part, ast.FormattedValue):
                    text = ast.get_source_segment(source, part.value)
                    found.setdefault(text, set()).add(path.name)
    return found


def test_sql_text_interpolates_only_names_from_fixed_lists():
    found = _sql_interpolations()
    assert found, "the scan finds the f-strings"
    unexpected = {expr: files for expr, files in found.items() if expr not in ALLOWED}
    assert unexpected == {}
    assert ALLOWED - set(found) == set(), "stale entries: keep the list exact"


def test_hostile_values_in_landing_files_are_stored_as_text(tmp_path):
    from pfd_pipeline.ingest import ingest_source
    from pfd_pipeline.landing import discover
    from pfd_pipeline.sources import SOURCES
    from pfd_pipeline.validation import ValidationContext
    from pfd_pipeline.warehouse import ensure_schema

    hostile = "Robert'); DROP TABLE raw.sales_ledger; --"
    landing = tmp_path / "landing" / "customers"
    landing.mkdir(parents=True)
    (landing / "customers_2025-01-01.csv").write_text(
        "customer_id,customer_name,segment,region,acquired_on\n"
        f'C1,"{hostile}","Retail\'; DELETE FROM audit.ingested_files; --",North,2024-01-01\n',
        encoding="utf-8",
    )
    con = duckdb.connect()
    ensure_schema(con)
    source = SOURCES["customers"]
    files = discover(tmp_path / "landing", source)
    ctx = ValidationContext(as_of=dt.date(2025, 2, 1))
    ingest_source(con, source, files, ctx, run_id="r", batch_rows=100, max_reject_share=0.5)
    assert con.execute("select customer_name, segment from raw.customers").fetchall() == [
        (hostile, "Retail'; DELETE FROM audit.ingested_files; --")
    ]
    assert con.execute("select count(*) from audit.ingested_files").fetchall() == [(1,)]
    assert con.execute("select count(*) from raw.sales_ledger").fetchall() == [(0,)]


@pytest.mark.parametrize(
    ("section", "value"),
    [
        ("cost_model:\n  file: ../../etc/passwd\n", "cost_model.file"),
        ("cost_model:\n  file: /etc/passwd\n", "cost_model.file"),
        ("publish:\n  duckdb_file: ../outside.duckdb\n", "publish.duckdb_file"),
        ("publish:\n  parquet_dir: /tmp/elsewhere\n", "publish.parquet_dir"),
        ('publish:\n  storage_version: "v1.4.0\'); DROP TABLE x; --"\n', "publish.storage_version"),
        ("publish:\n  duckdb_fiel: pfd.duckdb\n", "publish.duckdb_fiel"),
        ("marts:\n  tiers:\n    top_shar: 0.3\n", "marts.tiers.top_shar"),
        ("marts:\n  trend:\n    slope_months: 4\n", "marts.trend"),
        ("duckdb:\n  memory_limt: 2GB\n", "duckdb.memory_limt"),
    ],
)
def test_config_paths_stay_inside_and_names_are_checked(tmp_path, section, value):
    config = tmp_path / "pfd.yaml"
    config.write_text(section, encoding="utf-8")
    with pytest.raises(ConfigError, match=value.replace(".", r"\.")):
        Settings.load(tmp_path / "landing", tmp_path / "warehouse", config)


def test_duckdb_temp_directory_is_passed_to_the_engine(tmp_path):
    from pfd_pipeline.definitions import duckdb_resource
    from pfd_pipeline.settings import Settings

    config = tmp_path / "pfd.yaml"
    config.write_text(f"duckdb:\n  temp_directory: {tmp_path / 'spill'}\n", encoding="utf-8")
    settings = Settings.load(None, tmp_path / "wh", config)
    assert settings.duckdb_temp_directory == tmp_path / "spill"
    resource = duckdb_resource(settings)
    assert resource.connection_config["temp_directory"] == str(tmp_path / "spill")
    settings.warehouse_dir.mkdir()
    with resource.get_connection() as con:
        setting = con.execute("select current_setting('temp_directory')").fetchall()[0][0]
    assert setting == str(tmp_path / "spill")
