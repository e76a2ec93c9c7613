-- Rejected rows by source and rule, most frequent first.
select source, rule, count(*) as rows_rejected
from marts.rejected_rows
group by all
order by rows_rejected desc, source, rule
