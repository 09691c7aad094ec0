import ArgumentParser
import CollectionSync
import Foundation
import SyncctlContract

struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove tweets from a collection locally and queue the removals.",
        discussion: """
            Works offline: the local view changes at once and the removals wait in the
            outbox until a flush. All ids are checked first; one bad id refuses the whole
            call (exit 64).
            \(EditArguments.sources)

            Examples:
              syncctl remove custom-388061495298244609 390890231215292416
              syncctl remove --json custom-1 20 21 22
              cut -f1 to-remove.tsv | syncctl remove custom-1 -
              syncctl remove custom-1 --ids-from ids.txt
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var edit: EditArguments

    func run() async throws {
        try await runEdit(.remove, edit, options: options)
    }
}

struct Add: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add tweets to a collection locally and queue the additions.",
        discussion: """
            Works offline, like remove. All ids are checked first; one bad id refuses the
            whole call (exit 64).
            \(EditArguments.sources)

            Examples:
              syncctl add custom-388061495298244609 390890231215292416
              syncctl add --json custom-1 20
              syncctl add custom-1 - < ids.txt
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var edit: EditArguments

    func run() async throws {
        try await runEdit(.add, edit, options: options)
    }
}

/// The collection and the tweet ids of `remove` and `add`.
struct EditArguments: ParsableArguments {
    static let sources = """

        The tweet ids come from one place: the arguments, standard input (a single -),
        or a file (--ids-from PATH), where any whitespace separates them (spaces, tabs,
        newlines, CRLF) and a bad id is reported with its line. However many ids, a
        call is one transaction: all of them are queued, or none. Naming two sources
        (ids and -, ids and --ids-from, - and --ids-from, either twice) is refused
        (exit 64), not merged: a script that pipes ids into a call that also names
        some, or that repeats --ids-from, has most likely made a mistake, and queuing
        the union would send edits nobody meant.
        """

    @Argument(help: "The collection id (custom-<digits>, or local-N for one made here).")
    var collection: String

    @Argument(help: ArgumentHelp("Tweet ids, or - to read them from standard input.", valueName: "tweet"))
    var tweets: [String] = []

    @Option(name: .customLong("ids-from"), help: ArgumentHelp(
        "Read the tweet ids from this file (- is standard input).", valueName: "path"))
    var idsFrom: String?
}

private func runEdit(_ kind: OpKind, _ edit: EditArguments, options: GlobalOptions) async throws {
    let collectionID = try parseAll([edit.collection], CollectionID.init(validating:))[0]
    // Everything is read and checked before the database is opened: bad input changes nothing.
    let source = try TweetSource.resolve(arguments: edit.tweets + BulkArguments.lifted.tweets, idsFrom: edit.idsFrom,
                                         idsFromCount: BulkArguments.lifted.idsFromCount)
    let tweetIDs = try source.read()
    let store = try await options.openStore()
    let queued = kind == .remove
        ? try await store.remove(tweetIDs, from: collectionID)
        : try await store.add(tweetIDs, to: collectionID)
    printQueued(queued, json: options.json)
}

/// Prints the queued ops, `{"queued":[...]}` or a line each, written out as they are formatted:
/// a million ops must not become a million JSON values and then one string.
private func printQueued(_ queued: [QueuedOp], json: Bool) {
    var out = BufferedOutput()
    if json {
        out.write(#"{"queued":["#)
        for (index, op) in queued.enumerated() {
            // Ids, kinds and collection ids are digits and letters only: nothing to escape.
            out.write(index == 0 ? #"{"id":"# : #",{"id":"#)
            out.write(String(op.id.rawValue))
            out.write(#","op":""#)
            out.write(op.kind.rawValue)
            out.write(#"","collection_id":""#)
            out.write(op.collection.rawValue)
            out.write(#"","tweet_id":""#)
            out.write(op.tweet?.rawValue ?? "")
            out.write(#""}"#)
        }
        out.write("]}\n")
    } else {
        for op in queued {
            out.write("queued op \(op.id): \(op.kind.rawValue) \(op.tweet?.rawValue ?? "") (\(op.collection))\n")
        }
    }
    out.flush()
}

/// Standard output through a 64 KiB buffer, written with write(2) after anything `print` left in
/// its stream.
private struct BufferedOutput {
    private var buffer: [UInt8] = []
    private static let size = 1 << 16

    init() { buffer.reserveCapacity(Self.size) }

    mutating func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= Self.size { flush() }
    }

    mutating func flush() {
        fflush(nil)
        buffer.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }  // a closed or broken stdout: nothing more to say
                offset += written
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
