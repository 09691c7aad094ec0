import Foundation

/// A flusher's hold on a database: one flusher per database at a time, across processes.
public struct FlusherLease: Sendable, Hashable {
    /// A random token naming this holder.
    public let holder: String
    public let expiresAt: Date
}

/// Who holds the flusher lease.
public struct LeaseHolder: Sendable, Hashable {
    public let host: String
    public let pid: Int32
    public let acquiredAt: Date
    public let expiresAt: Date
}

/// The answer to a request for the flusher lease.
public enum LeaseAcquisition: Sendable, Hashable {
    case acquired(FlusherLease)
    /// Another live flusher holds it.
    case heldBy(LeaseHolder)
}

/// What the server's answer means for one in-flight op.
public enum OpOutcome: Sendable, Hashable {
    /// The change was applied.
    case applied
    /// The server already had the intent (`remove` + `not_found`, `add` + `duplicate`).
    case alreadyApplied
    /// A permanent refusal: the op is dead-lettered with `reason`, the local view reverts.
    case failed(reason: String)
    /// Not applied, try again at `at` (transient failures); the attempt counts.
    case retry(at: Date, error: String)
    /// Not applied and the attempt does not count (authentication or configuration stops, rate
    /// limits); not sent again before `until` when given.
    case release(error: String, until: Date? = nil)
}

/// The outcome of one op, for ``SyncStore/complete(_:lease:)``.
public struct OpResult: Sendable, Hashable {
    public let op: OpID
    public let outcome: OpOutcome

    public init(op: OpID, outcome: OpOutcome) {
        self.op = op
        self.outcome = outcome
    }
}

/// The rules for taking the lease, as a pure function.
enum LeaseRules {
    struct Row: Hashable {
        var holder: String
        var host: String
        var pid: Int32
        var expiresAt: Int64
    }

    /// Whether a flusher on `host` may take a lease currently described by `row`.
    static func mayTake(_ row: Row?, now: Int64, host: String, isAlive: (Int32) -> Bool) -> Bool {
        guard let row else { return true }
        if row.expiresAt <= now { return true }
        // A holder on this host whose process is gone is dead for sure: no need to wait.
        return row.host == host && !isAlive(row.pid)
    }
}

extension SyncStore {
    /// Takes the flusher lease for `ttl` unless another live flusher holds it. A holder on this
    /// host whose process is gone is taken over at once, any other when its lease expires; taking
    /// over puts the previous holder's in-flight ops back to pending.
    public func acquireFlusherLease(
        ttl: Duration = .seconds(30),
        host: String = hostName(),
        pid: Int32 = getpid(),
        isAlive: @escaping @Sendable (Int32) -> Bool = processExists
    ) async throws -> LeaseAcquisition {
        let ttlMillis = ttl.milliseconds
        // 64 random bits name a holder well enough, and every claimed op stores them (a shorter
        // token is a smaller row to rewrite at each claim).
        let token = String(format: "%016llx", UInt64.random(in: .min ... .max))
        return try await write { tx in
            let now = tx.wallMillis
            let current = try tx.db.queryFirst("SELECT holder, host, pid, acquired_at, expires_at FROM flusher_lease WHERE singleton = 1") {
                (LeaseRules.Row(holder: $0.string(0), host: $0.string(1), pid: Int32(truncatingIfNeeded: $0.int64(2)), expiresAt: $0.int64(4)),
                 $0.int64(3))
            }
            if let (row, acquiredAt) = current, !LeaseRules.mayTake(row, now: now, host: host, isAlive: isAlive) {
                return .heldBy(LeaseHolder(host: row.host, pid: row.pid, acquiredAt: Date(millis: acquiredAt), expiresAt: Date(millis: row.expiresAt)))
            }
            try tx.db.run("""
                INSERT OR REPLACE INTO flusher_lease (singleton, holder, host, pid, acquired_at, expires_at)
                VALUES (1, ?, ?, ?, ?, ?)
                """, .text(token), .text(host), .integer(Int64(pid)), .integer(now), .integer(now + ttlMillis))
            // Only a lease holder claims ops: any op in flight now belongs to a holder that is gone.
            // (The counters say whether there is any: the update itself scans the whole outbox.)
            if try tx.db.queryFirst("SELECT coalesce(sum(ops_in_flight), 0) FROM collection_counts", row: { $0.int(0) }) ?? 0 > 0 {
                for collection in try tx.db.query(
                    "UPDATE ops SET state = 'pending', claimed_by = NULL WHERE state = 'in_flight' RETURNING collection_id",
                    row: { CollectionID(trusted: $0.string(0)) }) {
                    tx.count(collection, from: .inFlight, to: .pending)
                }
            }
            return .acquired(FlusherLease(holder: token, expiresAt: Date(millis: now + ttlMillis)))
        }
    }

