-- 0002: counters kept by triggers, so that `status` reads a few rows instead of counting a
-- million, and no index that every queued op has to enter just for counting.
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

-- Every op and entry belongs to a known collection (foreign keys), so its row is there to count in.
CREATE TRIGGER ops_counted_insert AFTER INSERT ON ops BEGIN
    UPDATE collections SET
        ops_pending   = ops_pending   + (NEW.state = 'pending'),
        ops_in_flight = ops_in_flight + (NEW.state = 'in_flight'),
        ops_failed    = ops_failed    + (NEW.state = 'failed')
    WHERE id = NEW.collection_id;
END;

CREATE TRIGGER ops_counted_delete AFTER DELETE ON ops BEGIN
    UPDATE collections SET
        ops_pending   = ops_pending   - (OLD.state = 'pending'),
        ops_in_flight = ops_in_flight - (OLD.state = 'in_flight'),
        ops_failed    = ops_failed    - (OLD.state = 'failed')
    WHERE id = OLD.collection_id;
END;

-- An op never changes collection: one update moves it between the state counters.
CREATE TRIGGER ops_counted_update AFTER UPDATE OF state ON ops WHEN OLD.state IS NOT NEW.state BEGIN
    UPDATE collections SET
        ops_pending   = ops_pending   - (OLD.state = 'pending')   + (NEW.state = 'pending'),
        ops_in_flight = ops_in_flight - (OLD.state = 'in_flight') + (NEW.state = 'in_flight'),
        ops_failed    = ops_failed    - (OLD.state = 'failed')    + (NEW.state = 'failed')
    WHERE id = NEW.collection_id;
END;

CREATE TRIGGER entries_counted_insert AFTER INSERT ON entries WHEN NEW.present = 1 BEGIN
    UPDATE collections SET entries_present = entries_present + 1 WHERE id = NEW.collection_id;
END;

CREATE TRIGGER entries_counted_delete AFTER DELETE ON entries WHEN OLD.present = 1 BEGIN
    UPDATE collections SET entries_present = entries_present - 1 WHERE id = OLD.collection_id;
END;

-- An entry never changes collection either.
CREATE TRIGGER entries_counted_update AFTER UPDATE OF present ON entries WHEN OLD.present IS NOT NEW.present BEGIN
    UPDATE collections SET entries_present = entries_present + (NEW.present = 1) - (OLD.present = 1)
    WHERE id = NEW.collection_id;
END;

-- The clock is persisted by the newest log line when a transaction's last stamp went into one
-- (WriteTransaction.saveClock): deleting log lines (pruning, or by hand) first saves their
-- stamps in the replica row, so that no stamp is ever issued twice.
CREATE TRIGGER log_keeps_the_clock BEFORE DELETE ON log BEGIN
    UPDATE replica SET hlc = max(hlc, OLD.hlc) WHERE singleton = 1;
END;
