-- 0003: counter changes ride on log lines. Updating 0002's counters row in every transaction
-- cost one more page per edit (a fifth of a one-edit transaction). A transaction that writes a
-- log line now puts its counter changes on that line instead (a few bytes on a page it writes
-- anyway), and the lines are folded into `collections` now and then, in one update.
--
-- The counts are: collections' counters + the changes on log lines newer than
-- replica.counted_log_id. Read them through the view `collection_counts`.

ALTER TABLE log ADD COLUMN pending_change   INTEGER;
ALTER TABLE log ADD COLUMN in_flight_change INTEGER;
ALTER TABLE log ADD COLUMN failed_change    INTEGER;
ALTER TABLE log ADD COLUMN present_change   INTEGER;
ALTER TABLE replica ADD COLUMN counted_log_id INTEGER NOT NULL DEFAULT 0;  -- lines up to here are folded
UPDATE replica SET counted_log_id = coalesce((SELECT max(id) FROM log), 0);

CREATE VIEW collection_counts AS
SELECT c.id, c.last_pulled_at,
       c.ops_pending + coalesce(u.pending, 0)          AS ops_pending,
       c.ops_in_flight + coalesce(u.in_flight, 0)      AS ops_in_flight,
       c.ops_failed + coalesce(u.failed, 0)            AS ops_failed,
       c.entries_present + coalesce(u.present, 0)      AS entries_present
FROM collections c
LEFT JOIN (SELECT collection_id, sum(pending_change) AS pending, sum(in_flight_change) AS in_flight,
                  sum(failed_change) AS failed, sum(present_change) AS present
           FROM log WHERE id > (SELECT counted_log_id FROM replica WHERE singleton = 1)
           GROUP BY collection_id) u ON u.collection_id = c.id;

-- A line deleted before it is folded gives its changes to the counters first.
CREATE TRIGGER log_keeps_the_counts BEFORE DELETE ON log
WHEN OLD.id > (SELECT counted_log_id FROM replica WHERE singleton = 1)
BEGIN
    UPDATE collections SET
        ops_pending     = ops_pending + coalesce(OLD.pending_change, 0),
        ops_in_flight   = ops_in_flight + coalesce(OLD.in_flight_change, 0),
        ops_failed      = ops_failed + coalesce(OLD.failed_change, 0),
        entries_present = entries_present + coalesce(OLD.present_change, 0)
    WHERE id = OLD.collection_id;
END;