    /// Extends a held lease by `ttl` from now; ``SyncError/Code/leaseNotHeld`` when it was lost.
    public func renewFlusherLease(_ lease: FlusherLease, ttl: Duration = .seconds(30)) async throws -> FlusherLease {
        let ttlMillis = ttl.milliseconds
        return try await write { tx in
            try tx.db.run("UPDATE flusher_lease SET expires_at = ? WHERE singleton = 1 AND holder = ?",
                          .integer(tx.wallMillis + ttlMillis), .text(lease.holder))
            guard tx.db.changes == 1 else {
                throw SyncError(code: .leaseNotHeld, message: "the flusher lease was taken over by another flusher")
            }
            return FlusherLease(holder: lease.holder, expiresAt: Date(millis: tx.wallMillis + ttlMillis))
        }
    }

    /// Whether `lease` is still this flusher's (not taken over, not expired).
    public func holdsFlusherLease(_ lease: FlusherLease) async throws -> Bool {
        let now = wallClock.nowMillis()
        return try await database.read { db in
            try db.queryFirst("SELECT 1 FROM flusher_lease WHERE singleton = 1 AND holder = ? AND expires_at > ?",
                              .text(lease.holder), .integer(now)) { _ in true } ?? false
        }
    }

    /// Gives the lease up (if still held) and records the end of a flush.
    public func releaseFlusherLease(_ lease: FlusherLease) async throws {
        try await write { tx in
            try tx.db.run("DELETE FROM flusher_lease WHERE singleton = 1 AND holder = ?", .text(lease.holder))
            try tx.db.run("UPDATE replica SET last_flush_at = ? WHERE singleton = 1", .integer(tx.wallMillis))
        }
    }

    /// Claims up to `limit` due pending ops, oldest first, for the holder of `lease`: each is
    /// marked in flight and its attempt counted, committed before anything is sent. An op is
    /// never claimed while an older op of its key is pending or in flight.
    public func claimDueOps(lease: FlusherLease, limit: Int) async throws -> [Op] {
        guard limit > 0 else { return [] }
        return try await write(onQueue: true) { tx in
            try tx.requireLease(lease)
            // The due ops in id order (the scan stops after `limit`), then one update marks them
            // (cheaper than an UPDATE … RETURNING, which buffers every row it returns).
            let due = try tx.db.query("""
                SELECT \(Op.columns) FROM ops o
                WHERE o.state = 'pending' AND coalesce(o.next_attempt_at, 0) <= ?1
                  AND NOT EXISTS (SELECT 1 FROM ops p
                                  WHERE p.collection_id = o.collection_id AND p.tweet_id = o.tweet_id
                                    AND p.id < o.id AND p.state IN ('pending', 'in_flight'))
                ORDER BY o.id LIMIT ?2
                """, .integer(tx.wallMillis), .integer(Int64(limit)), row: Op.init(row:))
            guard !due.isEmpty else { return [] }
            try tx.db.run("""
                UPDATE ops SET state = 'in_flight', attempts = attempts + 1, claimed_by = ?2
                WHERE id IN (SELECT value FROM json_each(?1))
                """, .text(WriteTransaction.jsonArray(due.map { String($0.id.rawValue) })), .text(lease.holder))
            let claimed = due.map { $0.claimed() }
            for op in claimed { tx.count(op.collection, from: .pending, to: .inFlight) }
            return claimed
        }
    }

