@testable import CollectionSync
import CollectionsAPI
import CollectionsMock
import Foundation
import PropertyBased
import Testing
import TestSupport

/// Two replicas and a third party edit one collection on the mock through random interleavings
/// of local edits, remote edits, pulls, flushes and outages. Afterwards both converge to the
/// server's state, and every op ever queued ended in a logged decision.
@Suite("LWW convergence of two replicas (property-based)")
struct ConvergenceTests {
    enum Step: CustomStringConvertible {
        case local(replica: Int, add: Bool, tweet: Int)
        case remote(add: Bool, tweet: Int)
        case pull(Int)
        case flush(Int)
        case outage

        /// Decodes one generated number.
        init(_ code: Int) {
            let tweet = code % 6 + 1
            switch code / 6 % 8 {
            case 0: self = .local(replica: 0, add: true, tweet: tweet)
            case 1: self = .local(replica: 0, add: false, tweet: tweet)
            case 2: self = .local(replica: 1, add: true, tweet: tweet)
            case 3: self = .local(replica: 1, add: false, tweet: tweet)
            case 4: self = .remote(add: code % 2 == 0, tweet: tweet)
            case 5: self = .pull(code % 2)
            case 6: self = .flush(code % 2)
            default: self = .outage
            }
        }

        var description: String {
            switch self {
            case .local(let replica, let add, let tweet): "\(replica == 0 ? "A" : "B") \(add ? "add" : "remove") \(tweet)"
            case .remote(let add, let tweet): "remote \(add ? "add" : "remove") \(tweet)"
            case .pull(let replica): "\(replica == 0 ? "A" : "B") pull"
            case .flush(let replica): "\(replica == 0 ? "A" : "B") flush"
            case .outage: "outage on/off"
            }
        }
    }

    /// Whether a log line ends the life of the op it names: applied or reconciled, dead-lettered,
    /// replaced, discarded, or cancelled by a remote write that won.
    static func decides(_ event: LogEvent) -> Bool {
        switch event.event {
        case .applied, .alreadyRemoved, .alreadyPresent, .failed, .coalesced, .discarded: true
        case .conflict: event.winner == .remote
        default: false
        }
    }

    @Test("random interleavings converge; no intent is lost without a logged decision")
    func converge() async throws {
        // Hundreds of runs (and the shrinker's re-runs) share one mock and one token: rate limits
        // are not what this property is about.
        var configuration = MockConfiguration()
        configuration.rateLimits = .unlimited
        try await withMockServer(configuration: configuration) { server in
            await propertyCheck(count: 40, input: Gen.int(in: 0...47).array(of: 5...40)) { codes in
                do {
                    try await run(codes.map(Step.init), server: server)
                } catch {
                    // Printed too: the shrinker keeps only the last failing input's issue.
                    print("convergence: steps \(codes.map(Step.init)) threw \(error)")
                    Issue.record("steps \(codes.map(Step.init)): \(error)")
                }
            }
        }
    }

    func run(_ steps: [Step], server: MockCollectionsServer) async throws {
        let id = try server.createCollection(tweetIDs: ["1", "2", "3"])
        let collection = try CollectionID(validating: id)
        let folder = TemporaryFolder()
        let replicas = [try await Harness.start(server, folder: folder, name: "a.sqlite"),
                        try await Harness.start(server, folder: folder, name: "b.sqlite")]
        let transport = AsyncHTTPClientTransport()
        let third = try CollectionsClient(baseURL: server.baseURL, credentials: server.credentials.apiCredentials,
            transport: transport)
        var down = false
        for step in steps {
            switch step {
            case .local(let replica, let add, let tweet):
                let ids = [TweetID(UInt64(tweet))!]
                if add { try await replicas[replica].store.add(ids, to: collection) } else { try await replicas[replica].store.remove(ids, from: collection) }
            case .remote(let add, let tweet):
                guard !down else { continue }
                // The third party's pooled connection may be one an outage just closed: like any
                // client, it tries again once (an add or remove applied twice is answered, not failed).
                for attempt in 1...2 {
                    do {
                        _ = add ? try await third.add(TweetID(UInt64(tweet))!, to: collection) : try await third.remove(TweetID(UInt64(tweet))!, from: collection)
                        break
                    } catch let error as CollectionsAPIError where error.code == .network && attempt == 1 {
                        continue
                    }
                }
            case .pull(let replica):
                _ = try? await replicas[replica].engine.pull(collection)
            case .flush(let replica):
                _ = try await replicas[replica].engine.flush()
            case .outage:
                if down { try await server.endOutage() } else { await server.beginOutage() }
                down.toggle()
            }
            for replica in replicas { try await Self.expectCountersMatch(replica.store, collection, after: steps) }
        }
        if down { try await server.endOutage() }
        for _ in 0..<2 {
            for replica in replicas { _ = try await replica.engine.flush(FlushOptions(timeLimit: .seconds(30), wait: true)) }
            for replica in replicas { try await replica.engine.pull(collection) }
        }

        let serverHas = Set(server.tweetIDs(of: id) ?? [])
        for (index, replica) in replicas.enumerated() {
            let view = Set(try await replica.store.entries(of: collection).map(\.tweet.rawValue))
            #expect(view == serverHas, "replica \(index) after \(steps)")
            #expect(try await replica.store.outbox(.all).isEmpty, "replica \(index) after \(steps)")
            // Every op that was ever queued has a logged decision.
            let log = try await replica.store.log(limit: 100_000)
            let queued = Set(log.filter { $0.event == .localWrite }.compactMap(\.op))
            let decided = Set(log.filter(Self.decides).compactMap(\.op))
            #expect(queued.subtracting(decided).isEmpty, "replica \(index): ops \(queued.subtracting(decided)) have no decision after \(steps)")
        }
        try await transport.shutdown()
        for replica in replicas { await replica.shutdown() }
    }

    /// The counters `status` reads (kept on log lines and folded, 0003) equal a count of the rows themselves.
    static func expectCountersMatch(_ store: SyncStore, _ collection: CollectionID, after steps: [Step]) async throws {
        let ops = try await store.outbox(.all)
        let counted = OpCounts(pending: ops.count { $0.state == .pending }, inFlight: ops.count { $0.state == .inFlight },
                               failed: ops.count { $0.state == .failed })
        let status = try await store.status()
        #expect(status.ops == counted, "counters after \(steps)")
        if let row = status.collections.first(where: { $0.id == collection }) {
            #expect(row.ops == counted, "collection counters after \(steps)")
            #expect(row.entries == (try await store.entries(of: collection)).count, "entry counter after \(steps)")
        }
    }
}
