"""SQL lives in sql/<stage>/<name>.sql; code loads it by name and binds parameters.

Values from data or configuration are never formatted into SQL text.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


@cache
def load_sql(name: str) -> str:
    """Return the text of sql/<name>.sql, e.g. load_sql("ingest/merge_sales_ledger")."""
    path = (SQL_DIR / f"{name}.sql").resolve()
    if SQL_DIR not in path.parents:
        raise ValueError(f"SQL name {name!r} points outside {SQL_DIR}")
    return path.read_text(encoding="utf-8")
