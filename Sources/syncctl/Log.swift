import ArgumentParser
import CollectionSync
import SyncctlContract

struct Log: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the last-writer-wins log, newest first.",
        discussion: """
            Every local write, applied or already-applied op, remote write and conflict with its
            decision (both timestamps and the winner).

            Examples:
              syncctl log
              syncctl log --conflicts --limit 20 --json
            """)

    @OptionGroup var options: GlobalOptions

    @Flag(name: .long, help: "Only conflict events.")
    var conflicts = false

    @Option(name: .long, help: "At most this many events (1 or more).")
    var limit: Int = 100

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be 1 or more, not \(limit)") }
    }

    func run() async throws {
        let events = try await options.openStore().log(conflictsOnly: conflicts, limit: limit)
        options.emit(Documents.log(events),
                     text: events.isEmpty ? "the log is empty" : events.map(\.line).joined(separator: "\n"))
    }
}
