-- The month's activity events, grouped: events of one customer and activity with the same
-- driver quantity, channel and flags take the same minutes from every time equation, so the
-- engine prices each group once and multiplies by its count (exact: a clamp at zero minutes
-- applies to each event alike). Measured minutes, quantities and direct amounts are summed per
-- group. Events of an activity no time-driven cost line reads (e.g. deliveries priced by pool
-- and direct amount) need no time equation: they are grouped per customer and activity only,
-- with quantity, channel and flags null.
-- Reads the one-row temp table `period_params` (period, period_start, period_end).
create or replace temp table period_events as
with timed as (
    -- event activities that drive a time-driven cost
    select distinct a.driver_name as event_activity,
    from model.activities as a
    join model.costs as c on c.activity = a.activity
    where a.driver_source = 'events' and c.kind = 'time_driven'
),

grouped as (
    select
        e.customer_id,
        e.activity as event_activity,
        case when t.event_activity is not null then e.quantity end as quantity,
        case when t.event_activity is not null then e.channel end as channel,
        case when t.event_activity is not null then e.flags end as flags,
        count(*) as events,
        sum(e.quantity) as quantity_total,
        count(e.minutes) as measured_events,
        sum(e.minutes) as measured_minutes,
        sum(e.amount) as amount,
        count(*) filter (where e.amount <> 0) as amount_events,
    from raw.activity_events as e
    cross join period_params as p
    left join timed as t on t.event_activity = e.activity
    where e.event_date >= p.period_start and e.event_date < p.period_end
    group by all
)

select
    g.customer_id,
    c.customer_id is not null as customer_known,
    g.event_activity,
    g.quantity,
    g.channel,
    g.flags,
    g.events,
    g.quantity_total,
    g.measured_events,
    g.measured_minutes,
    g.amount,
    g.amount_events,
from grouped as g
left join raw.customers as c on c.customer_id = g.customer_id;
