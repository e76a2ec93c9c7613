-- The Shapiro matrix of the month in figures: the medians the quadrants are cut at (over the same
-- customers as in marts/customer_tiers.sql), customers per published quadrant, and how many
-- customers are ranked and how many have both percentages (the dots drawn).
select
    median(net_price_realisation_pct) as price_median,
    median(cost_to_serve_pct) as cost_median,
    count(*) as customers,
    count(*) filter (
        net_price_realisation_pct is not null and cost_to_serve_pct is not null
    ) as plotted,
    count(*) filter (shapiro_quadrant = 'passive') as "passive",
    count(*) filter (shapiro_quadrant = 'carriage trade') as "carriage trade",
    count(*) filter (shapiro_quadrant = 'bargain basement') as "bargain basement",
    count(*) filter (shapiro_quadrant = 'aggressive') as "aggressive",
from marts.customer_tiers
where period = $month
