import CollectionsAPI
import Foundation

/// What the server's answer means for one in-flight op.
@_spi(Worker) public enum OpOutcome: Sendable, Hashable {
    /// The change was applied.
    case applied
    /// The server already had the intent (`remove` + `not_found`, `add` + `duplicate`).
    case alreadyApplied
    /// A permanent refusal: the op is dead-lettered with `reason`, the local view reverts.
    case failed(reason: String)
    /// Not applied, try again at `at` (transient failures); the attempt counts.
    case retry(at: Date, error: String)
    /// Not applied and the attempt does not count (authentication or configuration stops, rate
    /// limits, the deadline, not sent); not sent again before `until` when given.
    case release(error: String, until: Date? = nil)
    /// A collection op's answer, with what it taught (a create's server id, the new metadata).
    case collection(CollectionAnswer)

    /// The intent is had: applied, already applied, or a collection op answered.
    var isAnswered: Bool {
        switch self {
        case .applied, .alreadyApplied, .collection: true
        default: false
        }
    }
}

/// What the server said to a collection op (`create`, `update`), or what a listing showed.
@_spi(Worker) public enum CollectionAnswer: Sendable, Hashable {
    /// The create was answered: the collection the server made.
    case created(CollectionID, CollectionMetadata)
    /// After an unknown outcome, listing found the collection the create made (the newest of
    /// `candidates` when several matched).
    case matched(CollectionID, CollectionMetadata, candidates: [CollectionID])
    /// After an unknown outcome, listing found nothing and a destroy waits: the collection is
    /// dropped without sending the create again.
    case dropped
    /// The update was answered with the collection's metadata now.
    case updated(CollectionMetadata)
    /// The destroy was answered `destroyed`.
    case destroyed

    /// The server already had the intent (the create was applied earlier; a destroy made a create needless).
    var wasAlreadyApplied: Bool {
        switch self {
        case .matched, .dropped: true
        default: false
        }
    }
}

extension Op {
    /// This op as it is once `outcome` is committed: what an event about it carries.
    func answered(_ outcome: OpOutcome) -> Op {
        switch outcome {
        case .applied, .alreadyApplied, .collection:
            with(state: .applied, nextAttemptAt: nil, lastError: nil)
        case .failed(let reason):
            with(state: .failed, nextAttemptAt: nil, lastError: reason)
        case .retry(let at, let error):
            with(state: .pending, nextAttemptAt: at, lastError: error)
        case .release(let error, let until):
            with(state: .pending, attempts: max(attempts - 1, 0), nextAttemptAt: until, lastError: error)
        }
    }

    private func with(state: OpState, attempts: Int? = nil, nextAttemptAt: Date?, lastError: String?) -> Op {
        Op(id: id, kind: kind, collection: collection, tweet: tweet, state: state, hlc: hlc, createdAt: createdAt,
           attempts: attempts ?? self.attempts, nextAttemptAt: nextAttemptAt, lastError: lastError)
    }
}

/// The outcome of one op, for ``SyncStore/complete(_:lease:)``.
@_spi(Worker) public struct OpResult: Sendable, Hashable {
    public let op: OpID
    public let outcome: OpOutcome
    /// The op's collection, when the caller has the op: its outcome is then committed with the
    /// others of its collection, without reading the op back.
    let collection: CollectionID?
    /// Whether it is a collection op (create, update, destroy), when the caller has the op.
    let isCollectionOp: Bool?

    public init(op: OpID, outcome: OpOutcome) {
        self.op = op
        self.outcome = outcome
        collection = nil
        isCollectionOp = nil
    }

    /// The outcome of `op`, as ``SyncStore/claimDueOps(lease:limit:)`` returned it.
    public init(op: Op, outcome: OpOutcome) {
        self.op = op.id
        self.outcome = outcome
        collection = op.collection
        isCollectionOp = op.kind.isCollectionOp
    }
}

