-- What tier_windows.sql gives, for many months at once: every month end joined to the months
-- of its window reads each customer-month window_months times (38.6 million rows for 24 months
-- at L); here every customer is laid out on every month from the first with data, and each
-- total is a sum over the window's rows of that grid, one sorted pass for all month ends
-- (6.3 -> 3.3 s for 24 months at L; the join stays cheaper for up to about 5 months).
with targets as (
    select
        t.period,
        year(t.period_start) * 12 + month(t.period_start) as mi,
        strftime(t.period_start - to_months(p.window_months - 1), '%Y-%m') as window_start,
        strftime(t.period_start - to_months(1), '%Y-%m') as previous_period,
    from mart_targets as t
    cross join mart_params as p
),

bounds as (
    select
        min(t.mi) - any_value(p.window_months) + 1 as first_mi,
        max(t.mi) as last_mi,
        min(t.window_start) as first_period,
        max(t.period) as last_period,
        any_value(p.window_months) as window_months,
    from targets as t
    cross join mart_params as p
),

series as (
    select
        c.customer_id,
        cast(left(c.period, 4) as integer) * 12 + cast(right(c.period, 2) as integer) as mi,
        c.gross_revenue,
        c.net_revenue,
        c.cost_to_serve,
        c.operating_profit,
    from marts.customer_profitability as c
    cross join bounds as b
    where c.period between b.first_period and b.last_period
),

grid as (
    select
        c.customer_id,
        unnest(range(greatest(b.first_mi, m.first_mi), b.last_mi + 1)) as mi,
        b.window_months,
    from (select distinct customer_id from series) as c
    cross join bounds as b
    cross join (select min(mi) as first_mi from series) as m
),

totals as (
    select
        g.customer_id,
        g.mi,
        count(s.mi) over w as months_active,
        sum(s.gross_revenue) over w as gross_revenue,
        sum(s.net_revenue) over w as net_revenue,
        sum(s.cost_to_serve) over w as cost_to_serve,
        sum(s.operating_profit) over w as operating_profit,
    from grid as g
    left join series as s using (customer_id, mi)
    window w as (
        partition by g.customer_id
        order by g.mi
        rows between g.window_months - 1 preceding and current row
    )
)

select
    t.period,
    t.window_start,
    t.previous_period,
    s.customer_id,
    s.months_active,
    s.gross_revenue,
    s.net_revenue,
    s.cost_to_serve,
    s.operating_profit,
from targets as t
join totals as s on s.mi = t.mi
where s.months_active > 0
