-- Rebuild marts.customer_profitability for the months in mart_targets: the ledger's P&L per
-- customer and month (credit notes net against revenue in the month they are posted) less the
-- cost-to-serve allocated to the customer in that month.
delete from marts.customer_profitability
where period in (select period from mart_targets);

insert into marts.customer_profitability
-- The months' ledger lines, each with its month: an equality join on the month (and the span of
-- the months, which skips the rest of the ledger), not a range join per month.
with lines as not materialized (
    select
        t.period,
        l.customer_id,
        l.document_type,
        l.document_id,
        l.channel,
        l.gross_amount,
        l.discount_amount,
        l.off_invoice_amount,
        l.cogs_amount,
        l.quantity,
    from raw.sales_ledger as l
    join mart_targets as t on date_trunc('month', l.posting_date)::date = t.period_start
    where l.posting_date >= (select min(period_start) from mart_targets)
        and l.posting_date < (select max(period_end) from mart_targets)
),

-- The lines summed per customer, channel and document type, once for the P&L and the channels.
sums as (
    select
        period,
        customer_id,
        channel,
        document_type,
        sum(gross_amount) as gross_amount,
        sum(discount_amount) as discount_amount,
        sum(off_invoice_amount) as off_invoice_amount,
        sum(cogs_amount) as cogs_amount,
        sum(quantity) as quantity,
        count(*) as lines,
    from lines
    group by all
),

-- Documents are counted once per customer and month, whatever their lines: by the month's
-- allocation (allocate/customer_documents.sql), which reads the same lines and always runs
-- before this when one of them changed. Every customer with a line has a row there: a missing
-- one would drop the customer's revenue here, which the run's tie-out to the ledger reports.
documents as (
    select period, customer_id, invoices as orders, credit_notes,
    from marts.customer_documents
    where period in (select period from mart_targets)
),

ledger as (
    select
        s.period,
        s.customer_id,
        coalesce(sum(s.gross_amount) filter (s.document_type = 'invoice'), 0) as invoiced_gross,
        coalesce(sum(s.gross_amount) filter (s.document_type = 'credit_note'), 0)
            as credit_notes_gross,
        sum(s.gross_amount) as gross_revenue,
        sum(s.discount_amount) as discounts,
        sum(s.off_invoice_amount) as off_invoice,
        sum(s.cogs_amount) as cogs,
        any_value(d.orders) as orders,
        any_value(d.credit_notes) as credit_notes,
        coalesce(sum(s.lines) filter (s.document_type = 'invoice'), 0)::bigint as invoice_lines,
        coalesce(sum(s.lines) filter (s.document_type = 'credit_note'), 0)::bigint
            as credit_note_lines,
        coalesce(sum(s.quantity) filter (s.document_type = 'invoice'), 0) as units_sold,
        coalesce(-sum(s.quantity) filter (s.document_type = 'credit_note'), 0) as units_returned,
    from sums as s
    join documents as d using (period, customer_id)
    group by s.period, s.customer_id
),

-- The channel that brought the customer most invoiced revenue in the month.
channels as (
    select
        period,
        customer_id,
        coalesce(channel, 'unknown') as channel,
        sum(gross_amount) - sum(discount_amount) - sum(off_invoice_amount) as net,
    from sums
    where document_type = 'invoice'
    group by all
),

main_channel as (
    select period, customer_id, first(channel order by net desc, channel) as main_channel,
    from channels
    group by all
),

by_activity as (
    select period, customer_id, activity, sum(cost) as cost,
    from marts.customer_cost_to_serve
    where period in (select period from mart_targets)
    group by all
),

cost as (
    select
        period,
        customer_id,
        sum(cost) as cost_to_serve,
        first(activity order by cost desc, activity) as top_cost_activity,
        max(cost) as top_cost_activity_cost,
    from by_activity
    group by all
),

status as (
    select period, any_value(period_status) as period_status,
    from marts.allocation_reconciliation
    where period in (select period from mart_targets)
    group by all
),

