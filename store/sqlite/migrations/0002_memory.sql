-- Conversation memory (issue 13). Times are integer microseconds since the
-- Unix epoch (UTC). next_seq hands out message sequence numbers: appending
-- a turn bumps it in the same (immediate) transaction, so concurrent turns
-- on one conversation get distinct, ordered numbers.
CREATE TABLE conversations (
    id         TEXT    PRIMARY KEY,
    team       TEXT    NOT NULL,
    user_id    TEXT    NOT NULL DEFAULT '',
    title      TEXT    NOT NULL DEFAULT '',
    model      TEXT    NOT NULL DEFAULT '',
    metadata   TEXT    NOT NULL DEFAULT '{}',
    next_seq   INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX conversations_team_created ON conversations (team, created_at, id);
CREATE INDEX conversations_updated ON conversations (updated_at);

CREATE TABLE messages (
    id              TEXT    PRIMARY KEY,
    conversation_id TEXT    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    role            TEXT    NOT NULL,
    content         TEXT    NOT NULL,
    tokens          INTEGER NOT NULL DEFAULT 0,
    metadata        TEXT    NOT NULL DEFAULT '{}',
    created_at      INTEGER NOT NULL,
    UNIQUE (conversation_id, seq)
);
