-- What clv_buyers_grid.sql gives (temp view clv_buyers, read by clv_inputs.sql), for a few
-- month ends (the daily run's one): the two parts of each window (temp table clv_parts,
-- clv_parts.sql: the months before the month end, and the month itself) added up per customer.
-- The two must give the same rows (a test checks).
--
-- The window's first purchase is the earlier part's when it has one, else the month's. The
-- margin before it (credit notes only) is the earlier part's before its first purchase, or, when
-- the first purchase is in the month, all of the earlier part's margin (none of its months has
-- a purchase) and the month's before the purchase.
with targets as (
    select
        t.period,
        t.period_end,
        t.period_start - to_months(p.clv_calibration_months - 1) as window_start,
    from mart_targets as t
    cross join mart_params as p
),

parts as (
    select
        period,
        customer_id,
        e.first_month is not null as earlier_bought,
        if(earlier_bought, e.first, m.first) as first,
        coalesce(e.purchases, 0) + coalesce(m.purchases, 0) as purchases,
        greatest(e.last_purchase, m.last_purchase) as last_purchase,
        coalesce(e.margin, 0) + coalesce(m.margin, 0) as margin,
        if(
            earlier_bought,
            coalesce(e.early_margin, 0),
            coalesce(e.margin, 0) + coalesce(m.early_margin, 0)
        ) as early_margin,
        coalesce(e.cost_to_serve, 0) + coalesce(m.cost_to_serve, 0) as cost_to_serve,
    from (from clv_parts where earlier) as e
    full join (from clv_parts where not earlier) as m using (period, customer_id)
    where e.first_month is not null or m.first_month is not null
),

-- The repeat margin: the months after the first, and the first month's after its first day.
buyers as (
    select
        p.period,
        p.customer_id,
        p.first.first_purchase as first_purchase,
        p.last_purchase,
        p.purchases::bigint as purchases,
        p.first.first_margin as first_margin,
        (p.margin - p.first.margin - p.early_margin + p.first.after_first)::decimal(38, 2)
            as repeat_margin,
        p.cost_to_serve::decimal(38, 2) as cost_to_serve,
    from parts as p
)

select b.*, t.window_start, t.period_end,
from buyers as b
join targets as t using (period)
