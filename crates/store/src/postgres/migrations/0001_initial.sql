-- Schema 1 of the PostgreSQL backend: the same data as the redb tables, in SQL.
-- Keys, namespaces and buckets are bytea so that they sort by their UTF-8 bytes (as redb
-- does) and may hold any character, NUL included. Metadata records are the same JSON bytes
-- the redb backend stores, so quotas count the same bytes on both backends.

CREATE TABLE code_functions (
    id text COLLATE "C" PRIMARY KEY,
    live bigint NOT NULL,
    latest bigint NOT NULL,
    versions bigint NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
);

-- The last version number issued per id; kept after a delete so numbers are never reused.
CREATE TABLE code_counters (
    id text COLLATE "C" PRIMARY KEY,
    last_version bigint NOT NULL
);

CREATE TABLE code_versions (
    id text COLLATE "C" NOT NULL,
    version bigint NOT NULL,
    created_at bigint NOT NULL,
    note text,
    size bigint NOT NULL,
    bundle bytea NOT NULL,
    PRIMARY KEY (id, version)
);

CREATE TABLE kv_entries (
    namespace bytea NOT NULL,
    key bytea NOT NULL,
    value bytea NOT NULL,
    record bytea NOT NULL,
    expiration bigint,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX kv_entries_expiration ON kv_entries (expiration) WHERE expiration IS NOT NULL;

-- What each KV namespace ('kv') and bucket ('blob') holds. A write locks its row first
-- (INSERT .. ON CONFLICT DO UPDATE), so writers to one namespace are serialized and the
-- quota check inside the transaction is exact.
CREATE TABLE usage (
    scope text NOT NULL,
    name bytea NOT NULL,
    bytes bigint NOT NULL,
    keys bigint NOT NULL,
    PRIMARY KEY (scope, name)
);

-- Blob versions: every put gets a new one; its chunks are stored under it.
CREATE SEQUENCE blob_versions;

CREATE TABLE blob_objects (
    bucket bytea NOT NULL,
    key bytea NOT NULL,
    version bigint NOT NULL,
    size bigint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (bucket, key)
);

CREATE TABLE blob_chunks (
    version bigint NOT NULL,
    seq integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (version, seq)
);
-- Bodies are usually compressed already: store chunks out of line, uncompressed.
ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- Puts whose body is still streaming in; a crashed node's are swept after an hour.
CREATE TABLE blob_uploads (
    version bigint PRIMARY KEY,
    started_at bigint NOT NULL
);
CREATE INDEX blob_uploads_started ON blob_uploads (started_at);
