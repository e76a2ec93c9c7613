-- The business's P&L over the window (the sum of every customer's): the waterfall's steps.
select
    count(distinct customer_id) as customers,
    coalesce(sum(gross_revenue), 0) as gross_revenue,
    coalesce(sum(discounts), 0) as discounts,
    coalesce(sum(off_invoice), 0) as off_invoice,
    coalesce(sum(net_revenue), 0) as net_revenue,
    coalesce(sum(cogs), 0) as cogs,
    coalesce(sum(gross_margin), 0) as gross_margin,
    coalesce(sum(cost_to_serve), 0) as cost_to_serve,
    coalesce(sum(operating_profit), 0) as operating_profit,
from marts.customer_profitability
where period between $start and $month
