-- The business's P&L over the window (the sum of every customer's): the waterfall's steps. Summed
-- from segment_profitability's totals of each month (grouping_level 'all', the sum of the month's
-- customer_profitability rows): the same figures from a few rows instead of every customer's.
select
    coalesce(sum(gross_revenue), 0) as gross_revenue,
    coalesce(sum(discounts), 0) as discounts,
    coalesce(sum(off_invoice), 0) as off_invoice,
    coalesce(sum(net_revenue), 0) as net_revenue,
    coalesce(sum(cogs), 0) as cogs,
    coalesce(sum(gross_margin), 0) as gross_margin,
    coalesce(sum(cost_to_serve), 0) as cost_to_serve,
    coalesce(sum(operating_profit), 0) as operating_profit,
from marts.segment_profitability
where grouping_level = 'all' and period between $start and $month