/// Everything one answer (or a few, committed together) changes, written in one transaction:
/// the ops' outcomes with their bases, views and log lines, and what the answer taught about
/// the API base (a success, an exhausted rate-limit window, the server's clock).
struct FlushCommit: Sendable, Hashable {
    var results: [OpResult] = []
    var rateLimits: [RateLimitState] = []
    /// The base answered successfully (a later 404 from it can mean a missing collection).
    var apiSucceeded = false
    /// The offset of the server's clock from ours, learned from a clock-skew answer.
    var clockOffset: Duration?
    /// Collections the server confirmed gone (404 / 34 twice): marked gone, their waiting ops failed.
    var gone: [CollectionID] = []

    var isEmpty: Bool { results.isEmpty && rateLimits.isEmpty && !apiSucceeded && clockOffset == nil && gone.isEmpty }
}

/// How many ops wait, and when the first one that is not due becomes due.
struct QueueSummary: Sendable, Hashable {
    /// Pending and in-flight ops.
    var pending: Int
    /// Dead letters.
    var failed: Int
    /// The earliest next attempt of a pending op that is not due now.
    var nextAttemptAt: Int64?
    /// Pending ops this flush cannot send, when it holds creates back (no user id to list
    /// with): the creates and the ops of their collections.
    var held = 0
}

extension SyncStore {
    /// Claims up to `limit` due pending ops, oldest first, for the holder of `lease`: each is
    /// marked in flight and its attempt counted, committed before anything is sent. An op is
    /// never claimed while an older op of its key is pending or in flight.
    ///
    /// Collection ops keep their order: ops of a collection made here wait until its create is
    /// applied (they move to the server id then); an update waits for the collection's older
    /// update; a destroy waits until every older op of its collection is answered. With
    /// `creates` false (no user id to list with), creates are not claimed.
    @_spi(Worker) public func claimDueOps(lease: FlusherLease, limit: Int, creates: Bool = true) async throws -> [Op] {
        guard limit > 0 else { return [] }
        return try await write(onQueue: true) { tx in
            try tx.requireLease(lease)
            // The due ops in id order (the scan stops after `limit`), then one update marks them
            // (cheaper than an UPDATE … RETURNING of whole rows, which buffers every row).
            let due = try tx.db.query("""
                SELECT \(Op.columns) FROM ops o
                WHERE o.state = 'pending' AND coalesce(o.next_attempt_at, 0) <= ?1
                  AND CASE
                    WHEN o.tweet_id IS NOT NULL THEN
                      substr(o.collection_id, 1, 6) <> 'local-'
                      AND NOT EXISTS (SELECT 1 FROM ops p
                                      WHERE p.collection_id = o.collection_id AND p.tweet_id = o.tweet_id
                                        AND p.id < o.id AND p.state IN ('pending', 'in_flight'))
                    WHEN o.kind = 'create' THEN ?3
                    WHEN o.kind = 'update' THEN
                      substr(o.collection_id, 1, 6) <> 'local-'
                      AND NOT EXISTS (SELECT 1 FROM ops p
                                      WHERE p.collection_id = o.collection_id AND p.tweet_id IS NULL
                                        AND p.id < o.id AND p.state IN ('pending', 'in_flight'))
                    ELSE
                      substr(o.collection_id, 1, 6) <> 'local-'
                      AND NOT EXISTS (SELECT 1 FROM ops p
                                      WHERE p.collection_id = o.collection_id AND p.id < o.id AND p.state IN ('pending', 'in_flight'))
                  END
                ORDER BY o.id LIMIT ?2
                """, .integer(tx.wallMillis), .integer(Int64(limit)), .integer(creates ? 1 : 0), row: Op.init(row:))
            guard !due.isEmpty else { return [] }
            for (collection, ops) in due.grouped(by: \.collection) {
                try tx.move(ops.map(\.id), of: collection, from: [.pending], to: .claimed(by: lease.holder))
            }
            return due.map { $0.claimed() }
        }
    }

