-- 0005: collections made, changed and destroyed offline (semantics.md, "Collections made,
-- changed and destroyed offline").
--
-- * A collection made here gets a local id `local-N` and a row in `local_collections` (never
--   deleted, so N is never issued twice). Its rows in `collections`, `entries` and `ops` use the
--   local id until the `create` is answered; binding then moves them to the server id in one
--   transaction, and `local_collections.server_id` keeps the alias for ever.
-- * The outbox takes collection ops: `create`, `update`, `destroy`, with no tweet id and their
--   intent in `payload` (JSON): a create's metadata as sent; an update's fields, each with the
--   HLC of its latest edit ({"name":{"value":"...","hlc":N},...}).
-- * A collection's metadata has a local view (name, description, url: as before) and a base,
--   what the server was last known to have (base_*, learned at meta_base_hlc; for a collection
--   made here and not yet bound, what its create sends).

-- Local ids. `listed`: the ids of the user's collections with the create's name, read before
-- the first send (NULL: not read yet); `maybe_sent`: a create may have reached the server and
-- its outcome is not known (set before every send, cleared by an answer that says "not created").
CREATE TABLE local_collections (
    local_id   TEXT    PRIMARY KEY,                  -- local-N
    number     INTEGER NOT NULL UNIQUE,              -- N
    server_id  TEXT    UNIQUE,                       -- custom-..., once bound
    listed     TEXT,                                 -- JSON array of server ids
    maybe_sent INTEGER NOT NULL DEFAULT 0 CHECK (maybe_sent IN (0, 1)),
    created_at INTEGER NOT NULL,
    bound_at   INTEGER
) WITHOUT ROWID;

ALTER TABLE collections ADD COLUMN local_id         TEXT;     -- local-N for a collection made here
ALTER TABLE collections ADD COLUMN base_name        TEXT;
ALTER TABLE collections ADD COLUMN base_description TEXT;
ALTER TABLE collections ADD COLUMN base_url         TEXT;
ALTER TABLE collections ADD COLUMN meta_base_hlc    INTEGER;  -- when the base was learned from the server
-- 'destroying' (a destroy waits), 'destroyed' (applied), 'dropped' (made here, never sent, destroyed)
ALTER TABLE collections ADD COLUMN destroyed        TEXT CHECK (destroyed IN ('destroying', 'destroyed', 'dropped'));
ALTER TABLE collections ADD COLUMN gone             INTEGER NOT NULL DEFAULT 0 CHECK (gone IN (0, 1));  -- destroyed remotely
-- What pulls learned so far is the base of every collection that has metadata.
UPDATE collections SET base_name = name, base_description = description, base_url = url, meta_base_hlc = last_pull_hlc
WHERE name IS NOT NULL;

-- The outbox, as 0004 made it, with collection ops.
DROP VIEW collection_counts;
CREATE TABLE ops_0005 (
    id              INTEGER PRIMARY KEY,                 -- never reused (0004)
    collection_id   TEXT    NOT NULL REFERENCES collections(id),
    tweet_id        TEXT    CHECK ((tweet_id IS NULL) = (kind IN ('create', 'update', 'destroy'))),
    kind            TEXT    NOT NULL CHECK (kind IN ('add', 'remove', 'create', 'update', 'destroy')),
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'in_flight', 'failed')),
    hlc             INTEGER NOT NULL,                    -- when the user made the edit
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,                             -- NULL: due now
    last_error      TEXT,
    claimed_by      TEXT,                                -- lease holder that put it in flight
    payload         TEXT                                 -- a collection op's intent (JSON)
);
INSERT INTO ops_0005 (id, collection_id, tweet_id, kind, state, hlc, created_at, attempts, next_attempt_at, last_error, claimed_by)
SELECT id, collection_id, tweet_id, kind, state, hlc, created_at, attempts, next_attempt_at, last_error, claimed_by FROM ops;
DROP TABLE ops;
ALTER TABLE ops_0005 RENAME TO ops;
CREATE INDEX ops_by_key ON ops (collection_id, tweet_id, id);
CREATE INDEX ops_backoff ON ops (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX ops_dead_letters ON ops (id) WHERE state = 'failed';

CREATE VIEW collection_counts AS
SELECT c.id, c.last_pulled_at,
       c.ops_pending + coalesce(n.pending, 0)     AS ops_pending,
       c.ops_in_flight + coalesce(n.in_flight, 0) AS ops_in_flight,
       c.ops_failed + coalesce(n.failed, 0)       AS ops_failed,
       c.entries_present                          AS entries_present
FROM collections c
LEFT JOIN (SELECT collection_id, sum(state = 'pending') AS pending, sum(state = 'in_flight') AS in_flight,
                  sum(state = 'failed') AS failed
           -- NOT INDEXED: the newer ops by id range; grouping through ops_by_key would read them all
           FROM ops NOT INDEXED WHERE id > (SELECT counted_op_id FROM replica WHERE singleton = 1)
           GROUP BY collection_id) n ON n.collection_id = c.id;
