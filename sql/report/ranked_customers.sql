-- The most (or, with $worst, the least) profitable customers of the month's window.
select
    customer_id,
    customer_name,
    segment,
    tier,
    shapiro_quadrant,
    net_revenue,
    cost_to_serve,
    operating_profit,
    profit_rank,
from marts.customer_tiers
where period = $month
order by if($worst, -profit_rank, profit_rank)
limit $limit
