-- Customers, net revenue and operating profit per tier over the month's window.
select
    tier,
    count(*) as customers,
    sum(net_revenue) as net_revenue,
    sum(operating_profit) as operating_profit,
from marts.customer_tiers
where period = $month
group by tier, tier_order
order by tier_order
