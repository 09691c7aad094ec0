import CSQLite
import CollectionSyncSchema
import Foundation

/// The baseline: the rows our store writes, written straight through the SQLite C API with the
/// same schema (the embedded migrations), the same PRAGMAs (WAL, `synchronous = NORMAL`,
/// foreign keys) and so the same indexes. Prepared statements are reused. Optionally it keeps the
/// per-collection counters as our store does; B3's floor writes a flush's rows set-based.
final class RawStore {
    private let db: OpaquePointer
    private var statements: [OpaquePointer] = []
    private let begin, commit, insertOp, upsertEntry, insertLog, upsertPulled, claimOps, deleteOps, applyEntries, logApplied, count: OpaquePointer
    private var hlc: Int64 = 0
    private let counters: Bool
    /// Ops queued per collection by the open transaction, for its counters.
    private var queued: [String: Int64] = [:]

    /// - Parameter counters: also keep the per-collection counters the way our store does (0002,
    ///   0004: one update of the collection's counters row per transaction) for queued ops;
    ///   without them the baseline writes only the rows the semantics require (op, view, log line).
    init(path: String, counters: Bool = true) throws {
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK,
              let handle else { throw RawError("cannot open \(path)") }
        db = handle
        for sql in ["PRAGMA foreign_keys = ON", "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"] {
            try Self.exec(handle, sql)
        }
        try Self.exec(handle, "BEGIN")
        for migration in schemaMigrations { try Self.exec(handle, migration.sql) }
        try Self.exec(handle, "INSERT OR IGNORE INTO replica (singleton, replica_id, hlc, created_at) VALUES (1, 'baseline', 0, 0)")
        try Self.exec(handle, "COMMIT")
        self.counters = counters
        func prepare(_ sql: String) throws -> OpaquePointer {
            var statement: OpaquePointer?
            guard sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK,
                  let statement else { throw RawError("prepare: \(String(cString: sqlite3_errmsg(handle)))") }
            return statement
        }
        begin = try prepare("BEGIN IMMEDIATE")
        commit = try prepare("COMMIT")
        insertOp = try prepare("""
            INSERT INTO ops (collection_id, tweet_id, kind, state, hlc, created_at) VALUES (?1, ?2, 'remove', 'pending', ?3, ?4)
            """)
        upsertEntry = try prepare("""
            INSERT INTO entries (collection_id, tweet_id, present) VALUES (?1, ?2, 0)
            ON CONFLICT (collection_id, tweet_id) DO UPDATE SET present = excluded.present
            """)
        insertLog = try prepare("""
            INSERT INTO log (hlc, replica_id, collection_id, tweet_id, event, op_id, detail)
            VALUES (?1, 'baseline', ?2, ?3, 'local_write', ?4, 'remove')
            """)
        upsertPulled = try prepare("""
            INSERT INTO entries (collection_id, tweet_id, present, sort_index, feature_context, base_present, base_hlc)
            VALUES (?1, ?2, 1, ?3, NULL, 1, ?4)
            ON CONFLICT (collection_id, tweet_id) DO UPDATE SET present = 1, sort_index = excluded.sort_index,
                base_present = 1, base_hlc = excluded.base_hlc
            """)
        // B3's floor, set-based: one statement per claimed round or answered batch, ids in JSON.
        claimOps = try prepare("""
            UPDATE ops SET state = 'in_flight', attempts = attempts + 1, claimed_by = 'baseline'
            WHERE id IN (SELECT value FROM json_each(?1))
            """)
        deleteOps = try prepare("DELETE FROM ops WHERE id IN (SELECT value FROM json_each(?1))")
        applyEntries = try prepare("""
            INSERT INTO entries (collection_id, tweet_id, present, base_present, base_hlc)
            SELECT ?1, json_extract(j.value, '$[1]'), 0, 0, ?3 + 2 * j.key FROM json_each(?2) j WHERE true
            ON CONFLICT (collection_id, tweet_id) DO UPDATE SET base_present = 0, base_hlc = excluded.base_hlc
            """)
        logApplied = try prepare("""
            INSERT INTO log (hlc, replica_id, collection_id, tweet_id, event, op_id, detail)
            SELECT ?3 + 2 * j.key + 1, 'baseline', ?1, json_extract(j.value, '$[1]'), 'applied', json_extract(j.value, '$[0]'), 'remove'
            FROM json_each(?2) j
            """)
        // The counters' changes of a transaction, once per collection, as our store writes them.
        count = try prepare("UPDATE collections SET ops_pending = ops_pending + ?2 WHERE id = ?1")
        statements = [count, begin, commit, insertOp, upsertEntry, insertLog, upsertPulled, claimOps, deleteOps, applyEntries, logApplied]
    }