pnl as (
    select
        coalesce(l.period, c.period) as period,
        coalesce(l.customer_id, c.customer_id) as customer_id,
        coalesce(l.invoiced_gross, 0) as invoiced_gross,
        coalesce(l.credit_notes_gross, 0) as credit_notes_gross,
        coalesce(l.gross_revenue, 0) as gross_revenue,
        coalesce(l.discounts, 0) as discounts,
        coalesce(l.off_invoice, 0) as off_invoice,
        coalesce(l.cogs, 0) as cogs,
        coalesce(c.cost_to_serve, 0) as cost_to_serve,
        coalesce(l.orders, 0) as orders,
        coalesce(l.credit_notes, 0) as credit_notes,
        coalesce(l.invoice_lines, 0) as invoice_lines,
        coalesce(l.credit_note_lines, 0) as credit_note_lines,
        coalesce(l.units_sold, 0) as units_sold,
        coalesce(l.units_returned, 0) as units_returned,
        c.top_cost_activity,
        c.top_cost_activity_cost,
    from ledger as l
    full join cost as c on c.period = l.period and c.customer_id = l.customer_id
),

measures as (
    select
        *,
        gross_revenue - discounts - off_invoice as net_revenue,
        gross_revenue - discounts - off_invoice - cogs as gross_margin,
        gross_revenue - discounts - off_invoice - cogs - cost_to_serve as operating_profit,
    from pnl
)

select
    m.period,
    m.customer_id,
    coalesce(k.customer_name, '(not in customer master)'),
    coalesce(k.segment, 'unknown'),
    coalesce(k.region, 'unknown'),
    coalesce(ch.main_channel, 'none'),
    m.invoiced_gross,
    m.credit_notes_gross,
    m.gross_revenue,
    m.discounts,
    m.off_invoice,
    m.net_revenue,
    m.cogs,
    m.gross_margin,
    m.cost_to_serve,
    m.operating_profit,
    case when m.net_revenue > 0 then round(m.gross_margin * 100 / m.net_revenue, 2) end,
    case when m.net_revenue > 0 then round(m.operating_profit * 100 / m.net_revenue, 2) end,
    m.orders,
    m.credit_notes,
    m.invoice_lines,
    m.credit_note_lines,
    m.units_sold,
    m.units_returned,
    m.top_cost_activity,
    m.top_cost_activity_cost,
    coalesce(s.period_status, 'open'),
from measures as m
left join raw.customers as k on k.customer_id = m.customer_id
left join main_channel as ch on ch.period = m.period and ch.customer_id = m.customer_id
left join status as s on s.period = m.period;

-- The months' customer-months (internal, read by marts/clv_inputs): the purchases (days with an
-- invoice), the first and the last, the margin of the first purchase day, of the month's days
-- after it and of all its days, credit notes included. From the month's customer-days, which
-- are not kept (1.3 million a month at L, written and read back only to make these).
delete from marts.customer_months
where period in (select period from mart_targets);

insert into marts.customer_months
with days as materialized (
    select
        t.period,
        l.customer_id,
        l.posting_date as day,
        bool_or(l.document_type = 'invoice') as purchase,
        sum(l.gross_amount - l.discount_amount - l.off_invoice_amount - l.cogs_amount) as margin,
    from raw.sales_ledger as l
    join mart_targets as t on date_trunc('month', l.posting_date)::date = t.period_start
    where l.posting_date >= (select min(period_start) from mart_targets)
        and l.posting_date < (select max(period_end) from mart_targets)
    group by all
),

months as (
    select
        period,
        customer_id,
        count(*) filter (purchase) as purchases,
        min(day) filter (purchase) as first_purchase,
        max(day) filter (purchase) as last_purchase,
        arg_min(margin, day) filter (purchase) as first_margin,
        sum(margin) as margin,
    from days
    group by all
),

-- The margin of days without a purchase (credit notes only) before the month's first purchase.
early as (
    select d.period, d.customer_id, sum(d.margin) as margin,
    from days as d
    join months as m using (period, customer_id)
    where not d.purchase and d.day < m.first_purchase
    group by all
)

select
    m.period,
    m.customer_id,
    m.purchases,
    m.first_purchase,
    m.last_purchase,
    m.first_margin,
    m.margin - coalesce(e.margin, 0) - m.first_margin,
    m.margin,
from months as m
left join early as e using (period, customer_id)
order by 1, 2;
