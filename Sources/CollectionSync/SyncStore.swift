import CollectionsAPI
import CoreMetrics
import Foundation
import Logging
import Synchronization

/// The local half of the engine: a collection's local copy in SQLite and the outbox of edits
/// waiting to reach the API, usable with no network.
///
/// Every edit changes the local view and queues its op in the same transaction: after a crash
/// either both are there or neither is. One call with many tweets is one transaction.
///
/// The local view of a key is the intent of its newest pending or in-flight op, or else the
/// server's last known value (the base), or else absent.
public final class SyncStore: Sendable {
    /// How a store opens and behaves.
    public struct Configuration: Sendable {
        /// How long a write waits for another connection's lock before failing with
        /// ``SyncError/Code/databaseBusy``.
        public var busyTimeout: Duration = .seconds(5)
        /// The wall clock behind the HLC and every stored time.
        public var wallClock: WallClock = .system
        /// How often observers (``SyncStore/observe(_:)``) look for other processes' commits
        /// (`PRAGMA data_version`) where the system cannot tell when the file is written; on
        /// Linux, inotify tells, and they look then (and every 20 intervals, at least a second,
        /// in case). Only while any observer is iterating; this store's own commits are seen at once.
        public var observationInterval: Duration = .milliseconds(50)
        /// Where the store's metric (`collectionsync_ops_queued_total`) goes; nil: the process's
        /// `MetricsSystem`, as bootstrapped when the store is opened (nothing when it was not).
        public var metricsFactory: (any MetricsFactory)?

        public init() {}
    }

    let database: DatabaseQueue
    let wallClock: WallClock
    let logger: Logger
    /// This database's replica id, recorded with every log line.
    public let replicaID: String
    private let metrics: SyncMetrics

    /// The path of the database file.
    public var path: String { database.path }

    /// Wakes the observers after a commit (``observe(_:)``).
    let changes: ChangeDetector

    private init(database: DatabaseQueue, replicaID: String, wallClock: WallClock, logger: Logger, observationInterval: Duration,
                 metrics: SyncMetrics) {
        self.database = database
        self.metrics = metrics
        self.replicaID = replicaID
        self.wallClock = wallClock
        self.logger = logger
        let changes = ChangeDetector(path: database.path, interval: observationInterval) { [database] in
            try await database.read { db in
                // The version is the pager's: a read first makes the connection look at the WAL.
                _ = try db.queryFirst("SELECT 1 FROM replica", row: { $0.int64(0) })
                return try db.queryFirst("PRAGMA data_version", row: { $0.int64(0) }) ?? 0
            }
        }
        database.onCommit { [weak changes] in changes?.changed() }
        self.changes = changes
    }

