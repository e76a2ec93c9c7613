-- Per resource over the window: cost supplied, assigned, unused capacity, unassigned and the
-- reconciliation difference, with capacity and minutes used, and months that do not balance.
select
    resource,
    string_agg(distinct method, ', ') as method,
    count(*) as months,
    count(*) filter (difference <> 0) as months_not_balancing,
    sum(cost_supplied) as cost_supplied,
    sum(cost_assigned) as cost_assigned,
    sum(unused_capacity_cost) as unused_capacity_cost,
    sum(unassigned_total) as unassigned_total,
    sum(difference) as difference,
    sum(practical_capacity_minutes) as practical_capacity_minutes,
    sum(minutes_used) as minutes_used,
from marts.allocation_reconciliation
where period between $start and $month
group by resource
order by resource