    /// Commits the outcomes of in-flight ops in one transaction: op states, the keys' bases and
    /// views, and the log. Results for ops this lease does not hold in flight (taken over after
    /// the lease expired) are ignored: their replay reconciles. Returns how many were committed.
    @discardableResult
    public func complete(_ results: [OpResult], lease: FlusherLease) async throws -> Int {
        try await write(onQueue: true) { tx in
            try tx.complete(results, holder: lease.holder)
        }
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
    func requireLease(_ lease: FlusherLease) throws {
        let held = try db.queryFirst("SELECT 1 FROM flusher_lease WHERE singleton = 1 AND holder = ? AND expires_at > ?",
                                     .text(lease.holder), .integer(wallMillis)) { _ in true } ?? false
        guard held else { throw SyncError(code: .leaseNotHeld, message: "the flusher lease expired or was taken over") }
    }

    /// Commits `results` for the ops `holder` holds in flight (others are skipped; an op given
    /// twice counts once, its first result); returns how many were committed.
    ///
    /// Answered ops (applied, or already applied) are the flush's hot path: they are committed
    /// set-based, a few statements per batch instead of four per op.
    mutating func complete(_ results: [OpResult], holder: String) throws -> Int {
        var seen = Set<OpID>(minimumCapacity: results.count)
        var answered: [String] = []  // op ids, in the order given
        var already: [String] = []   // those whose intent the server already had
        var others: [OpResult] = []
        for result in results where seen.insert(result.op).inserted {
            switch result.outcome {
            case .applied:
                answered.append(String(result.op.rawValue))
            case .alreadyApplied:
                answered.append(String(result.op.rawValue))
                already.append(String(result.op.rawValue))
            default:
                others.append(result)
            }
        }
        var committed = answered.isEmpty ? 0 : try completeAnswered(answered, already: already, holder: holder)
        for result in others where try complete(result, holder: holder) { committed += 1 }
        return committed
    }

    /// An answered op's intent becomes its key's base. Its key's view does not change: it is the
    /// intent of the key's newest pending or in-flight op, which is this op's or that of a newer
    /// op queued behind it, and stays so. (Only a missing row, which no write leaves, is made.)
    private mutating func completeAnswered(_ answered: [String], already: [String], holder: String) throws -> Int {
        let ids = SQLiteValue.text(Self.jsonArray(answered))
        // Two stamps per answered op, consecutive: the op at index i of `answered` gets
        // first + 2i for its base and first + 2i + 1 for its log line.
        let first = try tick(count: 2 * answered.count)
        try db.run("""
            UPDATE entries SET base_present = o.kind = 'add', base_hlc = ?3 + 2 * j.key
            FROM json_each(?1) j JOIN ops o ON o.id = j.value
            WHERE o.state = 'in_flight' AND o.claimed_by = ?2
              AND entries.collection_id = o.collection_id AND entries.tweet_id = o.tweet_id
            """, ids, .text(holder), .integer(first.rawValue))
        let based = db.changes
        try db.run("""
            INSERT INTO log (hlc, replica_id, collection_id, tweet_id, event, op_id, local_hlc, detail, in_flight_change)
            SELECT ?3 + 2 * j.key + 1, ?4, o.collection_id, o.tweet_id,
                   CASE WHEN o.id NOT IN (SELECT value FROM json_each(?5)) THEN ?6 WHEN o.kind = 'remove' THEN ?7 ELSE ?8 END,
                   o.id, o.hlc, o.kind, -1
            FROM json_each(?1) j JOIN ops o ON o.id = j.value
            WHERE o.state = 'in_flight' AND o.claimed_by = ?2
            ORDER BY j.key
            """, ids, .text(holder), .integer(first.rawValue), .text(replicaID), .text(Self.jsonArray(already)),
            .text(LogEvent.Kind.applied.rawValue), .text(LogEvent.Kind.alreadyRemoved.rawValue), .text(LogEvent.Kind.alreadyPresent.rawValue))
        let held = db.changes
        guard held > 0 else { return 0 }
        noteLogLines(through: db.lastInsertRowID)
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
        // Each line above carries its op's leaving the in-flight count (0003): same ops, same filter.
        try db.run("DELETE FROM ops WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'in_flight' AND claimed_by = ?2",
                   ids, .text(holder))
        return held
    }

    /// A JSON array of already-encoded JSON values.
    static func jsonArray(_ values: [String]) -> String {
        "[" + values.joined(separator: ",") + "]"
    }

    /// Commits one op's transient or permanent failure (the answered outcomes go set-based).
    private mutating func complete(_ result: OpResult, holder: String) throws -> Bool {
        guard let op = try db.queryFirst("""
            SELECT \(Op.columns) FROM ops o WHERE id = ? AND state = 'in_flight' AND claimed_by = ?
            """, .integer(result.op.rawValue), .text(holder), row: Op.init(row:)) else { return false }
        let id = SQLiteValue.integer(op.id.rawValue)
        switch result.outcome {
        case .applied, .alreadyApplied:
            preconditionFailure("answered ops are committed by completeAnswered")
        case .failed(let reason):
            try db.run("UPDATE ops SET state = 'failed', next_attempt_at = NULL, last_error = ?, claimed_by = NULL WHERE id = ?",
                       .text(reason), id)
            count(op.collection, from: .inFlight, to: .failed)
            try log(.failed, op.collection, op.tweet, op: op.id, localHLC: op.hlc, detail: "\(op.kind.rawValue): \(reason)")
            try refreshView(op.collection, op.tweet)
        case .retry(let at, let error):
            try db.run("UPDATE ops SET state = 'pending', next_attempt_at = ?, last_error = ?, claimed_by = NULL WHERE id = ?",
                       .integer(at.millis), .text(error), id)
            count(op.collection, from: .inFlight, to: .pending)
        case .release(let error, let until):
            try db.run("""
                UPDATE ops SET state = 'pending', attempts = max(attempts - 1, 0), next_attempt_at = ?, last_error = ?, claimed_by = NULL
                WHERE id = ?
                """, .int(until?.millis), .text(error), id)
            count(op.collection, from: .inFlight, to: .pending)
        }
        return true
    }
}


/// This machine's host name, without any network lookup.
public func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Whether a process with this id exists on this host (signal 0 probes without signalling).
public func processExists(_ pid: Int32) -> Bool {
    kill(pid, 0) == 0 || errno == EPERM
}

extension Duration {
    var milliseconds: Int64 {
        let parts = components
        return parts.seconds * 1000 + parts.attoseconds / 1_000_000_000_000_000
    }
}

/// What the `x-rate-limit-*` headers said about one endpoint of one API base.
public struct RateLimitState: Sendable, Hashable {
    public let endpoint: String
    public let limit: Int?
    public let remaining: Int?
    public let resetAt: Date?
    /// Nothing is sent to the endpoint before this time.
    public let blockedUntil: Date?

