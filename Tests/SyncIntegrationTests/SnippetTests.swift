import CollectionSync
import CollectionsAPI
import CollectionsMock
import Foundation
import Logging
import ServiceLifecycle
import Testing
import TestSupport

/// The README's snippets as an app writes them: from `@MainActor` code (a UI's model), where a
/// helper that took a plain closure did not compile under Swift 6 ("sending value of
/// non-Sendable type ... risks causing data races"). Compiled on every build, and run.
@MainActor
final class ReadingListModel {
    private(set) var shown: [[String]] = []

    func run(folder: TemporaryFolder) async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["20", "21", "22"])
            let collection = try CollectionID(validating: id)
            let store = try await SyncStore.open(at: folder.path("app.sqlite"))
            try await AsyncHTTPClientTransport.withTransport { transport in
                let client = try CollectionsClient(baseURL: server.baseURL, credentials: server.credentials.apiCredentials,
                                                   transport: transport)
                let engine = try SyncEngine(store: store, client: client)
                try await engine.pull(collection)
                var values = store.observeEntries(of: collection).makeAsyncIterator()
                self.shown.append(try await values.next()?.map(\.tweet.rawValue).sorted() ?? [])
                try await store.remove([try TweetID(validating: "21")], from: collection)  // offline, at once
                self.shown.append(try await values.next()?.map(\.tweet.rawValue).sorted() ?? [])
                let report = try await engine.flush(FlushOptions(timeLimit: .seconds(30)))
                #expect(report.applied == 1 && server.tweetIDs(of: id)?.sorted() == ["20", "22"])
            }
        }
    }
}

@Suite("The README's snippets, from main-actor code", .timeLimit(.minutes(1)))
struct SnippetTests {
    @Test("withMockServer, withTransport and observation from a @MainActor model")
    @MainActor
    func mainActorModel() async throws {
        let folder = TemporaryFolder()
        let model = ReadingListModel()
        try await model.run(folder: folder)
        #expect(model.shown == [["20", "21", "22"], ["20", "22"]])
    }
}

// MARK: - The DocC articles' snippets

/// Every `swift` code block of the DocC catalogs (Sources/*/*.docc), verbatim, in a function
/// named after its article, on a `@MainActor` type: the isolation of top-level code and of UI
/// code. The names a snippet uses without making them (`store`, `apiBase`, `credentials`,
/// `logger`, `show`, ...) are the ones its article says it assumes: parameters here. The
/// suite below runs them against the mock, except the service group with real signal handlers,
/// which is compiled only; ``DocCSnippetTests/everyBlockIsHere()`` checks that no block of an
/// article is missing from this file.
@MainActor
final class DocCSnippets {
    private(set) var shown: [[Entry]] = []

    /// What GettingStarted.md's observation calls for each value.
    func show(_ entries: [Entry]) { shown.append(entries) }

    /// What the README's observation of the collections calls for each value.
    func show(_ collections: [LocalCollection]) { shownCollections.append(collections) }
    private(set) var shownCollections: [[LocalCollection]] = []

    // README.md, "Using the library" (compiled only: it opens /var/lib/myapp and observes forever)

    func readmeUsingTheLibrary(credentials: APICredentials) async throws {
        let store = try await SyncStore.open(at: "/var/lib/myapp/sync.sqlite")
        let collection = try CollectionID(validating: "custom-388061495298244609")   // CollectionsAPI's ids, re-exported
        let tweets = try ["390890231215292416", "390897780949925889"].map(TweetID.init(validating:))
        try await store.remove(tweets, from: collection)      // local view + outbox, one transaction, no network
        show(try await store.entries(of: collection))     // what the user sees now

        try await AsyncHTTPClientTransport.withTransport { transport in
            let client = try CollectionsClient(baseURL: "https://api.twitter.com/1.1", credentials: credentials, transport: transport)
            let engine = try SyncEngine(store: store, client: client)
            let report = try await engine.flush(FlushOptions(timeLimit: .seconds(60)))
            print("applied \(report.applied), still pending \(report.pending)")
            try await engine.pull(collection)                 // three-way merge, conflicts by HLC, all logged
        }
        for conflict in try await store.log(conflictsOnly: true) { print(conflict.detail) }

        // A live screen: the current view, then a new one after every change, from any process
        // (syncctl flush from a timer, a pull, another app); equal values are not repeated.
        for try await entries in store.observeEntries(of: collection) {
            show(entries)
        }
    }

