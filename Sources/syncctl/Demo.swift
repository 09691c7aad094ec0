import ArgumentParser
import CollectionsAPI
import CollectionsMock
import CollectionSync
import Foundation
import SyncctlContract

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A walk-through against an in-process mock API: offline edits, an outage, a flush, a not_found, a conflict, a collection made offline.",
        discussion: """
            Starts the bundled mock Collections API on a free loopback port and uses a temporary
            database (or --db): pulls a seeded collection, takes the network down, removes three
            tweets (one already removed by another device), shows a flush failing and keeping
            them, brings the network back, flushes (the not_found counts as already
            applied), shows a conflict with a remote edit and its LWW log line, and the status; then
            makes a collection offline, fills and renames it, and flushes it through a lost
            answer to its create (made exactly once).

            Examples:
              syncctl demo
              syncctl demo --db /tmp/demo.sqlite
            """)

    @Option(name: .long, help: ArgumentHelp(
        "Keep the walk-through's database in this file (default: a fresh temporary one, removed afterwards; never $SYNCCTL_DB).",
        valueName: "path"))
    var db: String?

    @OptionGroup var options: OutputOptions

    func run() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("syncctl-demo-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        let path = db ?? folder.appendingPathComponent("demo.sqlite").path
        defer { if db == nil { try? FileManager.default.removeItem(at: folder) } }
        let document = try await withMockServer { server in try await walkThrough(server, path: path) }
        if options.json { Console.shared.out(JSON.object(document).text) }
    }

    private func walkThrough(_ server: MockCollectionsServer, path: String) async throws -> [(String, JSON)] {
        let tweets = ["390890231215292416", "390897780949925889", "390853164611555329", "504032379045179393",
                      "504032379045179394", "504032379045179395", "504032379045179396", "504032379045179397"]
        let id = try server.createCollection(name: "Cats of the week", tweetIDs: tweets)
        let collection = try CollectionID(validating: id)
        let store = try await SyncStore.open(at: path)
        let credentials = server.credentials.apiCredentials
        let document = try await AsyncHTTPClientTransport.withTransport { transport in
            let client = try CollectionsClient(baseURL: server.baseURL, credentials: credentials, transport: transport)
            let engine = try SyncEngine(store: store, client: client)
            var document: [(String, JSON)] = [("api_base", .string(server.baseURL)), ("collection_id", .string(id))]

            say("1. A mock Collections API is listening at \(server.baseURL); its collection \(id) holds \(tweets.count) tweets.")
            let pulled = try await engine.pull(collection)
            say("   syncctl pull \(id)  ->  \(counted(pulled.entries, "entry", "entries")) in the local copy (\(path))")

            let otherDevice = tweets[1]
            _ = try await client.remove(try TweetID(validating: otherDevice), from: collection)
            say("2. Another device removes \(otherDevice) on the server. This device does not know yet.")

            await server.beginOutage()
            say("3. The network goes down (the mock refuses connections).")
            let removed = try await store.remove(tweets[0...2].map { try TweetID(validating: $0) }, from: collection)
            say("   syncctl remove \(id) \(tweets[0...2].joined(separator: " "))")
            say("   -> recorded at once, offline: the local view has \(counted(try await store.entries(of: collection).count, "entry", "entries")); \(ops(removed.count)) wait in the outbox")

            let down = try await engine.flush()
            say("4. syncctl flush  ->  the API could not be reached (\(down.unreachable?.description ?? "no answer")); \(ops(down.pending)) kept for later")
            document.append(("flush_during_outage", .object([("applied", .int(down.applied)), ("pending", .int(down.pending))])))

            try await server.endOutage()
            let up = try await engine.flush(FlushOptions(timeLimit: .seconds(30), wait: true))
            say("5. The network is back. syncctl flush --wait  ->  applied \(up.applied), already applied \(up.alreadyApplied), failed \(up.failed), pending \(up.pending)")
            for event in try await store.log(limit: 10) where event.event == .alreadyRemoved {
                say("   \(event.tweet?.rawValue ?? "?"): the server answered not_found: it was already removed, so the op is already applied, not failed")
            }
            document.append(("flush", .object([("applied", .int(up.applied)), ("already_applied", .int(up.alreadyApplied)),
                                               ("failed", .int(up.failed)), ("pending", .int(up.pending))])))

            let contested = try TweetID(validating: tweets[3])
            try await store.remove([contested], from: collection)
            try await store.add([contested], to: collection)
            _ = try await client.remove(contested, from: collection)
            say("6. Here you remove \(contested) and put it back (one op: add). Meanwhile another device removes it on the server.")
            let merged = try await engine.pull(collection)
            say("   syncctl pull \(id)  ->  \(merged.remoteWrites) remote write, \(merged.conflicts) conflict")
            for event in try await store.log(conflictsOnly: true, limit: 1) {
                say("   syncctl log --conflicts:")
                say("   " + event.line)
            }
            let final = try await engine.flush()
            say("   syncctl flush  ->  applied \(final.applied): your later edit won, the tweet is back on the server")
            document.append(("conflicts", .array(try await store.log(conflictsOnly: true).map(\.json))))

            let status = try await store.status()
            say("7. syncctl status:")
            say("   " + status.text.replacingOccurrences(of: "\n", with: "\n   "))
            let serverHas = Set(server.tweetIDs(of: id) ?? [])
            let localHas = Set(try await store.entries(of: collection).map(\.tweet.rawValue))
            say("   The server and the local copy agree: \(serverHas == localHas ? "yes" : "no") (\(serverHas.count) tweets).")
            document.append(("status", status.json))
            document.append(("in_sync", .bool(serverHas == localHas)))
            document.append(("offline_collection", try await offlineCollection(server, store, engine, tweets: tweets)))
            return document
        }
        say("Done. The database was \(db == nil ? "temporary and is removed" : "kept at \(path)").")
        return document
    }

    /// Chapter 8: a collection made with no network, filled, renamed, then flushed through a lost answer.
    private func offlineCollection(_ server: MockCollectionsServer, _ store: SyncStore, _ engine: SyncEngine,
                                   tweets: [String]) async throws -> JSON {
        await server.beginOutage()
        let created = try await store.createCollection(name: "Read later")
        let local = created.collection
        say("8. Offline again, you make a collection: syncctl create \"Read later\"  ->  \(local), usable at once")
        let picks = try tweets[4...7].map { try TweetID(validating: $0) }
        try await store.add(picks, to: local)
        try await store.remove([picks[1]], from: local)
        try await store.updateCollection(local, name: "Read soon")
        say("   syncctl add \(local) \(tweets[4...7].joined(separator: " ")); syncctl remove \(local) \(picks[1]); syncctl update \(local) --name \"Read soon\"")
        say("   -> \(counted(try await store.entries(of: local).count, "entry", "entries")) in \(local); its create, adds and update wait in the outbox")
        try await server.endOutage()
        server.dropAfterApply(next: 1, endpoint: .create)
        let lost = try await engine.flush()
        say("   The network is back; syncctl flush sends the create, the server makes it, and the answer is lost on the way back:")
        say("   -> applied \(lost.applied), pending \(lost.pending): the outcome is unknown, so \(local) is not bound yet")
        let settled = try await engine.flush(FlushOptions(timeLimit: .seconds(30), wait: true))
        let bound = try await store.resolve(local)
        say("   syncctl flush --wait  ->  after the backoff it lists your collections first, finds the one its create made, binds \(local) to \(bound)")
        say("   instead of creating it twice; then the entries and the rename go: applied \(settled.applied), already applied \(settled.alreadyApplied), pending \(settled.pending)")
        let made = server.snapshot().collections.filter { $0.name == "Read soon" || $0.name == "Read later" }
        let entries = Set(server.tweetIDs(of: bound.rawValue) ?? [])
        say("   The server holds \(made.count == 1 ? "one" : "\(made.count)") such collection, named \"\(made.first?.name ?? "?")\", with \(counted(entries.count, "tweet", "tweets")); "
            + "syncctl entries \(local) now shows \(bound).")
        return .object([("local_id", .string(local.rawValue)), ("id", .string(bound.rawValue)), ("server_collections", .int(made.count)),
                         ("name", .optional(made.first?.name)), ("entries", .int(entries.count))])
    }

    /// Narration: on stdout normally, on stderr with --json (stdout holds one JSON document).
    /// On a terminal each numbered step waits a moment, so a person can follow it.
    private func say(_ text: String) {
        if options.json { tell(text) } else { Console.shared.out(text) }
        if isatty(STDOUT_FILENO) == 1, text.first?.isNumber == true { usleep(1_500_000) }
    }
}
