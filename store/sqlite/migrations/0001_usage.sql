-- usage_ledger: one row per finished chat or embeddings request.
-- ts and the durations are integer microseconds (ts since the Unix epoch,
-- UTC), so range scans use the index and days group without parsing text.
CREATE TABLE usage_ledger (
    id                INTEGER PRIMARY KEY,
    ts                INTEGER NOT NULL,
    request_id        TEXT    NOT NULL,
    route             TEXT    NOT NULL,
    team              TEXT    NOT NULL,
    key_id            TEXT    NOT NULL,
    alias             TEXT    NOT NULL,
    provider          TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    reasoning_tokens  INTEGER NOT NULL,
    cost_usd          REAL    NOT NULL,
    latency_us        INTEGER NOT NULL,
    ttft_us           INTEGER NOT NULL,
    status            INTEGER NOT NULL,
    outcome           TEXT    NOT NULL,
    stream            INTEGER NOT NULL,
    estimated         INTEGER NOT NULL
);
CREATE INDEX usage_ledger_team_ts ON usage_ledger (team, ts);
CREATE INDEX usage_ledger_ts ON usage_ledger (ts);
