-- Each customer with an invoice in the calibration window of a month end in mart_targets, with
-- what the window adds up to (first and last purchase, purchases, first and repeat margin,
-- cost-to-serve), for many month ends at once: temp view clv_buyers, read by clv_inputs.sql,
-- which defines the terms. clv_buyers.sql gives the same rows for a few month ends.
--
-- The windows are whole months. So the customer-months (marts.customer_months, kept with
-- customer_profitability's months) are laid out on a dense customer x month grid with running
-- totals, once for all month ends: a window's total is the running total at its month end less
-- the one the month before the window starts, and its first purchase month is the first month
-- with purchases from the window's start on.
with targets as (
    select
        t.period,
        t.period_end,
        t.period_start - to_months(p.clv_calibration_months - 1) as window_start,
        year(t.period_start) * 12 + month(t.period_start) as mi,
        p.clv_calibration_months as months,
    from mart_targets as t
    cross join mart_params as p
),

bounds as (
    select
        strftime(min(window_start), '%Y-%m') as first_period,
        max(period) as last_period,
        min(mi) - any_value(months) + 1 as first_mi,
        max(mi) as last_mi,
    from targets
),

customer_months as (
    select
        m.*,
        cast(left(m.period, 4) as integer) * 12 + cast(right(m.period, 2) as integer) as mi,
    from marts.customer_months as m
    where m.period >= (select first_period from bounds)
        and m.period <= (select last_period from bounds)
),

costs as (
    select
        c.customer_id,
        cast(left(c.period, 4) as integer) * 12 + cast(right(c.period, 2) as integer) as mi,
        c.cost_to_serve,
    from marts.customer_profitability as c
    where c.period >= (select first_period from bounds)
        and c.period <= (select last_period from bounds)
),

-- Every month from the first one with data in the windows, for every customer with a day in them.
grid_months as (
    select unnest(range(greatest(b.first_mi, least(m.first_mi, c.first_mi)), b.last_mi + 1)) as mi,
    from bounds as b
    cross join (select min(mi) as first_mi from customer_months) as m
    cross join (select min(mi) as first_mi from costs) as c
),

grid as (
    select c.customer_id, g.mi,
    from (select distinct customer_id from customer_months) as c
    cross join grid_months as g
),

running as (
    select
        g.customer_id,
        g.mi,
        m.first_purchase,
        m.first_margin,
        m.after_first,
        sum(m.purchases) over to_date as purchases_to_date,
        max(m.last_purchase) over to_date as last_purchase,
        sum(m.margin) over to_date as margin_to_date,
        sum(c.cost_to_serve) over to_date as cost_to_date,
        min(case when m.purchases > 0 then g.mi end) over from_here as next_purchase_mi,
    from grid as g
    left join customer_months as m using (customer_id, mi)
    left join costs as c using (customer_id, mi)
    window
        to_date as (
            partition by g.customer_id order by g.mi
            rows between unbounded preceding and current row
        ),
        from_here as (
            partition by g.customer_id order by g.mi
            rows between current row and unbounded following
        )
),

buyers as (
    select
        t.period,
        e.customer_id,
        f.first_purchase,
        e.last_purchase,
        (e.purchases_to_date - coalesce(b.purchases_to_date, 0))::bigint as purchases,
        f.first_margin,
        (e.margin_to_date - f.margin_to_date + f.after_first)::decimal(38, 2) as repeat_margin,
        (coalesce(e.cost_to_date, 0) - coalesce(b.cost_to_date, 0))::decimal(38, 2)
            as cost_to_serve,
    from targets as t
    cross join (select min(mi) as first_mi from grid_months) as g
    join running as e on e.mi = t.mi
    -- the month before the window
    left join running as b on b.customer_id = e.customer_id and b.mi = t.mi - t.months
    -- the window's first month (in the grid)
    join running as s
        on s.customer_id = e.customer_id and s.mi = greatest(t.mi - t.months + 1, g.first_mi)
    -- the window's first month with purchases
    join running as f
        on f.customer_id = e.customer_id and f.mi = s.next_purchase_mi and f.mi <= t.mi
)

select b.*, t.window_start, t.period_end,
from buyers as b
join targets as t using (period)
