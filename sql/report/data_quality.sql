-- Landing files and rows per source, of one run ($run_id) or of all runs ($run_id null).
select
    source,
    count(*) filter (status = 'loaded') as files_loaded,
    count(*) filter (status = 'duplicate') as files_duplicate,
    coalesce(sum(rows_read), 0) as rows_read,
    coalesce(sum(rows_accepted), 0) as rows_accepted,
    coalesce(sum(rows_rejected), 0) as rows_rejected,
from marts.ingested_files
where $run_id is null or run_id = $run_id
group by source
order by source
