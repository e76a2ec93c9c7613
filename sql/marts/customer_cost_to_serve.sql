-- Rebuild the month in marts.customer_cost_to_serve from the allocation.
delete from marts.customer_cost_to_serve
where period = (select period from period_params);

insert into marts.customer_cost_to_serve
with rates as (
    select resource, activity, any_value(rate) as standard_rate,
    from drivers
    where kind = 'standard_rate'
    group by all
)
select
    p.period,
    a.customer_id,
    a.activity,
    a.resource,
    a.method,
    sum(a.driver_units) as driver_units,
    sum(a.minutes) as minutes,
    case a.method
        when 'time_driven' then any_value(s.supplied / s.practical_capacity_minutes)
        when 'pool' then any_value(pv.cost / nullif(pv.units, 0))
        when 'standard_rate' then any_value(r.standard_rate)
    end as rate,
    sum(a.cost) as cost,
    p.period_status,
from allocation as a
cross join period_params as p
left join resource_supply as s on s.resource = a.resource and a.method = 'time_driven'
left join (
    select resource, activity, sum(cost) as cost, sum(driver_units) as units,
    from allocation
    where method = 'pool'
    group by all
) as pv on pv.resource = a.resource and pv.activity = a.activity and a.method = 'pool'
left join rates as r on r.activity = a.activity and a.method = 'standard_rate'
where a.reason is null
group by p.period, p.period_status, a.customer_id, a.activity, a.resource, a.method;