    // README.md, "Collections made offline" (compiled only: it observes forever)

    func readmeCollectionsMadeOffline(store: SyncStore, tweets: [TweetID]) async throws {
        let draft = try await store.createCollection(name: "Read later")       // draft.collection is local-1
        try await store.add(tweets, to: draft.collection)
        try await store.updateCollection(draft.collection, name: "Read soon")
        for try await collections in store.observeCollections() { show(collections) }   // bound, renamed, gone...
    }

    // README.md, "The mock API in your own tests"

    func readmeMock() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["20", "21"])
            server.failNext(2, status: 503, code: 130)     // or beginOutage(), dropAfterApply(), setBlackhole(true)...
            // point your client at server.baseURL with server.credentials.apiCredentials
            print("collection \(id) at \(server.baseURL)")
        }
    }

    // GettingStarted.md

    func gettingStarted(path: String) async throws -> (SyncStore, CollectionID, [Entry]) {
        let store = try await SyncStore.open(at: path)
        let collection = try CollectionID(validating: "custom-388061495298244609")

        let stale = try ["390890231215292416", "390897780949925889"].map(TweetID.init(validating:))
        try await store.remove(stale, from: collection)
        try await store.add([try TweetID(validating: "504032379045179393")], to: collection)
        let view = try await store.entries(of: collection)   // what the user sees now

        return (store, collection, view)
    }

    func gettingStartedObserve(store: SyncStore, collection: CollectionID) async throws {
        for try await entries in store.observeEntries(of: collection) {
            show(entries)
        }
    }

    func gettingStartedFlushAndPull(store: SyncStore, collection: CollectionID, apiBase: String,
                                    credentials: APICredentials) async throws {
        try await AsyncHTTPClientTransport.withTransport { transport in
            let client = try CollectionsClient(baseURL: apiBase, credentials: credentials, transport: transport)
            let engine = try SyncEngine(store: store, client: client)
            let report = try await engine.flush(FlushOptions(timeLimit: .seconds(60)))
            print("applied \(report.applied), already there \(report.alreadyApplied), still pending \(report.pending)")
            let pulled = try await engine.pull(collection)
            print("\(pulled.entries) entries, \(pulled.remoteWrites) remote changes, \(pulled.conflicts) conflicts")
        }

        for event in try await store.log(conflictsOnly: true, limit: 20) {
            print(event.at, event.tweet?.rawValue ?? "-", event.winner?.rawValue ?? "-", event.detail)
        }
    }

    // RunningTheSyncWorker.md

    /// Compiled only: a group with SIGTERM and SIGINT handlers does not belong in a test process.
    func runningTheSyncWorker(store: SyncStore, apiBase: String, credentials: APICredentials, logger: Logger) async throws {
        try await AsyncHTTPClientTransport.withTransport { transport in
            let client = try CollectionsClient(baseURL: apiBase, credentials: credentials, transport: transport)
            let engine = try SyncEngine(store: store, client: client, logger: logger)
            let group = ServiceGroup(services: [engine], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            try await group.run()   // until SIGTERM or SIGINT, then a graceful shutdown
        }
    }

    func runningTheSyncWorkerEvents(engine: SyncEngine, group: ServiceGroup) async throws {
        let events = engine.events()   // subscribe first: a stream has the events sent after it was made
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for await event in events {
                switch event {
                case .applied(let op): print("applied: \(op.kind) \(op.tweet?.rawValue ?? op.collection.rawValue)")
                case .failed(let op, let reason): print("dead-lettered: op \(op.id), \(reason)")
                case .unreachable(let reason): print("offline: \(reason)")
                default: break
                }
            }
            try await tasks.waitForAll()   // the stream ended: run() has returned
        }
    }

    // TestingWithTheMock.md

    func testingWithTheMock(store: SyncStore) async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["20", "21", "22"])
            let collection = try CollectionID(validating: id)
            try await AsyncHTTPClientTransport.withTransport { transport in
                let client = try CollectionsClient(baseURL: server.baseURL, credentials: server.credentials.apiCredentials,
                                                   transport: transport)
                var configuration = SyncEngine.Configuration()
                configuration.backoff = Backoff(base: .milliseconds(10), cap: .milliseconds(100))   // quick retries
                let engine = try SyncEngine(store: store, client: client, configuration: configuration)

                try await store.remove([try TweetID(validating: "21")], from: collection)
                server.dropAfterApply(next: 1, endpoint: .curate)   // the server applies it; the answer is lost
                let report = try await engine.flush(FlushOptions(timeLimit: .seconds(10), wait: true))
                #expect(report.alreadyApplied == 1 && report.pending == 0)   // the replay met not_found
                #expect(server.tweetIDs(of: id) == ["22", "20"])
            }
        }
    }

    func testingWithTheMockOutage(server: MockCollectionsServer, store: SyncStore, collection: CollectionID,
                                  engine: SyncEngine) async throws {
        await server.beginOutage()   // connections refused
        try await store.add([try TweetID(validating: "23")], to: collection)
        let offline = try await engine.flush()
        #expect(offline.unreachable != nil && offline.pending == 1)   // kept, backing off
        try await server.endOutage()
    }

    // WhatTheEnginePromises.md

    func whatTheEnginePromisesPrune(store: SyncStore) async throws {
        try await store.prune(olderThan: .seconds(30 * 24 * 60 * 60))   // a month
    }

    func whatTheEnginePromisesFailures(store: SyncStore) async throws {
        let failed = try await store.outbox(.failed)
        for op in failed {
            print("op \(op.id): \(op.kind) \(op.tweet?.rawValue ?? op.collection.rawValue), \(op.attempts) attempts: \(op.lastError ?? "")")
        }
        try await store.retry(failed.filter { $0.kind == .remove }.map(\.id))   // back to pending, due now
        try await store.discard(failed.filter { $0.kind == .add }.map(\.id))    // dropped; the view reverts
    }

    // CollectionsMock.md

    func collectionsMock() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["20", "21"])   // "21" is on top
            server.failNext(2, status: 503, code: 130)   // the next two API requests: over capacity
            server.dropAfterApply(next: 1, endpoint: .curate)   // then a lost answer
            // Point a client at server.baseURL with server.credentials.apiCredentials and run the code
            // under test; then check the server's state, and server.journal() for the requests it saw.
            #expect(server.tweetIDs(of: id) == ["21", "20"])
        }
    }
}

