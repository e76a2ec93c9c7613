-- What the CLV models need, per month end in mart_targets and customer with an invoice in the
-- calibration window (the mart_params.clv_calibration_months months ending with the month).
-- Read by pfd_pipeline/clv.py into temp table clv_inputs; the models run in Python.
--
-- A purchase is a day with at least one invoice (several invoices of one day are one
-- purchase, as in the BG/NBD literature). Times are in weeks from the first purchase in the
-- window: t_x = last purchase, age = the end of the month. Margin = net revenue - COGS of every
-- ledger line, credit notes included, so returns lower the margin of the day they are posted;
-- the repeat margin is the margin after the first purchase day, per repeat purchase. The
-- cost-to-serve of the window's months is spread evenly over its purchases.
with targets as (
    select
        t.period,
        t.period_end,
        t.period_start - to_months(p.clv_calibration_months - 1) as window_start,
    from mart_targets as t
    cross join mart_params as p
),

-- Each customer-day once (not once per month end that reads it), as customer_profitability's
-- rebuild keeps them.
ledger_days as (
    select d.customer_id, d.day, d.purchase, d.margin,
    from marts.customer_days as d
    where d.period >= (select strftime(min(window_start), '%Y-%m') from targets)
        and d.period <= (select max(period) from targets)
),

days as (
    select t.period, d.*,
    from targets as t
    join ledger_days as d on d.day >= t.window_start and d.day < t.period_end
),

buyers as (
    select
        period,
        customer_id,
        min(day) filter (purchase) as first_purchase,
        max(day) filter (purchase) as last_purchase,
        count(*) filter (purchase) as purchases,
    from days
    group by all
    having count(*) filter (purchase) > 0
),

margins as (
    select
        b.period,
        b.customer_id,
        sum(d.margin) filter (d.day = b.first_purchase) as first_margin,
        coalesce(sum(d.margin) filter (d.day > b.first_purchase), 0) as repeat_margin,
    from buyers as b
    join days as d using (period, customer_id)
    group by all
),

costs as (
    select t.period, c.customer_id, sum(c.cost_to_serve) as cost_to_serve,
    from targets as t
    join marts.customer_profitability as c
        on c.period between strftime(t.window_start, '%Y-%m') and t.period
    group by all
)

select
    b.period,
    b.customer_id,
    strftime(t.window_start, '%Y-%m') as calibration_start,
    b.first_purchase,
    b.last_purchase,
    b.purchases,
    b.purchases - 1 as repeat_purchases,
    (b.last_purchase - b.first_purchase) / 7.0 as recency_weeks,
    (t.period_end - b.first_purchase) / 7.0 as age_weeks,
    m.first_margin,
    m.repeat_margin,
    case when b.purchases > 1 then m.repeat_margin / (b.purchases - 1) end as mean_repeat_margin,
    coalesce(c.cost_to_serve, 0) / b.purchases as cost_to_serve_per_order,
from buyers as b
join targets as t using (period)
join margins as m using (period, customer_id)
left join costs as c using (period, customer_id)
order by b.period, b.customer_id;
