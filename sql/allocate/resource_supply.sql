-- The month's cost supplied per resource, with the model's method for it (null: not in model)
-- and, for time-driven resources, the minutes the month's events consumed.
create or replace temp table resource_supply as
with supplied as (
    select r.resource, r.cost_amount, r.practical_capacity_minutes,
    from raw.resource_costs as r
    cross join period_params as p
    where r.period = p.period
),

used as (
    select resource, sum(minutes) as minutes_used,
    from drivers
    where kind = 'time_driven'
    group by resource
)

select
    coalesce(s.resource, m.resource) as resource,
    m.method,
    coalesce(s.cost_amount, 0)::decimal(18, 2) as supplied,
    s.practical_capacity_minutes as practical_capacity_minutes,
    coalesce(u.minutes_used, 0)::decimal(38, 4) as minutes_used,
from supplied as s
full outer join model.resources as m on m.resource = s.resource
left join used as u on u.resource = coalesce(s.resource, m.resource);
