-- The month's cost supplied per resource, with the model's method for it (null: not in model)
-- and, for time-driven resources, the minutes the month's events consumed and the cost charged
-- for them at the capacity cost rate.
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
),

supply as (
    select
        coalesce(s.resource, m.resource) as resource,
        m.method,
        coalesce(s.cost_amount, 0)::decimal(18, 2) as supplied,
        s.practical_capacity_minutes as practical_capacity_minutes,
        coalesce(u.minutes_used, 0)::decimal(38, 4) as minutes_used,
    from supplied as s
    full outer join model.resources as m on m.resource = s.resource
    left join used as u on u.resource = coalesce(s.resource, m.resource)
)

select
    *,
    -- charged at the capacity cost rate: all of supplied, or supplied * used / capacity when
    -- over capacity, rounded half up to the cent in integer cents (a decimal division in DuckDB
    -- is a binary float: 100.01 * 300 / 200 = 150.015 would round to 150.01)
    case
        when method = 'time_driven' and practical_capacity_minutes > 0
            and minutes_used > practical_capacity_minutes
            then (
                (
                    2 * (supplied * 100)::hugeint * (minutes_used * 10000)::hugeint
                    + (practical_capacity_minutes * 100)::hugeint * 100
                ) // ((practical_capacity_minutes * 100)::hugeint * 200)
            )::decimal(38, 2) * 0.01
        else supplied
    end::decimal(18, 2) as charged,
from supply;
