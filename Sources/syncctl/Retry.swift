import ArgumentParser
import CollectionSync
import SyncctlContract

struct Retry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move dead-lettered ops back to pending.",
        discussion: """
            Give op ids (from `syncctl outbox --failed`) or --all. An unknown id, or an op that is
            not failed, refuses the whole call (exit 64) and changes nothing.

            Examples:
              syncctl retry 12 13
              syncctl retry --all
            """)

    @OptionGroup var options: GlobalOptions

    @Flag(name: .long, help: "Retry every failed op.")
    var all = false

    @Argument(help: "Op ids.")
    var ops: [String] = []

    func validate() throws {
        guard all != !ops.isEmpty else { throw ValidationError("give either --all or one or more op ids") }
    }

    func run() async throws {
        let ids = try parseAll(ops, OpID.init(validating:))
        let store = try await options.openStore()
        let retried: [OpID]
        if all {
            retried = try await store.retryAllFailed()
        } else {
            try await store.retry(ids)
            retried = ids
        }
        options.emit(Documents.retried(retried),
                     text: "\(retried.count) op\(retried.count == 1 ? "" : "s") back to pending")
    }
}

struct Discard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drop pending or failed ops, reverting the local view to the server's last known value.",
        discussion: """
            An op in flight cannot be discarded until its answer is in (exit 75); an unknown id
            exits 64. Either way nothing changes.

            Examples:
              syncctl discard 12
              syncctl discard --json 12 13
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "Op ids.")
    var ops: [String]

    func run() async throws {
        let ids = try parseAll(ops, OpID.init(validating:))
        try await options.openStore().discard(ids)
        options.emit(Documents.discarded(ids),
                     text: "\(ids.count) op\(ids.count == 1 ? "" : "s") discarded")
    }
}
