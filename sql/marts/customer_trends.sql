-- Rebuild marts.customer_trends for the months in mart_targets, from each customer's window
-- sums (temp view trend_windows: trend_windows.sql for a few months, trend_windows_grid.sql for
-- many). The margin slope is the least-squares slope, computed from exact sums
-- (n*Sxy - Sx*Sy) / (n*Sxx - Sx^2) so that re-runs give identical values; only the final
-- division is in floating point, then rounded.
delete from marts.customer_trends
where period in (select period from mart_targets);

insert into marts.customer_trends
with measured as (
    select
        w.*,
        case
            when w.n >= 3
                then round((w.n * w.sxy - w.sx * w.sy) / (w.n * w.sxx - w.sx * w.sx), 4)
        end as margin_slope_pp,
    -- each customer's window sums: temp view trend_windows (marts.stage_trend_windows)
    from trend_windows as w
)

select
    m.period,
    m.customer_id,
    coalesce(k.segment, 'unknown'),
    m.profit_3m,
    m.profit_6m,
    m.profit_12m,
    m.revenue_12m,
    case when m.revenue_3m > 0 then round(m.profit_3m * 100 / m.revenue_3m, 2) end,
    case when m.revenue_6m > 0 then round(m.profit_6m * 100 / m.revenue_6m, 2) end,
    case when m.revenue_12m > 0 then round(m.profit_12m * 100 / m.revenue_12m, 2) end,
    m.margin_slope_pp,
    m.n,
    case
        when m.revenue_prior > 0 then round((m.revenue_recent - m.revenue_prior) * 100 / m.revenue_prior, 2)
    end,
    case
        when m.cost_prior > 0 then round((m.cost_recent - m.cost_prior) * 100 / m.cost_prior, 2)
    end,
    m.months_declining,
    case
        when m.margin_slope_pp is null then 'insufficient history'
        when m.margin_slope_pp <= -p.stable_slope_pp or m.months_declining >= p.declining_months
            then 'declining'
        when m.margin_slope_pp >= p.stable_slope_pp then 'improving'
        else 'stable'
    end,
from measured as m
cross join mart_params as p
left join raw.customers as k on k.customer_id = m.customer_id
-- in month order: a month's rows lie in row groups of their own (see customer_tiers.sql)
order by m.period;
