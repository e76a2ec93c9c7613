-- Driver units, minutes and direct amounts per customer, model activity and cost line.
-- One row per (customer_id, activity, cost_index). Events drive time-driven, pool, standard and
-- direct costs; the ledger and the customer base drive the rest.
create or replace temp table drivers as
with event_costs as (
    select
        ev.group_id,
        ev.customer_id,
        ev.customer_known,
        ev.quantity,
        ev.channel,
        ev.flags,
        ev.events,
        ev.measured_events,
        ev.measured_minutes,
        ev.amount,
        a.activity,
        a.measure,
        c.cost_index,
        c.kind,
        c.resource,
        c.rate,
        c.base_minutes,
        c.minutes_per_unit,
        c.measured,
    from period_events as ev
    join model.activities as a
        on a.driver_source = 'events' and a.driver_name = ev.event_activity
    join model.costs as c on c.activity = a.activity
),

adders as (
    -- time-equation adders that apply to each event of a group: its channel's and each of its
    -- flags'
    select
        ec.group_id,
        ec.activity,
        ec.cost_index,
        sum(t.base_minutes + t.minutes_per_unit * ec.quantity) as adder_minutes,
    from event_costs as ec
    join model.terms as t
        on t.activity = ec.activity
        and t.cost_index = ec.cost_index
        and (
            (t.term_kind = 'channel' and t.term_key = ec.channel)
            or (t.term_kind = 'flag' and list_contains(ec.flags, t.term_key))
        )
    group by all
),

event_drivers as (
    select
        ec.customer_id,
        ec.customer_known,
        ec.activity,
        ec.cost_index,
        ec.kind,
        ec.resource,
        ec.rate,
        case when ec.measure = 'quantity' then ec.quantity * ec.events else ec.events end
            as driver_units,
        case
            when ec.kind <> 'time_driven' then 0
            else
                -- events with measured minutes take those; the others their time equation's
                (case when ec.measured then coalesce(ec.measured_minutes, 0) else 0 end)
                + (case when ec.measured then ec.events - ec.measured_events else ec.events end)
                * greatest(
                    0,
                    ec.base_minutes + ec.minutes_per_unit * ec.quantity
                    + coalesce(ad.adder_minutes, 0)
                )
        end as minutes,
        case when ec.kind = 'direct' then coalesce(ec.amount, 0) else 0 end as direct_amount,
    from event_costs as ec
    left join adders as ad
        on ad.group_id = ec.group_id and ad.activity = ec.activity and ad.cost_index = ec.cost_index
),

ledger as (
    select
        l.customer_id,
        count(*) filter (where l.document_type = 'invoice') as invoice_lines,
        count(*) filter (where l.document_type = 'credit_note') as credit_note_lines,
        count(distinct l.document_id) filter (where l.document_type = 'invoice') as invoices,
        count(distinct l.document_id) filter (where l.document_type = 'credit_note') as credit_notes,
        coalesce(sum(l.quantity) filter (where l.document_type = 'invoice'), 0) as units,
    from raw.sales_ledger as l
    cross join period_params as p
    where l.posting_date >= p.period_start and l.posting_date < p.period_end
    group by all
),

ledger_units as (
    unpivot ledger
    on invoice_lines, credit_note_lines, invoices, credit_notes, units
    into name driver_name value driver_units
),

customer_units as (
    -- an active customer: at least one invoice in the month
    select customer_id, 'active' as driver_name, 1 as driver_units,
    from ledger
    where invoices > 0
),

other_drivers as (
    select
        u.customer_id,
        true as customer_known,
        a.activity,
        c.cost_index,
        c.kind,
        c.resource,
        c.rate,
        u.driver_units,
        0 as minutes,
        0 as direct_amount,
    from (
        select 'ledger' as driver_source, * from ledger_units
        union all by name
        select 'customers' as driver_source, * from customer_units
    ) as u
    join model.activities as a
        on a.driver_source = u.driver_source and a.driver_name = u.driver_name
    join model.costs as c on c.activity = a.activity
    where u.driver_units <> 0
)

select
    customer_id,
    customer_known,
    activity,
    cost_index,
    kind,
    resource,
    any_value(rate) as rate,
    sum(driver_units)::decimal(38, 4) as driver_units,
    sum(minutes)::decimal(38, 4) as minutes,
    sum(direct_amount)::decimal(38, 2) as direct_amount,
from (
    select * from event_drivers
    union all by name
    select * from other_drivers
)
group by customer_id, customer_known, activity, cost_index, kind, resource;
