-- Every unit of the month's cost on one line: who or what it went to, and why.
-- customer_id is set and reason null for cost assigned to a customer; otherwise reason says
-- where it went: unused_capacity, unknown_customer, no_driver_volume, resource_not_in_model,
-- no_capacity (a time-driven resource without practical capacity: stops the run before this),
-- no_direct_rule (an event amount whose activity has no `direct: amount` cost).
create or replace temp table allocation as
with stage2 as (
    select resource, method, activity, customer_id, reason, driver_units, minutes, cost,
    from allocated
),

overrun as (
    -- time-driven resources over capacity: customers were charged at the capacity cost rate,
    -- so more than was supplied; the excess shows as negative unused capacity
    select
        resource,
        'time_driven' as method,
        null as activity,
        null as customer_id,
        'unused_capacity' as reason,
        null as driver_units,
        null as minutes,
        supplied - charged as cost,
    from resource_supply
    where method = 'time_driven' and minutes_used > practical_capacity_minutes
        and practical_capacity_minutes > 0
),

not_in_model as (
    select resource, null as method, null as activity, null as customer_id,
        'resource_not_in_model' as reason, null as driver_units, null as minutes, supplied as cost,
    from resource_supply
    where method is null and supplied <> 0
),

standard as (
    select
        'standard_rate' as resource,
        'standard_rate' as method,
        activity,
        customer_id,
        case when customer_known then null else 'unknown_customer' end as reason,
        driver_units,
        null as minutes,
        round(driver_units * rate, 2)::decimal(18, 2) as cost,
    from drivers
    where kind = 'standard_rate'
),

direct as (
    select
        'direct' as resource,
        'direct' as method,
        activity,
        customer_id,
        case when customer_known then null else 'unknown_customer' end as reason,
        driver_units,
        null as minutes,
        direct_amount as cost,
    from drivers
    where kind = 'direct' and direct_amount <> 0
),

direct_without_rule as (
    -- amounts on events that no `direct: amount` cost picks up (incl. activities the model
    -- does not know): reported, never dropped
    select
        'direct' as resource,
        'direct' as method,
        ev.event_activity as activity,
        ev.customer_id,
        case
            when not exists (
                select 1 from model.activities as a
                where a.driver_source = 'events' and a.driver_name = ev.event_activity
            ) then 'unknown_activity'
            else 'no_direct_rule'
        end as reason,
        sum(ev.amount_events) as driver_units,
        null as minutes,
        sum(ev.amount) as cost,
    from period_events as ev
    where ev.amount_events > 0
        and not exists (
            select 1
            from model.activities as a
            join model.costs as c on c.activity = a.activity and c.kind = 'direct'
            where a.driver_source = 'events' and a.driver_name = ev.event_activity
        )
    group by all
)

select * from stage2
union all by name select * from overrun
union all by name select * from not_in_model
union all by name select * from standard
union all by name select * from direct
union all by name select * from direct_without_rule;
