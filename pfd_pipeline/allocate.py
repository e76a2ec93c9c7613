"""Cost-to-serve allocation: which months to rebuild, and rebuilding one month in one transaction.

All arithmetic is in the SQL files under sql/allocate/ (staging and intermediate tables) and
sql/marts/ (the published cost tables); this module only decides which months to rebuild,
binds the month, checks what would make the numbers meaningless, and commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import duckdb

from pfd_pipeline.cost_model import CostModel, load_into
from pfd_pipeline.errors import PfdError
from pfd_pipeline.sql import load_sql
from pfd_pipeline.warehouse import run_in_order, table_exists

STEPS = (
    "allocate/period_events",
    "allocate/customer_documents",
    "allocate/drivers",
    "allocate/resource_supply",
    "allocate/split_claims",
    "allocate/largest_remainder",
    "allocate/customer_claims",
    "allocate/largest_remainder",
    "allocate/allocation",
    "marts/customer_cost_to_serve",
    "marts/activity_rates",
    "marts/allocation_reconciliation",
)
CHECK_AFTER = "allocate/resource_supply"
TEMP_TABLES = (
    "period_params",
    "period_events",
    "drivers",
    "resource_supply",
    "claims",
    "allocated",
    "allocation",
)


class AllocationError(PfdError):
    """A month cannot be allocated; the message names the resource, month and config key."""


@dataclass(frozen=True)
class PeriodOutcome:
    period: str
    status: str
    reason: str  # why it was rebuilt


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    upgrade = allocated_before_documents(con)
    con.execute(load_sql("marts/cost_tables"))
    if upgrade:  # every month is allocated again, which fills the table
        con.execute("delete from audit.allocated_periods")


def allocated_before_documents(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the store was allocated before marts.customer_documents existed: then every
    allocated month must be allocated again to fill it (customer_profitability reads its
    months). `ensure_tables` acts on it; the run's plan reads it (read-only) to say so."""
    return not table_exists(con, "marts.customer_documents")


