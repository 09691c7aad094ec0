import ArgumentParser
import CollectionSync
import CollectionsAPI
import Foundation

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
            Remove.self, Add.self, Entries.self, Status.self, Outbox.self, Log.self,
            Retry.self, Discard.self, Pull.self, Flush.self, Watch.self, MockServer.self, Demo.self,
        ]
    )

    /// Parses, runs, and maps every failure to the contract's exit code; with `--json` an error
    /// exit also prints `{"error":{"exit_code":N,"message":"..."}}` on stdout.
    static func main() async {
        _ = CommandClock.started  // --deadline counts from here
        if VersionRequest.matches(Array(CommandLine.arguments.dropFirst())) {
            let json = CommandLine.arguments.contains("--json")
            print(json ? VersionRequest.document().text : VersionRequest.text())
            return
        }
        let (arguments, lifted) = BulkArguments.split(Array(CommandLine.arguments.dropFirst()))
        let json = arguments.prefix(while: { $0 != "--" }).contains("--json")
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
            printError("syncctl: \(failure.message)")
            if json {
                print(JSON.object([("error", .object([
                    ("exit_code", .int(Int64(failure.exitCode))), ("message", .string(failure.message)),
                ]))]).text)
            }
            Foundation.exit(failure.exitCode)
        }
    }
}

/// When the command started: `--deadline` bounds the whole command.
enum CommandClock {
    static let started = ContinuousClock.now
}
