-- Operating margin per segment (and for all customers) in each month of the window.
select
    period,
    segment,
    grouping_level,
    net_revenue,
    operating_profit,
    operating_margin_pct,
from marts.segment_profitability
where grouping_level in ('segment', 'all') and period between $start and $month
order by grouping_level desc, segment, period
