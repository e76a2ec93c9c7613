-- Driver units, minutes and direct amounts per customer, model activity and cost line.
-- One row per (customer_id, activity, cost_index). Events drive time-driven, pool, standard and
-- direct costs; the ledger and the customer base drive the rest.
create or replace temp table drivers as
with shapes as (
    -- the month's distinct event shapes: events of one activity with the same quantity, channel
    -- and flags take the same minutes from every time equation (a few thousand shapes; one per
    -- activity without a time-driven cost, see period_events.sql)
    select distinct
        event_activity,
        quantity,
        channel,
        flags,
        coalesce(string_split(flags, '|'), []) as flag_list,
    from period_events
),

shape_costs as (
    select
        s.event_activity,
        s.quantity,
        s.channel,
        s.flags,
        s.flag_list,
        a.activity,
        a.measure,
        c.cost_index,
        c.kind,
        c.resource,
        c.rate,
        c.base_minutes,
        c.minutes_per_unit,
        c.measured,
    from shapes as s
    join model.activities as a
        on a.driver_source = 'events' and a.driver_name = s.event_activity
    join model.costs as c on c.activity = a.activity
),

adders as (
    -- time-equation adders that apply to each event of a shape: its channel's and each of its
    -- flags'
    select
        sc.event_activity,
        sc.quantity,
        sc.channel,
        sc.flags,
        sc.activity,
        sc.cost_index,
        sum(t.base_minutes + t.minutes_per_unit * sc.quantity) as adder_minutes,
    from shape_costs as sc
    join model.terms as t
        on t.activity = sc.activity
        and t.cost_index = sc.cost_index
        and (
            (t.term_kind = 'channel' and t.term_key = sc.channel)
            or (t.term_kind = 'flag' and list_contains(sc.flag_list, t.term_key))
        )
    group by all
),

shape_minutes as (
    -- one event's minutes from its time equation, per shape and cost line
    select
        sc.* exclude (flag_list, base_minutes, minutes_per_unit),
        greatest(
            0,
            sc.base_minutes + sc.minutes_per_unit * sc.quantity + coalesce(ad.adder_minutes, 0)
        ) as equation_minutes,
    from shape_costs as sc
    left join adders as ad
        on ad.event_activity = sc.event_activity
        and ad.quantity is not distinct from sc.quantity
        and ad.channel is not distinct from sc.channel
        and ad.flags is not distinct from sc.flags
        and ad.activity = sc.activity
        and ad.cost_index = sc.cost_index
),

event_drivers as not materialized (
    select
        -- an event group of an activity no time-driven cost reads (quantity, channel and flags
        -- null, see period_events.sql) is the customer's only one for that activity
        ev.quantity is null as single,
        ev.customer_id,
        ev.customer_known,
        sm.activity,
        sm.cost_index,
        sm.kind,
        sm.resource,
        sm.rate,
        case when sm.measure = 'quantity' then ev.quantity_total else ev.events end
            as driver_units,
        case
            when sm.kind <> 'time_driven' then 0
            else
                -- events with measured minutes take those; the others their time equation's
                (case when sm.measured then coalesce(ev.measured_minutes, 0) else 0 end)
                + (case when sm.measured then ev.events - ev.measured_events else ev.events end)
                * sm.equation_minutes
        end as minutes,
        case when sm.kind = 'direct' then coalesce(ev.amount, 0) else 0 end as direct_amount,
    from period_events as ev
    join shape_minutes as sm
        on sm.event_activity = ev.event_activity
        and sm.quantity is not distinct from ev.quantity
        and sm.channel is not distinct from ev.channel
        and sm.flags is not distinct from ev.flags
),

ledger as (
    -- the month's lines, documents and units per customer (allocate/customer_documents.sql)
    select * exclude (period),
    from marts.customer_documents
    where period = (select period from period_params)
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

-- Event drivers are summed over the month's shapes of each customer, activity and cost line;
-- an activity's single event group per customer, the ledger's and the customer base's are one
-- row each already (one driver per activity), so only the other event rows are grouped.
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
from event_drivers
where not single
group by customer_id, customer_known, activity, cost_index, kind, resource
union all
select
    * replace (
        driver_units::decimal(38, 4) as driver_units,
        minutes::decimal(38, 4) as minutes,
        direct_amount::decimal(38, 2) as direct_amount
    ),
from (
    select * exclude (single) from event_drivers where single
    union all by name
    select * from other_drivers
);
