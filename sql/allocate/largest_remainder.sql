-- Share each pool's amount (in cents) among its claimants in proportion to their weights, exact
-- to the cent: every claimant gets the floor of its share, and the cents left over go one each to
-- the claimants with the largest remainders (ties broken by claimant_key, so runs repeat).
-- Reads temp table `claims` (pool_id, amount_cents, weight, claimant_key, ...payload: one
-- amount_cents per pool, weights with at most four decimals);
-- writes temp table `allocated` (the payload with `cost`).
--
-- Nothing is sorted by remainder: a pool's claimants are counted per remainder, the leftover
-- cents go to whole remainders from the largest down, and only the claimants of the remainder
-- where the cents run out are ranked, by claimant_key (a key twice in a pool, from two cost
-- lines of one activity on one resource, by its claims' rows: either way the key gets the same
-- cents). The arithmetic is in 64-bit integers where a pool's amount times its largest weight
-- fits, in 128-bit ones where not (a 128-bit division costs about 30 times more). Sorting a
-- month's million claims with their payload took most of the statement; both together halve it.
create or replace temp table allocated as
with weighted as not materialized (
    select
        * exclude (weight),
        rowid as claim_row,
        -- weight x 10,000 as an integer (exact: four decimals); through DECIMAL(18, 4) where
        -- it fits, for the same reason
        case
            when abs(weight) < 10000000000 then (weight::decimal(18, 4) * 10000)::bigint
            when abs(weight) < 900000000000000 then (weight * 10000)::bigint
            else error(
                'pool ' || pool_id || ': a claimant''s weight of ' || weight
                || ' is more than the allocation computes with (9 x 10^14)'
            )
        end as weight_int,
    from claims
),

pools as (
    select
        pool_id,
        any_value(amount_cents) as amount_cents,
        sum(weight_int) as weight_total,
        -- the weights' total fits in 64 bits; and so does every amount x weight
        sum(abs(weight_int)) < 9223372036854775807 as fits,
        fits and max(abs(amount_cents)) * max(abs(weight_int)) < 9223372036854775807 as small,
    from weighted
    group by pool_id
),

-- Materialised: read three times (remainders, last_claim and the result). Recomputed each time,
-- the join and the arithmetic over a month's million claims took a quarter more (stage 2 at L:
-- 3.0-3.2 -> 2.0-2.4 s for three months, the same rows and cents).
shares as materialized (
    select
        c.* exclude (weight_int),
        case
            when p.weight_total = 0 then 0
            when p.small then c.amount_cents::bigint * c.weight_int // p.weight_total::bigint
            else ((c.amount_cents * c.weight_int) // p.weight_total)::bigint
        end as floor_cents,
        case
            when p.weight_total = 0 then 0
            when p.small then c.amount_cents::bigint * c.weight_int % p.weight_total::bigint
            when p.fits then ((c.amount_cents * c.weight_int) % p.weight_total)::bigint
            else error(
                'pool ' || p.pool_id || ': its weights sum to ' || p.weight_total / 10000
                || ', more than the allocation computes with (9.2 x 10^14)'
            )
        end as remainder,
    from weighted as c
    join pools as p using (pool_id)
),

-- per pool and remainder: its claimants, and how many claimants have a larger one
remainders as (
    select
        pool_id,
        remainder,
        claimants,
        floor_cents,
        coalesce(sum(claimants) over (partition by pool_id order by remainder desc
            rows between unbounded preceding and 1 preceding), 0) as before,
    from (
        select pool_id, remainder, count(*) as claimants, sum(floor_cents) as floor_cents,
        from shares
        group by all
    )
),

-- the cents left for each remainder: the pool's leftover less what larger remainders took
cuts as (
    select
        r.pool_id,
        r.remainder,
        r.claimants,
        p.amount_cents - sum(r.floor_cents) over (partition by r.pool_id) - r.before as cents,
    from remainders as r
    join pools as p using (pool_id)
),

-- where the cents run out inside a remainder: the last of its first `cents` claims
last_claim as (
    select pool_id, claimant_key, claim_row,
    from (
        select
            s.pool_id,
            s.claimant_key,
            s.claim_row,
            c.cents,
            row_number() over (partition by s.pool_id order by s.claimant_key, s.claim_row) as n,
        from shares as s
        join cuts as c using (pool_id, remainder)
        where c.cents > 0 and c.cents < c.claimants
    )
    where n = cents
)

select
    s.* exclude (claim_row, floor_cents, remainder, amount_cents),
    -- integer cents to money without passing through a binary float
    ((s.floor_cents + case
        when c.cents >= c.claimants then 1
        when c.cents > 0 and (
            s.claimant_key < k.claimant_key
            or s.claimant_key = k.claimant_key and s.claim_row <= k.claim_row
        ) then 1
        else 0
    end)::decimal(18, 0) * 0.01)::decimal(18, 2) as cost,
from shares as s
join cuts as c using (pool_id, remainder)
left join last_claim as k using (pool_id);
