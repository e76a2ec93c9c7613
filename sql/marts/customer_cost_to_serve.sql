-- Rebuild the month in marts.customer_cost_to_serve from the allocation.
delete from marts.customer_cost_to_serve
where period = (select period from period_params);

-- One rate per resource, activity and method (a few rows), set on each customer's row below;
-- a table, so that the join below knows it is small (as a CTE it was estimated at 270,000
-- rows and the month's million customer rows were hashed instead: 0.4 s a month at L).
create or replace temp table cost_rates as
with standard_rates as (
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
)

select
    k.resource,
    k.activity,
    k.method,
    case k.method
        when 'time_driven' then any_value(s.supplied / s.practical_capacity_minutes)
        when 'pool' then any_value(pv.cost / nullif(pv.units, 0))
        when 'standard_rate' then any_value(r.standard_rate)
    end as rate,
from (select distinct resource, activity, method from allocation where reason is null) as k
left join resource_supply as s on s.resource = k.resource and k.method = 'time_driven'
left join pool_volumes as pv
    on pv.resource = k.resource and pv.activity = k.activity and k.method = 'pool'
left join standard_rates as r on r.activity = k.activity and k.method = 'standard_rate'
group by k.resource, k.activity, k.method;

insert into marts.customer_cost_to_serve
with repeated as (
    -- (activity, resource, method) that more than one cost line of the model draws on: a
    -- customer has a line per cost line there, added up below. Every other (customer, activity,
    -- resource, method) has one allocation line (one per customer and cost line), taken as is.
    select
        activity,
        case when kind in ('standard_rate', 'direct') then kind else resource end as resource,
        kind as method,
    from model.costs
    group by all
    having count(*) > 1
),

assigned as (
    select a.customer_id, a.activity, a.resource, a.method, a.driver_units, a.minutes, a.cost,
    from allocation as a
    anti join repeated as r
        on r.activity = a.activity and r.resource = a.resource and r.method = a.method
    where a.reason is null
    union all
    select
        a.customer_id,
        a.activity,
        a.resource,
        a.method,
        sum(a.driver_units),
        sum(a.minutes),
        sum(a.cost),
    from allocation as a
    semi join repeated as r
        on r.activity = a.activity and r.resource = a.resource and r.method = a.method
    where a.reason is null
    group by a.customer_id, a.activity, a.resource, a.method
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
left join cost_rates as r
    on r.resource is not distinct from a.resource
    and r.activity is not distinct from a.activity
    and r.method is not distinct from a.method;

drop table cost_rates;
