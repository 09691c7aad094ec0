import CollectionsAPI

/// One open write transaction with the replica's clock: the building blocks every write of the
/// store is made of. Only exists inside ``SyncStore/write(onQueue:_:)``.
///
/// Ops change state only through ``insertOp(_:_:_:hlc:)`` and ``move(_:of:from:heldBy:to:)``
/// (OpTransitions.swift), which keep the per-collection counters that `status` reads exact.
struct WriteTransaction {
    let db: Connection
    let replicaID: String
    /// Wall time when the transaction began, for `created_at`-style columns.
    let wallMillis: Int64
    private var clock: HybridLogicalClock
    private let loadedClock: HybridLogicalClock
    /// The stamp of the newest log line this transaction wrote: that line persists the clock.
    private var lastLogged: HLC?
    /// Changes to the per-collection counters of `collections` (0002, 0004) that this
    /// transaction made, written once per collection when it ends (``finish()``).
    var counterChanges: [CollectionID: CounterChange] = [:]
    /// The last op id issued and the newest op the counters count (0004).
    var opIDs: (last: Int64, counted: Int64)
    /// Ids are never issued twice (0004). SQLite gives a new row the newest id plus one, which
    /// is right unless the newest row was deleted: then the table's floor is above its newest
    /// row, and the next row gets the floor plus one explicitly (an explicit id costs a search
    /// of the table per row, so only then). For ops, whether that is the case; for log lines,
    /// the id to give the next one. Both are read when the transaction begins (and ops' is kept
    /// by ``move(_:of:from:heldBy:to:)``); code that deletes log lines inside a write
    /// transaction goes through ``deleteLogLines(_:_:)``, which reads the log's again.
    var opIDGap: Bool
    var logIDGap: Int64?

    struct CounterChange: Equatable {
        var pending = 0, inFlight = 0, failed = 0, present = 0
    }

    init(db: Connection, replicaID: String, wallMillis: Int64) throws {
        self.db = db
        self.replicaID = replicaID
        self.wallMillis = wallMillis
        // One read: the last stamp issued, the newest of the saved clock and the newest log line
        // (every log line is stamped with this replica's clock, in id order: see saveClock());
        // the last op and log ids issued (0004), and the newest op the counters count.
        let read = try db.queryFirst("""
            SELECT max(r.hlc, coalesce(l.hlc, 0)), coalesce((SELECT max(id) FROM ops), 0), r.op_id_floor, r.counted_op_id,
                   coalesce(l.id, 0), r.log_id_floor
            FROM replica r LEFT JOIN (SELECT id, hlc FROM log ORDER BY id DESC LIMIT 1) l
            WHERE r.singleton = 1
            """) { ($0.int64(0), ($0.int64(1), $0.int64(2), $0.int64(3)), ($0.int64(4), $0.int64(5))) }
        guard let (last, (newestOp, opFloor, counted), (newestLine, logFloor)) = read else {
            throw SyncError(code: .databaseCorrupt, message: "the replica row is missing from the database")
        }
        clock = HybridLogicalClock(last: HLC(rawValue: last))
        loadedClock = clock
        opIDs = (max(newestOp, opFloor), counted)
        opIDGap = opFloor > newestOp
        logIDGap = logFloor > newestLine ? logFloor + 1 : nil
    }

    /// A fresh stamp, greater than every stamp this database has issued.
    mutating func tick() -> HLC { clock.tick(wallMillis: wallMillis) }

    /// The first of `count` (at least 1) fresh stamps that follow each other with no gap, so
    /// that SQL can number rows from it: after the first stamp of a transaction the wall time
    /// is fixed and each stamp is the previous one plus one. The last of them is a log line's
    /// (that line persists the clock).
    mutating func tick(count: Int) throws -> HLC {
        let first = tick()
        for _ in 1..<max(count, 1) { _ = tick() }
        guard clock.last.rawValue - first.rawValue == max(count, 1) - 1 else {  // only at the end of the HLC's range
            throw SyncError(code: .databaseCorrupt, message: "the replica's clock is at the end of its range (\(clock.last))")
        }
        lastLogged = clock.last
        return first
    }

    /// A fresh stamp for a log line this transaction writes (the line persists the clock).
    mutating func tickForLog() -> HLC {
        let hlc = tick()
        lastLogged = hlc
        return hlc
    }

