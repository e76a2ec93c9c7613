-- The cost-to-serve drill-down of the given customers over the window: driver units, minutes
-- and cost per activity and the resource it draws on.
select
    customer_id,
    activity,
    resource,
    method,
    sum(driver_units) as driver_units,
    sum(minutes) as minutes,
    sum(cost) as cost,
from marts.customer_cost_to_serve
where period between $start and $month
    and customer_id in (select unnest($customers::varchar[]))
group by all
order by customer_id, cost desc, activity, resource
