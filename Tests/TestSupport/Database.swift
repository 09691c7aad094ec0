import CSQLite
import Foundation

/// A temporary folder removed when the value is released.
public final class TemporaryFolder: Sendable {
    public let url: URL

    public init() {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("collection-sync-tests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

/// The rows of `sql` (all columns as text), through a read-only connection of its own.
public func rows(_ path: String, _ sql: String) throws -> [[String]] {
    var db: OpaquePointer?
    guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK, let db else {
        throw SnapshotError(message: "cannot open \(path)")
    }
    defer { sqlite3_close_v2(db) }
    var statement: OpaquePointer?
    guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
        throw SnapshotError(message: String(cString: sqlite3_errmsg(db)))
    }
    defer { sqlite3_finalize(statement) }
    var result: [[String]] = []
    while sqlite3_step(statement) == SQLITE_ROW {
        result.append((0..<sqlite3_column_count(statement)).map { column in
            sqlite3_column_text(statement, column).map { String(cString: $0) } ?? "NULL"
        })
    }
    return result
}

/// Every row of every table, as text, for "nothing changed" assertions.
public func snapshot(_ path: String) throws -> String {
    var text = ""
    for table in try rows(path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").map({ $0[0] }) {
        text += "# \(table)\n"
        // Table names come from the database's own catalogue, not from input.
        for row in try rows(path, "SELECT * FROM \"\(table)\" ORDER BY 1") { text += row.joined(separator: "|") + "\n" }
    }
    return text
}

public struct SnapshotError: Error {
    public let message: String
    public init(message: String) { self.message = message }
}

public func pragma(_ path: String, _ name: String) throws -> String {
    var db: OpaquePointer?
    guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK, let db else { throw SnapshotError(message: "open") }
    defer { sqlite3_close_v2(db) }
    var statement: OpaquePointer?
    guard sqlite3_prepare_v2(db, "PRAGMA \(name)", -1, &statement, nil) == SQLITE_OK, let statement else { throw SnapshotError(message: "prepare") }
    defer { sqlite3_finalize(statement) }
    guard sqlite3_step(statement) == SQLITE_ROW else { throw SnapshotError(message: "step") }
    return String(cString: sqlite3_column_text(statement, 0))
}

public func execute(_ path: String, _ sql: String) throws {
    var db: OpaquePointer?
    guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK, let db else { throw SnapshotError(message: "open") }
    defer { sqlite3_close_v2(db) }
    guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { throw SnapshotError(message: String(cString: sqlite3_errmsg(db))) }
}
