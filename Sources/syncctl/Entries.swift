import ArgumentParser
import CollectionSync
import SyncctlContract

struct Entries: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the local view of a collection.",
        discussion: """
            Lists the entries present locally, newest first; an entry whose add is not yet
            applied on the server is marked. An entry whose removal is waiting is not listed.

            Examples:
              syncctl entries custom-388061495298244609
              syncctl entries --json custom-1
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The collection id (custom-<digits>, or local-N for one made here).")
    var collection: String

    func run() async throws {
        let given = try parseAll([collection], CollectionID.init(validating:))[0]
        let store = try await options.openStore()
        let entries = try await store.entries(of: given)
        let collectionID = try await store.resolve(given)  // a bound local id shows as its server id
        options.emit(Documents.entries(collectionID, entries), text: entries.isEmpty
            ? "\(collectionID): no entries"
            : entries.map { "\($0.tweet)\($0.pending.map { "  (pending \($0.rawValue))" } ?? "")" }.joined(separator: "\n"))
    }
}
