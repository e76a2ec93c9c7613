"""Dagster assets, one module per stage: ingest, then validate (cost engine and marts next)."""
