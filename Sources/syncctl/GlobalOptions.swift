import ArgumentParser
import CollectionSync
import Foundation

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The database file (default: $SYNCCTL_DB, else $XDG_DATA_HOME/syncctl/sync.sqlite).", valueName: "path"))
    var db: String?

    @Flag(name: .long, help: "Print one JSON document on stdout; messages go to stderr.")
    var json = false

    /// The database path: flag, then environment, then the XDG default. Empty values count as absent.
    func databasePath(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        if let db {
            guard !db.isEmpty else { throw Failure.usage("--db needs a path") }
            return db
        }
        if let path = environment["SYNCCTL_DB"], !path.isEmpty { return path }
        var dataHome = environment["XDG_DATA_HOME"] ?? ""
        // XDG: a relative path is invalid and must be ignored.
        if !dataHome.hasPrefix("/") {
            guard let home = environment["HOME"], home.hasPrefix("/") else {
                throw Failure(exitCode: Exit.config, message: "no database path: set --db, SYNCCTL_DB, XDG_DATA_HOME or HOME")
            }
            dataHome = home + "/.local/share"
        }
        return dataHome + "/syncctl/sync.sqlite"
    }

    /// Opens the store (creating it on first use).
    func openStore() async throws -> SyncStore {
        try await SyncStore.open(at: try databasePath())
    }

    /// Prints `document` (with `--json`) or `text` on stdout.
    func emit(_ document: JSON, text: @autoclosure () -> String) {
        if json {
            print(document.text)
        } else {
            let body = text()
            if !body.isEmpty { print(body) }
        }
    }
}