    /// Opens the database at `path`, creating it (mode 0600, parent folders included) and
    /// migrating it as needed.
    ///
    /// - Throws: ``SyncError`` with ``SyncError/Code/schemaTooNew`` for a database written by a
    ///   newer build (left untouched), ``SyncError/Code/databaseCorrupt`` for a file that is not
    ///   a sound database, ``SyncError/Code/database`` or ``SyncError/Code/databaseBusy`` otherwise.
    public static func open(
        at path: String,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "collection-sync", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> SyncStore {
        let millis = min(max(configuration.busyTimeout.milliseconds, 0), Int64(Int32.max))
        let wallClock = configuration.wallClock
        let database = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<DatabaseQueue, any Error>) in
            // Opening may wait for another process's lock: keep it off the concurrency pool.
            DispatchQueue.global().async {
                continuation.resume(with: Result { try DatabaseQueue(path: path, busyTimeoutMillis: Int32(millis), wallClock: wallClock) })
            }
        }
        let replicaID = try await database.write { db in
            if let existing = try db.queryFirst("SELECT replica_id FROM replica WHERE singleton = 1", row: { $0.string(0) }) {
                return existing
            }
            let id = String(format: "%016llx", UInt64.random(in: .min ... .max))
            // The counters count every op already there (a database that never had a replica row).
            try db.run("""
                INSERT INTO replica (singleton, replica_id, hlc, created_at, counted_op_id)
                VALUES (1, ?, 0, ?, (SELECT coalesce(max(id), 0) FROM ops))
                """, .text(id), .integer(wallClock.nowMillis()))
            return id
        }
        logger.debug("opened store", metadata: ["db.path": "\(path)", "replica.id": "\(replicaID)"])
        return SyncStore(database: database, replicaID: replicaID, wallClock: wallClock, logger: logger,
                         observationInterval: configuration.observationInterval, metrics: SyncMetrics(configuration.metricsFactory))
    }

    // MARK: - Edits

    /// Removes `tweets` from the local view of `collection` and queues the removals, in one
    /// transaction. Repeated tweets in one call count once.
    @discardableResult
    public func remove(_ tweets: [TweetID], from collection: CollectionID) async throws -> [QueuedOp] {
        try await enqueue(.remove, tweets, collection)
    }

    /// Adds `tweets` to the local view of `collection` and queues the additions, in one
    /// transaction. Repeated tweets in one call count once.
    @discardableResult
    public func add(_ tweets: [TweetID], to collection: CollectionID) async throws -> [QueuedOp] {
        try await enqueue(.add, tweets, collection)
    }

    /// Edits from which a call is a long write, run off the concurrency pool (about 10 µs each:
    /// 64 take over half a millisecond). Fewer keep the fast path: one edit is B1's case.
    static let longEnqueue = 64

    private func enqueue(_ kind: OpKind, _ tweets: [TweetID], _ collection: CollectionID) async throws -> [QueuedOp] {
        guard !tweets.isEmpty else { return [] }
        let queued = try await write(onQueue: tweets.count >= Self.longEnqueue) { tx in
            // A local id is resolved (and checked) here; a server id by the first tweet's read.
            let target = collection.isLocal ? try tx.editableCollection(collection) : collection
            // A repeated tweet is found by the key's own lookup (its newest op is this call's):
            // no set of the call's ids, which for a million ids cost a third of the memory.
            let before = tx.opIDs.last
            var queued: [QueuedOp] = []
            queued.reserveCapacity(tweets.count)
            for (index, tweet) in tweets.enumerated() {
                let check = index == 0 && !collection.isLocal
                if let op = try tx.enqueue(kind, target, tweet, unlessQueuedAfter: before, checkingCollection: check) { queued.append(op) }
            }
            return queued
        }
        metrics.queued(queued.count, kind)
        logger.debug("queued ops", metadata: ["op.kind": "\(kind.rawValue)", "collection.id": "\(collection)", "op.count": "\(queued.count)"])
        return queued
    }

    // MARK: - Failures an application can act on

    /// Puts dead-lettered ops back to pending, due now. The whole call is refused, with nothing
    /// changed, when an id is unknown (``SyncError/Code/opNotFound``) or its op is not failed
    /// (``SyncError/Code/invalidInput``).
    public func retry(_ ids: [OpID]) async throws {
        try await write { tx in
            let ops = try tx.ops(ids)
            for op in ops where op.state != .failed {
                throw SyncError.invalid("op \(op.id) is \(op.state.rawValue), not failed: only failed ops can be retried")
            }
            for op in ops { try tx.retry(op) }
            // A create's retry retries the ops that failed with it.
            for op in ops where op.kind == .create { try tx.retryDependents(of: op) }
        }
    }

    /// Puts every dead-lettered op back to pending; returns their ids.
    @discardableResult
    public func retryAllFailed() async throws -> [OpID] {
        try await write { tx in
            let ops = try tx.db.query("SELECT \(Op.columns) FROM ops WHERE state = 'failed' ORDER BY id", row: Op.init(row:))
            // Creates first: their ops wait behind them, whatever their ids.
            for op in ops where op.kind == .create { try tx.retry(op) }
            for op in ops where op.kind != .create { try tx.retry(op) }
            return ops.map(\.id)
        }
    }

    /// Drops pending or failed ops and reverts each key's local view (to the intent of an op
    /// still in flight, else to the base). The whole call is refused, with nothing changed, when
    /// an id is unknown (``SyncError/Code/opNotFound``) or its op is in flight
    /// (``SyncError/Code/opInFlight``).
    public func discard(_ ids: [OpID]) async throws {
        try await write { tx in
            // A throw anywhere rolls the whole call back.
            for op in try tx.ops(ids) {
                guard op.state != .inFlight else {
                    throw SyncError(code: .opInFlight, message: "op \(op.id) is in flight: it can be discarded once its answer is in")
                }
                try tx.discard(op)
            }
        }
    }

    // MARK: - Reading

    /// The entries present in the local view of `collection`, newest first: entries added
    /// locally and not yet pulled, then by the server's `sort_index`, descending.
    public func entries(of collection: CollectionID) async throws -> [Entry] {
        try await database.read { db in
            let collection = try db.resolveCollection(collection, editing: true)
            return try db.query("""
                SELECT e.tweet_id, e.sort_index,
                       (SELECT o.kind FROM ops o
                         WHERE o.collection_id = e.collection_id AND o.tweet_id = e.tweet_id
                           AND o.state IN ('pending', 'in_flight')
                         ORDER BY o.id DESC LIMIT 1)
                FROM entries e
                WHERE e.collection_id = ? AND e.present = 1
                ORDER BY e.sort_index IS NULL DESC, length(e.sort_index) DESC, e.sort_index DESC,
                         length(e.tweet_id) DESC, e.tweet_id DESC
                """, .text(collection.rawValue)) { row in
                Entry(tweet: TweetID(trusted: row.string(0)),
                      sortIndex: row.optionalString(1),
                      pending: row.optionalString(2).flatMap(OpKind.init(rawValue:)))
            }
        }
    }

    /// The outbox: waiting (pending and in-flight), failed, or every op, oldest first.
    public func outbox(_ filter: OutboxFilter = .waiting) async throws -> [Op] {
        let condition = switch filter {
        case .waiting: "WHERE state IN ('pending', 'in_flight')"
        case .failed: "WHERE state = 'failed'"
        case .all: ""
        }
        return try await database.read { db in
            try db.query("SELECT \(Op.columns) FROM ops \(condition) ORDER BY id", row: Op.init(row:))
        }
    }

    /// One op by id, or nil when it is not in the outbox (applied or discarded).
    public func op(_ id: OpID) async throws -> Op? {
        try await database.read { db in
            try db.queryFirst("SELECT \(Op.columns) FROM ops WHERE id = ?", .integer(id.rawValue), row: Op.init(row:))
        }
    }

    /// The LWW log, newest first: every event, or only `conflict` events.
    /// A bound local id's lines are shown under its server id (the lines keep the id they were
    /// written with).
    public func log(conflictsOnly: Bool = false, limit: Int = 100) async throws -> [LogEvent] {
        guard limit > 0 else { throw SyncError.invalid("the log limit must be positive, not \(limit)") }
        let condition = conflictsOnly ? "WHERE event = 'conflict'" : ""
        return try await database.read { db in
            try db.query("""
                SELECT \(LogEvent.columns(collection: "coalesce((SELECT server_id FROM local_collections WHERE local_id = log.collection_id), log.collection_id)"))
                FROM log \(condition) ORDER BY id DESC LIMIT ?
                """, .integer(Int64(limit)), row: LogEvent.init(row:))
        }
    }

    /// Counts of ops per state and collection, and the times an operator asks about.
    public func status() async throws -> SyncStatus {
        let now = wallClock.nowMillis()
        return try await database.read { db in
            // Counts come from the per-collection counters and the ops newer than them (0004,
            // the view collection_counts): a few rows and at most about a thousand ops, however
            // long the queue.
            let collections = try db.query("""
                SELECT id, last_pulled_at, entries_present, ops_pending, ops_in_flight, ops_failed FROM collection_counts
                WHERE id NOT IN (SELECT id FROM collections WHERE destroyed IN ('destroyed', 'dropped'))  -- gone for good, no ops left
                ORDER BY id
                """) { row in
                CollectionStatus(
                    id: CollectionID(trusted: row.string(0)),
                    entries: row.int(2),
                    ops: OpCounts(pending: row.int(3), inFlight: row.int(4), failed: row.int(5)),
                    lastPulledAt: row.optionalInt64(1).map(Date.init(millis:)))
            }
            let total = collections.reduce(into: OpCounts()) { total, collection in
                total.pending += collection.ops.pending
                total.inFlight += collection.ops.inFlight
                total.failed += collection.ops.failed
            }
            // Ops are numbered in the order they were queued: the first pending one is the oldest.
            let oldestPending = try db.queryFirst(
                "SELECT created_at FROM ops WHERE state = 'pending' ORDER BY id LIMIT 1") { $0.int64(0) }
            let nextAttempt = try db.queryFirst(
                "SELECT min(next_attempt_at) FROM ops WHERE state = 'pending' AND next_attempt_at > ?",
                .integer(now)) { $0.optionalInt64(0) } ?? nil
            let rateLimited = try db.queryFirst(
                "SELECT max(blocked_until) FROM rate_limits WHERE blocked_until > ?",
                .integer(now)) { $0.optionalInt64(0) } ?? nil
            let lastFlush = try db.queryFirst(
                "SELECT last_flush_at FROM replica WHERE singleton = 1") { $0.optionalInt64(0) } ?? nil
            return SyncStatus(
                ops: total,
                oldestPendingAt: oldestPending.map(Date.init(millis:)),
                nextAttemptAt: nextAttempt.map(Date.init(millis:)),
                rateLimitedUntil: rateLimited.map(Date.init(millis:)),
                lastFlushAt: lastFlush.map(Date.init(millis:)),
                collections: collections)
        }
    }

    // MARK: - Transactions

    /// Runs `body` in one write transaction with the replica's clock loaded; the clock is saved
    /// with the transaction, so stamps stay strictly increasing across processes and restarts.
    /// `onQueue`: a long write, kept off the concurrency pool (``DatabaseQueue/write(onQueue:_:)``).
    func write<T: Sendable>(onQueue: Bool = false, _ body: @escaping @Sendable (inout WriteTransaction) throws -> T) async throws -> T {
        let wallClock = self.wallClock
        let replicaID = self.replicaID
        return try await database.write(onQueue: onQueue) { db in
            var tx = try WriteTransaction(db: db, replicaID: replicaID, wallMillis: wallClock.nowMillis())
            let result = try body(&tx)
            try tx.finish()
            return result
        }
    }
}

