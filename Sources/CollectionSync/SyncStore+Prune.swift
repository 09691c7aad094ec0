import CollectionsAPI

extension SyncStore {
    /// Deletes the LWW log's events logged more than `age` ago by the store's wall clock, and
    /// returns how many it deleted. Kept whatever their age: the events of an op still in the
    /// outbox (pending, in flight or failed), and `conflict` events unless `includingConflicts`.
    ///
    /// One write transaction. The log is never rewritten: lines are only deleted, and no later
    /// line is given the id or the stamp of a deleted one. A database file made by this version
    /// gives the freed pages back to the file system afterwards (incremental auto-vacuum); an
    /// older file keeps them for later lines (no full `VACUUM` is run).
    ///
    /// Cheap when little is old: the work is proportional to the lines older than the cutoff.
    ///
    /// - Parameters:
    ///   - age: 0 or more; `.zero` prunes everything logged before now.
    ///   - includingConflicts: prune old `conflict` events too (by default they are kept).
    /// - Throws: ``SyncError/Code/invalidInput`` for a negative `age` (nothing is deleted).
    @discardableResult
    public func prune(olderThan age: Duration, includingConflicts: Bool = false) async throws -> Int {
        guard age >= .zero else {
            throw SyncError.invalid("the age of the events to prune must be 0 or more, not \(age)")
        }
        let deleted = try await write(onQueue: true) { tx in
            try tx.pruneLog(before: LogCutoff.before(nowMillis: tx.wallMillis, age: age), includingConflicts: includingConflicts)
        }
        if deleted > 0 { try await reclaimFreePages() }
        logger.debug("pruned the log", metadata: ["log.deleted": "\(deleted)", "log.conflicts": "\(includingConflicts)"])
        return deleted
    }

    /// Gives the pages a prune freed back to the file system, when the file was made with
    /// incremental auto-vacuum (every file this version creates); on another file it does nothing.
    private func reclaimFreePages() async throws {
        try await database.write(onQueue: true) { db in
            // 2: INCREMENTAL.
            guard try db.queryFirst("PRAGMA auto_vacuum", row: { $0.int(0) }) == 2 else { return }
            try db.execute("PRAGMA incremental_vacuum")
        }
    }
}

/// The first stamp a prune keeps: the lines stamped before it are "older than the age".
enum LogCutoff {
    /// The first stamp of the millisecond `age` before `nowMillis` (the zero stamp, which keeps
    /// everything, when that is before 1970 or `age` is too large to count in milliseconds).
    static func before(nowMillis: Int64, age: Duration) -> HLC {
        let parts = age.components
        let (millis, overflow) = parts.seconds.multipliedReportingOverflow(by: 1000)
        guard !overflow else { return .zero }
        let ageMillis = millis.addingReportingOverflow(parts.attoseconds / 1_000_000_000_000_000)
        guard !ageMillis.overflow, ageMillis.partialValue <= nowMillis else { return .zero }
        return HLC(millis: nowMillis - ageMillis.partialValue)
    }
}

extension WriteTransaction {
    /// Deletes the log lines stamped before `cutoff`, except those of ops still in the outbox
    /// and, unless `includingConflicts`, `conflict` lines; returns how many it deleted.
    ///
    /// The trigger `log_keeps_the_clock` (0004) saves each deleted line's stamp and id in the
    /// replica row. The id the transaction's next line must take is read again afterwards
    /// (``logIDGap``, read when the transaction began): when the newest lines went, SQLite
    /// would give the next one the id of a deleted line.
    mutating func pruneLog(before cutoff: HLC, includingConflicts: Bool) throws -> Int {
        guard let boundary = try lastLogID(before: cutoff) else { return 0 }
        // `hlc < ?2` as well: the boundary relies on stamps rising with ids; the cutoff does not.
        try db.run("""
            DELETE FROM log
            WHERE id <= ?1 AND hlc < ?2 AND (?3 OR event <> 'conflict')
              AND (op_id IS NULL OR NOT EXISTS (SELECT 1 FROM ops WHERE ops.id = log.op_id))
            """, .integer(boundary), .integer(cutoff.rawValue), .integer(includingConflicts ? 1 : 0))
        let deleted = db.changes
        if deleted > 0 { try readLogIDGap() }
        return deleted
    }

    /// The id of the newest line stamped before `cutoff`, or nil when there is none. Lines are
    /// stamped by this replica's clock in id order (see ``init(db:replicaID:wallMillis:)``), so
    /// the stamps rise with the ids: a binary search over the ids, a few dozen lookups by
    /// primary key instead of a scan of the log or an index that every line would have to enter.
    private func lastLogID(before cutoff: HLC) throws -> Int64? {
        let ends = "SELECT min(id), max(id) FROM log"
        guard let (oldest, newest) = try db.queryFirst(ends, row: { ($0.optionalInt64(0), $0.optionalInt64(1)) }),
              let oldest, let newest else { return nil }
        let line = "SELECT id, hlc FROM log WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 1"
        func firstLine(from low: Int64, below high: Int64) throws -> (id: Int64, hlc: Int64)? {
            try db.queryFirst(line, .integer(low), .integer(high), row: { ($0.int64(0), $0.int64(1)) })
        }
        func stamp(of id: Int64) throws -> Int64 {
            try db.queryFirst("SELECT hlc FROM log WHERE id = ?", .integer(id), row: { $0.int64(0) }) ?? .max
        }
        guard try stamp(of: oldest) < cutoff.rawValue else { return nil }
        if try stamp(of: newest) < cutoff.rawValue { return newest }
        // `low`: a line stamped before the cutoff; no line at or above `high` is.
        var low = oldest
        var high = newest
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if let found = try firstLine(from: middle, below: high), found.hlc < cutoff.rawValue {
                low = found.id
            } else {
                // No line in [middle, high), or the first one there is not before the cutoff (and
                // so neither is any after it): none at or above `middle` is.
                high = middle
            }
        }
        return low
    }

    /// Reads again the id the transaction's next log line must take (0004: one past the floor
    /// when the newest lines were deleted), after this transaction deleted lines.
    private mutating func readLogIDGap() throws {
        let (newestLine, floor) = try db.queryFirst("""
            SELECT coalesce((SELECT max(id) FROM log), 0), log_id_floor FROM replica WHERE singleton = 1
            """, row: { ($0.int64(0), $0.int64(1)) }) ?? (0, 0)
        logIDGap = floor > newestLine ? floor + 1 : nil
    }
}
