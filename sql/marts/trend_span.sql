-- The months of customer_profitability that customer_trends reads for the months in
-- mart_targets (temp table trend_span, read by trend_series.sql): the 12 months ending with
-- each, or the two growth windows when longer; $month_only: the months in mart_targets alone
-- (their earlier part is kept, see trend_parts.sql). As YYYY-MM text, to filter the period
-- column as it is stored.
select
    case
        when $month_only then min(t.period)
        else strftime(
            min(t.period_start) - to_months(greatest(12, 2 * any_value(p.growth_months) - 1)),
            '%Y-%m'
        )
    end as first_period,
    max(t.period) as last_period,
from mart_targets as t
cross join mart_params as p