    public init(endpoint: String, limit: Int?, remaining: Int?, resetAt: Date?, blockedUntil: Date?) {
        self.endpoint = endpoint
        self.limit = limit
        self.remaining = remaining
        self.resetAt = resetAt
        self.blockedUntil = blockedUntil
    }
}

extension SyncStore {
    /// Records an endpoint's rate-limit state, so that later flushes and processes respect it.
    public func recordRateLimit(_ state: RateLimitState, apiBase: String) async throws {
        try await write { tx in
            try tx.db.run("""
                INSERT OR REPLACE INTO rate_limits (api_base, endpoint, limit_total, remaining, reset_at, blocked_until, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, .text(apiBase), .text(state.endpoint), .int(state.limit.map(Int64.init)), .int(state.remaining.map(Int64.init)),
                .int(state.resetAt?.millis), .int(state.blockedUntil?.millis), .integer(tx.wallMillis))
        }
    }

    /// The recorded rate-limit state of every endpoint of `apiBase`.
    public func rateLimits(apiBase: String) async throws -> [RateLimitState] {
        try await database.read { db in
            try db.query("""
                SELECT endpoint, limit_total, remaining, reset_at, blocked_until FROM rate_limits WHERE api_base = ? ORDER BY endpoint
                """, .text(apiBase)) { row in
                RateLimitState(endpoint: row.string(0), limit: row.optionalInt64(1).map(Int.init), remaining: row.optionalInt64(2).map(Int.init),
                               resetAt: row.optionalInt64(3).map(Date.init(millis:)), blockedUntil: row.optionalInt64(4).map(Date.init(millis:)))
            }
        }
    }
}

extension SyncStore {
    /// Records that `apiBase` answered a request successfully: a later 404 from it can then mean
    /// a missing collection rather than a wrong base URL.
    public func recordAPISuccess(apiBase: String) async throws {
        try await write { tx in
            try tx.db.run("""
                INSERT INTO api_bases (url, first_success_at, last_success_at) VALUES (?1, ?2, ?2)
                ON CONFLICT (url) DO UPDATE SET last_success_at = ?2, first_success_at = coalesce(first_success_at, ?2)
                """, .text(apiBase), .integer(tx.wallMillis))
        }
    }

    /// Whether `apiBase` has ever answered a request successfully.
    public func hasAnsweredSuccessfully(apiBase: String) async throws -> Bool {
        try await database.read { db in
            try db.queryFirst("SELECT first_success_at IS NOT NULL FROM api_bases WHERE url = ?", .text(apiBase)) { $0.int(0) == 1 } ?? false
        }
    }

    /// The clock offset learned for `apiBase` from a clock-skew answer (zero when none).
    public func clockOffset(apiBase: String) async throws -> Duration {
        try await database.read { db in
            .milliseconds(try db.queryFirst("SELECT clock_offset_ms FROM api_bases WHERE url = ?", .text(apiBase)) { $0.int64(0) } ?? 0)
        }
    }

    /// Remembers the clock offset for `apiBase`, so that later processes sign with it.
    public func recordClockOffset(_ offset: Duration, apiBase: String) async throws {
        try await write { tx in
            try tx.db.run("""
                INSERT INTO api_bases (url, clock_offset_ms) VALUES (?1, ?2)
                ON CONFLICT (url) DO UPDATE SET clock_offset_ms = ?2
                """, .text(apiBase), .integer(offset.milliseconds))
        }
    }

    /// Pending ops (due or not) and the earliest time a not-yet-due one becomes due.
    public func pendingSummary() async throws -> (pending: Int, failed: Int, nextAttemptAt: Date?) {
        let now = wallClock.nowMillis()
        return try await database.read { db in
            let (pending, failed) = try db.queryFirst(
                "SELECT coalesce(sum(ops_pending + ops_in_flight), 0), coalesce(sum(ops_failed), 0) FROM collection_counts"
            ) { ($0.int(0), $0.int(1)) } ?? (0, 0)
            let next = try db.queryFirst(
                "SELECT min(next_attempt_at) FROM ops WHERE state = 'pending' AND next_attempt_at > ?",
                .integer(now)) { $0.optionalInt64(0) } ?? nil
            return (pending, failed, next.map(Date.init(millis:)))
        }
    }
}
