import CollectionSyncSchema
import CollectionsAPI
import Foundation

/// What a read-only look at a database file found (``SyncStore/inspect(at:busyTimeout:)``).
public struct StoreInspection: Sendable, Hashable {
    /// What `PRAGMA quick_check` reported; empty when it found the file sound.
    public let integrityProblems: [String]
    /// The schema version the file records (`PRAGMA user_version`; 0 for a file with no schema).
    public let schemaVersion: Int
    /// The newest schema version this build knows: a file above it is refused by
    /// ``SyncStore/open(at:configuration:logger:)``, a file below it is migrated when opened.
    public let latestSchemaVersion: Int
    /// Who holds the flusher lease, expired or not; nil when nobody does, or when the schema is
    /// one this build does not know (then nothing but the version and integrity is read).
    public let leaseHolder: LeaseHolder?
    /// The ops in the outbox by state; nil when the schema is one this build does not know.
    public let ops: OpCounts?
    /// A collection the database knows (a server id), if any: something to ask the API about.
    public let knownCollection: CollectionID?

    /// Whether ``SyncStore/open(at:configuration:logger:)`` would refuse the file as too new.
    public var isSchemaTooNew: Bool { schemaVersion > latestSchemaVersion }
}

extension SyncStore {
    /// Reads a database file without changing it: its integrity (`PRAGMA quick_check`), schema
    /// version, flusher lease and op counts. Nothing is written and no lease is taken: the
    /// file is opened read-only, not created and not migrated. Returns nil when there is no
    /// file at `path`. (Like any reader of a WAL database, it may leave empty `-wal` and `-shm`
    /// files beside it when there were none.)
    ///
    /// - Throws: ``SyncError`` with ``SyncError/Code/databaseCorrupt`` for a file that is not a
    ///   database, ``SyncError/Code/databaseBusy`` when it stays locked past `busyTimeout`,
    ///   ``SyncError/Code/database`` when it cannot be read.
    public static func inspect(at path: String, busyTimeout: Duration = .seconds(5)) async throws -> StoreInspection? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let millis = Int32(min(max(busyTimeout.milliseconds, 0), Int64(Int32.max)))
        return try await withCheckedThrowingContinuation { continuation in
            // Reading a large file takes a while: off the concurrency pool.
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    let connection = try Connection(path: path, busyTimeoutMillis: millis, readOnly: true)
                    return try inspect(connection)
                })
            }
        }
    }

    private static func inspect(_ db: Connection) throws -> StoreInspection {
        try db.execute("BEGIN")  // one snapshot for every read below
        defer { try? db.execute("ROLLBACK") }
        let latest = schemaMigrations.last?.version ?? 0
        let version = try db.queryFirst("PRAGMA user_version", row: { $0.int(0) }) ?? 0
        // At most 20 findings: enough to say what is wrong.
        let findings = try db.query("PRAGMA quick_check(20)", row: { $0.string(0) })
        let problems = findings == ["ok"] ? [] : findings
        guard (1...latest).contains(version), problems.isEmpty else {
            return StoreInspection(integrityProblems: problems, schemaVersion: version, latestSchemaVersion: latest,
                                   leaseHolder: nil, ops: nil, knownCollection: nil)
        }
        let holder = try db.queryFirst("SELECT host, pid, acquired_at, expires_at FROM flusher_lease WHERE singleton = 1") {
            LeaseHolder(host: $0.string(0), pid: Int32(truncatingIfNeeded: $0.int64(1)),
                        acquiredAt: Date(millis: $0.int64(2)), expiresAt: Date(millis: $0.int64(3)))
        }
        // The counters of `status` (0004) when the schema has them; a file waiting for its
        // migration is counted from its rows.
        let countsSQL = version >= 4
            ? "SELECT coalesce(sum(ops_pending), 0), coalesce(sum(ops_in_flight), 0), coalesce(sum(ops_failed), 0) FROM collection_counts"
            : "SELECT coalesce(sum(state = 'pending'), 0), coalesce(sum(state = 'in_flight'), 0), coalesce(sum(state = 'failed'), 0) FROM ops"
        let ops = try db.queryFirst(countsSQL) { OpCounts(pending: $0.int(0), inFlight: $0.int(1), failed: $0.int(2)) }
        let collection = try db.queryFirst("SELECT id FROM collections WHERE id LIKE 'custom-%' ORDER BY id LIMIT 1") { $0.string(0) }
        return StoreInspection(integrityProblems: [], schemaVersion: version, latestSchemaVersion: latest, leaseHolder: holder,
                               ops: ops ?? OpCounts(), knownCollection: collection.flatMap { try? CollectionID(validating: $0) })
    }
}
