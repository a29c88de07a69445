-- Files and vector stores (issue 11). A file's bytes live in the row, so
-- any replica can ingest it. Every row carries its team: another team's
-- ids are not found. The chunks table (documents) needs pgvector, which
-- the rest of the schema does not: it is created when vector stores are
-- enabled (vs_schema.go), so a database without the extension still runs
-- the proxy.
CREATE TABLE files (
    id         text        PRIMARY KEY,
    team       text        NOT NULL,
    filename   text        NOT NULL,
    purpose    text        NOT NULL,
    bytes      bigint      NOT NULL,
    data       bytea       NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX files_team_created ON files (team, created_at, id);

CREATE TABLE vector_stores (
    id                 text        PRIMARY KEY,
    team               text        NOT NULL,
    name               text        NOT NULL DEFAULT '',
    description        text        NOT NULL DEFAULT '',
    embedding_model    text        NOT NULL,
    metadata           jsonb       NOT NULL DEFAULT '{}',
    expires_after_days integer     NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL,
    last_active_at     timestamptz NOT NULL
);
CREATE INDEX vector_stores_team_created ON vector_stores (team, created_at, id);
CREATE INDEX vector_stores_team_name ON vector_stores (team, name);

CREATE TABLE vector_store_file_batches (
    id              text        PRIMARY KEY,
    vector_store_id text        NOT NULL REFERENCES vector_stores (id) ON DELETE CASCADE,
    team            text        NOT NULL,
    cancelled       boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL
);
CREATE INDEX vector_store_file_batches_store ON vector_store_file_batches (vector_store_id);

-- A file attached to a store: the unit of ingestion. generation counts
-- the times it was queued; a job's result is kept only at its generation.
-- heartbeat_at is the last sign of life of its ingestion (or queueing);
-- requeues counts the reconciler's restarts of it since it was attached.
CREATE TABLE vector_store_files (
    vector_store_id text        NOT NULL REFERENCES vector_stores (id) ON DELETE CASCADE,
    file_id         text        NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    team            text        NOT NULL,
    key_id          text        NOT NULL DEFAULT '',
    status          text        NOT NULL,
    last_error      jsonb,
    attributes      jsonb       NOT NULL DEFAULT '{}',
    chunk_max       integer     NOT NULL,
    chunk_overlap   integer     NOT NULL,
    batch_id        text,
    usage_bytes     bigint      NOT NULL DEFAULT 0,
    generation      bigint      NOT NULL DEFAULT 1,
    requeues        integer     NOT NULL DEFAULT 0,
    job_id          bigint,
    heartbeat_at    timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (vector_store_id, file_id)
);
CREATE INDEX vector_store_files_list ON vector_store_files (vector_store_id, created_at, file_id);
CREATE INDEX vector_store_files_file ON vector_store_files (file_id);
CREATE INDEX vector_store_files_batch ON vector_store_files (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX vector_store_files_stale ON vector_store_files (heartbeat_at) WHERE status = 'in_progress';

-- The approximate indexes built on documents, one per embedding dimension
-- and kind (vs_index.go), and the row count each was built at.
CREATE TABLE vector_indexes (
    name          text        PRIMARY KEY,
    kind          text        NOT NULL,
    dims          integer     NOT NULL,
    rows_at_build bigint      NOT NULL,
    built_at      timestamptz NOT NULL
);
