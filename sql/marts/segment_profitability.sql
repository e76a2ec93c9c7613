-- Rebuild marts.segment_profitability for the months in mart_targets: the customer P&L rolled up
-- by segment x region x channel (the customer's main channel in the month), with subtotals
-- ('All' in a rolled-up column; grouping_level names the columns kept). Growth compares the last
-- growth_months months with the growth_months before, at every level, so a segment whose margin
-- erodes while it grows stands out.
delete from marts.segment_profitability
where period in (select period from mart_targets);

insert into marts.segment_profitability
with bounds as (
    select
        -- the months read, as YYYY-MM text, to filter the period column as it is stored
        strftime(min(t.period_start) - to_months(2 * any_value(p.growth_months) - 1), '%Y-%m')
            as first_period,
        max(t.period) as last_period,
    from mart_targets as t
    cross join mart_params as p
),

rows as (
    select
        c.*,
        cast(left(c.period, 4) as integer) * 12 + cast(right(c.period, 2) as integer) as mi,
    from marts.customer_profitability as c
),

rolled as (
    select
        r.period,
        any_value(r.mi) as mi,
        case
            when grouping(r.segment, r.region, r.channel) = 0 then 'segment, region, channel'
            when grouping(r.segment, r.region, r.channel) = 1 then 'segment, region'
            when grouping(r.segment, r.region, r.channel) = 3 then 'segment'
            when grouping(r.segment, r.region, r.channel) = 5 then 'region'
            when grouping(r.segment, r.region, r.channel) = 6 then 'channel'
            else 'all'
        end as grouping_level,
        coalesce(r.segment, 'All') as segment,
        coalesce(r.region, 'All') as region,
        coalesce(r.channel, 'All') as channel,
        -- one row per customer and month, and every level keeps the month: rows = customers
        count(*) as customers,
        sum(r.gross_revenue) as gross_revenue,
        sum(r.discounts) as discounts,
        sum(r.off_invoice) as off_invoice,
        sum(r.net_revenue) as net_revenue,
        sum(r.cogs) as cogs,
        sum(r.gross_margin) as gross_margin,
        sum(r.cost_to_serve) as cost_to_serve,
        sum(r.operating_profit) as operating_profit,
        sum(r.orders) as orders,
    from (select *, main_channel as channel from rows) as r
    cross join bounds as b
    where r.period between b.first_period and b.last_period
    group by grouping sets (
        (r.period, r.segment, r.region, r.channel),
        (r.period, r.segment, r.region),
        (r.period, r.segment),
        (r.period, r.region),
        (r.period, r.channel),
        (r.period)
    )
),

-- The same row's level and keys over the last growth_months months and the growth_months before.
trended as (
    select
        r.*,
        sum(o.net_revenue) filter (o.mi > r.mi - p.growth_months) as revenue_recent,
        sum(o.operating_profit) filter (o.mi > r.mi - p.growth_months) as profit_recent,
        sum(o.net_revenue) filter (o.mi <= r.mi - p.growth_months) as revenue_prior,
        sum(o.operating_profit) filter (o.mi <= r.mi - p.growth_months) as profit_prior,
    from rolled as r
    cross join mart_params as p
    join rolled as o
        on o.grouping_level = r.grouping_level
        and o.segment = r.segment
        and o.region = r.region
        and o.channel = r.channel
        and o.mi between r.mi - 2 * p.growth_months + 1 and r.mi
    where r.period in (select period from mart_targets)
    group by all
),

measured as (
    select
        *,
        case when revenue_prior > 0
            then round((revenue_recent - revenue_prior) * 100 / revenue_prior, 2) end as growth,
        case when revenue_recent > 0 then round(profit_recent * 100 / revenue_recent, 2) end
            as margin_recent,
        case when revenue_prior > 0 then round(profit_prior * 100 / revenue_prior, 2) end
            as margin_prior,
    from trended
)

select
    m.period,
    m.grouping_level,
    m.segment,
    m.region,
    m.channel,
    m.customers,
    m.gross_revenue,
    m.discounts,
    m.off_invoice,
    m.net_revenue,
    m.cogs,
    m.gross_margin,
    m.cost_to_serve,
    m.operating_profit,
    case when m.net_revenue > 0 then round(m.gross_margin * 100 / m.net_revenue, 2) end,
    case when m.net_revenue > 0 then round(m.operating_profit * 100 / m.net_revenue, 2) end,
    m.orders,
    m.growth,
    m.margin_recent,
    m.margin_prior,
    m.margin_recent - m.margin_prior,
    coalesce(m.growth > 0 and m.margin_recent - m.margin_prior <= -p.erosion_pp, false),
from measured as m
cross join mart_params as p
where m.period in (select period from mart_targets)
order by m.period;  -- in month order, as every mart (see customer_tiers.sql)