    /// Persists the clock if stamps were issued (by ``finish()``). When the last stamp
    /// went into a log line written by this transaction, that line already persists it, and the
    /// replica row is left alone: one page fewer to write per edit, a fifth of a small
    /// transaction's cost. (Deleting log lines saves their stamps first: a trigger of 0002.)
    private func saveClock() throws {
        guard clock != loadedClock, clock.last != lastLogged else { return }
        try db.run("UPDATE replica SET hlc = ? WHERE singleton = 1", .integer(clock.last.rawValue))
    }

    /// Ends the transaction's work: the counter changes, one update per collection, a fold of
    /// the newer ops' counts when there are many, then the clock. Called once before commit.
    mutating func finish() throws {
        try foldOpCounts()
        for (collection, change) in counterChanges where change != CounterChange() {
            try db.run("""
                UPDATE collections SET ops_pending = ops_pending + ?1, ops_in_flight = ops_in_flight + ?2,
                    ops_failed = ops_failed + ?3, entries_present = entries_present + ?4
                WHERE id = ?5
                """, .integer(Int64(change.pending)), .integer(Int64(change.inFlight)), .integer(Int64(change.failed)),
                .integer(Int64(change.present)), .text(collection.rawValue))
        }
        try saveClock()
    }

    /// Counts a key of `collection` whose local view went from `old` to `new` (present or not).
    mutating func countView(_ collection: CollectionID, from old: Bool, to new: Bool) {
        if old != new { counterChanges[collection, default: CounterChange()].present += new ? 1 : -1 }
    }

    /// The size of a collection's local view now, this transaction's changes included.
    func presentEntries(_ collection: CollectionID) throws -> Int {
        let stored = try db.queryFirst("SELECT entries_present FROM collections WHERE id = ?", .text(collection.rawValue)) { $0.int(0) } ?? 0
        return stored + (counterChanges[collection]?.present ?? 0)
    }

    func ensureCollection(_ collection: CollectionID) throws {
        try db.run("INSERT OR IGNORE INTO collections (id, created_at) VALUES (?, ?)",
                   .text(collection.rawValue), .integer(wallMillis))
    }

    /// Queues one intent, coalescing it with the key's waiting op, and updates the local view.
    ///
    /// The key's newest op decides: pending or failed, it is replaced (logged `coalesced`); in
    /// flight or none, the new op is added behind it. When it is newer than op `after`, it was
    /// queued by the same call (the tweet is repeated in it): nothing is done and nil returned.
    ///
    /// With `checkingCollection` (the first tweet of a call to a server id), the same read also
    /// says whether the collection exists here and is not destroyed: a collection not seen yet is
    /// added, a destroyed one refused before anything is written (one statement, as before the
    /// check existed: B1 is one such call per edit).
    mutating func enqueue(_ kind: OpKind, _ collection: CollectionID, _ tweet: TweetID, unlessQueuedAfter after: Int64,
                          checkingCollection: Bool = false) throws -> QueuedOp? {
        // One read: whether the view shows the key now, and the key's newest op (if any), found
        // by max(id) on ops_by_key and joined by rowid (a subquery with ORDER BY ... LIMIT 1 is
        // materialized on every call: a fifth of this read's cost).
        let check = checkingCollection ? ", (SELECT coalesce(destroyed, '') FROM collections WHERE id = ?1)" : ""
        let (wasPresent, newest, state) = try db.queryFirst("""
            SELECT (SELECT present FROM entries WHERE collection_id = ?1 AND tweet_id = ?2), o.id, o.state, o.kind, o.hlc\(check)
            FROM (SELECT 1) LEFT JOIN ops o ON o.id = (SELECT max(id) FROM ops WHERE collection_id = ?1 AND tweet_id = ?2)
            """, .text(collection.rawValue), .text(tweet.rawValue)
        ) { row in
            (row.optionalInt64(0) == 1,
             row.isNull(1) ? nil : (OpID(row.int64(1)), OpState(rawValue: row.string(2)), row.string(3), HLC(rawValue: row.int64(4))),
             checkingCollection ? row.optionalString(5) : "")
        } ?? (false, nil, "")
        switch state {
        case nil: try ensureCollection(collection)
        case ""?: break
        case let destroyed?: throw SyncError.invalid("the collection \(collection) is \(destroyed == "destroying" ? "being destroyed" : destroyed)")
        }
        if let newest, newest.0.rawValue > after { return nil }
        let replaced = newest.flatMap { $0.1 == .inFlight ? nil : $0 }
        let hlc = tick()
        // The new op first: the replaced one is then never the newest, and deleting it raises no floor.
        let id = try insertOp(kind, collection, tweet, hlc: hlc)
        if let (oldID, oldState, _, _) = replaced, let oldState {
            try move([oldID], of: collection, from: [oldState], to: .gone)
        }
        if let (oldID, oldState, oldKind, oldHLC) = replaced {
            try log(.coalesced, collection, tweet, op: oldID, localHLC: oldHLC,
                    detail: "\(oldState?.rawValue ?? "?") \(oldKind) replaced by op \(id) (\(kind.rawValue))")
        }
        try db.run("""
            INSERT INTO entries (collection_id, tweet_id, present) VALUES (?, ?, ?)
            ON CONFLICT (collection_id, tweet_id) DO UPDATE SET present = excluded.present
            """, .text(collection.rawValue), .text(tweet.rawValue), .integer(kind.present ? 1 : 0))
        countView(collection, from: wasPresent, to: kind.present)
        try log(.localWrite, collection, tweet, op: id, localHLC: hlc, detail: kind.rawValue)
        return QueuedOp(id: id, kind: kind, collection: collection, tweet: tweet, hlc: hlc)
    }

