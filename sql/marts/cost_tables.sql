-- Cost-to-serve tables, one row set per month (period 'YYYY-MM'); a month is rebuilt whole.
-- The marts live in the marts file, attached as pfd_marts (warehouse.attach_marts); the
-- search path finds marts.x there. The audit of their builds is created there by its full name.
create schema if not exists pfd_marts.marts;

create table if not exists marts.customer_cost_to_serve (
    period              varchar not null,   -- month, YYYY-MM
    customer_id         varchar not null,
    activity            varchar not null,   -- activity in the cost model
    resource            varchar not null,   -- resource drawn on; 'standard_rate' or 'direct' for those methods
    method              varchar not null,   -- time_driven, pool, standard_rate, direct
    driver_units        decimal(18, 4),     -- driver volume of this customer for the activity
    minutes             decimal(18, 2),     -- minutes consumed (time-driven only)
    rate                decimal(18, 6),     -- cost per minute (time-driven), per driver unit (pool, standard_rate)
    cost                decimal(18, 2) not null,
    period_status       varchar not null    -- open (month still receiving data) or closed
);

create table if not exists marts.activity_rates (
    period                      varchar not null,
    resource                    varchar not null,
    activity                    varchar not null,
    method                      varchar not null,
    cost_supplied               decimal(18, 2) not null,  -- resource cost (time-driven) or the activity's share of the pool
    practical_capacity_minutes  decimal(18, 2),
    rate                        decimal(18, 6),           -- per minute (time-driven) or per driver unit (pool)
    driver_units                decimal(18, 4) not null,
    minutes_used                decimal(18, 2),
    cost_assigned               decimal(18, 2) not null,  -- to customers in the master
    cost_unassigned             decimal(18, 2) not null,  -- unknown customers, no driver volume
    resource_minutes_used       decimal(18, 2),
    unused_capacity_minutes     decimal(18, 2),           -- negative when over capacity
    unused_capacity_cost        decimal(18, 2),           -- the resource's, on each of its rows
    utilisation                 decimal(9, 4),            -- minutes used / practical capacity
    period_status               varchar not null
);

create table if not exists marts.allocation_reconciliation (
    period                              varchar not null,
    resource                            varchar not null,
    method                              varchar,          -- null: resource not in the cost model
    cost_supplied                       decimal(18, 2) not null,
    cost_assigned                       decimal(18, 2) not null,
    unused_capacity_cost                decimal(18, 2) not null,
    unassigned_unknown_customer         decimal(18, 2) not null,
    unassigned_no_driver_volume         decimal(18, 2) not null,
    unassigned_resource_not_in_model    decimal(18, 2) not null,
    unassigned_unknown_activity         decimal(18, 2) not null,
    unassigned_no_direct_rule           decimal(18, 2) not null,
    unassigned_total                    decimal(18, 2) not null,
    difference                          decimal(18, 2) not null,  -- supplied - assigned - unused - unassigned: must be 0.00
    practical_capacity_minutes          decimal(18, 2),
    minutes_used                        decimal(18, 2),
    capacity_overrun_minutes            decimal(18, 2),           -- > 0: more minutes used than practical capacity
    period_status                       varchar not null
);

-- Internal, not published: the month's ledger lines, documents and units per customer, written
-- by the allocation (allocate/customer_documents.sql) for its ledger drivers and read by
-- customer_profitability for its orders and credit notes.
create table if not exists marts.customer_documents (
    period              varchar not null,
    customer_id         varchar not null,
    invoice_lines       bigint not null,
    credit_note_lines   bigint not null,
    invoices            bigint not null,    -- distinct invoice documents
    credit_notes        bigint not null,    -- distinct credit-note documents
    units               decimal(38, 4) not null  -- quantity invoiced
);

-- Build numbers order every rebuild of a month's table (allocation, marts) without trusting the
-- clock: a table is stale when an input month it reads has a higher build number than its own.
create sequence if not exists pfd_marts.audit.build_seq start 1;

create table if not exists pfd_marts.audit.allocated_periods (
    period          varchar not null primary key,
    model_sha256    varchar not null,     -- the cost model file it was allocated with
    reason          varchar not null,     -- why it was (re)built: first allocation, new data, ...
    run_id          varchar not null,
    allocated_at    timestamp not null,
    build_id        bigint not null       -- from audit.build_seq
);