def month_bounds(period: str) -> tuple[dt.date, dt.date]:
    """A month 'YYYY-MM' as its first day and the first day after it."""
    year, month = (int(x) for x in period.split("-"))
    return dt.date(year, month, 1), dt.date(year + month // 12, month % 12 + 1, 1)


def period_status(period: str, today: dt.date, close_after_days: int) -> str:
    """A month is open until `close_after_days` days after its end, then closed."""
    _, next_month = month_bounds(period)
    return "open" if today < next_month + dt.timedelta(days=close_after_days) else "closed"


def pending_periods(
    con: duckdb.DuckDBPyConnection, model: CostModel, today: dt.date, close_after_days: int
) -> list[PeriodOutcome]:
    """Months to rebuild: inputs changed since their last allocation, the cost model changed,
    never allocated, or their open/closed status changed."""
    rows = con.execute(
        """
        with changed as (
            select period, max(changed_at) as changed_at from audit.changed_periods group by all
        ),
        -- every month rows were ever loaded into or replaced out of (the ingest records both),
        -- every month allocated, every month with resource costs
        periods as (
            select period from changed
            union select period from audit.allocated_periods
            union select distinct period from raw.resource_costs
        ),
        status as (
            select period, any_value(period_status) as period_status
            from marts.allocation_reconciliation group by all
        )
        select p.period, a.period is null, a.model_sha256 <> $sha,
               c.changed_at > a.allocated_at, s.period_status
        from periods as p
        left join audit.allocated_periods as a using (period)
        left join changed as c using (period)
        left join status as s using (period)
        order by p.period
        """,
        {"sha": model.sha256},
    ).fetchall()
    pending = []
    for period, never, model_changed, data_changed, stored_status in rows:
        # A month allocated and not changed since still has the rows it had then; one never
        # allocated or changed since may have lost its last row to a correction that moved it.
        if (never or data_changed) and not has_rows(con, period):
            continue
        status = period_status(period, today, close_after_days)
        if never:
            reason = "first allocation"
        elif model_changed:
            reason = "cost model changed"
        elif data_changed:
            reason = "late data for a closed month" if status == "closed" else "new data"
        elif stored_status != status:
            reason = f"month is now {status}"
        else:
            continue
        pending.append(PeriodOutcome(period, status, reason))
    return pending


def has_rows(con: duckdb.DuckDBPyConnection, period: str) -> bool:
    """Whether the month has a ledger line, an event or a resource cost (the raw tables are
    clustered by day, so the date range skips all but the month's row groups)."""
    start, end = month_bounds(period)
    return con.execute(
        """
        select exists (
            select 1 from raw.sales_ledger where posting_date >= $start and posting_date < $end
        ) or exists (
            select 1 from raw.activity_events where event_date >= $start and event_date < $end
        ) or exists (select 1 from raw.resource_costs where period = $period)
        """,
        {"start": start, "end": end, "period": period},
    ).fetchall()[0][0]


def allocate_periods(
    con: duckdb.DuckDBPyConnection,
    model: CostModel,
    periods: Sequence[PeriodOutcome],
    run_id: str,
    workers: int,
) -> Iterator[PeriodOutcome]:
    """Rebuild months `workers` at a time, oldest first, each in a transaction of its own on a
    cursor of its own; yield each month once committed (in the order they finish).

    A month's statements keep about 1.75 of 2 cores busy (sorts and sinks that run on one
    thread); two months at once fill most of the rest: 6 months at L 23.1 -> 21.3-21.9 s. The
    model's tables are loaded once, first, in a transaction of their own (two transactions
    replacing them would conflict). After an error no further month starts; it is raised once
    the months in flight have committed or rolled back (warehouse.run_in_order).
    """
    if not periods:
        return
    load_model_tables(con, model)

    def month(period: PeriodOutcome):
        def allocate(cursor: duckdb.DuckDBPyConnection) -> PeriodOutcome:
            allocate_period(cursor, model, period, run_id, load_model=False)
            return period

        return allocate

    tasks = [(period.period, (), month(period)) for period in periods]
    for _, period in run_in_order(con, tasks, workers):
        yield period


def load_model_tables(con: duckdb.DuckDBPyConnection, model: CostModel) -> None:
    """Replace the model's tables with `model`, in a transaction of their own."""
    con.execute("BEGIN TRANSACTION")
    try:
        load_into(con, model)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def allocate_period(
    con: duckdb.DuckDBPyConnection,
    model: CostModel,
    period: PeriodOutcome,
    run_id: str,
    *,
    load_model: bool = True,
) -> None:
    """Rebuild one month of the cost tables in one transaction (all or nothing); with
    `load_model`, the model's tables are replaced first, in a transaction of their own (they
    live in the work store, the cost tables in the marts file: a transaction writes to one)."""
    if load_model:
        load_model_tables(con, model)
    con.execute("BEGIN TRANSACTION")
    try:
        bind_period(con, period.period, period.status)
        for step in STEPS:
            con.execute(load_sql(step))
            if step == CHECK_AFTER:
                _check_capacity(con, model, period.period)
        con.execute(
            "insert or replace into audit.allocated_periods values ($period, $sha, $reason, "
            "$run_id, current_localtimestamp(), nextval('audit.build_seq'))",
            {
                "period": period.period,
                "sha": model.sha256,
                "reason": period.reason,
                "run_id": run_id,
            },
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for table in TEMP_TABLES:
            con.execute(f"drop table if exists {table}")


def bind_period(con: duckdb.DuckDBPyConnection, period: str, status: str) -> None:
    """The one-row temp table period_params (period, its first day, the first day after it,
    open or closed) that the allocation's SQL reads."""
    start, end = month_bounds(period)
    con.execute(
        "create or replace temp table period_params as "
        "select $period as period, $start::date as period_start, $end::date as period_end, "
        "$status as period_status",
        {"period": period, "start": start, "end": end, "status": status},
    )


def _check_capacity(con: duckdb.DuckDBPyConnection, model: CostModel, period: str) -> None:
    missing = con.execute(
        "select resource, supplied, practical_capacity_minutes from resource_supply "
        "where method = 'time_driven' and supplied > 0 "
        "and coalesce(practical_capacity_minutes, 0) <= 0 order by resource"
    ).fetchall()
    if missing:
        resource, supplied, capacity = missing[0]
        where = con.execute(
            "select f.path, r._row_number from raw.resource_costs as r "
            "join audit.ingested_files as f on f.file_id = r._file_id "
            "where r.period = ? and r.resource = ?",
            [period, resource],
        ).fetchall()
        place = f"{where[0][0]} row {where[0][1]}" if where else f"resources/ for {period}"
        what = "is empty" if capacity is None else f"is {capacity}"
        raise AllocationError(
            f"{place}, column practical_capacity_minutes (rule capacity_positive): resource "
            f"{resource!r} has cost {supplied} in {period} but its practical capacity {what}; "
            f"it is time-driven in {model.path.name} (resources.{resource}.method), so its rate "
            "= cost / practical capacity minutes needs a positive capacity. Deliver the capacity "
            "or change the method."
        )


def unbalanced(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, object]]:
    """(period, resource, difference) for every reconciliation row that does not balance."""
    return con.execute(
        "select period, resource, difference from marts.allocation_reconciliation "
        "where difference <> 0 order by period, resource"
    ).fetchall()
