-- The most and the least profitable customers of the month's window, $limit of each: the best
-- first, then (worst true) the worst first. With fewer than twice $limit customers ranked, a
-- customer is in both lists.
with ranked as (
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
),

listed as (
    (select false as worst, * from ranked order by profit_rank limit $limit)
    union all
    (select true as worst, * from ranked order by profit_rank desc limit $limit)
)

select * from listed
order by worst, if(worst, -profit_rank, profit_rank)
