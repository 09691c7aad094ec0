-- 0006: the outbox's CHECK constraints compare with `=` instead of `IN (...)`; nothing else changes.
--
-- SQLite evaluates `x IN (a, b, c)` with three or more constants by building an ephemeral
-- b-tree of the list, once per execution of the statement (OP_Once): every INSERT of an op built
-- one per such CHECK. 0005 took the CHECKs on `ops` from one such list (state) to three (state,
-- kind, and kind again in the tweet_id rule), and queuing 100,000 removes in one call (B2) fell to
-- 0.72x of 0004's speed; the raw SQLite baseline on the same tables fell alike (0.62x), so it was
-- the schema, not the store. `x = a OR x = b OR ...` needs no table and means the same for these
-- NOT NULL columns. (Lists of two constants, as elsewhere in the schema, are already compared
-- one by one.)
--
-- The table is rebuilt with every row as it is, as 0005 did.

DROP VIEW collection_counts;
CREATE TABLE ops_0006 (
    id              INTEGER PRIMARY KEY,                 -- never reused (0004)
    collection_id   TEXT    NOT NULL REFERENCES collections(id),
    tweet_id        TEXT    CHECK ((tweet_id IS NULL) = (kind = 'create' OR kind = 'update' OR kind = 'destroy')),
    kind            TEXT    NOT NULL CHECK (kind = 'add' OR kind = 'remove' OR kind = 'create' OR kind = 'update' OR kind = 'destroy'),
    state           TEXT    NOT NULL CHECK (state = 'pending' OR state = 'in_flight' OR state = 'failed'),
    hlc             INTEGER NOT NULL,                    -- when the user made the edit
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,                             -- NULL: due now
    last_error      TEXT,
    claimed_by      TEXT,                                -- lease holder that put it in flight
    payload         TEXT                                 -- a collection op's intent (JSON, 0005)
);
INSERT INTO ops_0006 (id, collection_id, tweet_id, kind, state, hlc, created_at, attempts, next_attempt_at, last_error, claimed_by, payload)
SELECT id, collection_id, tweet_id, kind, state, hlc, created_at, attempts, next_attempt_at, last_error, claimed_by, payload FROM ops;
DROP TABLE ops;
ALTER TABLE ops_0006 RENAME TO ops;
CREATE INDEX ops_by_key ON ops (collection_id, tweet_id, id);
CREATE INDEX ops_backoff ON ops (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX ops_dead_letters ON ops (id) WHERE state = 'failed';

-- As 0005 made it.
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
