-- 0001: the whole engine's local store.
-- Shipped migrations are never edited: add 0002_....sql instead (and list it in Package.swift).
-- Times named *_at are Unix epoch milliseconds (wall clock) unless named *_hlc.
-- Ids from the API (collection ids, tweet ids, sort_index) are TEXT, never numbers.

-- One row: this database's replica identity and its hybrid logical clock (HLC).
CREATE TABLE replica (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    replica_id    TEXT    NOT NULL,               -- random, 16 hex digits
    hlc           INTEGER NOT NULL DEFAULT 0,      -- the last HLC issued; never goes back
    created_at    INTEGER NOT NULL,
    last_flush_at INTEGER                          -- when the last flush ended
);

-- Collections known locally: created on the first edit or pull. Metadata comes from pulls.
CREATE TABLE collections (
    id              TEXT    PRIMARY KEY,           -- custom-<digits>
    name            TEXT,
    description     TEXT,
    url             TEXT,
    user_id         TEXT,
    collection_url  TEXT,
    timeline_order  TEXT,
    created_at      INTEGER NOT NULL,
    last_pulled_at  INTEGER,                       -- wall time when the last complete pull started
    last_pull_hlc   INTEGER                        -- HLC when the last complete pull started (P)
) WITHOUT ROWID;

-- One row per key (collection, tweet) the engine knows anything about.
--   present         the local view: what the user sees (1) or not (0)
--   base_present    what the server was last known to have; NULL = never learned
--   base_hlc        when that base was learned (pull start, or the answer to one of our ops)
CREATE TABLE entries (
    collection_id   TEXT    NOT NULL REFERENCES collections(id),
    tweet_id        TEXT    NOT NULL,
    present         INTEGER NOT NULL CHECK (present IN (0, 1)),
    sort_index      TEXT,
    feature_context TEXT,
    base_present    INTEGER CHECK (base_present IN (0, 1)),
    base_hlc        INTEGER,
    PRIMARY KEY (collection_id, tweet_id)
) WITHOUT ROWID;

-- The outbox. Applied ops are deleted; failed ops stay as dead letters until retried or
-- discarded. At most one op per key is waiting (pending or failed) behind at most one in flight.
CREATE TABLE ops (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: users name ops by id
    collection_id   TEXT    NOT NULL REFERENCES collections(id),
    tweet_id        TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('add', 'remove')),
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'in_flight', 'failed')),
    hlc             INTEGER NOT NULL,                    -- when the user made the edit
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,                             -- NULL: due now
    last_error      TEXT,
    claimed_by      TEXT                                 -- lease holder that put it in flight
);
CREATE INDEX ops_by_key ON ops (collection_id, tweet_id, id);
CREATE INDEX ops_by_state ON ops (state, collection_id, next_attempt_at);

-- The last-writer-wins log: append-only, readable by anyone, prunable by age, never rewritten.
CREATE TABLE log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    hlc             INTEGER NOT NULL,
    replica_id      TEXT    NOT NULL,
    collection_id   TEXT    NOT NULL,
    tweet_id        TEXT,
    event           TEXT    NOT NULL,
    op_id           INTEGER,
    winner          TEXT    CHECK (winner IN ('local', 'remote')),
    local_hlc       INTEGER,
    remote_hlc      INTEGER,
    detail          TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX log_conflicts ON log (id) WHERE event = 'conflict';

-- One flusher per database across processes.
CREATE TABLE flusher_lease (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    holder      TEXT    NOT NULL,                  -- random token of the holding flusher
    host        TEXT    NOT NULL,
    pid         INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

-- What each API base URL has taught us: whether it ever answered successfully (a 404 from a
-- base that never did is a configuration error, not a missing collection) and its clock offset.
CREATE TABLE api_bases (
    url              TEXT    PRIMARY KEY,
    first_success_at INTEGER,
    last_success_at  INTEGER,
    clock_offset_ms  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Rate-limit state per API base and endpoint, from the x-rate-limit-* headers.
CREATE TABLE rate_limits (
    api_base      TEXT    NOT NULL,
    endpoint      TEXT    NOT NULL,                -- e.g. collections/entries/curate
    limit_total   INTEGER,
    remaining     INTEGER,
    reset_at      INTEGER,                         -- epoch ms of x-rate-limit-reset
    blocked_until INTEGER,                         -- nothing is sent before this (epoch ms)
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (api_base, endpoint)
) WITHOUT ROWID;