    /// Commits the outcomes of in-flight ops in one transaction: op states, the keys' bases and
    /// views, and the log. Results for ops this lease does not hold in flight (taken over after
    /// the lease expired) are ignored: their replay reconciles. Returns how many were committed.
    @discardableResult
    @_spi(Worker) public func complete(_ results: [OpResult], lease: FlusherLease) async throws -> Int {
        try await write(onQueue: true) { tx in try tx.complete(results, holder: lease.holder) }
    }

    /// Commits a flush's outcomes and what the answers taught about the API base, in one
    /// transaction. Returns how many op results were committed.
    @discardableResult
    func commit(_ commit: FlushCommit, apiBase: String, lease: FlusherLease) async throws -> Int {
        try await write(onQueue: true) { tx in
            let committed = try tx.complete(commit.results, holder: lease.holder)
            for collection in commit.gone { try tx.markGone(collection) }
            for state in commit.rateLimits { try tx.record(state, apiBase: apiBase) }
            if commit.apiSucceeded { try tx.recordAPISuccess(apiBase: apiBase) }
            if let offset = commit.clockOffset { try tx.record(clockOffset: offset, apiBase: apiBase) }
            return committed
        }
    }

    /// Pending ops (due or not), dead letters, and the earliest time a not-yet-due op becomes due.
    func queueSummary(holdingCreates: Bool = false) async throws -> QueueSummary {
        let now = wallClock.nowMillis()
        return try await database.read { db in
            let held = holdingCreates ? try db.queryFirst("""
                SELECT count(*) FROM ops WHERE state = 'pending' AND substr(collection_id, 1, 6) = 'local-'
                """) { $0.int(0) } ?? 0 : 0
            let (pending, failed) = try db.queryFirst(
                "SELECT coalesce(sum(ops_pending + ops_in_flight), 0), coalesce(sum(ops_failed), 0) FROM collection_counts"
            ) { ($0.int(0), $0.int(1)) } ?? (0, 0)
            let next = try db.queryFirst(
                "SELECT min(next_attempt_at) FROM ops WHERE state = 'pending' AND next_attempt_at > ?",
                .integer(now)) { $0.optionalInt64(0) } ?? nil
            return QueueSummary(pending: pending, failed: failed, nextAttemptAt: next, held: held)
        }
    }
}

extension Sequence {
    /// The elements grouped by `key`, in the order each key first appears (the elements of a
    /// group in their order).
    func grouped<Key: Hashable>(by key: (Element) -> Key) -> [(Key, [Element])] {
        var order: [Key] = []
        var groups: [Key: [Element]] = [:]
        for element in self {
            let value = key(element)
            if groups[value] == nil { order.append(value) }
            groups[value, default: []].append(element)
        }
        return order.map { ($0, groups[$0]!) }
    }
}

extension Op {
    /// This op as a claim leaves it: in flight, one more attempt counted.
    func claimed() -> Op {
        Op(id: id, kind: kind, collection: collection, tweet: tweet, state: .inFlight, hlc: hlc, createdAt: createdAt,
           attempts: attempts + 1, nextAttemptAt: nextAttemptAt, lastError: lastError)
    }
}

extension WriteTransaction {
    /// Commits `results` for the ops `holder` holds in flight (others are skipped; an op given
    /// twice counts once, its first result); returns how many were committed.
    ///
    /// Answered ops (applied, or already applied) are the flush's hot path: they are committed
    /// set-based, a few statements per batch instead of four per op.
    mutating func complete(_ results: [OpResult], holder: String) throws -> Int {
        // Collection ops (a create, an update, a destroy: one per request) have their own commit.
        var results = results
        var collectionOps = 0
        if results.contains(where: { $0.isCollectionOp != false }) {
            let unknown = results.filter { $0.isCollectionOp == nil }.map(\.op)
            let collectionIDs = unknown.isEmpty ? [] : Set(try db.query(
                "SELECT id FROM ops WHERE id IN (SELECT value FROM json_each(?)) AND tweet_id IS NULL",
                .text(Self.jsonArray(unknown)), row: { OpID($0.int64(0)) }))
            let isCollectionOp = { (result: OpResult) in result.isCollectionOp ?? collectionIDs.contains(result.op) }
            for result in results where isCollectionOp(result) {
                if try completeCollectionOp(result, holder: holder) { collectionOps += 1 }
            }
            results.removeAll(where: isCollectionOp)
        }
        return try collectionOps + completeEntryOps(results, holder: holder)
    }