@Suite("The DocC articles' snippets, from main-actor code", .timeLimit(.minutes(1)))
@MainActor
struct DocCSnippetTests {
    let folder = TemporaryFolder()
    let quiet = Logger(label: "snippets", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Waits until `condition` holds (the observation's values arrive on their own schedule).
    private func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<2_000 where !condition() { try await Task.sleep(for: .milliseconds(5)) }
        #expect(condition())
    }

    @Test("GettingStarted.md: open, edit offline, observe, flush, pull")
    func gettingStarted() async throws {
        try await withMockServer { server in
            try server.seed([MockCollection(id: "custom-388061495298244609",
                                            tweetIDs: ["390890231215292416", "390897780949925889", "20"])])
            let snippets = DocCSnippets()
            let (store, collection, view) = try await snippets.gettingStarted(path: folder.path("app.sqlite"))
            #expect(view.map(\.tweet.rawValue) == ["504032379045179393"] && view.first?.pending == .add)

            let observing = Task { try await snippets.gettingStartedObserve(store: store, collection: collection) }
            try await eventually { !snippets.shown.isEmpty }
            try await snippets.gettingStartedFlushAndPull(store: store, collection: collection, apiBase: server.baseURL,
                                                          credentials: server.credentials.apiCredentials)
            #expect(server.tweetIDs(of: collection.rawValue) == ["504032379045179393", "20"])
            try await eventually { snippets.shown.last?.map(\.tweet.rawValue) == ["504032379045179393", "20"] }
            observing.cancel()
            try await observing.value  // cancelling the task ends the loop
            #expect(snippets.shown.first == view)
        }
    }

    @Test("RunningTheSyncWorker.md: events end when the group's graceful shutdown ends run()")
    func runningTheSyncWorker() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["20", "21"])
            let store = try await SyncStore.open(at: folder.path("app.sqlite"))
            try await store.remove([try TweetID(validating: "21")], from: try CollectionID(validating: id))
            try await AsyncHTTPClientTransport.withTransport { transport in
                let client = try CollectionsClient(baseURL: server.baseURL, credentials: server.credentials.apiCredentials,
                                                   transport: transport)
                var configuration = SyncEngine.Configuration()
                configuration.watchInterval = .milliseconds(20)
                let engine = try SyncEngine(store: store, client: client, configuration: configuration, logger: quiet)
                let group = ServiceGroup(services: [engine], logger: quiet)  // no signal handlers in a test process
                let snippet = Task { try await DocCSnippets().runningTheSyncWorkerEvents(engine: engine, group: group) }
                for try await status in store.observeStatus() where status.ops.pending + status.ops.inFlight == 0 { break }
                await group.triggerGracefulShutdown()
                try await snippet.value  // returns only once the event stream has ended
            }
            #expect(server.tweetIDs(of: id) == ["20"])
            #expect(try await store.status().ops == OpCounts())
        }
    }

    @Test("TestingWithTheMock.md: a lost answer, then an outage")
    func testingWithTheMock() async throws {
        let snippets = DocCSnippets()
        try await snippets.testingWithTheMock(store: try await SyncStore.open(at: folder.path("lost.sqlite")))

        try await withMockServer { server in
            let collection = try CollectionID(validating: try server.createCollection(tweetIDs: ["20"]))
            let store = try await SyncStore.open(at: folder.path("outage.sqlite"))
            try await AsyncHTTPClientTransport.withTransport { transport in
                let client = try CollectionsClient(baseURL: server.baseURL, credentials: server.credentials.apiCredentials,
                                                   transport: transport)
                let engine = try SyncEngine(store: store, client: client)
                try await snippets.testingWithTheMockOutage(server: server, store: store, collection: collection, engine: engine)
                let report = try await engine.flush(FlushOptions(timeLimit: .seconds(10), wait: true))
                #expect(report.applied == 1 && server.tweetIDs(of: collection.rawValue) == ["23", "20"])
            }
        }
    }

    @Test("WhatTheEnginePromises.md: dead letters retried or discarded, the log pruned")
    func whatTheEnginePromises() async throws {
        try await withMockServer { server in
            let collection = try CollectionID(validating: try server.createCollection(tweetIDs: ["20"]))
            try server.markDeleted(["30"])  // an add of a deleted tweet is refused for good
            let store = try await SyncStore.open(at: folder.path("app.sqlite"))
            try await store.add([try TweetID(validating: "30")], to: collection)
            try await AsyncHTTPClientTransport.withTransport { transport in
                let client = try CollectionsClient(baseURL: server.baseURL, credentials: server.credentials.apiCredentials,
                                                   transport: transport)
                let report = try await SyncEngine(store: store, client: client).flush()
                #expect(report.failed == 1)
            }
            #expect(try await store.entries(of: collection).isEmpty)  // the view went back to the base
            let snippets = DocCSnippets()
            try await snippets.whatTheEnginePromisesFailures(store: store)
            #expect(try await store.outbox(.all).isEmpty)
            try await snippets.whatTheEnginePromisesPrune(store: store)
            #expect(try await store.log(limit: 100).contains { $0.event == .discarded })  // younger than a month: kept
        }
    }

    @Test("CollectionsMock.md")
    func collectionsMock() async throws {
        try await DocCSnippets().collectionsMock()
    }

    /// Each `swift` block of every article is in this file, line for line (indentation aside).
    @Test("every swift block of the README and the DocC catalogs is compiled here")
    func everyBlockIsHere() throws {
        let here = URL(fileURLWithPath: #filePath)
        let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let lines = try String(contentsOf: here, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        var blocks = 0
        let sources = root.appendingPathComponent("Sources")
        var documents = [(name: "README.md", url: root.appendingPathComponent("README.md"))]
        for module in try FileManager.default.contentsOfDirectory(atPath: sources.path) {
            let catalog = sources.appendingPathComponent(module).appendingPathComponent("\(module).docc")
            guard let articles = try? FileManager.default.contentsOfDirectory(atPath: catalog.path) else { continue }
            for article in articles where article.hasSuffix(".md") {
                documents.append(("\(module).docc/\(article)", catalog.appendingPathComponent(article)))
            }
        }
        for (document, url) in documents {
            let text = try String(contentsOf: url, encoding: .utf8)
            var block: [String]?
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                if block == nil, line == "```swift" {
                    block = []
                } else if let found = block, line == "```" {
                    blocks += 1
                    // Imports are this file's, at its top.
                    var wanted = found.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.hasPrefix("import ") }
                    while wanted.first == "" { wanted.removeFirst() }
                    let present = lines.indices.contains { start in
                        start + wanted.count <= lines.count && Array(lines[start..<start + wanted.count]) == wanted
                    }
                    #expect(present, "a snippet of \(document) is not in SnippetTests.swift:\n\(found.joined(separator: "\n"))")
                    block = nil
                } else if block != nil {
                    block!.append(String(line))
                }
            }
        }
        #expect(blocks >= 10)
    }
}
