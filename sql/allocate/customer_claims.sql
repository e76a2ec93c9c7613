-- Stage 2: every cost pool shared among the customers that drove it.
--   time-driven resource: the capacity's cost by minutes; the minutes not used form the
--     'unused_capacity' claimant, so idle capacity is never charged to customers. When minutes
--     used exceed practical capacity, customers are charged at the capacity cost rate and the
--     overrun shows as negative unused capacity (see allocation.sql).
--   pool activity (its stage-1 share): by driver units; with no driver volume in the month the
--     share is unassigned with reason 'no_driver_volume'.
-- Events of customers missing from the master claim like any other, with reason
-- 'unknown_customer', so their cost is reported as unassigned, not lost.
create or replace temp table claims as
with time_pools as (
    select
        resource,
        supplied,
        practical_capacity_minutes as capacity,
        minutes_used,
        greatest(practical_capacity_minutes, minutes_used) as total_minutes,
        -- charged at the capacity cost rate: all of supplied, or more when over capacity
        charged,
    from resource_supply
    where method = 'time_driven' and practical_capacity_minutes > 0
),

time_claims as (
    select
        'time:' || d.resource as pool_id,
        d.resource,
        d.activity,
        d.customer_id,
        case when d.customer_known then null else 'unknown_customer' end as reason,
        (t.charged * 100)::hugeint as amount_cents,
        d.minutes::decimal(38, 4) as weight,
        d.activity || '|' || d.customer_id as claimant_key,
        'time_driven' as method,
        d.driver_units,
        d.minutes,
    from drivers as d
    join time_pools as t on t.resource = d.resource
    where d.kind = 'time_driven'
    union all
    select
        'time:' || resource,
        resource,
        null,
        null,
        'unused_capacity',
        (charged * 100)::hugeint,
        (total_minutes - minutes_used)::decimal(38, 4),
        '~unused',
        'time_driven',
        null,
        total_minutes - minutes_used,
    from time_pools
),

pool_volume as (
    select resource, activity, sum(driver_units) as units,
    from drivers
    where kind = 'pool'
    group by all
),

pool_claims as (
    select
        'pool:' || a.resource || ':' || a.activity as pool_id,
        a.resource,
        a.activity,
        d.customer_id,
        case when d.customer_known then null else 'unknown_customer' end as reason,
        (a.cost * 100)::hugeint as amount_cents,
        d.driver_units::decimal(38, 4) as weight,
        d.customer_id as claimant_key,
        'pool' as method,
        d.driver_units,
        null as minutes,
    from allocated as a
    join drivers as d
        on d.kind = 'pool' and d.resource = a.resource and d.activity = a.activity
    union all
    select
        'pool:' || a.resource || ':' || a.activity,
        a.resource,
        a.activity,
        null,
        'no_driver_volume',
        (a.cost * 100)::hugeint,
        1,
        '~none',
        'pool',
        0,
        null,
    from allocated as a
    left join pool_volume as v on v.resource = a.resource and v.activity = a.activity
    where coalesce(v.units, 0) = 0
)

select * from time_claims
union all
select * from pool_claims;
