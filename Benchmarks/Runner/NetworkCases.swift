import ArgumentParser
@_spi(Worker) import CollectionSync
import CollectionsAPI
import CollectionsMock
import Foundation

/// The mock the network cases run against, as its own process: `collections` collections of
/// `perCollection` tweets (ids `custom-1000`, `custom-1001`, ...), rate limits off, an optional
/// fixed latency per request. Once listening it prints the base URL and credentials as one JSON
/// object keyed like syncctl's environment variables; it stops when stdin closes.
struct Mock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve a seeded mock API until stdin closes.")

    @Option var collections = 1
    @Option var perCollection = 5000
    @Option var latencyMs = 0

    func run() async throws {
        var configuration = MockConfiguration()
        configuration.capacity = max(configuration.capacity, perCollection)
        configuration.rateLimits = .unlimited
        let server = try await MockCollectionsServer.start(configuration: configuration)
        try server.seed((0..<collections).map { c in
            MockCollection(id: collectionID(c), name: "bench \(c)", tweetIDs: tweetIDs(collection: c, count: perCollection))
        })
        if latencyMs > 0 { server.setLatency(.milliseconds(latencyMs)) }
        let credentials = server.credentials
        // Named like the environment variables syncctl reads.
        try report(["SYNCCTL_API_BASE": server.baseURL,
                    "TWITTER_CONSUMER_KEY": credentials.consumerKey, "TWITTER_CONSUMER_SECRET": credentials.consumerSecret,
                    "TWITTER_ACCESS_TOKEN": credentials.accessToken, "TWITTER_ACCESS_TOKEN_SECRET": credentials.accessTokenSecret])
        fflush(nil)  // every C stream: the line must reach the pipe now
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                _ = FileHandle.standardInput.readDataToEndOfFile()
                done.resume()
            }
        }
        await server.shutdown()
    }
}

func collectionID(_ c: Int) -> String { "custom-\(1000 + c)" }

/// Fills an outbox with removes of every tweet of the benchmark's collections, one call per
/// collection (not timed by the script: it prepares B3, B4, B5 and B6).
struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Queue removes of the mock's tweets into a database.")

    @Option var db: String
    @Option var collections = 1
    @Option var perCollection = 5000

    func run() async throws {
        let store = try await SyncStore.open(at: db)
        let clock = ContinuousClock()
        let elapsed = try await clock.measure {
            for c in 0..<collections {
                let tweets = try tweetIDs(collection: c, count: perCollection).map { try TweetID(validating: $0) }
                try await store.remove(tweets, from: try CollectionID(validating: collectionID(c)))
            }
        }
        try report(["ops": collections * perCollection, "seconds": seconds(elapsed)])
    }
}

/// B3's baseline: one `entries/remove` request per op, sequential, through the same client and
/// transport, against the same mock.
struct NaiveReplay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "B3 baseline: one entries/remove per op, in sequence.")

    @Option var apiBase: String
    @Option var collections = 1
    @Option var perCollection = 5000
    @Option(help: "Replay only this many ops (the rate is flat).") var count: Int?

    func run() async throws {
        var work: [(CollectionID, TweetID)] = []
        for c in 0..<collections {
            let collection = try CollectionID(validating: collectionID(c))
            for tweet in tweetIDs(collection: c, count: perCollection) { work.append((collection, try TweetID(validating: tweet))) }
        }
        if let count { work = Array(work.prefix(count)) }
        let figures = try await AsyncHTTPClientTransport.withTransport { transport in
            let client = try CollectionsClient(baseURL: apiBase, credentials: MockCredentials.test.apiCredentials, transport: transport)
            let clock = ContinuousClock()
            var removed = 0
            let elapsed = try await clock.measure {
                for (collection, tweet) in work {
                    let result = try await client.remove(tweet, from: collection)
                    if result.outcomes.allSatisfy({ $0.outcome == .applied }) { removed += 1 }
                }
            }
            return (removed, seconds(elapsed))
        }
        guard figures.0 == work.count else { throw RawError("naive replay: \(work.count - figures.0) removes failed") }
        try report(["ops": work.count, "seconds": figures.1, "ops_per_s": Double(work.count) / figures.1])
    }
}

/// B7: a pull of a full collection (5,000 entries) into an empty store, and its merge alone
/// against the raw upsert of the same rows.
struct PullMerge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "B7: pull + merge of a full collection; prints pull_ms and merge_ms.")

    @Option var engine: Engine
    @Option var entries = 5000
    @Option(help: "A folder for the databases.") var dir: String

    func validate() throws {
        guard engine != .raw else { throw ValidationError("--engine is ours or raw-rows (the raw pull keeps no counters)") }
    }

    func run() async throws {
        var configuration = MockConfiguration()
        configuration.capacity = max(configuration.capacity, entries)
        configuration.rateLimits = .unlimited
        let figures = try await withMockServer(configuration: configuration) { server in
            try server.seed([MockCollection(id: collectionID(0), name: "bench", tweetIDs: tweetIDs(collection: 0, count: entries))])
            return try await AsyncHTTPClientTransport.withTransport { transport in
                let client = try CollectionsClient(baseURL: server.baseURL, credentials: server.credentials.apiCredentials, transport: transport)
                let fetched = try await allEntries(of: try CollectionID(validating: collectionID(0)), client)
                guard fetched.count == entries else { throw RawError("fetched \(fetched.count) of \(entries) entries") }
                let clock = ContinuousClock()
                switch engine {
                case .ours:
                    let collection = try CollectionID(validating: collectionID(0))
                    let pullStore = try await SyncStore.open(at: dir + "/pull.sqlite")
                    let engine = try SyncEngine(store: pullStore, client: client)
                    let pull = try await clock.measure { _ = try await engine.pull(collection) }
                    let remote = fetched.map { RemoteEntry(tweet: $0.tweet, sortIndex: $0.sortIndex, featureContext: $0.featureContext) }
                    let store = try await SyncStore.open(at: dir + "/merge.sqlite")
                    let merge = try await clock.measure {
                        let start = try await store.beginPull(of: collection)
                        _ = try await store.mergePull(start, entries: remote, metadata: nil)
                    }
                    return ["pull_ms": seconds(pull) * 1000, "merge_ms": seconds(merge) * 1000]
                case .raw, .rawRows:
                    let raw = try RawStore(path: dir + "/raw.sqlite", counters: false)
                    try raw.ensureCollection(collectionID(0))
                    let merge = try clock.measure {
                        try raw.transaction {
                            for entry in fetched { try raw.upsertPulledEntry(collectionID(0), entry.tweetID, sortIndex: entry.sortIndex) }
                        }
                    }
                    return ["merge_ms": seconds(merge) * 1000]
                }
            }
        }
        try report(figures)
    }
}

/// Every entry of a collection, page by page (as a pull fetches them), for the merge-alone case.
func allEntries(of collection: CollectionID, _ client: CollectionsClient) async throws -> [EntriesPage.Entry] {
    var seen = Set<TweetID>()
    var entries: [EntriesPage.Entry] = []
    var maxPosition: String?
    while true {
        let page = try await client.entries(of: collection, maxPosition: maxPosition)
        let before = entries.count
        for entry in page.entries where seen.insert(entry.tweet).inserted { entries.append(entry) }
        guard page.position.wasTruncated, entries.count > before, let next = page.position.minPosition, next != maxPosition else { break }
        maxPosition = next
    }
    return entries
}
