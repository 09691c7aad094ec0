-- 0004: the LWW log holds only what semantics.md says it holds. 0003 put the per-collection
-- counter changes of `status` on log lines (pending_change, in_flight_change, failed_change,
-- present_change) and folded them into `collections` now and then; the user's decision log
-- carried the store's bookkeeping. From here on `collections` holds the counters themselves,
-- exact after every commit: each write transaction adds its changes once per collection
-- (WriteTransaction.finish), and every change of an op's state goes through one function
-- (WriteTransaction.move, OpTransitions.swift) that counts exactly the rows it changed.
--
-- The counters are recounted from the rows here (whatever the earlier bookkeeping did, they are
-- exact afterwards), then 0003's view, trigger and columns go. Ops, entries and log lines are
-- kept as they are.

DROP VIEW collection_counts;
DROP TRIGGER log_keeps_the_counts;

UPDATE collections SET
    ops_pending     = (SELECT count(*) FROM ops o WHERE o.collection_id = collections.id AND o.state = 'pending'),
    ops_in_flight   = (SELECT count(*) FROM ops o WHERE o.collection_id = collections.id AND o.state = 'in_flight'),
    ops_failed      = (SELECT count(*) FROM ops o WHERE o.collection_id = collections.id AND o.state = 'failed'),
    entries_present = (SELECT count(*) FROM entries e WHERE e.collection_id = collections.id AND e.present = 1);

ALTER TABLE log DROP COLUMN pending_change;
ALTER TABLE log DROP COLUMN in_flight_change;
ALTER TABLE log DROP COLUMN failed_change;
ALTER TABLE log DROP COLUMN present_change;
ALTER TABLE replica DROP COLUMN counted_log_id;
