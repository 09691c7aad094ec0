import CSQLite
import CollectionsAPI
import CollectionSyncSchema

/// Applies the embedded migrations in order, in one transaction, and records them.
struct Migrator {
    let migrations: [SchemaMigration]
    /// Stamps `schema_migrations.applied_at`.
    var wallClock: WallClock = .system

    var latestVersion: Int { migrations.last?.version ?? 0 }

    func prepare(_ connection: Connection, path: String) throws {
        try connection.execute("PRAGMA foreign_keys = ON")
        // Read the version before anything can write: a newer database is left untouched.
        try refuseNewer(try userVersion(connection), path: path)
        // A new file reclaims the pages a prune frees (SyncStore.prune runs incremental_vacuum).
        // SQLite fixes the mode when the file gets its first page, which switching to WAL writes:
        // so only an empty file takes it, first. An existing file keeps its mode (a VACUUM
        // would convert it, rewriting the whole file: never done implicitly).
        if try connection.queryFirst("PRAGMA page_count", row: { $0.int64(0) }) == 0 {
            try connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
        }
        let mode = try connection.queryFirst("PRAGMA journal_mode = WAL") { $0.string(0) }
        guard mode == "wal" else {
            throw SyncError(code: .database, message: "cannot switch \(path) to WAL mode (journal mode is \(mode ?? "unknown"))")
        }
        try connection.execute("PRAGMA synchronous = NORMAL")
        // A big write (a prune of a million lines, a bulk edit) grows the WAL to its size, and it
        // stays that size while a connection is open (a watch runs for weeks): once the WAL has
        // been checkpointed, SQLite truncates it back to this.
        try connection.execute("PRAGMA journal_size_limit = 67108864")
        guard try userVersion(connection) < latestVersion else { return }

        try connection.execute("BEGIN IMMEDIATE")
        do {
            // Another process may have migrated while we waited for the lock.
            let current = try userVersion(connection)
            try refuseNewer(current, path: path)
            try connection.execute("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    INTEGER PRIMARY KEY,
                    name       TEXT    NOT NULL,
                    applied_at INTEGER NOT NULL
                )
                """)
            for migration in migrations where migration.version > current {
                do {
                    try connection.execute(migration.sql)
                } catch let error as SyncError {
                    throw SyncError(code: error.code, message: "migration \(migration.name) failed: \(error.message)", sqliteCode: error.sqliteCode)
                }
                try connection.run(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    .integer(Int64(migration.version)), .text(migration.name), .integer(wallClock.nowMillis()))
            }
            // The version is our own constant, not input: PRAGMA takes no bound parameters.
            try connection.execute("PRAGMA user_version = \(latestVersion)")
            try connection.execute("COMMIT")
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    private func userVersion(_ connection: Connection) throws -> Int {
        try connection.queryFirst("PRAGMA user_version") { $0.int(0) } ?? 0
    }

    private func refuseNewer(_ version: Int, path: String) throws {
        guard version <= latestVersion else {
            throw SyncError(
                code: .schemaTooNew,
                message: "database \(path) has schema version \(version), newer than this build's \(latestVersion); it was left untouched (upgrade collection-sync to open it)")
        }
    }
}
