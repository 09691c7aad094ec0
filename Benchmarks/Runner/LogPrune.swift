import ArgumentParser
import CSQLite
@_spi(Worker) import CollectionSync
import Foundation

/// B12: the LWW log after `count` flushed ops, before and after a prune: rows and file size.
///
/// The ops are queued through the store (`remove`, one call per collection) and flushed through
/// its own claim and commit (`claimDueOps`, `complete` with every op applied: rounds of 400, a
/// commit per 100, as `flush` does), so the log holds what a real flush leaves, a `local_write`
/// and an `applied` line per op; only the HTTP requests are left out. Each measurement is taken
/// with the WAL checkpointed into the file and emptied; then the store is opened with a wall
/// clock 31 days ahead and pruned with the default age, 30 days. The baseline prunes a copy of
/// the same file through the C API.
struct LogPrune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log-prune",
        abstract: "B12: log rows and file size after COUNT flushed ops, before and after a prune; prints JSON.")

    @Option var count: Int
    @Option var collections = 200
    @Option var db: String

    func validate() throws {
        guard count > 0, collections > 0 else { throw ValidationError("--count and --collections must be positive") }
    }

    func run() async throws {
        let clock = ContinuousClock()
        let perCollection = (count + collections - 1) / collections
        let flushTime = try await clock.measure {
            let store = try await SyncStore.open(at: db)
            var left = count
            for c in 0..<collections where left > 0 {
                let tweets = try tweetIDs(collection: c, count: min(perCollection, left)).map { try TweetID(validating: $0) }
                try await store.remove(tweets, from: try CollectionID(validating: collectionID(c)))
                left -= tweets.count
            }
            guard case .acquired(let lease) = try await store.acquireFlusherLease() else { throw ValidationError("the lease is held") }
            while case let claimed = try await store.claimDueOps(lease: lease, limit: 400), !claimed.isEmpty {
                for batch in stride(from: 0, to: claimed.count, by: 100) {
                    let results = claimed[batch..<min(batch + 100, claimed.count)].map { OpResult(op: $0, outcome: .applied) }
                    try await store.complete(results, lease: lease)
                }
            }
            try await store.releaseFlusherLease(lease)
            let ops = try await store.status().ops
            guard ops.pending + ops.inFlight + ops.failed == 0 else { throw ValidationError("ops left in the outbox: \(ops)") }
        }
        let before = try measure(db)
        // The baseline's copy: the same file, pruned through the C API below.
        let rawCopy = db + ".raw"
        try? FileManager.default.removeItem(atPath: rawCopy)
        try FileManager.default.copyItem(atPath: db, toPath: rawCopy)

        var configuration = SyncStore.Configuration()
        let month: Int64 = 31 * 86_400_000
        configuration.wallClock = WallClock { WallClock.system.nowMillis() + month }
        var pruned = 0
        var walBytes = 0
        let pruneTime = try await clock.measure {
            let store = try await SyncStore.open(at: db, configuration: configuration)
            pruned = try await store.prune(olderThan: .seconds(30 * 86_400))
            // What a long-running process (watch) keeps on disk beside the file until it closes.
            walBytes = (try? FileManager.default.attributesOfItem(atPath: db + "-wal")[.size] as? Int) ?? 0
        }
        let after = try measure(db)
        // The same deletion through the C API: one DELETE by the same cutoff (the same trigger
        // fires), then incremental_vacuum; opened and closed as the store was.
        let cutoff = (WallClock.system.nowMillis() + month - 30 * 86_400_000) << 16
        let rawTime = try clock.measure {
            let raw = try RawReader(path: rawCopy, writable: true)
            try raw.execute("BEGIN IMMEDIATE; DELETE FROM log WHERE hlc < \(cutoff); COMMIT; PRAGMA incremental_vacuum;")
        }
        let rawAfter = try measure(rawCopy)
        try? FileManager.default.removeItem(atPath: rawCopy)
        try report([
            "ops": count, "seed_seconds": seconds(flushTime), "pruned": pruned, "prune_seconds": seconds(pruneTime),
            "rows_before": before.rows, "rows_after": after.rows, "bytes_before": before.bytes, "bytes_after": after.bytes,
            "auto_vacuum": after.autoVacuum, "wal_bytes_open_after_prune": walBytes,
            "raw_prune_seconds": seconds(rawTime), "raw_rows_after": rawAfter.rows, "raw_bytes_after": rawAfter.bytes,
        ])
    }

    /// The log's rows and the database file's size, with every commit checkpointed into it and
    /// the WAL emptied (the store's connection may close a moment after its last use: its queue
    /// lets go of it once the last write's block returns).
    private func measure(_ db: String) throws -> (rows: Int, bytes: Int, autoVacuum: Int) {
        let raw = try RawReader(path: db, writable: true)
        try raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        let files = [db, db + "-wal"].compactMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int }
        return (try raw.integer("SELECT count(*) FROM log"), files.reduce(0, +), try raw.integer("PRAGMA auto_vacuum"))
    }
}

/// A connection through the C API: read-only for one figure at a time, or writable (WAL,
/// `synchronous = NORMAL`, as the store) for B12's baseline.
final class RawReader {
    private let db: OpaquePointer

    init(path: String, writable: Bool = false) throws {
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY, nil) == SQLITE_OK, let handle else {
            throw RawError("cannot open \(path)")
        }
        db = handle
        if writable { try execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;") }
    }

    func execute(_ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
            throw RawError("\(sql.prefix(40)): \(String(cString: sqlite3_errmsg(db)))")
        }
    }

    deinit { sqlite3_close_v2(db) }

    func integer(_ sql: String) throws -> Int {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw RawError("\(sql): \(String(cString: sqlite3_errmsg(db)))")
        }
        defer { sqlite3_finalize(statement) }
        guard sqlite3_step(statement) == SQLITE_ROW else { throw RawError("\(sql): \(String(cString: sqlite3_errmsg(db)))") }
        return Int(sqlite3_column_int64(statement, 0))
    }
}
