-- One row per landing file the pipeline has seen. A file is recognised again by its content
-- (sha256), so a re-delivery under any name is recorded as 'duplicate' and loads nothing.
-- For every file: rows_read = rows_accepted + rows_rejected.
CREATE SEQUENCE IF NOT EXISTS audit.file_id_seq START 1;

CREATE TABLE IF NOT EXISTS audit.ingested_files (
    file_id         BIGINT NOT NULL PRIMARY KEY,
    source          VARCHAR NOT NULL,
    path            VARCHAR NOT NULL,      -- relative to the landing folder
    sha256          VARCHAR NOT NULL,
    size_bytes      BIGINT NOT NULL,
    modified_ns     BIGINT NOT NULL,       -- file modification time, ns since epoch
    partition_day   DATE,                  -- daily sources: the day the file belongs to
    status          VARCHAR NOT NULL,      -- 'loaded' or 'duplicate'
    duplicate_of    BIGINT,                -- file_id of the earlier identical file
    rows_read       BIGINT NOT NULL,
    rows_accepted   BIGINT NOT NULL,
    rows_rejected   BIGINT NOT NULL,
    extra_columns   VARCHAR[] NOT NULL,    -- columns in the file the contract does not know
    run_id          VARCHAR NOT NULL,
    ingested_at     TIMESTAMP NOT NULL
);

-- Every landing row that broke a rule, with the raw record exactly as delivered.
CREATE TABLE IF NOT EXISTS audit.rejected_rows (
    source          VARCHAR NOT NULL,
    file_id         BIGINT NOT NULL,
    path            VARCHAR NOT NULL,
    row_number      BIGINT NOT NULL,       -- 1 = first data row after the header
    column_name     VARCHAR NOT NULL,
    rule            VARCHAR NOT NULL,
    message         VARCHAR NOT NULL,
    failures        VARCHAR NOT NULL,      -- every rule the row broke, "column: rule; ..."
    raw_record      VARCHAR NOT NULL,      -- JSON object of the row's fields as delivered
    run_id          VARCHAR NOT NULL
);

-- Files that stopped a run (unreadable, missing columns, too many rejects). Kept outside the
-- run's transaction so the failure stays on record; the file is tried again on the next run.
CREATE TABLE IF NOT EXISTS audit.failed_files (
    source          VARCHAR NOT NULL,
    path            VARCHAR NOT NULL,
    message         VARCHAR NOT NULL,
    run_id          VARCHAR NOT NULL,
    failed_at       TIMESTAMP NOT NULL
);

-- Months whose inputs changed, by run: the allocation rebuilds them (and only them).
CREATE TABLE IF NOT EXISTS audit.changed_periods (
    period          VARCHAR NOT NULL,      -- YYYY-MM
    source          VARCHAR NOT NULL,
    run_id          VARCHAR NOT NULL,
    changed_at      TIMESTAMP NOT NULL
);
