-- The month's activity events, grouped: events of one customer and activity with the same
-- driver quantity, channel and flags take the same minutes from every time equation, so the
-- engine prices each group once and multiplies by its count (exact: a clamp at zero minutes
-- applies to each event alike). Measured minutes and direct amounts are summed per group.
-- Reads the one-row temp table `period_params` (period, period_start, period_end).
create or replace temp table period_events as
with grouped as (
    select
        e.customer_id,
        e.activity as event_activity,
        e.quantity,
        e.channel,
        e.flags,
        count(*) as events,
        count(e.minutes) as measured_events,
        sum(e.minutes) as measured_minutes,
        sum(e.amount) as amount,
        count(*) filter (where e.amount <> 0) as amount_events,
    from raw.activity_events as e
    cross join period_params as p
    where e.event_date >= p.period_start and e.event_date < p.period_end
    group by e.customer_id, e.activity, e.quantity, e.channel, e.flags
)
select
    g.customer_id,
    c.customer_id is not null as customer_known,
    g.event_activity,
    g.quantity,
    g.channel,
    g.flags,
    g.events,
    g.measured_events,
    g.measured_minutes,
    g.amount,
    g.amount_events,
from grouped as g
left join raw.customers as c on c.customer_id = g.customer_id;
