-- Share each pool's amount (in cents) among its claimants in proportion to their weights, exact
-- to the cent: every claimant gets the floor of its share, and the cents left over go one each to
-- the claimants with the largest remainders (ties broken by claimant_key, so runs repeat).
-- Reads temp table `claims` (pool_id, amount_cents, weight, claimant_key, ...payload);
-- writes temp table `allocated` (the payload with `cost`).
create or replace temp table allocated as
with weighted as (
    select
        *,
        round(weight * 10000)::hugeint as weight_int,
        sum(round(weight * 10000)::hugeint) over (partition by pool_id) as weight_total,
    from claims
),

floored as (
    select
        *,
        case when weight_total = 0 then 0 else (amount_cents * weight_int) // weight_total end
            as floor_cents,
        case when weight_total = 0 then 0 else (amount_cents * weight_int) % weight_total end
            as remainder,
    from weighted
),

ranked as (
    select
        *,
        amount_cents - sum(floor_cents) over (partition by pool_id) as leftover_cents,
        row_number() over (partition by pool_id order by remainder desc, claimant_key) as rank,
    from floored
)

select
    * exclude (weight_int, weight_total, floor_cents, remainder, leftover_cents, rank, amount_cents),
    -- integer cents to money without passing through a binary float
    ((floor_cents + case when rank <= leftover_cents then 1 else 0 end)::decimal(38, 2) * 0.01)
        ::decimal(18, 2) as cost,
from ranked;
