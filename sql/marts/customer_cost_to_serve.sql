-- Rebuild the month in marts.customer_cost_to_serve from the allocation.
delete from marts.customer_cost_to_serve
where period = (select period from period_params);

insert into marts.customer_cost_to_serve
with assigned as (
    select
        customer_id,
        activity,
        resource,
        method,
        sum(driver_units) as driver_units,
        sum(minutes) as minutes,
        sum(cost) as cost,
    from allocation
    where reason is null
    group by customer_id, activity, resource, method
),

standard_rates as (
    select resource, activity, any_value(rate) as standard_rate,
    from drivers
    where kind = 'standard_rate'
    group by all
),

pool_volumes as (
    select resource, activity, sum(cost) as cost, sum(driver_units) as units,
    from allocation
    where method = 'pool'
    group by all
),

rates as (
    -- one rate per resource, activity and method (a few rows), set on each customer's row below
    select
        k.resource,
        k.activity,
        k.method,
        case k.method
            when 'time_driven' then any_value(s.supplied / s.practical_capacity_minutes)
            when 'pool' then any_value(pv.cost / nullif(pv.units, 0))
            when 'standard_rate' then any_value(r.standard_rate)
        end as rate,
    from (select distinct resource, activity, method from assigned) as k
    left join resource_supply as s on s.resource = k.resource and k.method = 'time_driven'
    left join pool_volumes as pv
        on pv.resource = k.resource and pv.activity = k.activity and k.method = 'pool'
    left join standard_rates as r on r.activity = k.activity and k.method = 'standard_rate'
    group by k.resource, k.activity, k.method
)

select
    p.period,
    a.customer_id,
    a.activity,
    a.resource,
    a.method,
    a.driver_units,
    a.minutes,
    r.rate,
    a.cost,
    p.period_status,
from assigned as a
cross join period_params as p
left join rates as r
    on r.resource is not distinct from a.resource
    and r.activity is not distinct from a.activity
    and r.method is not distinct from a.method;
