-- Stage 1 of conventional ABC: each pool resource's cost split across its activities by the
-- model's percentages (exact to the cent by largest remainder, see largest_remainder.sql).
create or replace temp table claims as
select
    'split:' || s.resource as pool_id,
    s.resource,
    sp.activity,
    null::varchar as customer_id,
    null::varchar as reason,
    (s.supplied * 100)::hugeint as amount_cents,
    sp.percent::decimal(38, 4) as weight,
    sp.activity as claimant_key,
from resource_supply as s
join model.splits as sp on sp.resource = s.resource
where s.method = 'pool';