    private mutating func completeEntryOps(_ results: [OpResult], holder: String) throws -> Int {
        var seen = Set<OpID>(minimumCapacity: results.count)
        var answered: [OpResult] = []  // in the order given
        var already: [String] = []   // those whose intent the server already had
        var failed: [(OpID, String)] = []
        // The other outcomes, grouped: a request's ops share theirs (one backoff draw per request).
        var others: [(outcome: OpOutcome, ops: [OpResult])] = []
        var group: [OpOutcome: Int] = [:]
        for result in results where seen.insert(result.op).inserted {
            switch result.outcome {
            case .applied:
                answered.append(result)
            case .alreadyApplied:
                answered.append(result)
                already.append(String(result.op.rawValue))
            case .failed(let reason):
                failed.append((result.op, reason))
            case .retry, .release, .collection:
                if let index = group[result.outcome] {
                    others[index].ops.append(result)
                } else {
                    group[result.outcome] = others.count
                    others.append((result.outcome, [result]))
                }
            }
        }
        var committed = answered.isEmpty ? 0 : try completeAnswered(answered, already: already, holder: holder)
        for (id, reason) in failed where try fail(id, reason: reason, holder: holder) { committed += 1 }
        for (outcome, ops) in others {
            let target: OpTarget
            switch outcome {
            case .retry(let at, let error): target = .backedOff(until: at.millis, error: error)
            case .release(let error, let until): target = .released(error: error, until: until?.millis)
            default: preconditionFailure("grouped above")
            }
            for (collection, ids) in try byCollection(ops) { committed += try move(ids, of: collection, from: [.inFlight], heldBy: holder, to: target) }
        }
        return committed
    }

    /// The ops of `results` by collection: as the caller said it (``OpResult/init(op:outcome:)``
    /// with an ``Op``), else as the outbox says.
    private func byCollection(_ results: [OpResult]) throws -> [(CollectionID, [OpID])] {
        // The usual case, a request's answer: one collection, given.
        if let collection = results.first?.collection, results.allSatisfy({ $0.collection == collection }) {
            return [(collection, results.map(\.op))]
        }
        let unknown = results.filter { $0.collection == nil }.map(\.op)
        var collections: [OpID: CollectionID] = [:]
        if !unknown.isEmpty {
            for (id, collection) in try db.query("SELECT id, collection_id FROM ops WHERE id IN (SELECT value FROM json_each(?))",
                                                 .text(Self.jsonArray(unknown)), row: { (OpID($0.int64(0)), CollectionID(trusted: $0.string(1))) }) {
                collections[id] = collection
            }
        }
        // An op that is not in the outbox any more has nothing to move.
        return results.compactMap { result in (result.collection ?? collections[result.op]).map { ($0, result.op) } }
            .grouped(by: \.0).map { ($0.0, $0.1.map(\.1)) }
    }

