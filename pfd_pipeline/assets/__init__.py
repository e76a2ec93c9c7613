"""Dagster assets, one module per stage: ingest, then validate (the cost engine and marts follow)."""
