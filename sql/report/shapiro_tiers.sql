-- The Shapiro matrix's dots per tier, in the order shapiro_dots.sql lists them.
select tier, count(*) as dots
from marts.customer_tiers
where period = $month and net_price_realisation_pct is not null and cost_to_serve_pct is not null
group by tier
order by tier
