-- 0004: the LWW log holds only what semantics.md says it holds; the counters of `status` are
-- kept without it, and an edit writes no more pages than the rows it needs.
--
-- 0003 put the per-collection counter changes on log lines (pending_change, in_flight_change,
-- failed_change, present_change) and folded them into `collections` now and then: the user's
-- decision log carried the store's bookkeeping. From here on:
--
-- * Op counts are derived: `collections.ops_*` count the ops up to replica.counted_op_id, and
--   the ops newer than it (at most about a thousand: a transaction that takes the store past
--   that folds them in) are counted from their rows. Read them through the view
--   `collection_counts`. An edit that queues an op writes nothing for the counters; a change of
--   an older op's state adds to them, once per collection and transaction
--   (WriteTransaction.finish). Every change of an op's state goes through one function
--   (WriteTransaction.move, OpTransitions.swift), which counts exactly the rows it changed.
-- * `collections.entries_present`, the local view's size, is exact after every commit; an edit
--   that changes the view's size (an add of an absent tweet, a remove of a present one) adds to it.
--
-- `ops` and `log` drop AUTOINCREMENT, which wrote sqlite_sequence's page at every insert. Its
-- promise, an id is never used twice, is kept by the store instead: a new id is one more than
-- the largest of the table's newest id and the table's floor in `replica` (op_id_floor,
-- log_id_floor), and a floor is raised only when the newest row is deleted (the newest op by
-- WriteTransaction.move, any log line by the trigger below), which an edit never does.
--
-- The tables are rebuilt with every row as it is; the counters are recounted from the rows.

DROP VIEW collection_counts;
DROP TRIGGER log_keeps_the_counts;
DROP TRIGGER log_keeps_the_clock;

ALTER TABLE replica ADD COLUMN op_id_floor  INTEGER NOT NULL DEFAULT 0;   -- no op id at or below it is issued again
ALTER TABLE replica ADD COLUMN log_id_floor INTEGER NOT NULL DEFAULT 0;   -- no log id at or below it is issued again
ALTER TABLE replica ADD COLUMN counted_op_id INTEGER NOT NULL DEFAULT 0;  -- collections.ops_* count the ops up to here
UPDATE replica SET
    op_id_floor  = coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'ops'), 0),
    log_id_floor = coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'log'), 0);
ALTER TABLE replica DROP COLUMN counted_log_id;

-- The outbox, as 0001 made it, with ids issued by the store.
CREATE TABLE ops_0004 (
    id              INTEGER PRIMARY KEY,                 -- never reused: users name ops by id (see above)
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
INSERT INTO ops_0004 (id, collection_id, tweet_id, kind, state, hlc, created_at, attempts, next_attempt_at, last_error, claimed_by)
SELECT id, collection_id, tweet_id, kind, state, hlc, created_at, attempts, next_attempt_at, last_error, claimed_by FROM ops;
DROP TABLE ops;
ALTER TABLE ops_0004 RENAME TO ops;
CREATE INDEX ops_by_key ON ops (collection_id, tweet_id, id);
CREATE INDEX ops_backoff ON ops (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX ops_dead_letters ON ops (id) WHERE state = 'failed';

-- The last-writer-wins log, as 0001 made it: append-only, prunable by age, never rewritten.
CREATE TABLE log_0004 (
    id              INTEGER PRIMARY KEY,                 -- never reused (see above)
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
INSERT INTO log_0004 (id, hlc, replica_id, collection_id, tweet_id, event, op_id, winner, local_hlc, remote_hlc, detail)
SELECT id, hlc, replica_id, collection_id, tweet_id, event, op_id, winner, local_hlc, remote_hlc, detail FROM log;
DROP TABLE log;
ALTER TABLE log_0004 RENAME TO log;
CREATE INDEX log_conflicts ON log (id) WHERE event = 'conflict';

-- Deleting log lines (pruning, or by hand) first saves their stamps (0002: the newest line
-- persists the clock) and their ids, so that neither is ever issued twice.
CREATE TRIGGER log_keeps_the_clock BEFORE DELETE ON log BEGIN
    UPDATE replica SET hlc = max(hlc, OLD.hlc), log_id_floor = max(log_id_floor, OLD.id) WHERE singleton = 1;
END;

UPDATE collections SET
    ops_pending     = (SELECT count(*) FROM ops o WHERE o.collection_id = collections.id AND o.state = 'pending'),
    ops_in_flight   = (SELECT count(*) FROM ops o WHERE o.collection_id = collections.id AND o.state = 'in_flight'),
    ops_failed      = (SELECT count(*) FROM ops o WHERE o.collection_id = collections.id AND o.state = 'failed'),
    entries_present = (SELECT count(*) FROM entries e WHERE e.collection_id = collections.id AND e.present = 1);
UPDATE replica SET counted_op_id = coalesce((SELECT max(id) FROM ops), 0);

-- The counts `status` reads: the counters, plus the ops newer than counted_op_id, from their rows.
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
