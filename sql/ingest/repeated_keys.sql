-- Keys among this run's rows in more than one file: before the merge, the corrections a later
-- file of the run delivered (nearly always none), of which the merge keeps the latest; after it,
-- none (the key_unique check). Only the rows of $files, the run's files whose key ranges overlap
-- (ingest.overlapping_files), are grouped. {table} and {key} come from the fixed source
-- contract.
SELECT {key}
FROM {table}
WHERE _file_id >= $first
    AND _file_id IN (SELECT unnest($files::BIGINT[]))
GROUP BY {key}
HAVING count(*) > 1
