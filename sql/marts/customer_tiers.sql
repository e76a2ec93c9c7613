-- Rebuild marts.customer_tiers for the months in mart_targets. Customers are ranked by operating
-- profit over the trailing window (mart_params.window_months, ending with the month); the top
-- top_share of them (by count) are "highly profitable" if they make money, the bottom
-- bottom_share "unprofitable", the rest "break-even". Shapiro quadrant: price realisation
-- (net / gross revenue) and cost-to-serve (% of net revenue), each against the month's median.
delete from marts.customer_tiers
where period in (select period from mart_targets);

insert into marts.customer_tiers
with ranked as (
    select
        *,
        row_number() over (
            partition by period order by operating_profit desc, customer_id
        ) as profit_rank,
        count(*) over (partition by period) as customers,
        sum(operating_profit) over (partition by period) as total_profit,
        sum(operating_profit) over (
            partition by period order by operating_profit desc, customer_id
            rows between unbounded preceding and current row
        ) as cumulative_profit,
        case
            when gross_revenue > 0 and net_revenue > 0
                then round(net_revenue * 100 / gross_revenue, 4)
        end as net_price_realisation_pct,
        case
            when net_revenue > 0 then round(cost_to_serve * 100 / net_revenue, 4)
        end as cost_to_serve_pct,
    -- each customer's totals over the window: temp table tier_windows (marts.stage_tier_windows)
    from tier_windows
),

medians as (
    select
        period,
        median(net_price_realisation_pct) as price_median,
        median(cost_to_serve_pct) as cost_median,
    from ranked
    group by all
),

tiered as (
    select
        r.*,
        case
            when r.profit_rank <= r.customers * p.top_share and r.operating_profit > 0 then 1
            when r.profit_rank - 1 >= r.customers * (1 - p.bottom_share) then 3
            else 2
        end as tier_order,
        case
            when r.net_price_realisation_pct is null or r.cost_to_serve_pct is null then null
            when r.net_price_realisation_pct >= m.price_median
                then if(r.cost_to_serve_pct >= m.cost_median, 'carriage trade', 'passive')
            else if(r.cost_to_serve_pct >= m.cost_median, 'aggressive', 'bargain basement')
        end as shapiro_quadrant,
    from ranked as r
    join medians as m using (period)
    cross join mart_params as p
),

named as (
    select
        *,
        case tier_order when 1 then 'highly profitable' when 2 then 'break-even'
            else 'unprofitable' end as tier,
    from tiered
),

-- Tiers of the month before: rebuilt in this statement, or already in the table.
previous as (
    select period, customer_id, tier, tier_order from named
    union all
    select period, customer_id, tier, tier_order from marts.customer_tiers
)

select
    t.period,
    t.customer_id,
    coalesce(k.customer_name, '(not in customer master)'),
    coalesce(k.segment, 'unknown'),
    coalesce(k.region, 'unknown'),
    t.window_start,
    t.months_active,
    t.gross_revenue,
    t.net_revenue,
    t.cost_to_serve,
    t.operating_profit,
    t.profit_rank,
    t.customers,
    round(t.profit_rank * 100 / t.customers, 4),
    t.cumulative_profit,
    case when t.total_profit > 0 then round(t.cumulative_profit * 100 / t.total_profit, 4) end,
    t.tier,
    t.tier_order,
    t.net_price_realisation_pct,
    t.cost_to_serve_pct,
    t.shapiro_quadrant,
    pv.tier,
    case
        when pv.tier is null then 'new'
        when pv.tier_order = t.tier_order then 'same'
        when t.tier_order < pv.tier_order then 'up'
        else 'down'
    end,
from named as t
left join previous as pv on pv.period = t.previous_period and pv.customer_id = t.customer_id
left join raw.customers as k on k.customer_id = t.customer_id
-- in month order: each month's rows in row groups of their own, so that reading one month (a
-- BI filter, the Parquet publication's COPY per month) skips the others' row groups
order by t.period;