    /// Appends a line to the LWW log, stamped with a fresh HLC.
    mutating func log(
        _ event: LogEvent.Kind, _ collection: CollectionID, _ tweet: TweetID?, op: OpID? = nil,
        winner: LogEvent.Winner? = nil, localHLC: HLC? = nil, remoteHLC: HLC? = nil, detail: String
    ) throws {
        let hlc = tickForLog()
        try db.run("""
            INSERT INTO log (id, hlc, replica_id, collection_id, tweet_id, event, op_id, winner, local_hlc, remote_hlc, detail)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            .int(takeLogIDGap()), .integer(hlc.rawValue), .text(replicaID), .text(collection.rawValue), .string(tweet?.rawValue),
            .text(event.rawValue), .int(op?.rawValue), .string(winner?.rawValue),
            .int(localHLC?.rawValue), .int(remoteHLC?.rawValue), .text(detail))
    }

    /// The id the next log line must be given (after the newest lines were deleted), or nil:
    /// SQLite's own (the newest line's plus one) is right. The gap is closed by that line.
    mutating func takeLogIDGap() -> Int64? {
        defer { logIDGap = nil }
        return logIDGap
    }

    /// Sets the key's local view from the intent of its newest pending or in-flight op, else
    /// its base, else absent; drops the row when it no longer holds anything.
    mutating func refreshView(_ collection: CollectionID, _ tweet: TweetID) throws {
        let intent = try db.queryFirst("""
            SELECT kind FROM ops WHERE collection_id = ? AND tweet_id = ? AND state IN ('pending', 'in_flight')
            ORDER BY id DESC LIMIT 1
            """, .text(collection.rawValue), .text(tweet.rawValue)) { OpKind(rawValue: $0.string(0)) }
        // Each update returns the new value only when it changed it: the counter moves with it.
        let flippedTo: Int?
        if let intent {
            flippedTo = try db.queryFirst("""
                UPDATE entries SET present = ?1 WHERE collection_id = ?2 AND tweet_id = ?3 AND present IS NOT ?1 RETURNING present
                """, .integer(intent?.present == true ? 1 : 0), .text(collection.rawValue), .text(tweet.rawValue)) { $0.int(0) }
        } else {
            flippedTo = try db.queryFirst("""
                UPDATE entries SET present = coalesce(base_present, 0)
                WHERE collection_id = ?1 AND tweet_id = ?2 AND present IS NOT coalesce(base_present, 0) RETURNING present
                """, .text(collection.rawValue), .text(tweet.rawValue)) { $0.int(0) }
            try dropIfEmpty(collection, tweet)
        }
        if let flippedTo { countView(collection, from: flippedTo != 1, to: flippedTo == 1) }
    }

    /// Deletes a key's row when it says nothing: absent locally, base never learned, no op.
    func dropIfEmpty(_ collection: CollectionID, _ tweet: TweetID) throws {
        try db.run("""
            DELETE FROM entries WHERE collection_id = ?1 AND tweet_id = ?2 AND present = 0 AND base_present IS NULL
              AND NOT EXISTS (SELECT 1 FROM ops WHERE collection_id = ?1 AND tweet_id = ?2)
            """, .text(collection.rawValue), .text(tweet.rawValue))
    }

    /// The ops with these ids, in the order given; ``SyncError/Code/opNotFound`` if one is missing.
    func ops(_ ids: [OpID]) throws -> [Op] {
        try ids.map { id in
            guard let op = try db.queryFirst("SELECT \(Op.columns) FROM ops WHERE id = ?", .integer(id.rawValue), row: Op.init(row:)) else {
                throw SyncError(code: .opNotFound, message: "no op \(id) in the outbox (it may have been applied or discarded)")
            }
            return op
        }
    }

    /// Moves one failed op back to pending, due now, and logs it. When a newer op of its key
    /// waits (queued while it was in flight), that newer intent supersedes it: the failed op is
    /// dropped and logged `coalesced`, so that no older intent is replayed after a newer one.
    mutating func retry(_ op: Op) throws {
        let id = op.id
        if let tweet = op.tweet, let newer = try db.queryFirst(
            "SELECT id, kind FROM ops WHERE collection_id = ? AND tweet_id = ? AND id > ? ORDER BY id DESC LIMIT 1",
            .text(op.collection.rawValue), .text(tweet.rawValue), .integer(id.rawValue), row: { (OpID($0.int64(0)), $0.string(1)) }) {
            try move([id], of: op.collection, from: [.failed], to: .gone)
            try log(.coalesced, op.collection, op.tweet, op: id, localHLC: op.hlc,
                    detail: "failed \(op.kind.rawValue) superseded by op \(newer.0) (\(newer.1)) instead of retried")
            return
        }
        try move([id], of: op.collection, from: [.failed], to: .retried)
        try log(.retried, op.collection, op.tweet, op: id, localHLC: op.hlc, detail: "\(op.kind.rawValue) back to pending")
        try refreshView(of: op)
    }

    /// The ops that failed with a create (semantics.md, offline collections, 6) go back with it.
    mutating func retryDependents(of create: Op) throws {
        let dependents = try db.query("""
            SELECT \(Op.columns) FROM ops WHERE collection_id = ? AND state = 'failed' AND kind <> 'create' AND last_error LIKE 'create failed: %'
            ORDER BY id
            """, .text(create.collection.rawValue), row: Op.init(row:))
        for op in dependents { try retry(op) }
    }

    /// Drops one pending or failed op by the user's wish and reverts what it showed.
    mutating func discard(_ op: Op) throws {
        if op.kind == .create {
            let maybeSent = try db.queryFirst("SELECT maybe_sent FROM local_collections WHERE local_id = ?",
                                              .text(op.collection.rawValue)) { $0.int(0) == 1 } ?? false
            guard !maybeSent else {
                throw SyncError(code: .opInFlight, message: "op \(op.id) is a create that may have reached the server: "
                                + "it can be discarded once a flush has settled it (or destroy the collection)")
            }
        }
        try move([op.id], of: op.collection, from: [op.state], to: .gone)
        try log(.discarded, op.collection, op.tweet, op: op.id, localHLC: op.hlc, detail: "\(op.kind.rawValue) discarded by the user")
        switch op.kind {
        case .create: try drop(op.collection, why: "its create was discarded")
        case .destroy: try db.run("UPDATE collections SET destroyed = NULL WHERE id = ? AND destroyed = 'destroying'", .text(op.collection.rawValue))
        default: try refreshView(of: op)
        }
    }

    /// What an op's key shows: a tweet's membership, or a collection's metadata.
    mutating func refreshView(of op: Op) throws {
        if let tweet = op.tweet {
            try refreshView(op.collection, tweet)
        } else if op.kind == .update {
            try refreshMetadata(op.collection)
        }
    }

    /// The collection an edit of entries goes to: a bound local id's server id; a server id
    /// the database does not know yet is added. Refuses (``SyncError/Code/invalidInput``) an
    /// unknown local id and a collection destroyed, being destroyed or dropped.
    func editableCollection(_ collection: CollectionID) throws -> CollectionID {
        if collection.isLocal { return try db.resolveCollection(collection, editing: true) }
        // One read by primary key: whether the row exists, and its state.
        switch try db.queryFirst("SELECT destroyed FROM collections WHERE id = ?", .text(collection.rawValue), row: { $0.optionalString(0) }) {
        case nil:
            try ensureCollection(collection)
        case let state??:
            throw SyncError.invalid("the collection \(collection) is \(state == "destroying" ? "being destroyed" : state)")
        case .some(nil):
            break
        }
        return collection
    }
}
