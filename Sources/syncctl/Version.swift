import CollectionSync
import SyncctlContract

/// `syncctl --version [--json]`: the version, the SQLite library it runs on and the newest schema
/// it knows. Answered in `SyncCtl.main` before parsing (swift-argument-parser's own `--version`
/// prints only a string), and only at the root: `syncctl <command> --version` is not this.
enum VersionRequest {
    /// Whether the arguments (after the program's name) are `--version`, with at most `--json`.
    static func matches(_ arguments: [String]) -> Bool {
        arguments.contains("--version") && arguments.allSatisfy { $0 == "--version" || $0 == "--json" }
    }

    static func document() -> JSON {
        .object([("version", .string(BuildInfo.version)), ("sqlite", .string(BuildInfo.sqliteVersion)),
                 ("schema", .int(BuildInfo.newestSchemaVersion))])
    }

    static func text() -> String {
        """
        syncctl \(BuildInfo.version)
        SQLite \(BuildInfo.sqliteVersion)
        schema \(BuildInfo.newestSchemaVersion)
        """
    }
}
