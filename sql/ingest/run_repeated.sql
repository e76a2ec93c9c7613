-- Keys this run delivered in more than one file (a correction in a later file of the same run);
-- nearly always none. {table} and {key} come from the fixed source contract.
CREATE OR REPLACE TEMP TABLE run_repeated AS
SELECT {key}
FROM {table}
WHERE _file_id >= $first
GROUP BY {key}
HAVING count(*) > 1;
