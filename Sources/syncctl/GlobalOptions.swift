import ArgumentParser
import CollectionSync
import Foundation
import Logging
import SyncctlContract

/// Options every command takes: output and logs.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON document on stdout; messages go to stderr.")
    var json = false

    @Option(name: .long, help: ArgumentHelp(
        "Log lines on stderr from this level up: trace, debug, info, notice, warning, error, critical (default: $SYNCCTL_LOG_LEVEL, else notice).",
        valueName: "level"))
    var logLevel: String?

    @Option(name: .long, help: ArgumentHelp(
        "Log lines as text or json (one object per line: ts, level, message, metadata) (default: $SYNCCTL_LOG_FORMAT, else text).",
        valueName: "format"))
    var logFormat: String?

    @Flag(name: .shortAndLong, help: "More log lines: -v info, -vv debug.")
    var verbose: Int

    @Flag(name: .shortAndLong, help: "Only errors on stderr, and no progress line.")
    var quiet = false

    /// `main` chose the log's handler from these options before parsing (``LogSettings``): here
    /// they are checked, so that a bad value is a usage error.
    func validate() throws {
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be one of \(LogSettings.levels.joined(separator: ", ")), not \(quoted(logLevel))")
        }
        if let logFormat, LogFormat(rawValue: logFormat) == nil {
            throw ValidationError("--log-format must be text or json, not \(quoted(logFormat))")
        }
        if [logLevel != nil, verbose > 0, quiet].filter({ $0 }).count > 1 {
            throw ValidationError("give only one of --log-level, -v/-vv and -q")
        }
    }
}

/// Options of the commands that use the database: output and logs, and `--db`.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The database file (default: $SYNCCTL_DB, else $XDG_DATA_HOME/syncctl/sync.sqlite).", valueName: "path"))
    var db: String?

    @OptionGroup var output: OutputOptions

    var json: Bool { output.json }

    /// The log of this command (its handler was chosen by `main`).
    var logger: Logger { Logger(label: "syncctl") }

    /// The database path: flag, then environment, then the XDG default. Empty values count as absent.
    func databasePath(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        try databaseSetting(environment: environment).path
    }

    /// The database path and where it came from (for `doctor`).
    func databaseSetting(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (path: String, source: String) {
        if let db {
            guard !db.isEmpty else { throw Failure.usage("--db needs a path") }
            return (db, "--db")
        }
        if let path = environment["SYNCCTL_DB"], !path.isEmpty { return (path, "SYNCCTL_DB") }
        var dataHome = environment["XDG_DATA_HOME"] ?? ""
        var source = "the default, under $XDG_DATA_HOME"
        // XDG: a relative path is invalid and must be ignored.
        if !dataHome.hasPrefix("/") {
            guard let home = environment["HOME"], home.hasPrefix("/") else {
                throw Failure(exitCode: Exit.config, message: "no database path: set --db, SYNCCTL_DB, XDG_DATA_HOME or HOME")
            }
            dataHome = home + "/.local/share"
            source = "the default, under $HOME/.local/share"
        }
        return (dataHome + "/syncctl/sync.sqlite", source)
    }

    /// Opens the store (creating it on first use).
    func openStore() async throws -> SyncStore {
        try await SyncStore.open(at: try databasePath(), logger: logger)
    }

    /// Prints `document` (with `--json`) or `text` on stdout.
    func emit(_ document: JSON, text: @autoclosure () -> String) {
        if json {
            Console.shared.out(document.text)
        } else {
            let body = text()
            if !body.isEmpty { Console.shared.out(body) }
        }
    }
}
