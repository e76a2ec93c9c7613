-- Record this run's files in the audit, with their row counts ($run_id bound by the caller).
INSERT INTO audit.ingested_files
SELECT file_id, source, path, sha256, size_bytes, modified_ns, partition_day, status,
       duplicate_of, rows_read, rows_accepted, rows_rejected, extra_columns, $run_id,
       current_localtimestamp()
FROM stage_files;
