-- What clv_buyers_grid.sql gives (temp view clv_buyers, read by clv_inputs.sql), for a few
-- month ends (the daily run's one): each month end is joined to the customer-months of its own
-- window and they are added up per customer, which for one month end costs a fraction of the
-- grid of running totals that clv_buyers_grid.sql lays out for many. The two must give the same
-- rows (a test checks).
with targets as (
    select
        t.period,
        t.period_end,
        t.period_start - to_months(p.clv_calibration_months - 1) as window_start,
        strftime(t.period_start - to_months(p.clv_calibration_months - 1), '%Y-%m')
            as first_period,
    from mart_targets as t
    cross join mart_params as p
),

-- Not materialised: totals reads every customer-month of the window once, early only the
-- months without purchases (a few thousand), each from its own scan; materialised for both,
-- the 4 million customer-months of a month end at L cost 0.63 s to store (0.75 -> 0.66 s).
months as not materialized (
    select
        t.period,
        m.customer_id,
        m.period as month,
        m.purchases,
        m.first_purchase,
        m.last_purchase,
        m.first_margin,
        m.after_first,
        m.margin,
    from targets as t
    join marts.customer_months as m on m.period between t.first_period and t.period
),

-- What the window adds up to, and its first month with purchases, whose row arg_min keeps (no
-- join of every customer-month back to it: 1.5 -> 0.6 s for one month end at L).
totals as (
    select
        period,
        customer_id,
        min(month) filter (purchases > 0) as first_month,
        arg_min(struct_pack(first_purchase, first_margin, after_first, margin), month)
            filter (purchases > 0) as first,
        sum(purchases) as purchases,
        max(last_purchase) as last_purchase,
        sum(margin) as margin,
    from months
    group by all
    having min(month) filter (purchases > 0) is not null
),

-- The margin of months before the first month with purchases (credit notes only; few).
early as (
    select m.period, m.customer_id, sum(m.margin) as margin,
    from months as m
    join totals as s on s.period = m.period and s.customer_id = m.customer_id
    where m.purchases = 0 and m.month < s.first_month
    group by all
),

costs as (
    select t.period, c.customer_id, sum(c.cost_to_serve) as cost_to_serve,
    from targets as t
    join marts.customer_profitability as c on c.period between t.first_period and t.period
    group by all
),

-- The repeat margin: the months after the first, and the first month's after its first day.
buyers as (
    select
        s.period,
        s.customer_id,
        s.first.first_purchase as first_purchase,
        s.last_purchase,
        s.purchases::bigint as purchases,
        s.first.first_margin as first_margin,
        (s.margin - s.first.margin - coalesce(e.margin, 0) + s.first.after_first)
            ::decimal(38, 2) as repeat_margin,
        coalesce(c.cost_to_serve, 0)::decimal(38, 2) as cost_to_serve,
    from totals as s
    left join early as e on e.period = s.period and e.customer_id = s.customer_id
    left join costs as c on c.period = s.period and c.customer_id = s.customer_id
)

select b.*, t.window_start, t.period_end,
from buyers as b
join targets as t using (period)
