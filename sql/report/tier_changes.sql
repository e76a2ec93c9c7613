-- Customers of the month by tier_change (up, down, same, new) as customer_tiers publishes it.
select tier_change, count(*) as customers
from marts.customer_tiers
where period = $month
group by all
order by all