    deinit {
        statements.forEach { sqlite3_finalize($0) }
        sqlite3_close_v2(db)
    }

    func ensureCollection(_ id: String) throws {
        try Self.exec(db, "INSERT OR IGNORE INTO collections (id, created_at) VALUES ('\(id)', 0)")
    }

    func transaction(_ body: () throws -> Void) throws {
        try step(begin)
        try body()
        for (collection, ops) in queued {
            bindText(count, 1, collection)
            sqlite3_bind_int64(count, 2, ops)
            try step(count)
        }
        queued = [:]
        try step(commit)
    }

    /// One queued remove: the op, the local view, the log line (what our store writes).
    func queueRemove(_ collection: String, _ tweet: String) throws {
        hlc += 1
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        bind(insertOp, collection, tweet, hlc, now)
        try step(insertOp)
        let op = sqlite3_last_insert_rowid(db)
        bind(upsertEntry, collection, tweet)
        try step(upsertEntry)
        try appendLog(op, collection, tweet)
    }

    /// B3's floor: what a flush must write, set-based: mark a claimed round in flight, then per
    /// answered batch set the entries' bases, append the log lines and delete the ops.
    func claim(_ ops: ArraySlice<(Int64, String)>) throws {
        bindText(claimOps, 1, "[" + ops.map { String($0.0) }.joined(separator: ",") + "]")
        try step(claimOps)
    }

    func applied(_ ops: ArraySlice<(Int64, String)>, _ collection: String) throws {
        let json = "[" + ops.map { "[\($0.0),\"\($0.1)\"]" }.joined(separator: ",") + "]"
        let first = hlc + 1
        hlc += Int64(2 * ops.count)
        for statement in [applyEntries, logApplied] {
            bindText(statement, 1, collection)
            bindText(statement, 2, json)
            sqlite3_bind_int64(statement, 3, first)
            try step(statement)
        }
        bindText(deleteOps, 1, "[" + ops.map { String($0.0) }.joined(separator: ",") + "]")
        try step(deleteOps)
    }

    /// The op's log line, stamped with the next clock value.
    private func appendLog(_ op: Int64, _ collection: String, _ tweet: String) throws {
        hlc += 1
        sqlite3_bind_int64(insertLog, 1, hlc)
        bindText(insertLog, 2, collection)
        bindText(insertLog, 3, tweet)
        sqlite3_bind_int64(insertLog, 4, op)
        if counters { queued[collection, default: 0] += 1 }
        try step(insertLog)
    }

    /// One entry of a pulled page, upserted as present with its sort index and base.
    func upsertPulledEntry(_ collection: String, _ tweet: String, sortIndex: String) throws {
        hlc += 1
        bindText(upsertPulled, 1, collection)
        bindText(upsertPulled, 2, tweet)
        bindText(upsertPulled, 3, sortIndex)
        sqlite3_bind_int64(upsertPulled, 4, hlc)
        try step(upsertPulled)
    }

    /// The rows `table` holds (a benchmark checks that its run did all its work).
    func rows(_ table: String) throws -> Int {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, "SELECT count(*) FROM \(table)", -1, &statement, nil) == SQLITE_OK, let statement else {
            throw RawError("count \(table): \(String(cString: sqlite3_errmsg(db)))")
        }
        defer { sqlite3_finalize(statement) }
        guard sqlite3_step(statement) == SQLITE_ROW else { throw RawError("count \(table): \(String(cString: sqlite3_errmsg(db)))") }
        return Int(sqlite3_column_int64(statement, 0))
    }

    private func bind(_ statement: OpaquePointer, _ collection: String, _ tweet: String, _ numbers: Int64...) {
        bindText(statement, 1, collection)
        bindText(statement, 2, tweet)
        for (offset, number) in numbers.enumerated() { sqlite3_bind_int64(statement, Int32(3 + offset), number) }
    }

    private func bindText(_ statement: OpaquePointer, _ index: Int32, _ text: String) {
        sqlite3_bind_text(statement, index, text, -1, unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self))
    }

    private func step(_ statement: OpaquePointer) throws {
        defer { sqlite3_reset(statement) }
        guard sqlite3_step(statement) == SQLITE_DONE else {
            throw RawError("step: \(String(cString: sqlite3_errmsg(db)))")
        }
    }

    private static func exec(_ db: OpaquePointer, _ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
            throw RawError("\(sql.prefix(40)): \(String(cString: sqlite3_errmsg(db)))")
        }
    }
}

struct RawError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
