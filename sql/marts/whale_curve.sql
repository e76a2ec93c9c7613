-- Rebuild marts.whale_curve for the months in mart_targets, from marts.customer_tiers: at every
-- whole percent k of customers (ranked by profit, most profitable first), the profit of the
-- top floor(k% x customers) as a share of total profit; and the month's summary figures.
delete from marts.whale_curve
where period in (select period from mart_targets);

insert into marts.whale_curve
with ranked as (
    select period, profit_rank, customers, operating_profit, cumulative_profit,
    from marts.customer_tiers
    where period in (select period from mart_targets)
),

months as (
    select
        r.period,
        any_value(r.customers) as customers,
        sum(r.operating_profit) as total_profit,
        count(*) filter (r.operating_profit < 0) as unprofitable_customers,
        max(r.cumulative_profit) as peak_profit,
        -- the first rank at which the curve reaches its peak
        min(r.profit_rank) filter (r.cumulative_profit = r.peak) as peak_rank,
        cast(floor(any_value(r.customers) * any_value(p.top_share)) as integer) as top_n,
        cast(floor(any_value(r.customers) * any_value(p.bottom_share)) as integer) as bottom_n,
    from (select *, max(cumulative_profit) over (partition by period) as peak, from ranked) as r
    cross join mart_params as p
    group by r.period
),

summary as (
    select
        m.*,
        coalesce(top.cumulative_profit, 0) as top_profit,
        m.total_profit - coalesce(above_bottom.cumulative_profit, 0) as bottom_profit,
    from months as m
    left join ranked as top on top.period = m.period and top.profit_rank = m.top_n
    left join ranked as above_bottom
        on above_bottom.period = m.period and above_bottom.profit_rank = m.customers - m.bottom_n
),

points as (
    select s.period, k.customer_pct, cast(floor(s.customers * k.customer_pct / 100) as integer) as n,
    from summary as s
    cross join (select cast(range as integer) as customer_pct from range(0, 101)) as k
)

select
    p.period,
    p.customer_pct,
    p.n,
    coalesce(r.cumulative_profit, 0),
    case when s.total_profit > 0 then round(coalesce(r.cumulative_profit, 0) * 100 / s.total_profit, 4) end,
    s.customers,
    s.total_profit,
    case when s.total_profit > 0 then round(s.peak_profit * 100 / s.total_profit, 4) end,
    round(s.peak_rank * 100 / s.customers, 4),
    round(s.top_n * 100 / s.customers, 4),
    case when s.total_profit > 0 then round(s.top_profit * 100 / s.total_profit, 4) end,
    round(s.bottom_n * 100 / s.customers, 4),
    case when s.total_profit > 0 then round(s.bottom_profit * 100 / s.total_profit, 4) end,
    s.unprofitable_customers,
from points as p
join summary as s using (period)
left join ranked as r on r.period = p.period and r.profit_rank = p.n
order by p.period;  -- in month order, as every mart (see customer_tiers.sql)
