-- Profitability marts, one row set per month (period 'YYYY-MM'); a month is rebuilt whole.
-- Column descriptions live in sql/publish/catalog.yaml (applied with COMMENT ON).
-- In the marts file, attached as pfd_marts (see cost_tables.sql).
create schema if not exists pfd_marts.marts;

-- Customer-days were kept here until they were folded into the customer-months below.
drop table if exists marts.customer_days;

-- Internal, not published: each customer-month of the ledger, rebuilt with the months of
-- customer_profitability, so that the CLV inputs read one row per customer and month instead of
-- grouping the whole ledger for every month end: its purchases (days with an invoice), the first
-- and the last, the margin of the first purchase day, of the month's days after it and of all
-- its days. The CLV windows are whole months, so the CLV inputs add these up per window.
create table if not exists marts.customer_months (
    period          varchar not null,
    customer_id     varchar not null,
    purchases       bigint not null,
    first_purchase  date,
    last_purchase   date,
    first_margin    decimal(38, 2),
    after_first     decimal(38, 2),
    margin          decimal(38, 2) not null,
);

-- Internal, not published: each customer's operating profit of every month up to the month,
-- for every month of customer_profitability (written with customer_lifetime_value, whose
-- historical profit it is), so that one month end reads one earlier month, not all of them.
create table if not exists marts.customer_history (
    period              varchar not null,
    customer_id         varchar not null,
    historical_profit   decimal(18, 2) not null,
);

create table if not exists marts.customer_profitability (
    period                  varchar not null,
    customer_id             varchar not null,
    customer_name           varchar not null,
    segment                 varchar not null,
    region                  varchar not null,
    main_channel            varchar not null,
    invoiced_gross          decimal(18, 2) not null,
    credit_notes_gross      decimal(18, 2) not null,
    gross_revenue           decimal(18, 2) not null,
    discounts               decimal(18, 2) not null,
    off_invoice             decimal(18, 2) not null,
    net_revenue             decimal(18, 2) not null,
    cogs                    decimal(18, 2) not null,
    gross_margin            decimal(18, 2) not null,
    cost_to_serve           decimal(18, 2) not null,
    operating_profit        decimal(18, 2) not null,
    gross_margin_pct        decimal(18, 2),
    operating_margin_pct    decimal(18, 2),
    orders                  bigint not null,
    credit_notes            bigint not null,
    invoice_lines           bigint not null,
    credit_note_lines       bigint not null,
    units_sold              decimal(18, 4) not null,
    units_returned          decimal(18, 4) not null,
    top_cost_activity       varchar,
    top_cost_activity_cost  decimal(18, 2),
    period_status           varchar not null
);

create table if not exists marts.customer_tiers (
    period                      varchar not null,
    customer_id                 varchar not null,
    customer_name               varchar not null,
    segment                     varchar not null,
    region                      varchar not null,
    window_start                varchar not null,
    months_active               integer not null,
    gross_revenue               decimal(18, 2) not null,
    net_revenue                 decimal(18, 2) not null,
    cost_to_serve               decimal(18, 2) not null,
    operating_profit            decimal(18, 2) not null,
    profit_rank                 integer not null,
    customers                   integer not null,
    cumulative_customer_pct     decimal(9, 4) not null,
    cumulative_profit           decimal(18, 2) not null,
    cumulative_profit_pct       decimal(18, 4),
    tier                        varchar not null,
    tier_order                  tinyint not null,
    net_price_realisation_pct   decimal(18, 4),
    cost_to_serve_pct           decimal(18, 4),
    shapiro_quadrant            varchar,
    previous_tier               varchar,
    tier_change                 varchar not null
);

create table if not exists marts.whale_curve (
    period                  varchar not null,
    customer_pct            integer not null,
    customers_counted       integer not null,
    cumulative_profit       decimal(18, 2) not null,
    cumulative_profit_pct   decimal(18, 4),
    customers               integer not null,
    total_profit            decimal(18, 2) not null,
    peak_profit_pct         decimal(18, 4),
    peak_customer_pct       decimal(9, 4),
    top_customers_pct       decimal(9, 4) not null,
    top_profit_pct          decimal(18, 4),
    bottom_customers_pct    decimal(9, 4) not null,
    bottom_profit_pct       decimal(18, 4),
    unprofitable_customers  integer not null
);

create table if not exists marts.customer_trends (
    period                      varchar not null,
    customer_id                 varchar not null,
    segment                     varchar not null,
    profit_3m                   decimal(18, 2) not null,
    profit_6m                   decimal(18, 2) not null,
    profit_12m                  decimal(18, 2) not null,
    net_revenue_12m             decimal(18, 2) not null,
    operating_margin_3m_pct     decimal(18, 2),
    operating_margin_6m_pct     decimal(18, 2),
    operating_margin_12m_pct    decimal(18, 2),
    margin_slope_pp             decimal(18, 4),
    slope_points                integer not null,
    net_revenue_growth_pct      decimal(18, 2),
    cost_to_serve_growth_pct    decimal(18, 2),
    months_declining            integer not null,
    trend                       varchar not null
);

