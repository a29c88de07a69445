-- Files and vector stores (issue 11). Times are integer microseconds since
-- the Unix epoch (UTC). A file's bytes live under server.data_dir/files/,
-- named by its id. Every row carries its team: another team's ids are not
-- found.
CREATE TABLE files (
    id         TEXT    PRIMARY KEY,
    team       TEXT    NOT NULL,
    filename   TEXT    NOT NULL,
    purpose    TEXT    NOT NULL,
    bytes      INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX files_team_created ON files (team, created_at, id);

CREATE TABLE vector_stores (
    id                 TEXT    PRIMARY KEY,
    team               TEXT    NOT NULL,
    name               TEXT    NOT NULL DEFAULT '',
    description        TEXT    NOT NULL DEFAULT '',
    embedding_model    TEXT    NOT NULL,
    metadata           TEXT    NOT NULL DEFAULT '{}',
    expires_after_days INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    last_active_at     INTEGER NOT NULL
);
CREATE INDEX vector_stores_team_created ON vector_stores (team, created_at, id);
CREATE INDEX vector_stores_team_name ON vector_stores (team, name);

CREATE TABLE vector_store_file_batches (
    id              TEXT    PRIMARY KEY,
    vector_store_id TEXT    NOT NULL REFERENCES vector_stores (id) ON DELETE CASCADE,
    team            TEXT    NOT NULL,
    cancelled       INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);
CREATE INDEX vector_store_file_batches_store ON vector_store_file_batches (vector_store_id);

-- A file attached to a store: the unit of ingestion. generation counts
-- the times it was queued; a job's result is kept only at its generation.
-- heartbeat_at is the last sign of life of its ingestion (or its queueing);
-- requeues counts the reconciler's restarts of it since it was attached.
CREATE TABLE vector_store_files (
    vector_store_id TEXT    NOT NULL REFERENCES vector_stores (id) ON DELETE CASCADE,
    file_id         TEXT    NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    team            TEXT    NOT NULL,
    key_id          TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL,
    last_error      TEXT,
    attributes      TEXT    NOT NULL DEFAULT '{}',
    chunk_max       INTEGER NOT NULL,
    chunk_overlap   INTEGER NOT NULL,
    batch_id        TEXT,
    usage_bytes     INTEGER NOT NULL DEFAULT 0,
    generation      INTEGER NOT NULL DEFAULT 1,
    requeues        INTEGER NOT NULL DEFAULT 0,
    job_id          INTEGER,
    heartbeat_at    INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (vector_store_id, file_id)
);
CREATE INDEX vector_store_files_list ON vector_store_files (vector_store_id, created_at, file_id);
CREATE INDEX vector_store_files_file ON vector_store_files (file_id);
CREATE INDEX vector_store_files_batch ON vector_store_files (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX vector_store_files_stale ON vector_store_files (heartbeat_at) WHERE status = 'in_progress';

-- The chunks (the seed's documents table): collection_id is the vector
-- store; metadata holds the file id, chunk index and the file's
-- attributes; embedding is little-endian float32. A file's chunks are
-- replaced in one transaction, and (collection_id, file_id, chunk_index)
-- is unique, so a retried ingestion never duplicates one.
CREATE TABLE documents (
    id            INTEGER PRIMARY KEY,
    collection_id TEXT    NOT NULL,
    file_id       TEXT    NOT NULL,
    chunk_index   INTEGER NOT NULL,
    content       TEXT    NOT NULL,
    tokens        INTEGER NOT NULL DEFAULT 0,
    metadata      TEXT    NOT NULL DEFAULT '{}',
    embedding     BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (collection_id, file_id, chunk_index),
    FOREIGN KEY (collection_id, file_id) REFERENCES vector_store_files (vector_store_id, file_id) ON DELETE CASCADE
);

-- Full text over documents.content (external content: the text is stored
-- once), kept in step by triggers.
CREATE VIRTUAL TABLE documents_fts USING fts5(content, content = 'documents', content_rowid = 'id');
CREATE TRIGGER documents_fts_insert AFTER INSERT ON documents BEGIN
    INSERT INTO documents_fts (rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER documents_fts_delete AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts (documents_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
