-- Rebuild marts.customer_value_matrix for the months in mart_targets: every customer ranked in
-- customer_tiers, by profit tier (trailing window) x advocacy (latest survey score in the
-- advocacy window, from customer_lifetime_value), with counts, profit and CLV per cell. Every
-- one of the 12 cells has a row, empty cells with 0 customers, so a dashboard grid is complete.
delete from marts.customer_value_matrix
where period in (select period from mart_targets);

insert into marts.customer_value_matrix
with cells as (
    select *
    from (
        values
        (1, 'highly profitable', 1, 'promoter', 'awesome customers',
            'keep and learn from: they earn us money and recommend us'),
        (1, 'highly profitable', 2, 'passive', 'profitable passives',
            'deepen the relationship before a competitor does'),
        (1, 'highly profitable', 3, 'detractor', 'profitable detractors at risk',
            'fix what they complain about first: they pay well and may leave'),
        (1, 'highly profitable', 4, 'no response', 'profitable, voice unknown',
            'ask them how we serve them'),
        (2, 'break-even', 1, 'promoter', 'promoters to grow',
            'grow volume or price: they value what we do'),
        (2, 'break-even', 2, 'passive', 'break-even passives',
            'serve them more cheaply'),
        (2, 'break-even', 3, 'detractor', 'break-even detractors',
            'find out why before investing in them'),
        (2, 'break-even', 4, 'no response', 'break-even, voice unknown',
            'ask them how we serve them'),
        (3, 'unprofitable', 1, 'promoter', 'promoters who lose money',
            're-price or move to a cheaper channel: they love what costs us most'),
        (3, 'unprofitable', 2, 'passive', 'unprofitable passives',
            're-price or change the terms of service'),
        (3, 'unprofitable', 3, 'detractor', 'unprofitable detractors',
            'change the terms or let them go'),
        (3, 'unprofitable', 4, 'no response', 'unprofitable, voice unknown',
            're-price or serve them more cheaply')
    ) as c (tier_order, profit_tier, advocacy_order, advocacy, cell, action)
),

customers as (
    select
        r.period,
        r.customer_id,
        r.tier_order,
        r.operating_profit,
        coalesce(v.advocacy, 'no response') as advocacy,
        v.clv,
        v.expected_profit,
    from marts.customer_tiers as r
    join mart_targets as t using (period)
    left join marts.customer_lifetime_value as v using (period, customer_id)
),

grid as (
    select t.period, c.*,
    from mart_targets as t
    cross join cells as c
    where exists (select 1 from customers as k where k.period = t.period)
),

counted as (
    select
        g.period,
        g.tier_order,
        g.profit_tier,
        g.advocacy_order,
        g.advocacy,
        g.cell,
        g.action,
        count(k.customer_id) as customers,
        coalesce(sum(k.operating_profit), 0) as operating_profit,
        count(k.clv) as customers_with_clv,
        coalesce(sum(k.clv), 0) as clv,
        coalesce(sum(k.expected_profit), 0) as expected_profit,
    from grid as g
    left join customers as k
        on k.period = g.period and k.tier_order = g.tier_order and k.advocacy = g.advocacy
    group by all
)

select
    period,
    profit_tier,
    tier_order,
    advocacy,
    advocacy_order,
    cell,
    action,
    customers::integer,
    round(customers * 100 / sum(customers) over (partition by period), 2)::decimal(9, 2),
    operating_profit,
    customers_with_clv::integer,
    clv,
    expected_profit,
    case when customers_with_clv > 0 then round(clv / customers_with_clv, 2) end
        ::decimal(18, 2),
    -- net promoter score of the tier: % promoters - % detractors among its respondents
    case
        when sum(customers) filter (advocacy <> 'no response')
            over (partition by period, tier_order) > 0
            then round(
                (sum(customers) filter (advocacy = 'promoter') over (partition by period, tier_order)
                - sum(customers) filter (advocacy = 'detractor')
                    over (partition by period, tier_order)) * 100
                / sum(customers) filter (advocacy <> 'no response')
                    over (partition by period, tier_order),
                1
            )
    end::decimal(5, 1),
from counted
order by period;  -- in month order, as every mart (see customer_tiers.sql)