create table if not exists marts.segment_profitability (
    period                      varchar not null,
    grouping_level              varchar not null,
    segment                     varchar not null,
    region                      varchar not null,
    channel                     varchar not null,
    customers                   integer not null,
    gross_revenue               decimal(18, 2) not null,
    discounts                   decimal(18, 2) not null,
    off_invoice                 decimal(18, 2) not null,
    net_revenue                 decimal(18, 2) not null,
    cogs                        decimal(18, 2) not null,
    gross_margin                decimal(18, 2) not null,
    cost_to_serve               decimal(18, 2) not null,
    operating_profit            decimal(18, 2) not null,
    gross_margin_pct            decimal(18, 2),
    operating_margin_pct        decimal(18, 2),
    orders                      bigint not null,
    net_revenue_growth_pct      decimal(18, 2),
    operating_margin_recent_pct decimal(18, 2),
    operating_margin_prior_pct  decimal(18, 2),
    margin_change_pp            decimal(18, 2),
    eroding_while_growing       boolean not null
);

-- Which build of each month every mart table holds (see audit.build_seq).
create table if not exists pfd_marts.audit.mart_periods (
    table_name      varchar not null,
    period          varchar not null,
    build_id        bigint not null,
    settings        varchar not null,     -- MartSettings fingerprint it was built with
    run_id          varchar not null,
    built_at        timestamp not null,
    primary key (table_name, period)
);

-- Every month's build of every table: the allocation's for the cost tables, the marts' own.
create or replace view pfd_marts.audit.table_builds as
select t.table_name, a.period, a.build_id
from audit.allocated_periods as a
cross join (
    values ('customer_cost_to_serve'), ('activity_rates'), ('allocation_reconciliation')
) as t (table_name)
union all
select table_name, period, build_id from audit.mart_periods;

-- Customer lifetime value (pfd_pipeline/clv.py, sql/marts/customer_lifetime_value.sql).
create table if not exists marts.customer_lifetime_value (
    period                      varchar not null,
    customer_id                 varchar not null,
    customer_name               varchar not null,
    segment                     varchar not null,
    region                      varchar not null,
    acquired_on                 date not null,
    tenure_months               integer not null,
    calibration_start           varchar not null,
    first_order_date            date not null,
    last_order_date             date not null,
    orders                      integer not null,
    repeat_orders               integer not null,
    recency_weeks               decimal(9, 4) not null,
    age_weeks                   decimal(9, 4) not null,
    mean_repeat_margin          decimal(18, 2),
    margin_model                varchar not null,
    expected_margin_per_order   decimal(18, 2),
    cost_to_serve_per_order     decimal(18, 2) not null,
    expected_profit_per_order   decimal(18, 2),
    p_alive                     decimal(9, 4),
    expected_orders             decimal(18, 4),
    expected_profit             decimal(18, 2),
    clv                         decimal(18, 2),
    historical_profit           decimal(18, 2) not null,
    survey_score                smallint,
    survey_date                 date,
    advocacy                    varchar not null
);

create table if not exists marts.clv_model_fit (
    period                          varchar not null,
    calibration_start               varchar,
    status                          varchar not null,
    customers_fitted                integer not null,
    repeat_customers                integer not null,
    bgnbd_r                         double,
    bgnbd_alpha_weeks               double,
    bgnbd_a                         double,
    bgnbd_b                         double,
    bgnbd_log_likelihood            double,
    margin_customers                integer not null,
    non_positive_margin_customers   integer not null,
    gamma_gamma_p                   double,
    gamma_gamma_q                   double,
    gamma_gamma_gamma               double,
    gamma_gamma_log_likelihood      double,
    population_margin_per_order     decimal(18, 2),
    horizon_months                  integer not null,
    annual_discount_rate            decimal(9, 6) not null
);

create table if not exists marts.customer_value_matrix (
    period                  varchar not null,
    profit_tier             varchar not null,
    tier_order              tinyint not null,
    advocacy                varchar not null,
    advocacy_order          tinyint not null,
    cell                    varchar not null,
    action                  varchar not null,
    customers               integer not null,
    share_of_customers_pct  decimal(9, 2),
    operating_profit        decimal(18, 2) not null,
    customers_with_clv      integer not null,
    clv                     decimal(18, 2) not null,
    expected_profit         decimal(18, 2) not null,
    average_clv             decimal(18, 2),
    tier_nps                decimal(5, 1)
);

create table if not exists marts.rising_stars (
    period                          varchar not null,
    rising_rank                     integer not null,
    customer_id                     varchar not null,
    customer_name                   varchar not null,
    segment                         varchar not null,
    region                          varchar not null,
    tenure_months                   integer not null,
    tier                            varchar not null,
    trend                           varchar not null,
    margin_slope_pp                 decimal(18, 4),
    operating_profit                decimal(18, 2) not null,
    profit_3m                       decimal(18, 2) not null,
    run_rate_profit                 decimal(18, 2) not null,
    clv                             decimal(18, 2),
    p_alive                         decimal(9, 4),
    advocacy                        varchar not null,
    top_tier_clv_bar                decimal(18, 2),
    top_tier_profit_bar             decimal(18, 2),
    reason                          varchar not null,
    segment_young_customers         integer not null,
    segment_rising_stars            integer not null,
    segment_young_median_clv        decimal(18, 2),
    segment_clv_vs_top_tier_pct     decimal(18, 2)
);
