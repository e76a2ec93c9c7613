-- Tier migrations since the month before: customers by (previous tier, tier), with 'new' for
-- customers not ranked the month before and 'left' for those ranked then but not now.
with current_month as (
    select customer_id, tier, previous_tier from marts.customer_tiers where period = $month
),

previous_month as (
    select customer_id, tier
    from marts.customer_tiers
    where period = (select max(period) from marts.customer_tiers where period < $month)
),

moves as (
    select coalesce(previous_tier, 'new') as previous_tier, tier from current_month
    union all
    select p.tier as previous_tier, 'left' as tier
    from previous_month as p
    anti join current_month as c using (customer_id)
)

select previous_tier, tier, count(*) as customers
from moves
group by all
order by all
