-- Rebuild the month in marts.activity_rates: how each rate was derived, per resource and activity.
delete from marts.activity_rates
where period = (select period from period_params);

insert into marts.activity_rates
with lines as (
    select
        resource,
        activity,
        any_value(method) as method,
        coalesce(sum(driver_units), 0) as driver_units,
        sum(minutes) as minutes_used,
        coalesce(sum(cost) filter (where reason is null), 0) as cost_assigned,
        coalesce(sum(cost) filter (where reason is not null), 0) as cost_unassigned,
        sum(cost) as cost_total,
    from allocation
    where method in ('time_driven', 'pool') and activity is not null
    group by all
),

unused as (
    select resource, sum(cost) as unused_cost, sum(minutes) filter (where cost >= 0) as unused_minutes,
    from allocation
    where reason = 'unused_capacity'
    group by all
)

select
    p.period,
    l.resource,
    l.activity,
    l.method,
    case when l.method = 'pool' then l.cost_total else s.supplied end as cost_supplied,
    s.practical_capacity_minutes,
    case
        when l.method = 'time_driven' then s.supplied / s.practical_capacity_minutes
        else l.cost_total / nullif(l.driver_units, 0)
    end as rate,
    l.driver_units,
    l.minutes_used,
    l.cost_assigned,
    l.cost_unassigned,
    case when l.method = 'time_driven' then s.minutes_used end as resource_minutes_used,
    case when l.method = 'time_driven'
        then s.practical_capacity_minutes - s.minutes_used end as unused_capacity_minutes,
    case when l.method = 'time_driven' then coalesce(u.unused_cost, 0) end as unused_capacity_cost,
    case when l.method = 'time_driven'
        then round(s.minutes_used / s.practical_capacity_minutes, 4) end as utilisation,
    p.period_status,
from lines as l
cross join period_params as p
join resource_supply as s on s.resource = l.resource
left join unused as u on u.resource = l.resource;
