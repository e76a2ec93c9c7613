-- When the tables were published, by which run, and which months they hold.
select published_at, run_id, first_period, latest_period, periods_rebuilt, pfd_version
from marts.publication
