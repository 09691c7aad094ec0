import CSQLite
import Foundation

/// SQLite's `SQLITE_TRANSIENT`, which the C macro hides from Swift.
let sqliteTransient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

/// One SQLite connection with a cache of prepared statements.
///
/// Not thread-safe: a ``DatabaseQueue`` confines each connection to its own serial queue.
final class Connection {
    let handle: OpaquePointer
    private var statements: [String: Statement] = [:]

    /// Opens (creating if needed) the database at `path`; with `readOnly`, only an existing file,
    /// and nothing can be written through the connection.
    ///
    /// A new file is created with mode 0600 before SQLite sees it: SQLite would otherwise create
    /// it with the process's umask, and its `-wal` and `-shm` files copy the main file's mode.
    init(path: String, busyTimeoutMillis: Int32, readOnly: Bool = false) throws {
        if !readOnly { try Connection.createPrivateFile(at: path) }
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw SyncError(code: .database, message: "cannot open database \(path): \(message)\(SyncError.hint(rc))", sqliteCode: rc)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeoutMillis)
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement.handle) }
        sqlite3_close_v2(handle)
    }

    private static func createPrivateFile(at path: String) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: folder) {
            do {
                try FileManager.default.createDirectory(
                    atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw SyncError(code: .database, message: "cannot create the database folder \(folder): \(error.localizedDescription)")
            }
        }
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 {
            close(fd)
        } else if errno != EEXIST {
            let reason = String(cString: strerror(errno))
            throw SyncError(code: .database, message: "cannot create database \(path): \(reason)")
        }
    }

    /// A cached prepared statement for `sql`, reset and with its bindings cleared.
    func statement(_ sql: String) throws -> Statement {
        if let cached = statements[sql] {
            return cached
        }
        var raw: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard rc == SQLITE_OK, let raw else { throw error(rc, context: "prepare") }
        let statement = Statement(handle: raw, connection: self)
        statements[sql] = statement
        return statement
    }

    /// Runs one or more statements with no parameters (migrations, pragmas, BEGIN/COMMIT).
    func execute(_ sql: String) throws {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc, context: "execute") }
    }

    /// Runs one cached statement with `bindings` and discards any rows.
    func run(_ sql: String, _ bindings: SQLiteValue...) throws {
        try statement(sql).run(bindings)
    }

    /// Runs one cached statement and maps each row.
    func query<T>(_ sql: String, _ bindings: SQLiteValue..., row: (Statement) throws -> T) throws -> [T] {
        let statement = try self.statement(sql)
        defer { statement.reset() }
        try statement.bind(bindings)
        var rows: [T] = []
        while try statement.step() { rows.append(try row(statement)) }
        return rows
    }

    /// Runs one cached statement and hands each row to `body` (nothing is collected).
    func forEach(_ sql: String, _ bindings: [SQLiteValue], _ body: (Statement) throws -> Void) throws {
        let statement = try self.statement(sql)
        defer { statement.reset() }
        try statement.bind(bindings)
        while try statement.step() { try body(statement) }
    }

    /// Runs one cached statement and maps its first row, if any.
    func queryFirst<T>(_ sql: String, _ bindings: SQLiteValue..., row: (Statement) throws -> T) throws -> T? {
        let statement = try self.statement(sql)
        defer { statement.reset() }
        try statement.bind(bindings)
        return try statement.step() ? row(statement) : nil
    }

    var changes: Int { Int(sqlite3_changes(handle)) }
    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// A ``SyncError`` for result code `rc`, classified for callers.
    func error(_ rc: Int32, context: String) -> SyncError {
        let message = String(cString: sqlite3_errmsg(handle))
        return SyncError(sqliteResult: rc, message: "database \(context) failed: \(message)")
    }
}

extension SyncError {
    init(sqliteResult rc: Int32, message: String) {
        let code: Code
        switch rc & 0xFF {
        case SQLITE_BUSY, SQLITE_LOCKED: code = .databaseBusy
        case SQLITE_CORRUPT, SQLITE_NOTADB: code = .databaseCorrupt
        default: code = .database
        }
        self.init(code: code, message: message + SyncError.hint(rc), sqliteCode: rc)
    }

    /// What an operator should check for the result codes that come from the storage itself.
    static func hint(_ rc: Int32) -> String {
        switch rc & 0xFF {
        case SQLITE_FULL: " (the disk or its quota is full: free space; nothing committed was lost)"
        // SQLITE_IOERR_WRITE, _FSYNC, _TRUNCATE (3, 4, 6 << 8): the C macros are not imported.
        case SQLITE_IOERR where [3, 4, 6].contains(rc >> 8):
            " (writing failed: is the disk full, or the file size limited? nothing committed was lost)"
        case SQLITE_READONLY: " (the database or its folder is read-only)"
        case SQLITE_CANTOPEN: " (check that the file and its folder exist and are writable: SQLite needs to create its -wal and -shm files beside it)"
        case SQLITE_CORRUPT, SQLITE_NOTADB: " (the file is damaged or not a collection-sync database; it was left as it is)"
        default: ""
        }
    }
}

/// A value bound to a statement parameter. Only bound parameters reach SQL, never spliced text.
enum SQLiteValue {
    case null
    case integer(Int64)
    case text(String)

    static func int(_ value: Int64?) -> SQLiteValue { value.map(SQLiteValue.integer) ?? .null }
    static func string(_ value: String?) -> SQLiteValue { value.map(SQLiteValue.text) ?? .null }
}

/// A prepared statement owned by a ``Connection``'s cache.
final class Statement {
    let handle: OpaquePointer
    unowned let connection: Connection

    init(handle: OpaquePointer, connection: Connection) {
        self.handle = handle
        self.connection = connection
    }

    func bind(_ values: [SQLiteValue]) throws {
        for (offset, value) in values.enumerated() {
            try bind(value, at: Int32(offset + 1))
        }
    }

    func bind(_ value: SQLiteValue, at index: Int32) throws {
        let rc: Int32
        switch value {
        case .null: rc = sqlite3_bind_null(handle, index)
        case .integer(let v): rc = sqlite3_bind_int64(handle, index, v)
        case .text(let v): rc = sqlite3_bind_text(handle, index, v, -1, sqliteTransient)
        }
        guard rc == SQLITE_OK else { throw connection.error(rc, context: "bind") }
    }

    /// Steps once: true when a row is ready, false when done.
    func step() throws -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw connection.error(rc, context: "step")
        }
    }

    /// Runs the statement with `bindings`, discards any rows and resets it. Loops hold on to a
    /// statement and call this, sparing the cache lookup (a hash of the SQL text) per row.
    func run(_ bindings: [SQLiteValue]) throws {
        defer { reset() }
        try bind(bindings)
        while try step() {}
    }

    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(handle, column)) }
    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : int64(column) }
    func string(_ column: Int32) -> String {
        guard let text = sqlite3_column_text(handle, column) else { return "" }
        return String(cString: text)
    }
    func optionalString(_ column: Int32) -> String? { isNull(column) ? nil : string(column) }

    /// Whether the text of `column` is `text`, byte for byte (no string is made).
    func equals(_ column: Int32, _ text: String) -> Bool {
        guard let bytes = sqlite3_column_text(handle, column) else { return false }
        let count = Int(sqlite3_column_bytes(handle, column))
        var text = text
        return text.withUTF8 { utf8 in
            utf8.count == count && (count == 0 || memcmp(utf8.baseAddress!, bytes, count) == 0)
        }
    }
}
