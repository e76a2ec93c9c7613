-- Rebuild marts.customer_lifetime_value and marts.clv_model_fit for the months in
-- mart_targets, from the temp tables pfd_pipeline/clv.py leaves: clv_inputs (from
-- clv_inputs.sql), clv_scores (per customer) and clv_fits (per month).
--
-- expected profit per order = expected margin per order - cost-to-serve per order;
-- expected_profit = expected orders over the horizon x that, undiscounted; clv = the same with
-- each month's expected orders discounted. The models compute in floating point; money is
-- rounded to the cent and stored as DECIMAL at the end. CLV is an estimate.

-- Each customer's operating profit of every month to date (internal, read below as the
-- historical profit), for every month of customer_profitability from the first month rebuilt to
-- the last: the latest month before them, whose history is up to date (a month is rebuilt with
-- every month after it), plus a running sum of the months' profit. So a daily run reads one
-- earlier month's history, not every earlier month's profit (which grew with the history: at
-- L with 24 months, 0.13 s for one month end and 3.2 s for all 24).
delete from marts.customer_history
where period between (select min(period) from mart_targets) and (select max(period) from mart_targets);

insert into marts.customer_history
with span as (
    select min(period) as first_period, max(period) as last_period, from mart_targets
),

profits as (
    select c.period, c.customer_id, c.operating_profit,
    from marts.customer_profitability as c
    cross join span as s
    where c.period between s.first_period and s.last_period
),

base as (
    select h.customer_id, h.historical_profit,
    from marts.customer_history as h
    where h.period = (
        select max(period) from marts.customer_history
        where period < (select first_period from span)
    )
),

-- every customer seen by the month, in every month of the span (a grid: the history carries
-- over months without profit)
grid as (
    select c.customer_id, m.period,
    from (select customer_id from base union select customer_id from profits) as c
    cross join (select distinct period from profits) as m
),

running as (
    select
        g.period,
        g.customer_id,
        b.historical_profit as base_profit,
        sum(p.operating_profit) over customer_months as profit_to_date,
    from grid as g
    left join profits as p on p.customer_id = g.customer_id and p.period = g.period
    left join base as b on b.customer_id = g.customer_id
    window customer_months as (
        partition by g.customer_id order by g.period rows unbounded preceding
    )
)

select
    period,
    customer_id,
    (coalesce(base_profit, 0) + coalesce(profit_to_date, 0))::decimal(18, 2),
from running
where base_profit is not null or profit_to_date is not null;

delete from marts.customer_lifetime_value
where period in (select period from mart_targets);

delete from marts.clv_model_fit
where period in (select period from mart_targets);

insert into marts.customer_lifetime_value
with targets as (
    select
        t.period,
        t.period_start,
        t.period_end,
        t.period_start - to_months(p.advocacy_window_months - 1) as survey_start,
        p.promoter_min_score,
        p.detractor_max_score,
    from mart_targets as t
    cross join mart_params as p
),

-- Operating profit of every month up to the month end: the value the customer has created
-- (marts.customer_history, written above).
history as (
    select h.period, h.customer_id, h.historical_profit,
    from marts.customer_history as h
    where h.period in (select period from targets)
),

-- The latest survey answer in the advocacy window (the latest score counts, not the mean).
surveys as (
    select
        t.period,
        f.customer_id,
        arg_max(f.score, f.survey_date) as score,
        max(f.survey_date) as survey_date,
    from targets as t
    join raw.feedback as f
        on f.survey_date >= t.survey_start and f.survey_date < t.period_end
    group by all
),

scored as (
    select
        i.*,
        s.margin_model,
        s.expected_margin_per_order,
        s.p_alive,
        s.expected_orders,
        s.discounted_orders,
        s.expected_margin_per_order - i.cost_to_serve_per_order as expected_profit_per_order,
    from clv_inputs as i
    join clv_scores as s using (period, customer_id)
)

select
    s.period,
    s.customer_id,
    coalesce(k.customer_name, '(not in customer master)'),
    coalesce(k.segment, 'unknown'),
    coalesce(k.region, 'unknown'),
    coalesce(k.acquired_on, s.first_purchase),
    date_diff('month', coalesce(k.acquired_on, s.first_purchase), t.period_end)::integer,
    s.calibration_start,
    s.first_purchase,
    s.last_purchase,
    s.purchases::integer,
    s.repeat_purchases::integer,
    round(s.recency_weeks, 4)::decimal(9, 4),
    round(s.age_weeks, 4)::decimal(9, 4),
    round(s.mean_repeat_margin, 2)::decimal(18, 2),
    s.margin_model,
    round(s.expected_margin_per_order, 2)::decimal(18, 2),
    round(s.cost_to_serve_per_order, 2)::decimal(18, 2),
    round(s.expected_profit_per_order, 2)::decimal(18, 2),
    round(s.p_alive, 4)::decimal(9, 4),
    round(s.expected_orders, 4)::decimal(18, 4),
    round(s.expected_orders * s.expected_profit_per_order, 2)::decimal(18, 2),
    round(s.discounted_orders * s.expected_profit_per_order, 2)::decimal(18, 2),
    coalesce(h.historical_profit, 0),
    v.score::smallint,
    v.survey_date,
    case
        when v.score is null then 'no response'
        when v.score >= t.promoter_min_score then 'promoter'
        when v.score <= t.detractor_max_score then 'detractor'
        else 'passive'
    end,
from scored as s
join targets as t using (period)
left join history as h using (period, customer_id)
left join surveys as v using (period, customer_id)
left join raw.customers as k on k.customer_id = s.customer_id
-- in month order: a month's rows lie in row groups of their own (see customer_tiers.sql)
order by s.period;

insert into marts.clv_model_fit
select
    f.period,
    i.calibration_start,
    f.status,
    f.customers_fitted::integer,
    f.repeat_customers::integer,
    f.r,
    f.alpha,
    f.a,
    f.b,
    f.bgnbd_log_likelihood,
    f.margin_customers::integer,
    f.non_positive_margin_customers::integer,
    f.p,
    f.q,
    f.gamma,
    f.gamma_gamma_log_likelihood,
    round(f.population_margin_per_order, 2)::decimal(18, 2),
    p.clv_horizon_months,
    p.clv_annual_discount_rate,
from clv_fits as f
cross join mart_params as p
left join (select distinct period, calibration_start from clv_inputs) as i using (period)
order by period;  -- in month order, as every mart (see customer_tiers.sql)
