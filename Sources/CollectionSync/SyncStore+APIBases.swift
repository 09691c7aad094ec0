import CollectionsAPI
import Foundation

/// What the `x-rate-limit-*` headers said about one endpoint of one API base, on the local clock.
@_spi(Worker) public struct RateLimitState: Sendable, Hashable {
    public let endpoint: Endpoint
    public let limit: Int?
    public let remaining: Int?
    /// When the window resets, converted to the local clock.
    public let resetAt: Date?
    /// Nothing is sent to the endpoint before this time.
    public let blockedUntil: Date?

    public init(endpoint: Endpoint, limit: Int?, remaining: Int?, resetAt: Date?, blockedUntil: Date?) {
        self.endpoint = endpoint
        self.limit = limit
        self.remaining = remaining
        self.resetAt = resetAt
        self.blockedUntil = blockedUntil
    }
}

/// What a flush reads before each pass: whether its endpoints wait for a rate-limit reset, and
/// whether the API base has ever answered (the 404 rule).
struct FlushGate: Sendable, Hashable {
    /// The latest time (wall ms) before which one of the flush's endpoints takes no request.
    var blockedUntil: Int64?
    var answeredBefore: Bool
}

extension SyncStore {
    /// Records an endpoint's rate-limit state, so that later flushes and processes respect it.
    @_spi(Worker) public func recordRateLimit(_ state: RateLimitState, apiBase: String) async throws {
        try await write { tx in try tx.record(state, apiBase: apiBase) }
    }

    /// The recorded rate-limit state of every endpoint of `apiBase`.
    @_spi(Worker) public func rateLimits(apiBase: String) async throws -> [RateLimitState] {
        try await database.read { db in
            try db.query("""
                SELECT endpoint, limit_total, remaining, reset_at, blocked_until FROM rate_limits WHERE api_base = ? ORDER BY endpoint
                """, .text(apiBase)) { row -> RateLimitState? in
                // A row for an endpoint this build does not know (a newer build's) is not ours to obey.
                guard let endpoint = Endpoint(rawValue: row.string(0)) else { return nil }
                return RateLimitState(endpoint: endpoint, limit: row.optionalInt64(1).map(Int.init), remaining: row.optionalInt64(2).map(Int.init),
                                      resetAt: row.optionalInt64(3).map(Date.init(millis:)), blockedUntil: row.optionalInt64(4).map(Date.init(millis:)))
            }.compactMap { $0 }
        }
    }

    /// Records that `apiBase` answered a request successfully: a later 404 from it can then mean
    /// a missing collection rather than a wrong base URL.
    @_spi(Worker) public func recordAPISuccess(apiBase: String) async throws {
        try await write { tx in try tx.recordAPISuccess(apiBase: apiBase) }
    }

    /// Whether `apiBase` has ever answered a request successfully.
    @_spi(Worker) public func hasAnsweredSuccessfully(apiBase: String) async throws -> Bool {
        try await database.read { db in try db.hasAnsweredSuccessfully(apiBase: apiBase) }
    }

    /// The clock offset learned for `apiBase` from a clock-skew answer (zero when none).
    @_spi(Worker) public func clockOffset(apiBase: String) async throws -> Duration {
        try await database.read { db in
            .milliseconds(try db.queryFirst("SELECT clock_offset_ms FROM api_bases WHERE url = ?", .text(apiBase)) { $0.int64(0) } ?? 0)
        }
    }

    /// Remembers the clock offset for `apiBase`, so that later processes sign with it.
    @_spi(Worker) public func recordClockOffset(_ offset: Duration, apiBase: String) async throws {
        try await write { tx in try tx.record(clockOffset: offset, apiBase: apiBase) }
    }

    /// One read before a flush's pass: the rate-limit wait of `endpoints` and the 404 rule's fact.
    func flushGate(apiBase: String, endpoints: [Endpoint]) async throws -> FlushGate {
        let now = wallClock.nowMillis()
        let names = WriteTransaction.jsonArray(endpoints.map { "\"\($0.rawValue)\"" })
        return try await database.read { db in
            let blocked = try db.queryFirst("""
                SELECT max(blocked_until) FROM rate_limits
                WHERE api_base = ? AND endpoint IN (SELECT value FROM json_each(?)) AND blocked_until > ?
                """, .text(apiBase), .text(names), .integer(now)) { $0.optionalInt64(0) } ?? nil
            return FlushGate(blockedUntil: blocked, answeredBefore: try db.hasAnsweredSuccessfully(apiBase: apiBase))
        }
    }
}

extension Connection {
    func hasAnsweredSuccessfully(apiBase: String) throws -> Bool {
        try queryFirst("SELECT first_success_at IS NOT NULL FROM api_bases WHERE url = ?", .text(apiBase)) { $0.int(0) == 1 } ?? false
    }
}

extension WriteTransaction {
    func record(_ state: RateLimitState, apiBase: String) throws {
        try db.run("""
            INSERT OR REPLACE INTO rate_limits (api_base, endpoint, limit_total, remaining, reset_at, blocked_until, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """, .text(apiBase), .text(state.endpoint.rawValue), .int(state.limit.map(Int64.init)), .int(state.remaining.map(Int64.init)),
            .int(state.resetAt?.millis), .int(state.blockedUntil?.millis), .integer(wallMillis))
    }

    func recordAPISuccess(apiBase: String) throws {
        try db.run("""
            INSERT INTO api_bases (url, first_success_at, last_success_at) VALUES (?1, ?2, ?2)
            ON CONFLICT (url) DO UPDATE SET last_success_at = ?2, first_success_at = coalesce(first_success_at, ?2)
            """, .text(apiBase), .integer(wallMillis))
    }

    func record(clockOffset offset: Duration, apiBase: String) throws {
        try db.run("""
            INSERT INTO api_bases (url, clock_offset_ms) VALUES (?1, ?2)
            ON CONFLICT (url) DO UPDATE SET clock_offset_ms = ?2
            """, .text(apiBase), .integer(offset.milliseconds))
    }
}
