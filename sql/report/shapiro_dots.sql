-- The Shapiro matrix's dots: each ranked customer with both percentages, by tier (in the order of
-- shapiro_tiers.sql), then in profit-rank order: cost-to-serve and net price realised as doubles
-- for the chart. The cast gives the same double as Python's float() of the decimal (the nearest
-- one; tests/test_report.py checks).
select
    cast(cost_to_serve_pct as double) as cost_to_serve_pct,
    cast(net_price_realisation_pct as double) as net_price_realisation_pct,
from marts.customer_tiers
where period = $month and net_price_realisation_pct is not null and cost_to_serve_pct is not null
order by tier, profit_rank
