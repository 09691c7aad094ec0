/// One open write transaction with the replica's clock: the building blocks every write of the
/// store is made of. Only exists inside ``SyncStore/write(_:)``.
struct WriteTransaction {
    let db: Connection
    let replicaID: String
    /// Wall time when the transaction began, for `created_at`-style columns.
    let wallMillis: Int64
    private var clock: HybridLogicalClock
    private let loadedClock: HybridLogicalClock
    /// The stamp of the newest log line this transaction wrote: that line persists the clock.
    private var lastLogged: HLC?

    init(db: Connection, replicaID: String, wallMillis: Int64) throws {
        self.db = db
        self.replicaID = replicaID
        self.wallMillis = wallMillis
        // The last stamp issued is the newest of the saved clock and the newest log line (every
        // log line is stamped with this replica's clock, in id order): see saveClock().
        let last = try db.queryFirst("""
            SELECT max(hlc, coalesce((SELECT hlc FROM log ORDER BY id DESC LIMIT 1), 0)) FROM replica WHERE singleton = 1
            """) { $0.int64(0) }
        guard let last else {
            throw SyncError(code: .databaseCorrupt, message: "the replica row is missing from the database")
        }
        clock = HybridLogicalClock(last: HLC(rawValue: last))
        loadedClock = clock
    }

    /// A fresh stamp, greater than every stamp this database has issued.
    mutating func tick() -> HLC { clock.tick(wallMillis: wallMillis) }

    /// Persists the clock if stamps were issued; called once before commit. When the last stamp
    /// went into a log line written by this transaction, that line already persists it, and the
    /// replica row is left alone: one page fewer to write per edit, a fifth of a small
    /// transaction's cost. (Deleting log lines saves their stamps first: a trigger of 0002.)
    func saveClock() throws {
        guard clock != loadedClock, clock.last != lastLogged else { return }
        try db.run("UPDATE replica SET hlc = ? WHERE singleton = 1", .integer(clock.last.rawValue))
    }

    func ensureCollection(_ collection: CollectionID) throws {
        try db.run("INSERT OR IGNORE INTO collections (id, created_at) VALUES (?, ?)",
                   .text(collection.rawValue), .integer(wallMillis))
    }

    /// Queues one intent, coalescing it with the key's waiting op, and updates the local view.
    ///
    /// The key's newest op decides: pending or failed, it is replaced (logged `coalesced`); in
    /// flight or none, the new op is added behind it.
    mutating func enqueue(_ kind: OpKind, _ collection: CollectionID, _ tweet: TweetID) throws -> QueuedOp {
        let newest = try db.queryFirst(
            "SELECT id, state, kind, hlc FROM ops WHERE collection_id = ? AND tweet_id = ? ORDER BY id DESC LIMIT 1",
            .text(collection.rawValue), .text(tweet.rawValue)
        ) { (OpID($0.int64(0)), OpState(rawValue: $0.string(1)), $0.string(2), HLC(rawValue: $0.int64(3))) }
        let replaced = newest.flatMap { $0.1 == .inFlight ? nil : $0 }
        if let replaced {
            try db.run("DELETE FROM ops WHERE id = ?", .integer(replaced.0.rawValue))
        }
        let hlc = tick()
        try db.run("""
            INSERT INTO ops (collection_id, tweet_id, kind, state, hlc, created_at)
            VALUES (?, ?, ?, 'pending', ?, ?)
            """, .text(collection.rawValue), .text(tweet.rawValue), .text(kind.rawValue), .integer(hlc.rawValue), .integer(wallMillis))
        let id = OpID(db.lastInsertRowID)
        if let (oldID, oldState, oldKind, oldHLC) = replaced {
            try log(.coalesced, collection, tweet, op: oldID, localHLC: oldHLC,
                    detail: "\(oldState?.rawValue ?? "?") \(oldKind) replaced by op \(id) (\(kind.rawValue))")
        }
        try db.run("""
            INSERT INTO entries (collection_id, tweet_id, present) VALUES (?, ?, ?)
            ON CONFLICT (collection_id, tweet_id) DO UPDATE SET present = excluded.present
            """, .text(collection.rawValue), .text(tweet.rawValue), .integer(kind.present ? 1 : 0))
        try log(.localWrite, collection, tweet, op: id, localHLC: hlc, detail: kind.rawValue)
        return QueuedOp(id: id, kind: kind, collection: collection, tweet: tweet, hlc: hlc)
    }

    /// Appends a line to the LWW log, stamped with a fresh HLC.
    mutating func log(
        _ event: LogEvent.Kind, _ collection: CollectionID, _ tweet: TweetID?, op: OpID? = nil,
        winner: LogEvent.Winner? = nil, localHLC: HLC? = nil, remoteHLC: HLC? = nil, detail: String
    ) throws {
        let hlc = tick()
        lastLogged = hlc
        try db.run("""
            INSERT INTO log (hlc, replica_id, collection_id, tweet_id, event, op_id, winner, local_hlc, remote_hlc, detail)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            .integer(hlc.rawValue), .text(replicaID), .text(collection.rawValue), .string(tweet?.rawValue),
            .text(event.rawValue), .int(op?.rawValue), .string(winner?.rawValue),
            .int(localHLC?.rawValue), .int(remoteHLC?.rawValue), .text(detail))
    }

    /// Sets the key's local view from the intent of its newest pending or in-flight op, else
    /// its base, else absent; drops the row when it no longer holds anything.
    func refreshView(_ collection: CollectionID, _ tweet: TweetID) throws {
        let intent = try db.queryFirst("""
            SELECT kind FROM ops WHERE collection_id = ? AND tweet_id = ? AND state IN ('pending', 'in_flight')
            ORDER BY id DESC LIMIT 1
            """, .text(collection.rawValue), .text(tweet.rawValue)) { OpKind(rawValue: $0.string(0)) }
        if let intent {
            try db.run("UPDATE entries SET present = ? WHERE collection_id = ? AND tweet_id = ?",
                       .integer(intent?.present == true ? 1 : 0), .text(collection.rawValue), .text(tweet.rawValue))
        } else {
            try db.run("UPDATE entries SET present = coalesce(base_present, 0) WHERE collection_id = ? AND tweet_id = ?",
                       .text(collection.rawValue), .text(tweet.rawValue))
            try dropIfEmpty(collection, tweet)
        }
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
        if let newer = try db.queryFirst(
            "SELECT id, kind FROM ops WHERE collection_id = ? AND tweet_id = ? AND id > ? ORDER BY id DESC LIMIT 1",
            .text(op.collection.rawValue), .text(op.tweet.rawValue), .integer(id.rawValue), row: { (OpID($0.int64(0)), $0.string(1)) }) {
            try db.run("DELETE FROM ops WHERE id = ?", .integer(id.rawValue))
            try log(.coalesced, op.collection, op.tweet, op: id, localHLC: op.hlc,
                    detail: "failed \(op.kind.rawValue) superseded by op \(newer.0) (\(newer.1)) instead of retried")
            return
        }
        try db.run("UPDATE ops SET state = 'pending', next_attempt_at = NULL WHERE id = ?", .integer(id.rawValue))
        try log(.retried, op.collection, op.tweet, op: id, localHLC: op.hlc, detail: "\(op.kind.rawValue) back to pending")
        try refreshView(op.collection, op.tweet)
    }
}
