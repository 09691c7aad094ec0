import ArgumentParser
import CollectionSync

struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove tweets from a collection locally and queue the removals.",
        discussion: """
            Works offline: the local view changes at once and the removals wait in the outbox
            until a flush. All ids are checked first; one bad id refuses the whole call (exit 64).

            Examples:
              syncctl remove custom-388061495298244609 390890231215292416
              syncctl remove --json custom-1 20 21 22
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The collection id (custom-<digits>).")
    var collection: String

    @Argument(help: "One or more tweet ids.")
    var tweets: [String]

    func run() async throws {
        try await runEdit(.remove, collection: collection, tweets: tweets, options: options)
    }
}

struct Add: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add tweets to a collection locally and queue the additions.",
        discussion: """
            Works offline, like remove. All ids are checked first; one bad id refuses the whole
            call (exit 64).

            Examples:
              syncctl add custom-388061495298244609 390890231215292416
              syncctl add --json custom-1 20
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The collection id (custom-<digits>).")
    var collection: String

    @Argument(help: "One or more tweet ids.")
    var tweets: [String]

    func run() async throws {
        try await runEdit(.add, collection: collection, tweets: tweets, options: options)
    }
}

private func runEdit(_ kind: OpKind, collection: String, tweets: [String], options: GlobalOptions) async throws {
    let collectionID = try parseAll([collection], CollectionID.init(validating:))[0]
    let tweetIDs = try parseAll(tweets + BulkArguments.extraTweets, TweetID.init(validating:))
    let store = try await options.openStore()
    let queued = kind == .remove
        ? try await store.remove(tweetIDs, from: collectionID)
        : try await store.add(tweetIDs, to: collectionID)
    options.emit(.object([("queued", .array(queued.map(\.json)))]),
                 text: queued.map { "queued op \($0.id): \($0.kind.rawValue) \($0.tweet) (\($0.collection))" }.joined(separator: "\n"))
}
