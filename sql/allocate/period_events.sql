-- The month's activity events, with whether the customer is known and the flags as a list.
-- Reads the one-row temp table `period_params` (period, period_start, period_end).
create or replace temp table period_events as
select
    e.event_id,
    e.customer_id,
    c.customer_id is not null as customer_known,
    e.activity as event_activity,
    e.quantity,
    e.channel,
    e.minutes,
    e.amount,
    coalesce(string_split(e.flags, '|'), []) as flags,
from raw.activity_events as e
cross join period_params as p
left join raw.customers as c on c.customer_id = e.customer_id
where e.event_date >= p.period_start and e.event_date < p.period_end;
