import ArgumentParser
import CollectionSync
import SyncctlContract

extension CollectionOrder: ExpressibleByArgument {}

struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a collection locally and queue its creation.",
        discussion: """
            Works offline: the collection exists at once in the local store with a local id
            (local-N), which every command accepts. Add and remove its entries right away;
            they are sent once a flush has created the collection on the server, which
            binds the local id to the server's id (custom-...) for good.

            Limits (checked first; a breach changes nothing, exit 64): a name of 1 to 25
            characters, a description of at most 160, a url that is empty or http(s).

            Examples:
              syncctl create "Read later"
              syncctl create --json "Trip" --description "Photos of the trip" --order tweet_chron
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The collection's name (1 to 25 characters).")
    var name: String

    @Option(help: "Its description (at most 160 characters).")
    var description: String = ""

    @Option(help: "Its url (empty, or http(s) with a host).")
    var url: String = ""

    @Option(help: "The order of its timeline: curation_reverse_chron (the default), tweet_chron or tweet_reverse_chron.")
    var order: CollectionOrder = .curationReverseChron

    func run() async throws {
        // Checked before the database is opened: bad input changes nothing, not even a new file.
        try CollectionRules.validate(name: name)
        try CollectionRules.validate(description: description)
        try CollectionRules.validate(url: url)
        let op = try await options.openStore().createCollection(name: name, description: description, url: url, order: order)
        options.emit(Documents.queued([op]), text: "created \(op.collection) locally; queued op \(op.id): create")
    }
}

struct Update: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Change a collection's metadata locally and queue the update.",
        discussion: """
            Works offline. Only the fields given change; the others keep their local value.
            The API has no partial update, so the update sends every field, but only the
            fields given here are the update's intent: a field changed on the server and not
            here takes the server's value at the next pull.

            Examples:
              syncctl update local-1 --name "Read soon"
              syncctl update custom-388061495298244609 --description "" --url https://example.com
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The collection id (custom-<digits>, or local-N).")
    var collection: String

    @Option(help: "The new name (1 to 25 characters).")
    var name: String?

    @Option(help: "The new description (at most 160 characters; \"\" clears it).")
    var description: String?

    @Option(help: "The new url (\"\" clears it).")
    var url: String?

    func run() async throws {
        let collectionID = try parseAll([collection], CollectionID.init(validating:))[0]
        guard name != nil || description != nil || url != nil else {
            throw Failure(exitCode: Exit.usage, message: "nothing to update: give --name, --description or --url")
        }
        if let name { try CollectionRules.validate(name: name) }
        if let description { try CollectionRules.validate(description: description) }
        if let url { try CollectionRules.validate(url: url) }
        let op = try await options.openStore().updateCollection(collectionID, name: name, description: description, url: url)
        options.emit(Documents.queued([op]), text: "queued op \(op.id): update \(op.collection)")
    }
}

struct Destroy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Destroy a collection locally and queue it.",
        discussion: """
            Works offline. The collection's waiting entry and update ops are cancelled; the
            destroy is sent once its ops in flight are answered. A collection whose create
            was never sent is simply dropped: nothing goes to the server.

            Examples:
              syncctl destroy local-2
              syncctl destroy --json custom-388061495298244609
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "The collection id (custom-<digits>, or local-N).")
    var collection: String

    func run() async throws {
        let collectionID = try parseAll([collection], CollectionID.init(validating:))[0]
        let result = try await options.openStore().destroyCollection(collectionID)
        let text = switch result {
        case .queued(let op): "queued op \(op.id): destroy \(op.collection)"
        case .dropped(let local): "dropped \(local): its create was never sent, so nothing goes to the server"
        }
        options.emit(Documents.destroyed(result), text: text)
    }
}

struct Collections: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the collections of the local store.",
        discussion: """
            With their metadata as the local view has it, the local id of each one made
            here, the earliest collection op waiting for it (create, update or destroy), and
            whether the server said it is gone. A collection being destroyed is listed until
            its destroy is applied.

            Examples:
              syncctl collections
              syncctl collections --json
            """)

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let collections = try await options.openStore().collections()
        options.emit(Documents.collections(collections), text: collections.isEmpty ? "no collections" : collections.map { collection in
            var line = "\(collection.id)"
            if let local = collection.localID, local != collection.id { line += " (\(local))" }
            line += "  \(collection.name.isEmpty ? "(metadata not known: pull it)" : "\"\(collection.name)\"")  \(counted(collection.entries, "entry", "entries"))"
            if let pending = collection.pending { line += "  pending \(pending.rawValue)" }
            if collection.gone { line += "  GONE (destroyed on the server)" }
            return line
        }.joined(separator: "\n"))
    }
}
