-- Cost-to-serve by activity over the window, largest first.
select activity, sum(cost) as cost
from marts.customer_cost_to_serve
where period between $start and $month
group by activity
order by cost desc, activity
