"""pfd — Profit by Design: activity-based customer profitability as a Dagster + DuckDB pipeline."""
