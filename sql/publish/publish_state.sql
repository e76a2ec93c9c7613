-- What has been published where: the build of every month of every table, per target
-- ('duckdb' file, 'parquet' folder), written only after the target was switched.
create table if not exists audit.published_periods (
    target      varchar not null,
    table_name  varchar not null,
    period      varchar not null,
    build_id    bigint not null,
    primary key (target, table_name, period)
);

create table if not exists audit.publications (
    target          varchar not null primary key,
    fingerprint     varchar not null,   -- schema and storage version it was written with
    audit_stamp     varchar not null,   -- last file id and rejected rows it holds
    run_id          varchar not null,
    published_at    timestamp not null
);
