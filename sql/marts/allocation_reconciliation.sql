-- Rebuild the month in marts.allocation_reconciliation. Supplied is read again from the raw
-- tables and assigned from the published customer_cost_to_serve, so the difference catches
-- cost lost or duplicated anywhere between them; it must be 0.00 on every row.
delete from marts.allocation_reconciliation
where period = (select period from period_params);

insert into marts.allocation_reconciliation
with supplied as (
    select r.resource, r.cost_amount as supplied,
    from raw.resource_costs as r
    where r.period = (select period from period_params)
    union all
    select 'direct', coalesce(sum(amount), 0),
    from period_events
    where amount is not null
    union all
    select 'standard_rate', coalesce(sum(cost), 0),
    from allocation
    where method = 'standard_rate'
),

assigned as (
    select resource, sum(cost) as assigned,
    from marts.customer_cost_to_serve
    where period = (select period from period_params)
    group by all
),

kept as (
    select
        resource,
        coalesce(sum(cost) filter (where reason = 'unused_capacity'), 0) as unused,
        coalesce(sum(cost) filter (where reason = 'unknown_customer'), 0) as unknown_customer,
        coalesce(sum(cost) filter (where reason = 'no_driver_volume'), 0) as no_driver_volume,
        coalesce(sum(cost) filter (where reason = 'resource_not_in_model'), 0) as not_in_model,
        coalesce(sum(cost) filter (where reason = 'unknown_activity'), 0) as unknown_activity,
        coalesce(sum(cost) filter (where reason = 'no_direct_rule'), 0) as no_direct_rule,
    from allocation
    group by all
),

resources as (
    select resource from supplied
    union
    select resource from assigned
    union
    select resource from kept
)

select
    p.period,
    r.resource,
    coalesce(m.method, case when r.resource in ('direct', 'standard_rate') then r.resource end),
    coalesce(s.supplied, 0) as cost_supplied,
    coalesce(a.assigned, 0) as cost_assigned,
    coalesce(k.unused, 0) as unused_capacity_cost,
    coalesce(k.unknown_customer, 0),
    coalesce(k.no_driver_volume, 0),
    coalesce(k.not_in_model, 0),
    coalesce(k.unknown_activity, 0),
    coalesce(k.no_direct_rule, 0),
    coalesce(k.unknown_customer + k.no_driver_volume + k.not_in_model + k.unknown_activity
        + k.no_direct_rule, 0) as unassigned_total,
    coalesce(s.supplied, 0) - coalesce(a.assigned, 0) - coalesce(k.unused, 0)
        - coalesce(k.unknown_customer + k.no_driver_volume + k.not_in_model + k.unknown_activity
            + k.no_direct_rule, 0) as difference,
    rs.practical_capacity_minutes,
    case when m.method = 'time_driven' then rs.minutes_used end,
    case when m.method = 'time_driven' and rs.minutes_used > rs.practical_capacity_minutes
        then rs.minutes_used - rs.practical_capacity_minutes else 0 end,
    p.period_status,
from resources as r
cross join period_params as p
left join supplied as s on s.resource = r.resource
left join assigned as a on a.resource = r.resource
left join kept as k on k.resource = r.resource
left join model.resources as m on m.resource = r.resource
left join resource_supply as rs on rs.resource = r.resource;
