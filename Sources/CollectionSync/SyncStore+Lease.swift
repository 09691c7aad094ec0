import CollectionsAPI
import Foundation

/// A flusher's hold on a database: one flusher per database at a time, across processes.
@_spi(Worker) public struct FlusherLease: Sendable, Hashable {
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
@_spi(Worker) public enum LeaseAcquisition: Sendable, Hashable {
    case acquired(FlusherLease)
    /// Another live flusher holds it.
    case heldBy(LeaseHolder)
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

/// This machine, as the lease names its holders.
enum LocalHost {
    /// The host name, without any network lookup.
    static func name() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether a process with this id exists on this host (signal 0 probes without signalling).
    static func processExists(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }
}

extension SyncStore {
    /// Takes the flusher lease for `ttl` unless another live flusher holds it. A holder on this
    /// host whose process is gone is taken over at once, any other when its lease expires; taking
    /// over puts the previous holder's in-flight ops back to pending.
    ///
    /// `host`, `pid` and `isAlive` name this flusher and probe others (defaults: this host, this
    /// process, a signal-0 probe); tests replace them.
    @_spi(Worker) public func acquireFlusherLease(
        ttl: Duration = .seconds(30),
        host: String? = nil,
        pid: Int32? = nil,
        isAlive: (@Sendable (Int32) -> Bool)? = nil
    ) async throws -> LeaseAcquisition {
        let ttlMillis = ttl.milliseconds
        let host = host ?? LocalHost.name()
        let pid = pid ?? getpid()
        let isAlive = isAlive ?? LocalHost.processExists
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
                let inFlight = try tx.db.query("SELECT collection_id, id FROM ops WHERE state = 'in_flight'") {
                    (CollectionID(trusted: $0.string(0)), OpID($0.int64(1)))
                }
                for (collection, ops) in inFlight.grouped(by: \.0) {
                    try tx.move(ops.map(\.1), of: collection, from: [.inFlight], to: .recovered)
                }
            }
            return .acquired(FlusherLease(holder: token, expiresAt: Date(millis: now + ttlMillis)))
        }
    }

    /// Extends a held lease by `ttl` from now; ``SyncError/Code/leaseNotHeld`` when it was taken
    /// over or has expired (another flusher may take an expired lease at any moment: its holder
    /// stops instead of racing it).
    @_spi(Worker) public func renewFlusherLease(_ lease: FlusherLease, ttl: Duration = .seconds(30)) async throws -> FlusherLease {
        let ttlMillis = ttl.milliseconds
        return try await write { tx in
            try tx.db.run("UPDATE flusher_lease SET expires_at = ?1 WHERE singleton = 1 AND holder = ?2 AND expires_at > ?3",
                          .integer(tx.wallMillis + ttlMillis), .text(lease.holder), .integer(tx.wallMillis))
            guard tx.db.changes == 1 else {
                throw SyncError(code: .leaseNotHeld, message: "the flusher lease was taken over by another flusher")
            }
            return FlusherLease(holder: lease.holder, expiresAt: Date(millis: tx.wallMillis + ttlMillis))
        }
    }

    /// Whether `lease` is still this flusher's (not taken over, not expired).
    @_spi(Worker) public func holdsFlusherLease(_ lease: FlusherLease) async throws -> Bool {
        let now = wallClock.nowMillis()
        return try await database.read { db in
            try db.queryFirst("SELECT 1 FROM flusher_lease WHERE singleton = 1 AND holder = ? AND expires_at > ?",
                              .text(lease.holder), .integer(now)) { _ in true } ?? false
        }
    }

    /// Gives the lease up (if still held) and records the end of a flush.
    @_spi(Worker) public func releaseFlusherLease(_ lease: FlusherLease) async throws {
        try await write { tx in
            try tx.db.run("DELETE FROM flusher_lease WHERE singleton = 1 AND holder = ?", .text(lease.holder))
            try tx.db.run("UPDATE replica SET last_flush_at = ? WHERE singleton = 1", .integer(tx.wallMillis))
        }
    }
}

extension WriteTransaction {
    func requireLease(_ lease: FlusherLease) throws {
        let held = try db.queryFirst("SELECT 1 FROM flusher_lease WHERE singleton = 1 AND holder = ? AND expires_at > ?",
                                     .text(lease.holder), .integer(wallMillis)) { _ in true } ?? false
        guard held else { throw SyncError(code: .leaseNotHeld, message: "the flusher lease expired or was taken over") }
    }
}

extension Duration {
    var milliseconds: Int64 {
        let parts = components
        return parts.seconds * 1000 + parts.attoseconds / 1_000_000_000_000_000
    }

    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
