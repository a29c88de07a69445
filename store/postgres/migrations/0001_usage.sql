-- usage_ledger: one row per finished chat or embeddings request.
-- Durations are integer microseconds.
CREATE TABLE usage_ledger (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts                timestamptz      NOT NULL,
    request_id        text             NOT NULL,
    route             text             NOT NULL,
    team              text             NOT NULL,
    key_id            text             NOT NULL,
    alias             text             NOT NULL,
    provider          text             NOT NULL,
    model             text             NOT NULL,
    prompt_tokens     integer          NOT NULL,
    completion_tokens integer          NOT NULL,
    cached_tokens     integer          NOT NULL,
    reasoning_tokens  integer          NOT NULL,
    cost_usd          double precision NOT NULL,
    latency_us        bigint           NOT NULL,
    ttft_us           bigint           NOT NULL,
    status            integer          NOT NULL,
    outcome           text             NOT NULL,
    stream            boolean          NOT NULL,
    estimated         boolean          NOT NULL
);
CREATE INDEX usage_ledger_team_ts ON usage_ledger (team, ts);
CREATE INDEX usage_ledger_ts ON usage_ledger (ts);
