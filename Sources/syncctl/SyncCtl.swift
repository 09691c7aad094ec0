import ArgumentParser
import CollectionsAPI
import CollectionSync
import Foundation
import Logging
import SyncctlContract

@main
struct SyncCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "syncctl",
        abstract: "Edit Twitter collections offline and replay the edits later.",
        discussion: """
            Edits are recorded in a local SQLite database and queued in an outbox.
            Exit codes follow sysexits: 0 ok, 64 invalid input, 65 dead letters,
            69 API unreachable, 74 database failure, 75 try again later, 77 auth rejected,
            78 configuration.

            syncctl --version [--json] prints the version, the SQLite library's version
            and the newest database schema this build knows.
            """,
        subcommands: [
            Remove.self, Add.self, Entries.self, Create.self, Update.self, Destroy.self, Collections.self, Status.self, Outbox.self, Log.self,
            Retry.self, Discard.self, Prune.self, Pull.self, Flush.self, Watch.self, Doctor.self, MockServer.self, Demo.self,
        ]
    )

    /// Parses, runs, and maps every failure to the contract's exit code; with `--json` an error
    /// exit also prints `{"error":{"exit_code":N,"message":"..."}}` on stdout.
    static func main() async {
        _ = CommandClock.started  // --deadline counts from here
        if VersionRequest.matches(Array(CommandLine.arguments.dropFirst())) {
            let json = CommandLine.arguments.contains("--json")
            Console.shared.out(json ? VersionRequest.document().text : VersionRequest.text())
            return
        }
        let (arguments, lifted) = BulkArguments.split(Array(CommandLine.arguments.dropFirst()))
        let json = arguments.prefix(while: { $0 != "--" }).contains("--json")
        do {
            LogSettings.current = try LogSettings.resolve(arguments, environment: ProcessInfo.processInfo.environment)
        } catch {
            fail(Failure(error), json: json, command: arguments.first)
        }
        let settings = LogSettings.current
        LoggingSystem.bootstrap { _ in ConsoleLogHandler(settings: settings) }
        do {
            try await BulkArguments.$lifted.withValue(lifted) {
                var command = try parseAsRoot(arguments)
                if var command = command as? AsyncParsableCommand {
                    try await command.run()
                } else {
                    try command.run()
                }
            }
        } catch {
            if let failure = error as? Failure, failure.reported { Foundation.exit(failure.exitCode) }
            let failure: Failure
            if error is Failure || error is SyncError || error is CollectionsAPIError {
                failure = Failure(error)
            } else {
                let code = exitCode(for: error).rawValue
                guard code != 0 else { exit(withError: error) }  // --help, --version
                // Argument parsing and validation errors are usage errors.
                failure = Failure(exitCode: code == 1 ? Exit.usage : code, message: fullMessage(for: error))
            }
            fail(failure, json: json, command: arguments.first)
        }
    }

    /// Tells `failure` (on stderr, and as the error document with `--json`) and exits with its code.
    static func fail(_ failure: Failure, json: Bool, command: String? = nil) -> Never {
        if json, command == "flush" {
            // flush's error document is its usual one with the error object (syncctl.md).
            _ = Flush.report(FlushReport(), nil, failure, json: true)
            Foundation.exit(failure.exitCode)
        }
        tell(failure.message, level: .error)
        if json {
            Console.shared.out(JSON.object([("error", failure.json)]).text)
        }
        Foundation.exit(failure.exitCode)
    }
}

/// When the command started: `--deadline` bounds the whole command.
enum CommandClock {
    static let started = ContinuousClock.now
}
