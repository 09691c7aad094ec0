/// An error from the sync engine: a stable ``code`` to branch on, a message for people, and for
/// database failures SQLite's extended result code.
///
/// Branch on ``code`` (or ``isRetryable``), never on ``message``.
public struct SyncError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as a stable value to switch over with `==`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case invalidInput = "invalid input"
            case database = "database error"
            case databaseBusy = "database busy"
            case databaseCorrupt = "database corrupt"
            case schemaTooNew = "schema too new"
            case opNotFound = "op not found"
            case opInFlight = "op in flight"
            case leaseNotHeld = "lease not held"
        }
        private let base: Base

        /// A collection id, tweet id, op id or argument was malformed; nothing was written.
        public static let invalidInput = Code(base: .invalidInput)
        /// SQLite failed (I/O, disk full, read-only file, ...). See ``SyncError/sqliteCode``.
        public static let database = Code(base: .database)
        /// The database stayed locked by another connection past the busy timeout.
        public static let databaseBusy = Code(base: .databaseBusy)
        /// The file is not a database or is damaged.
        public static let databaseCorrupt = Code(base: .databaseCorrupt)
        /// The database was written by a newer version of this engine and was left untouched.
        public static let schemaTooNew = Code(base: .schemaTooNew)
        /// No op has the given id (it may have been applied or discarded already).
        public static let opNotFound = Code(base: .opNotFound)
        /// The op is in flight; it cannot be changed until its answer is in.
        public static let opInFlight = Code(base: .opInFlight)
        /// The caller does not hold the flusher lease (it expired and was taken over).
        public static let leaseNotHeld = Code(base: .leaseNotHeld)

        public var description: String { base.rawValue }
    }

    /// What went wrong.
    public let code: Code
    /// A sentence for people. Never contains credentials or SQL arguments.
    public let message: String
    /// SQLite's extended result code when SQLite reported the failure.
    public let sqliteCode: Int32?

    public init(code: Code, message: String, sqliteCode: Int32? = nil) {
        self.code = code
        self.message = message
        self.sqliteCode = sqliteCode
    }

    /// Whether the same call may succeed if tried again later (a lock held by another process).
    public var isRetryable: Bool { code == .databaseBusy }

    public var description: String {
        if let sqliteCode { return "\(message) (\(code), SQLite code \(sqliteCode))" }
        return message
    }

    static func invalid(_ message: String) -> SyncError { SyncError(code: .invalidInput, message: message) }
}
