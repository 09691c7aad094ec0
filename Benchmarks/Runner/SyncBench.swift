import ArgumentParser
@_spi(Worker) import CollectionSync
import CollectionsAPI
import CollectionsMock
import Foundation

/// The measuring half of `Benchmarks/compare`: each subcommand runs one case once, for our
/// engine or for its baseline, and prints one JSON object on stdout. The script runs them as
/// separate processes, ours and the baseline alternating, and takes medians.
@main
struct SyncBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "syncbench",
        abstract: "Run one benchmark case once and print its figures as JSON (driven by Benchmarks/compare).",
        subcommands: [Enqueue.self, FlushFloor.self, PullMerge.self, Mock.self, Seed.self, NaiveReplay.self, LogPrune.self,
                      ObserveLatency.self, ObserveWriter.self, ObserveIdle.self, DetectChanges.self])
}

enum Engine: String, ExpressibleByArgument {
    /// This engine, through its public API.
    case ours
    /// The same rows through the SQLite C API, same schema, PRAGMAs and indexes, plus our
    /// per-collection counters kept as our store keeps them (B1 only: our code's own overhead).
    case raw
    /// The same without the counters: only the rows the semantics require.
    case rawRows = "raw-rows"
}

/// Prints one JSON object of numbers and strings.
func report(_ figures: [String: Any]) throws {
    let data = try JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// The tweet ids of the benchmark's collections: collection `c` (0-based) holds `perCollection`
/// ids, distinct across collections.
func tweetIDs(collection c: Int, count perCollection: Int) -> [String] {
    (0..<perCollection).map { String(100_000_000 + c * 1_000_000 + $0) }
}

/// B1 and B2: queue `count` removes, one per call (one transaction each) or all in one call.
struct Enqueue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "B1/B2: queue removes; prints ops_per_s.")

    @Option var engine: Engine
    @Option(help: "one: one remove per call; batch: all in one call.") var mode: String
    @Option var count: Int
    @Option var db: String

    func validate() throws {
        guard ["one", "batch"].contains(mode) else { throw ValidationError("--mode is one or batch") }
        guard count > 0 else { throw ValidationError("--count must be positive") }
    }

    func run() async throws {
        let ids = tweetIDs(collection: 0, count: count)
        let collection = "custom-1000"
        let clock = ContinuousClock()
        let elapsed: Duration
        switch engine {
        case .ours:
            let store = try await SyncStore.open(at: db)
            let target = try CollectionID(validating: collection)
            let tweets = try ids.map { try TweetID(validating: $0) }
            if mode == "one" {
                elapsed = try await clock.measure {
                    for tweet in tweets { try await store.remove([tweet], from: target) }
                }
            } else {
                elapsed = try await clock.measure { try await store.remove(tweets, from: target) }
            }
        case .raw, .rawRows:
            let raw = try RawStore(path: db, counters: engine == .raw)
            try raw.ensureCollection(collection)
            if mode == "one" {
                elapsed = try clock.measure {
                    for id in ids { try raw.transaction { try raw.queueRemove(collection, id) } }
                }
            } else {
                elapsed = try clock.measure {
                    try raw.transaction { for id in ids { try raw.queueRemove(collection, id) } }
                }
            }
        }
        try report(["ops": count, "seconds": seconds(elapsed), "ops_per_s": Double(count) / seconds(elapsed)])
    }
}

/// B3's ceiling: the SQLite work a flush cannot avoid, alone (raw-rows: through the C API, no
/// counters, set-based), or our store doing the same without network (ours). `count` queued
/// removes are written first (not timed); then, in rounds of 4 x 100 like a flush, one
/// transaction claims a round and one per 100 commits their answers.
struct FlushFloor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "B3 ceiling: the rows a flush writes, through the C API (raw-rows) or our store without network (ours); prints ops_per_s.")

    @Option var engine: Engine = .rawRows
    @Option var count: Int
    @Option var db: String

    func validate() throws {
        guard engine != .raw else { throw ValidationError("--engine is ours or raw-rows: the floor keeps no counters") }
        guard count > 0 else { throw ValidationError("--count must be positive") }
    }

    func run() async throws {
        let collection = "custom-1000"
        let ids = tweetIDs(collection: 0, count: count)
        if engine == .ours {
            let store = try await SyncStore.open(at: db)
            try await store.remove(try ids.map { try TweetID(validating: $0) }, from: try CollectionID(validating: collection))
            guard case .acquired(let lease) = try await store.acquireFlusherLease() else { throw ValidationError("the lease is held") }
            let elapsed = try await ContinuousClock().measure {
                while case let claimed = try await store.claimDueOps(lease: lease, limit: 400), !claimed.isEmpty {
                    for batch in stride(from: 0, to: claimed.count, by: 100) {
                        let results = claimed[batch..<min(batch + 100, claimed.count)].map { OpResult(op: $0, outcome: .applied) }
                        try await store.complete(results, lease: lease)
                    }
                }
            }
            let left = try await store.status().ops
            try report(["ops": count, "seconds": seconds(elapsed), "ops_per_s": Double(count) / seconds(elapsed),
                        "ops_left": left.pending + left.inFlight + left.failed])
            return
        }
        let raw = try RawStore(path: db, counters: false)
        try raw.ensureCollection(collection)
        try raw.transaction { for id in ids { try raw.queueRemove(collection, id) } }
        let ops = Array(zip(Int64(1)..., ids))
        let elapsed = try ContinuousClock().measure {
            for round in stride(from: 0, to: ops.count, by: 400) {
                let claimed = ops[round..<min(round + 400, ops.count)]
                try raw.transaction { try raw.claim(claimed) }
                for batch in stride(from: claimed.startIndex, to: claimed.endIndex, by: 100) {
                    try raw.transaction { try raw.applied(claimed[batch..<min(batch + 100, claimed.endIndex)], collection) }
                }
            }
        }
        // The op ids are 1...count only in a fresh database: what is left says whether they were.
        try report(["ops": count, "seconds": seconds(elapsed), "ops_per_s": Double(count) / seconds(elapsed),
                    "ops_left": try raw.rows("ops")])
    }
}
