"""Dagster assets, one module per stage: ingest, validate, allocate, marts, publish."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import dagster as dg

T = TypeVar("T")

# Failure metadata naming the asset that failed, in a step that materialises several: the
# run's message names it (runner._failure_message) instead of the step.
FAILED_ASSET = "asset"


def failing_as(key: dg.AssetKey, work: Callable[[], T]) -> T:
    """work(), with a failure raised as a dg.Failure that names `key` (one asset of a step
    that materialises several, e.g. one of the marts that read customer_profitability)."""
    try:
        return work()
    except dg.Failure as exc:
        metadata = {**exc.metadata, FAILED_ASSET: key.to_user_string()}
        raise dg.Failure(exc.description, metadata, exc.allow_retries) from exc
    except Exception as exc:
        raise dg.Failure(
            f"{type(exc).__name__}: {exc}", {FAILED_ASSET: key.to_user_string()}, False
        ) from exc
