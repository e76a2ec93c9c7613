-- Rebuild marts.rising_stars for the months in mart_targets: young customers (tenure up to
-- mart_params.rising_max_tenure_months) not yet highly profitable whose CLV or trend puts them
-- on the path to the top tier, with the reason each is listed, and how their segment's young
-- customers compare with today's top tier.
--
-- Listed when the margin trend is not declining and either
--   (a) CLV >= the top tier's CLV bar: the rising_clv_percentile (nearest rank) of the CLV of
--       today's highly profitable customers, or
--   (b) the trend is improving and the run-rate profit (last 3 months x 4) already reaches the
--       lowest trailing-window profit in the top tier.
delete from marts.rising_stars
where period in (select period from mart_targets);

insert into marts.rising_stars
with everyone as (
    select
        v.period,
        v.customer_id,
        v.customer_name,
        v.segment,
        v.region,
        v.tenure_months,
        v.clv,
        v.p_alive,
        v.advocacy,
        r.tier,
        r.tier_order,
        r.operating_profit,
        coalesce(tr.trend, 'insufficient history') as trend,
        tr.margin_slope_pp,
        coalesce(tr.profit_3m, 0) as profit_3m,
        coalesce(tr.profit_3m, 0) * 4 as run_rate_profit,
        v.tenure_months <= p.rising_max_tenure_months as young,
    from marts.customer_lifetime_value as v
    join mart_targets as t using (period)
    join marts.customer_tiers as r using (period, customer_id)
    left join marts.customer_trends as tr using (period, customer_id)
    cross join mart_params as p
),

top_ranked as (
    select
        period,
        clv,
        row_number() over (partition by period order by clv) as clv_rank,
        count(*) over (partition by period) as top_customers,
    from everyone
    where tier_order = 1 and clv is not null
),

bars as (
    select
        e.period,
        (
            select min(k.clv) from top_ranked as k
            where k.period = e.period
                and k.clv_rank >= greatest(1, ceil(p.rising_clv_percentile * k.top_customers))
        ) as clv_bar,
        min(e.operating_profit) filter (e.tier_order = 1) as profit_bar,
    from everyone as e
    cross join mart_params as p
    group by e.period, p.rising_clv_percentile
),

candidates as (
    select
        e.*,
        b.clv_bar,
        b.profit_bar,
        e.clv >= b.clv_bar as clv_on_path,
        e.trend = 'improving' and e.run_rate_profit >= b.profit_bar as run_rate_on_path,
    from everyone as e
    join bars as b using (period)
    where e.young and e.tier_order > 1 and e.trend <> 'declining'
),

listed as (
    select
        *,
        row_number() over (
            partition by period order by clv desc nulls last, customer_id
        ) as rising_rank,
    from candidates
    where clv_on_path or run_rate_on_path
),

segments as (
    select
        e.period,
        e.segment,
        count(*) filter (e.young) as young_customers,
        median(e.clv) filter (e.young) as young_median_clv,
        any_value(b.clv_bar) as clv_bar,
    from everyone as e
    join bars as b using (period)
    group by all
),

segment_listed as (
    select period, segment, count(*) as rising_stars from listed group by all
)

select
    l.period,
    l.rising_rank::integer,
    l.customer_id,
    l.customer_name,
    l.segment,
    l.region,
    l.tenure_months,
    l.tier,
    l.trend,
    l.margin_slope_pp,
    l.operating_profit,
    l.profit_3m,
    l.run_rate_profit,
    l.clv,
    l.p_alive,
    l.advocacy,
    l.clv_bar,
    l.profit_bar,
    concat_ws(
        '; ',
        if(l.clv_on_path, format('CLV {:,.2f} reaches the top tier''s bar {:,.2f}', l.clv, l.clv_bar), null),
        if(
            l.run_rate_on_path,
            format(
                'improving, run-rate profit {:,.2f} already reaches the top tier''s lowest {:,.2f}',
                l.run_rate_profit,
                l.profit_bar
            ),
            null
        ),
        format('{} months a customer, trend {}', l.tenure_months, l.trend)
    ),
    s.young_customers::integer,
    coalesce(n.rising_stars, 0)::integer,
    round(s.young_median_clv, 2)::decimal(18, 2),
    case
        when s.clv_bar > 0 then round(s.young_median_clv * 100 / s.clv_bar, 2)
    end::decimal(18, 2),
from listed as l
join segments as s using (period, segment)
left join segment_listed as n using (period, segment)
order by period;  -- in month order, as every mart (see customer_tiers.sql)
