-- The Shapiro matrix's dots: each ranked customer with both percentages, its tier, cost-to-serve
-- and net price realised (% as doubles for the chart: the decimal scaled to an integer and divided
-- by a power of ten, the same value as Python's float() of the decimal), in profit-rank order.
select
    tier,
    cast(cost_to_serve_pct as double) as cost_to_serve_pct,
    cast(net_price_realisation_pct as double) as net_price_realisation_pct,
from marts.customer_tiers
where period = $month and net_price_realisation_pct is not null and cost_to_serve_pct is not null
order by profit_rank
