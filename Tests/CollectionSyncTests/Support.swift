import CSQLite
import CollectionSync
import Foundation
import Synchronization

/// A temporary folder removed when the value is released.
final class TemporaryFolder: Sendable {
    let url: URL

    init() {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("collection-sync-tests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

/// A wall clock the test sets by hand.
final class ManualWallClock: Sendable {
    private let millis: Mutex<Int64>

    init(_ millis: Int64 = 1_800_000_000_000) { self.millis = Mutex(millis) }

    var now: Int64 { millis.withLock { $0 } }
    func set(_ value: Int64) { millis.withLock { $0 = value } }
    func advance(by delta: Int64) { millis.withLock { $0 += delta } }

    var wallClock: WallClock { WallClock { [self] in now } }
}

/// Opens a store in `folder` with a manual clock.
func openStore(_ folder: TemporaryFolder, clock: ManualWallClock = ManualWallClock(), name: String = "sync.sqlite") async throws -> SyncStore {
    var configuration = SyncStore.Configuration()
    configuration.wallClock = clock.wallClock
    return try await SyncStore.open(at: folder.path(name), configuration: configuration)
}

func tweet(_ value: UInt64) -> TweetID { TweetID(value)! }
func tweets(_ values: ClosedRange<UInt64>) -> [TweetID] { values.map(tweet) }
let c1 = try! CollectionID(validating: "custom-1")
let c2 = try! CollectionID(validating: "custom-2")

/// The rows of `sql` (all columns as text), through a read-only connection of its own.
func rows(_ path: String, _ sql: String) throws -> [[String]] {
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
func snapshot(_ path: String) throws -> String {
    var text = ""
    for table in try rows(path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").map({ $0[0] }) {
        text += "# \(table)\n"
        // Table names come from the database's own catalogue, not from input.
        for row in try rows(path, "SELECT * FROM \"\(table)\" ORDER BY 1") { text += row.joined(separator: "|") + "\n" }
    }
    return text
}

struct SnapshotError: Error { let message: String }
