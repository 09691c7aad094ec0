import ArgumentParser
import CollectionSync
import SyncctlContract

struct Outbox: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the ops waiting in the outbox (or the dead-lettered ones).",
        discussion: """
            Examples:
              syncctl outbox
              syncctl outbox --failed --json
            """)

    @OptionGroup var options: GlobalOptions

    @Flag(name: .long, help: "List the dead-lettered (failed) ops instead of the waiting ones.")
    var failed = false

    func run() async throws {
        let ops = try await options.openStore().outbox(failed ? .failed : .waiting)
        options.emit(Documents.outbox(ops), text: ops.isEmpty
            ? (failed ? "no failed ops" : "the outbox is empty")
            : ops.map { op in
                var line = "\(op.id)  \(op.kind.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)) \(op.collection) \(op.tweet?.rawValue ?? "-")  \(op.state.rawValue)  attempts \(op.attempts)"
                if let next = op.nextAttemptAt { line += "  next \(rfc3339(next))" }
                if let error = op.lastError { line += "  last error: \(error)" }
                return line
            }.joined(separator: "\n"))
    }
}