    /// An answered op's intent becomes its key's base. Its key's view does not change: it is the
    /// intent of the key's newest pending or in-flight op, which is this op's or that of a newer
    /// op queued behind it, and stays so. (Only a missing row, which no write leaves, is made.)
    private mutating func completeAnswered(_ answered: [OpResult], already: [String], holder: String) throws -> Int {
        let ids = SQLiteValue.text(Self.jsonArray(answered.map(\.op)))
        // Two stamps per answered op, consecutive: the op at index i of `answered` gets
        // first + 2i for its base and first + 2i + 1 for its log line.
        let first = try tick(count: 2 * answered.count)
        let firstLogID = logIDGap
        try db.run("""
            UPDATE entries SET base_present = o.kind = 'add', base_hlc = ?3 + 2 * j.key
            FROM json_each(?1) j JOIN ops o ON o.id = j.value
            WHERE o.state = 'in_flight' AND o.claimed_by = ?2
              AND entries.collection_id = o.collection_id AND entries.tweet_id = o.tweet_id
            """, ids, .text(holder), .integer(first.rawValue))
        let based = db.changes
        try db.run("""
            INSERT INTO log (id, hlc, replica_id, collection_id, tweet_id, event, op_id, local_hlc, detail)
            SELECT CASE WHEN ?9 IS NULL THEN NULL ELSE ?9 + j.key END, ?3 + 2 * j.key + 1, ?4, o.collection_id, o.tweet_id,
                   CASE WHEN o.id NOT IN (SELECT value FROM json_each(?5)) THEN ?6 WHEN o.kind = 'remove' THEN ?7 ELSE ?8 END,
                   o.id, o.hlc, o.kind
            FROM json_each(?1) j JOIN ops o ON o.id = j.value
            WHERE o.state = 'in_flight' AND o.claimed_by = ?2
            ORDER BY j.key
            """, ids, .text(holder), .integer(first.rawValue), .text(replicaID), .text(Self.jsonArray(already)),
            .text(LogEvent.Kind.applied.rawValue), .text(LogEvent.Kind.alreadyRemoved.rawValue), .text(LogEvent.Kind.alreadyPresent.rawValue),
            .int(firstLogID))
        let held = db.changes
        guard held > 0 else { return 0 }
        logIDGap = nil  // closed by the lines just written
        if based < held {
            // Keys without a row: made with the view the rule gives, and counted.
            for (collection, present) in try db.query("""
                INSERT INTO entries (collection_id, tweet_id, present, base_present, base_hlc)
                SELECT o.collection_id, o.tweet_id,
                       coalesce((SELECT w.kind = 'add' FROM ops w WHERE w.collection_id = o.collection_id AND w.tweet_id = o.tweet_id
                                   AND w.id <> o.id AND w.state IN ('pending', 'in_flight') ORDER BY w.id DESC LIMIT 1), o.kind = 'add'),
                       o.kind = 'add', ?3 + 2 * j.key
                FROM json_each(?1) j JOIN ops o ON o.id = j.value
                WHERE o.state = 'in_flight' AND o.claimed_by = ?2
                  AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.collection_id = o.collection_id AND e.tweet_id = o.tweet_id)
                RETURNING collection_id, present
                """, ids, .text(holder), .integer(first.rawValue), row: { (CollectionID(trusted: $0.string(0)), $0.int(1) == 1) }) {
                countView(collection, from: false, to: present)
            }
        }
        for (collection, ids) in try byCollection(answered) { try move(ids, of: collection, from: [.inFlight], heldBy: holder, to: .gone) }
        return held
    }

    /// Dead-letters one op: the log says why, and its key's view reverts (to the intent of an op
    /// queued behind it, else to the base).
    private mutating func fail(_ id: OpID, reason: String, holder: String) throws -> Bool {
        guard let op = try db.queryFirst("""
            SELECT \(Op.columns) FROM ops o WHERE id = ? AND state = 'in_flight' AND claimed_by = ?
            """, .integer(id.rawValue), .text(holder), row: Op.init(row:)) else { return false }
        try move([op.id], of: op.collection, from: [.inFlight], heldBy: holder, to: .failed(reason: reason))
        try log(.failed, op.collection, op.tweet, op: op.id, localHLC: op.hlc, detail: "\(op.kind.rawValue): \(reason)")
        try refreshView(of: op)
        return true
    }

