"""The warehouse DDL and the Dagster column schemas agree with the landing contract."""

from __future__ import annotations

import duckdb

from pfd_pipeline.assets.ingest import contract_schema
from pfd_pipeline.sources import SOURCES
from pfd_pipeline.warehouse import ensure_schema


def test_raw_table_ddl_matches_the_contract():
    con = duckdb.connect()
    ensure_schema(con)
    for source in SOURCES.values():
        schema_name, table_name = source.table.split(".")
        actual = con.execute(
            "SELECT column_name, data_type, is_nullable FROM duckdb_columns() "
            "WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
            [schema_name, table_name],
        ).fetchall()
        expected = [
            (c.name, c.type, c.constraints.nullable) for c in contract_schema(source).columns
        ]
        assert actual == expected, source.name
