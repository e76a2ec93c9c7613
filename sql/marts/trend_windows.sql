-- Each customer's sums over the windows of customer_trends and the run of months declining, for
-- every month in mart_targets and every customer with a profitability row in the 12 months
-- ending with it (temp view trend_windows, read by customer_trends.sql). For a few months: the
-- two parts of each window (temp table trend_parts, trend_parts.sql) added up.
-- trend_windows_grid.sql gives the same rows for many months at once.
--
-- The run of declines ending with the month, at most 12: none when the month did not decline
-- (it has no margin, or the month before has none, or its margin is not lower), else the
-- months since the latest of the 12 before it that did not decline, else 12 (a customer's first
-- month in the series never declines).
select
    period,
    mi,
    customer_id,
    coalesce(sum(profit_3m), 0) as profit_3m,
    coalesce(sum(profit_6m), 0) as profit_6m,
    coalesce(sum(profit_12m), 0) as profit_12m,
    coalesce(sum(revenue_3m), 0) as revenue_3m,
    coalesce(sum(revenue_6m), 0) as revenue_6m,
    coalesce(sum(revenue_12m), 0) as revenue_12m,
    sum(n)::bigint as n,
    sum(sx) as sx,
    sum(sxx) as sxx,
    sum(sy) as sy,
    sum(sxy) as sxy,
    sum(revenue_recent) as revenue_recent,
    sum(revenue_prior) as revenue_prior,
    sum(cost_recent) as cost_recent,
    sum(cost_prior) as cost_prior,
    case
        when coalesce(
            any_value(margin) filter (not earlier) < any_value(previous_margin) filter (earlier),
            false
        )
            then coalesce(mi - any_value(last_calm) filter (earlier), 12)
        else 0
    end as months_declining,
from trend_parts
group by period, mi, customer_id
having sum(months_12m) > 0