    /// Commits the outcome of one collection op held in flight by `holder`.
    private mutating func completeCollectionOp(_ result: OpResult, holder: String) throws -> Bool {
        guard let op = try db.queryFirst("""
            SELECT \(Op.columns) FROM ops o WHERE id = ? AND state = 'in_flight' AND claimed_by = ?
            """, .integer(result.op.rawValue), .text(holder), row: Op.init(row:)) else { return false }
        let collection = op.collection
        func leave() throws { try move([op.id], of: collection, from: [.inFlight], heldBy: holder, to: .gone) }
        switch (op.kind, result.outcome) {
        case (.create, .collection(.created(let server, let metadata))):
            try leave()
            try bind(collection, to: server, metadata: metadata, createOp: op.id)
        case (.create, .collection(.matched(let server, _, _)))
            where try db.queryFirst("SELECT 1 FROM collections WHERE id = ?", .text(server.rawValue), row: { $0.int(0) }) != nil:
            // Bound meanwhile by another create of this database (answered in the same flush): list again.
            try move([op.id], of: collection, from: [.inFlight], heldBy: holder,
                     to: .released(error: "its listed match \(server) was bound to another collection meanwhile; listing again", until: nil))
        case (.create, .collection(.matched(let server, let metadata, let candidates))):
            try leave()
            if candidates.count > 1 {
                try log(.createAmbiguous, collection, nil, op: op.id, localHLC: op.hlc, detail: "candidates \(candidates.map(\.rawValue).joined(separator: ", ")); "
                        + "bound to the newest, \(server); the others are left alone")
            }
            try bind(collection, to: server, metadata: metadata, createOp: op.id)
        case (.create, .collection(.dropped)):
            try leave()
            try drop(collection, why: "a destroy waited, and after its create's unknown outcome no listed collection matched it")
        case (.update, .collection(.updated(let metadata))):
            let fields = try JSONPayload.decode(UpdatePayload.self, try payload(of: op.id), op: op.id.rawValue).fieldNames
            try leave()
            try log(.updated, collection, nil, op: op.id, localHLC: op.hlc, detail: fields.joined(separator: ", "))
            try takeMetadataBase(collection, metadata, learned: tick())
        case (.destroy, .collection(.destroyed)), (.destroy, .applied), (.destroy, .alreadyApplied):
            try leave()
            try cancelWaitingOps(of: collection, except: [], because: "dropped: its collection is destroyed")
            try db.run("UPDATE collections SET destroyed = 'destroyed' WHERE id = ?", .text(collection.rawValue))
            try log(.destroyed, collection, nil, op: op.id, localHLC: op.hlc,
                    detail: result.outcome != .alreadyApplied ? "destroyed on the server" : "already destroyed on the server (404 confirmed)")
        case (_, .failed(let reason)):
            try move([op.id], of: collection, from: [.inFlight], heldBy: holder, to: .failed(reason: reason))
            try log(.failed, collection, nil, op: op.id, localHLC: op.hlc, detail: "\(op.kind.rawValue): \(reason)")
            if op.kind == .create {
                // Its ops wait for it: they fail with it, and `retry` of the create retries them.
                let dependents = try db.query("SELECT \(Op.columns) FROM ops WHERE collection_id = ? AND state = 'pending' ORDER BY id",
                                              .text(collection.rawValue), row: Op.init(row:))
                for dependent in dependents {
                    try move([dependent.id], of: collection, from: [.pending], to: .failed(reason: "create failed: \(reason)"))
                    try log(.failed, collection, dependent.tweet, op: dependent.id, localHLC: dependent.hlc,
                            detail: "\(dependent.kind.rawValue): create failed: \(reason)")
                    if let tweet = dependent.tweet { try refreshView(collection, tweet) }
                }
            }
            if op.kind == .update { try refreshMetadata(collection) }
        case (_, .retry(let at, let error)):
            try move([op.id], of: collection, from: [.inFlight], heldBy: holder, to: .backedOff(until: at.millis, error: error))
        case (_, .release(let error, let until)):
            try move([op.id], of: collection, from: [.inFlight], heldBy: holder, to: .released(error: error, until: until?.millis))
        default:
            throw SyncError(code: .database, message: "op \(op.id) (\(op.kind.rawValue)) cannot take the outcome \(result.outcome)")
        }
        return true
    }

    /// A collection op's intent (JSON).
    func payload(of op: OpID) throws -> String? {
        try db.queryFirst("SELECT payload FROM ops WHERE id = ?", .integer(op.rawValue)) { $0.optionalString(0) } ?? nil
    }
}
