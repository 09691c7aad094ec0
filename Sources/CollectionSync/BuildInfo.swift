import CSQLite
import CollectionSyncSchema

/// What this build of collection-sync is: its version, the SQLite library it runs on and the
/// newest database schema it can open. `syncctl --version` prints these; a bug report should too.
public enum BuildInfo {
    /// The package's version, the one place it is written.
    public static let version = "0.1.0"

    /// The version of the SQLite library linked at run time (`sqlite3_libversion()`), which may
    /// differ from the headers the build saw.
    public static var sqliteVersion: String { String(cString: sqlite3_libversion()) }

    /// The newest schema version this build migrates to; a database with a newer one is refused.
    public static var newestSchemaVersion: Int { schemaMigrations.last?.version ?? 0 }
}
