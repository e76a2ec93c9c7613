-- What the CLV models need, per month end in mart_targets and customer with an invoice in the
-- calibration window (the mart_params.clv_calibration_months months ending with the month),
-- from temp view clv_buyers (clv_buyers.sql for a few month ends, clv_buyers_grid.sql for
-- many). Read by pfd_pipeline/clv.py into temp table clv_inputs; the models run in Python.
--
-- A purchase is a day with at least one invoice (several invoices of one day are one
-- purchase, as in the BG/NBD literature). Times are in weeks from the first purchase in the
-- window: t_x = last purchase, age = the end of the month. Margin = net revenue - COGS of every
-- ledger line, credit notes included, so returns lower the margin of the day they are posted;
-- the repeat margin is the margin after the first purchase day, per repeat purchase. The
-- cost-to-serve of the window's months is spread evenly over its purchases.
select
    b.period,
    b.customer_id,
    strftime(b.window_start, '%Y-%m') as calibration_start,
    b.first_purchase,
    b.last_purchase,
    b.purchases,
    b.purchases - 1 as repeat_purchases,
    (b.last_purchase - b.first_purchase) / 7.0 as recency_weeks,
    (b.period_end - b.first_purchase) / 7.0 as age_weeks,
    b.first_margin,
    b.repeat_margin,
    case when b.purchases > 1 then b.repeat_margin / (b.purchases - 1) end as mean_repeat_margin,
    b.cost_to_serve / b.purchases as cost_to_serve_per_order,
from clv_buyers as b
order by b.period, b.customer_id;
