"""Dropping the table blocks DuckDB keeps cached after a load (warehouse.release_cached_blocks)."""

from __future__ import annotations

from pfd_pipeline import warehouse


def test_cached_blocks_are_dropped_and_the_memory_limit_set_back(tmp_path, monkeypatch):
    con = warehouse.connect(tmp_path / "work.duckdb")
    con.execute("SET memory_limit = '1GB'")
    configured = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.execute("CREATE TABLE t AS SELECT range AS a, md5(range::varchar) AS b FROM range(1000000)")
    con.execute("CHECKPOINT")
    con.execute("SELECT sum(a), max(b) FROM t").fetchall()  # the blocks are read back in

    def in_use() -> int:
        return con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchall()[0][0]

    cached = in_use()
    assert cached > 16 * 2**20
    monkeypatch.setattr(warehouse, "RELEASE_TO", "8MB")
    warehouse.release_cached_blocks(con, "1GB")
    assert in_use() <= 8 * 2**20 < cached
    assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == configured
    assert con.execute("SELECT count(*), max(b) FROM t").fetchall()[0][0] == 1000000


def test_a_refused_lower_limit_leaves_the_configured_one(tmp_path, monkeypatch):
    con = warehouse.connect(tmp_path / "work.duckdb")
    con.execute("SET memory_limit = '1GB'")
    configured = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    monkeypatch.setattr(warehouse, "RELEASE_TO", "not a size")  # DuckDB refuses it
    warehouse.release_cached_blocks(con, "1GB")
    assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == configured