extension Op {
    static let columns = "id, kind, collection_id, tweet_id, state, hlc, created_at, attempts, next_attempt_at, last_error"

    init(row: Statement) throws {
        guard let kind = OpKind(rawValue: row.string(1)), let state = OpState(rawValue: row.string(4)),
              state != .applied else {
            throw SyncError(code: .databaseCorrupt, message: "op \(row.int64(0)) has an unknown kind or state")
        }
        self.init(
            id: OpID(row.int64(0)), kind: kind,
            collection: CollectionID(trusted: row.string(2)), tweet: row.optionalString(3).map(TweetID.init(trusted:)),
            state: state, hlc: HLC(rawValue: row.int64(5)), createdAt: Date(millis: row.int64(6)),
            attempts: row.int(7), nextAttemptAt: row.optionalInt64(8).map(Date.init(millis:)),
            lastError: row.optionalString(9))
    }
}

extension LogEvent {
    static let columns = columns(collection: "collection_id")

    static func columns(collection: String) -> String {
        "id, hlc, replica_id, event, \(collection), tweet_id, op_id, winner, local_hlc, remote_hlc, detail"
    }

    init(row: Statement) {
        self.init(
            id: row.int64(0), hlc: HLC(rawValue: row.int64(1)), replicaID: row.string(2),
            event: Kind(rawValue: row.string(3)), collection: CollectionID(trusted: row.string(4)),
            tweet: row.optionalString(5).map(TweetID.init(trusted:)), op: row.optionalInt64(6).map(OpID.init),
            winner: row.optionalString(7).flatMap(Winner.init(rawValue:)),
            localHLC: row.optionalInt64(8).map(HLC.init(rawValue:)),
            remoteHLC: row.optionalInt64(9).map(HLC.init(rawValue:)), detail: row.string(10))
    }
}
