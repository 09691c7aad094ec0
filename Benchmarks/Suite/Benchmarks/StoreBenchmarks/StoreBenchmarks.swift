import Benchmark
@_spi(Worker) import CollectionSync
import Foundation

// The store's hot paths without network:
//   EnqueueOne               one remove per call, one transaction each (B1's path)
//   EnqueueBatch1000         1,000 removes in one call (B2's path)
//   EnqueueClaimComplete400  queue 400, claim them, commit 4 answers of 100 (a flush round, no network)
//   PullMerge5000            merge of a full collection (first pull, then unchanged re-pulls) (B7)
//   Status100k               status with 100,000 queued ops (B6's query side)
// Malloc counts are deterministic and make the tightest thresholds; times are checked loosely
// (shared 2-core machines drift).

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .peakMemoryResident],
        maxDuration: .seconds(3),
        maxIterations: 1_000,
        thresholds: [
            .mallocCountTotal: .init(relative: [.p90: 5], absolute: [.p90: 50]),
            .wallClock: .init(relative: [.p90: 50]),
            .peakMemoryResident: .init(relative: [.p90: 25]),
        ])

    let collection = try! CollectionID(validating: "custom-1")
    func tweet(_ n: Int) -> TweetID { TweetID(UInt64(100_000_000 + n))! }

    /// The `size` tweets of this iteration's `round`, new to the store: the closure runs once per
    /// iteration, so a counter kept inside it would start over and re-queue (coalesce) old keys.
    func freshTweets(_ benchmark: Benchmark, round: Int, size: Int) -> [TweetID] {
        let first = (benchmark.currentIteration * benchmark.scaledIterations.count + round) * size
        return (first..<first + size).map(tweet)
    }

    /// `size` fresh removes per call (B1's path with 1, B2's with many).
    func enqueue(_ name: String, size: Int) {
        Benchmark(name) { benchmark, store in
            for round in benchmark.scaledIterations {
                try await store.remove(freshTweets(benchmark, round: round, size: size), from: collection)
            }
        } setup: {
            try await SyncStore.open(at: Scratch.path(name))
        }
    }
    enqueue("EnqueueOne", size: 1)
    enqueue("EnqueueBatch1000", size: 1_000)

    Benchmark("EnqueueClaimComplete400") { benchmark, store in
        for round in benchmark.scaledIterations {
            try await store.remove(freshTweets(benchmark, round: round, size: 400), from: collection)
            guard case .acquired(let lease) = try await store.acquireFlusherLease() else { fatalError("lease held") }
            let ops = try await store.claimDueOps(lease: lease, limit: 400)
            precondition(ops.count == 400)
            for batch in stride(from: 0, to: ops.count, by: 100).map({ ops[$0..<min($0 + 100, ops.count)] }) {
                try await store.complete(batch.map { OpResult(op: $0, outcome: .applied) }, lease: lease)
            }
            try await store.releaseFlusherLease(lease)
        }
    } setup: {
        try await SyncStore.open(at: Scratch.path("claim-complete"))
    }

    Benchmark("PullMerge5000") { benchmark, store in
        let remote = (0..<5_000).map { RemoteEntry(tweet: tweet($0), sortIndex: String(1_000_000 + $0)) }
        for _ in benchmark.scaledIterations {
            let start = try await store.beginPull(of: collection)
            blackHole(try await store.mergePull(start, entries: remote, metadata: nil))
        }
    } setup: {
        try await SyncStore.open(at: Scratch.path("pull-merge"))
    }

    Benchmark("Status100k") { benchmark, store in
        for _ in benchmark.scaledIterations {
            blackHole(try await store.status())
        }
    } setup: { () async throws -> SyncStore in
        let store = try await SyncStore.open(at: Scratch.path("status"))
        for c in 0..<20 {
            try await store.remove((0..<5_000).map { tweet(c * 5_000 + $0) }, from: CollectionID(validating: "custom-\(c + 1)"))
        }
        return store
    }
}

/// A fresh database path per benchmark, in a folder removed at exit.
enum Scratch {
    static let folder: String = {
        let path = NSTemporaryDirectory() + "collection-sync-bench-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "collection-sync-bench-\(getpid())") }
        return path
    }()

    static func path(_ name: String) -> String {
        folder + "/\(name)-\(UUID().uuidString).sqlite"
    }
}
