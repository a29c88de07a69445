-- Conversation memory (issue 13). next_seq hands out message sequence
-- numbers: appending a turn bumps it under the conversation's row lock,
-- so concurrent turns on one conversation get distinct, ordered numbers.
CREATE TABLE conversations (
    id         text        PRIMARY KEY,
    team       text        NOT NULL,
    user_id    text        NOT NULL DEFAULT '',
    title      text        NOT NULL DEFAULT '',
    model      text        NOT NULL DEFAULT '',
    metadata   jsonb       NOT NULL DEFAULT '{}',
    next_seq   bigint      NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX conversations_team_created ON conversations (team, created_at, id);
CREATE INDEX conversations_updated ON conversations (updated_at);

CREATE TABLE messages (
    id              text        PRIMARY KEY,
    conversation_id text        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             bigint      NOT NULL,
    role            text        NOT NULL,
    content         jsonb       NOT NULL,
    tokens          integer     NOT NULL DEFAULT 0,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    UNIQUE (conversation_id, seq)
);
