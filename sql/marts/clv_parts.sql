-- What each customer's CLV calibration window adds up to, for the month ends in mart_targets
-- (the mart_params.clv_calibration_months months ending with each), in two parts: the window's
-- months before the month end (`earlier`) and the month itself, which clv_buyers.sql adds up
-- (temp table clv_parts). $month_only: the month's own part only; the earlier part then comes
-- from the one kept in marts.clv_earlier_months (pfd_pipeline/marts.stage_parts), so that a
-- daily run reads one month of customer_months and customer_profitability instead of 24.
-- A part may have no purchases (credit notes only) or no customer-month at all (cost-to-serve
-- only): its sums are then null.
with targets as (
    select
        t.period,
        case
            when $month_only then t.period
            else strftime(t.period_start - to_months(p.clv_calibration_months - 1), '%Y-%m')
        end as first_period,
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

-- What each part adds up to, and its first month with purchases, whose row arg_min keeps (no
-- join of every customer-month back to it: 1.5 -> 0.6 s for one month end at L).
totals as (
    select
        period,
        customer_id,
        month < period as earlier,
        min(month) filter (purchases > 0) as first_month,
        arg_min(struct_pack(first_purchase, first_margin, after_first, margin), month)
            filter (purchases > 0) as first,
        sum(purchases) as purchases,
        max(last_purchase) as last_purchase,
        sum(margin) as margin,
    from months
    group by all
),

-- The margin of a part's months before its first month with purchases (credit notes only;
-- few).
early as (
    select m.period, m.customer_id, s.earlier, sum(m.margin) as margin,
    from months as m
    join totals as s
        on s.period = m.period
        and s.customer_id = m.customer_id
        and s.earlier = (m.month < m.period)
    where m.purchases = 0 and m.month < s.first_month
    group by all
),

costs as (
    select
        t.period,
        c.customer_id,
        c.period < t.period as earlier,
        sum(c.cost_to_serve) as cost_to_serve,
    from targets as t
    join marts.customer_profitability as c on c.period between t.first_period and t.period
    group by all
)

select
    period,
    customer_id,
    earlier,
    s.first_month,
    s.first,
    s.purchases,
    s.last_purchase,
    s.margin,
    e.margin as early_margin,
    c.cost_to_serve,
from totals as s
full join costs as c using (period, customer_id, earlier)
left join early as e using (period, customer_id, earlier)
