-- Of a key this run delivered more than once (listed in run_repeated), keep the latest version:
-- the latest file wins, then the latest row in it. {table}, {key} and {key_match} come from the
-- fixed source contract.
DELETE FROM {table} AS t
USING (
    SELECT {key}, max(struct_pack(file_id := _file_id, row_number := _row_number)) AS latest
    FROM {table}
    SEMI JOIN run_repeated USING ({key})
    WHERE _file_id >= $first
    GROUP BY {key}
) AS s
WHERE {key_match}
    AND t._file_id >= $first
    AND (t._file_id <> s.latest.file_id OR t._row_number <> s.latest.row_number);
