import ArgumentParser
import CollectionSync
import Foundation

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A short walk-through of offline editing on a temporary database.",
        discussion: """
            Shows what works today with no network: edits recorded in the local view and the
            outbox in one transaction, coalescing of intents on one key, discarding an op, the
            status and the LWW log. (Flushing to the API and pulling arrive with the sync worker
            and the bundled mock server.)

            Examples:
              syncctl demo
              syncctl demo --db /tmp/demo.sqlite
            """)

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("syncctl-demo-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        let path = options.db ?? folder.appendingPathComponent("demo.sqlite").path
        defer { if options.db == nil { try? FileManager.default.removeItem(at: folder) } }
        let store = try await SyncStore.open(at: path)
        let collection = try CollectionID(validating: "custom-388061495298244609")
        let tweets = try ["390890231215292416", "390897780949925889", "390853164611555329"].map(TweetID.init(validating:))
        var document: [(String, JSON)] = []

        say("1. With no network, remove three tweets from \(collection).")
        let removed = try await store.remove(tweets, from: collection)
        for op in removed { say("   queued op \(op.id): remove \(op.tweet)") }
        document.append(("queued", .array(removed.map(\.json))))

        let extra = try TweetID(validating: "504032379045179393")
        say("2. Add a tweet, then change your mind and remove it: the two intents coalesce into one op.")
        try await store.add([extra], to: collection)
        try await store.remove([extra], from: collection)
        for op in try await store.outbox() where op.tweet == extra {
            say("   one op left for \(extra): op \(op.id), \(op.kind.rawValue)")
        }

        say("3. Discard the removal of \(tweets[2]): the op is dropped and the local view reverts.")
        if let op = removed.last { try await store.discard([op.id]) }

        let outbox = try await store.outbox()
        say("4. The outbox now holds \(outbox.count) ops, waiting for a flush:")
        for op in outbox { say("   op \(op.id): \(op.kind.rawValue) \(op.tweet) (\(op.state.rawValue))") }
        document.append(("outbox", .array(outbox.map(\.json))))

        let status = try await store.status()
        say("5. Status: \(status.text.replacingOccurrences(of: "\n", with: "\n   "))")
        document.append(("status", status.json))

        let log = try await store.log(limit: 20)
        say("6. The LWW log, newest first:")
        for event in log { say("   " + event.line) }
        document.append(("log", .array(log.map(\.json))))

        say("Done. The database was \(options.db == nil ? "temporary and is removed" : "kept at \(path)").")
        if options.json { print(JSON.object(document).text) }
    }

    /// Narration: on stdout normally, on stderr with --json (stdout holds one JSON document).
    private func say(_ text: String) {
        if options.json { printError(text) } else { print(text) }
    }
}
