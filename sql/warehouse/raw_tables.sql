-- Raw tables: the current version of every accepted landing row. A key delivered again
-- (a correction) replaces the earlier version; _file_id and _row_number say where it came from.
--
-- Line, document and event ids are stored uncompressed: nearly every value is distinct, so
-- DuckDB's dictionary + FSST compression saves little on them, and analysing and compressing
-- them cost a third of appending a ledger line (0.92 -> 0.64 us a line, 0.57 -> 0.44 us an
-- event at L; the raw tables take about 60% more disk). Counting distinct documents per
-- customer reads them as fast as compressed ones. So is customer_id in the two big tables: a
-- row group holds tens of thousands of the 200,000 customers at L, so the dictionary is large
-- and FSST does the work; appending an event without it costs 0.42 -> 0.34 us, and grouping a
-- month's events by customer reads it as fast (0.14-0.20 s either way), for twice the space of
-- that column.
CREATE TABLE IF NOT EXISTS raw.customers (
    customer_id     VARCHAR NOT NULL PRIMARY KEY,
    customer_name   VARCHAR NOT NULL,
    segment         VARCHAR NOT NULL,
    region          VARCHAR NOT NULL,
    acquired_on     DATE NOT NULL,
    _file_id        BIGINT NOT NULL,
    _row_number     BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.sales_ledger (
    line_id             VARCHAR NOT NULL USING COMPRESSION uncompressed,
    document_id         VARCHAR NOT NULL USING COMPRESSION uncompressed,
    document_type       VARCHAR NOT NULL,
    posting_date        DATE NOT NULL,
    customer_id         VARCHAR NOT NULL USING COMPRESSION uncompressed,
    product_id          VARCHAR NOT NULL,
    quantity            DECIMAL(18, 4) NOT NULL,
    gross_amount        DECIMAL(18, 2) NOT NULL,
    discount_amount     DECIMAL(18, 2) NOT NULL,
    cogs_amount         DECIMAL(18, 2) NOT NULL,
    currency            VARCHAR NOT NULL,
    channel             VARCHAR,
    off_invoice_amount  DECIMAL(18, 2) NOT NULL,
    _file_id            BIGINT NOT NULL,
    _row_number         BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.activity_events (
    event_id        VARCHAR NOT NULL USING COMPRESSION uncompressed,
    event_date      DATE NOT NULL,
    customer_id     VARCHAR NOT NULL USING COMPRESSION uncompressed,
    activity        VARCHAR NOT NULL,
    quantity        DECIMAL(18, 4) NOT NULL,
    channel         VARCHAR,
    minutes         DECIMAL(18, 2),
    amount          DECIMAL(18, 2),
    flags           VARCHAR,
    _file_id        BIGINT NOT NULL,
    _row_number     BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.resource_costs (
    period                      VARCHAR NOT NULL,
    resource                    VARCHAR NOT NULL,
    cost_amount                 DECIMAL(18, 2) NOT NULL,
    practical_capacity_minutes  DECIMAL(18, 2),
    _file_id                    BIGINT NOT NULL,
    _row_number                 BIGINT NOT NULL,
    PRIMARY KEY (period, resource)
);

-- Optional source: survey answers (NPS 0-10); absent feedback/ folder = no rows. Key
-- (customer_id, survey_date), kept unique by the merge like the ledger's (no PRIMARY KEY: a
-- re-delivered answer replaces the earlier one within the load).
CREATE TABLE IF NOT EXISTS raw.feedback (
    customer_id     VARCHAR NOT NULL,
    survey_date     DATE NOT NULL,
    score           SMALLINT NOT NULL,
    _file_id        BIGINT NOT NULL,
    _row_number     BIGINT NOT NULL
);
