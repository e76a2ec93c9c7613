-- The Shapiro matrix of the month: each ranked customer's net price realisation against its
-- cost-to-serve (% of net revenue), its tier and published quadrant, and the month's medians
-- the quadrants are cut at (over the same customers as in marts/customer_tiers.sql).
select
    customer_id,
    tier,
    shapiro_quadrant,
    net_price_realisation_pct,
    cost_to_serve_pct,
    median(net_price_realisation_pct) over () as price_median,
    median(cost_to_serve_pct) over () as cost_median,
from marts.customer_tiers
where period = $month
order by profit_rank
