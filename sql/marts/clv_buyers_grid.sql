-- Each customer with an invoice in the calibration window of a month end in mart_targets, with
-- what the window adds up to (first and last purchase, purchases, first and repeat margin,
-- cost-to-serve), for many month ends at once: temp view clv_buyers, read by clv_inputs.sql,
-- which defines the terms. clv_buyers.sql gives the same rows for a few month ends.
--
-- The windows are whole months. So the customer-months (marts.customer_months, kept with
-- customer_profitability's months) are laid out on a dense customer x month grid, once for all
-- month ends, where a window is the month end's row and the months - 1 rows before it: its
-- totals are sums over that frame, and its first purchase month the frame's first row with
-- purchases. The repeat margin is the margin after that month's first purchase day: the running
-- margin at the month end less the running margin at the first purchase month, plus that
-- month's margin after its first day. Two sorted passes over the grid (the running margin, then
-- the windows); joining the grid to itself four times (the month end, the month before the
-- window, the window's start and its first purchase month) cost 5.2-6.3 s for 24 months at L,
-- this 4.1-4.5 s.
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

-- Each grid row with its month's purchases and costs, and the running margin to date; a month
-- with purchases carries what the window needs of it if it is the window's first such month.
laid as (
    select
        g.customer_id,
        g.mi,
        m.purchases,
        m.last_purchase,
        c.cost_to_serve,
        if(
            m.purchases > 0,
            {
                'first_purchase': m.first_purchase,
                'first_margin': m.first_margin,
                'after_first': m.after_first,
                'margin_to_date': sum(m.margin) over to_date,
            },
            null
        ) as first,
        sum(m.margin) over to_date as margin_to_date,
    from grid as g
    left join customer_months as m using (customer_id, mi)
    left join costs as c using (customer_id, mi)
    window to_date as (
        partition by g.customer_id order by g.mi rows between unbounded preceding and current row
    )
),

-- Each month end's window: the frame of the month and the months - 1 before it (fewer where
-- the grid starts later; no month before the grid has data). Its last purchase is the frame's
-- latest: the window has a purchase, so no earlier month's is later.
windowed as (
    select
        l.customer_id,
        l.mi,
        l.margin_to_date,
        sum(l.purchases) over w as purchases,
        max(l.last_purchase) over w as last_purchase,
        sum(l.cost_to_serve) over w as cost_to_serve,
        first_value(l.first ignore nulls) over w as first,
    from laid as l
    window w as (
        partition by l.customer_id order by l.mi
        rows between (select clv_calibration_months from mart_params) - 1 preceding and current row
    )
),

buyers as (
    select
        t.period,
        w.customer_id,
        w.first.first_purchase as first_purchase,
        w.last_purchase,
        w.purchases::bigint as purchases,
        w.first.first_margin as first_margin,
        (w.margin_to_date - w.first.margin_to_date + w.first.after_first)::decimal(38, 2)
            as repeat_margin,
        coalesce(w.cost_to_serve, 0)::decimal(38, 2) as cost_to_serve,
    from targets as t
    join windowed as w on w.mi = t.mi
    where w.first is not null
)

select b.*, t.window_start, t.period_end,
from buyers as b
join targets as t using (period)
