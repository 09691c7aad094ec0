-- 0002: per-collection counters, so that `status` reads a few rows instead of counting a
-- million, and no index that every queued op has to enter just for counting. The engine keeps
-- them exact: every write transaction adds its changes once per collection (one update, not a
-- trigger per row). Anything else that edits `ops` or `entries` must do the same.
--
-- ops_by_state (state, collection_id, next_attempt_at) served the counts and led the claim
-- query to sort every pending op on each claim (quadratic in the queue's length). Without it the
-- claim walks ops in id order and stops after its batch. What stays indexed is small: ops
-- waiting for a backoff (next_attempt_at set) and dead letters.

ALTER TABLE collections ADD COLUMN ops_pending     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE collections ADD COLUMN ops_in_flight   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE collections ADD COLUMN ops_failed      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE collections ADD COLUMN entries_present INTEGER NOT NULL DEFAULT 0;   -- the local view's size

UPDATE collections SET
    ops_pending     = (SELECT count(*) FROM ops o WHERE o.collection_id = collections.id AND o.state = 'pending'),
    ops_in_flight   = (SELECT count(*) FROM ops o WHERE o.collection_id = collections.id AND o.state = 'in_flight'),
    ops_failed      = (SELECT count(*) FROM ops o WHERE o.collection_id = collections.id AND o.state = 'failed'),
    entries_present = (SELECT count(*) FROM entries e WHERE e.collection_id = collections.id AND e.present = 1);

DROP INDEX ops_by_state;
CREATE INDEX ops_backoff ON ops (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX ops_dead_letters ON ops (id) WHERE state = 'failed';

-- The clock is persisted by the newest log line when a transaction's last stamp went into one
-- (WriteTransaction.saveClock): deleting log lines (pruning, or by hand) first saves their
-- stamps in the replica row, so that no stamp is ever issued twice.
CREATE TRIGGER log_keeps_the_clock BEFORE DELETE ON log BEGIN
    UPDATE replica SET hlc = max(hlc, OLD.hlc) WHERE singleton = 1;
END;
