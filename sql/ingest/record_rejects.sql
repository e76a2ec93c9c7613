-- Keep every rejected row with the file it came from ($run_id bound by the caller).
INSERT INTO audit.rejected_rows
SELECT f.source, r._file_id, f.path, r._row_number, r.column_name, r.rule, r.message,
       r.failures, r.raw_record, $run_id
FROM stage_rejects AS r
JOIN stage_files AS f ON f.file_id = r._file_id;
