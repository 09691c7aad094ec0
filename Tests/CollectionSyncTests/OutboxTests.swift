@_spi(Worker) @testable import CollectionSync
import Foundation
import Testing

/// The outbox row and the log line for each step of the coalescing table in semantics.md.
@Suite("Outbox: local edits and coalescing")
struct OutboxTests {
    /// (kind, state) of every op of a key, oldest first.
    func ops(_ store: SyncStore, _ t: TweetID, in collection: CollectionID = c1) async throws -> [String] {
        try await store.outbox(.all).filter { $0.tweet == t && $0.collection == collection }.map { "\($0.kind.rawValue) \($0.state.rawValue)" }
    }

    func events(_ store: SyncStore, _ t: TweetID) async throws -> [String] {
        try await store.log(limit: 1000).reversed().filter { $0.tweet == t }.map(\.event.rawValue)
    }

    func view(_ store: SyncStore, _ collection: CollectionID = c1) async throws -> [TweetID] {
        try await store.entries(of: collection).map(\.tweet)
    }

    @Test("remove: one pending op, the local view loses the tweet, one local_write line")
    func remove() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        let queued = try await store.remove([tweet(7)], from: c1)
        #expect(queued.map(\.kind) == [.remove])
        #expect(try await ops(store, tweet(7)) == ["remove pending"])
        #expect(try await events(store, tweet(7)) == ["local_write"])
        #expect(try await view(store).isEmpty)
    }

    @Test("add: one pending op, the tweet appears marked pending add")
    func add() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        try await store.add([tweet(7)], to: c1)
        #expect(try await ops(store, tweet(7)) == ["add pending"])
        #expect(try await events(store, tweet(7)) == ["local_write"])
        #expect(try await store.entries(of: c1) == [Entry(tweet: tweet(7), sortIndex: nil, pending: .add)])
    }

    @Test("remove after add leaves one remove with the newer HLC; the add is logged as coalesced")
    func removeAfterAdd() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        let added = try await store.add([tweet(7)], to: c1)[0]
        let removed = try await store.remove([tweet(7)], from: c1)[0]
        #expect(try await ops(store, tweet(7)) == ["remove pending"])
        #expect(removed.hlc > added.hlc)
        let log = try await store.log(limit: 10).reversed().filter { $0.tweet == tweet(7) }
        #expect(log.map(\.event.rawValue) == ["local_write", "coalesced", "local_write"])
        let coalesced = log[1]
        #expect(coalesced.op == added.id && coalesced.localHLC == added.hlc)
        #expect(coalesced.detail.contains("replaced by op \(removed.id)"))
        #expect(try await view(store).isEmpty)
    }

    @Test("add after remove leaves one add; two removes leave one remove")
    func addAfterRemoveAndRepeats() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        try await store.remove([tweet(1)], from: c1)
        try await store.add([tweet(1)], to: c1)
        #expect(try await ops(store, tweet(1)) == ["add pending"])
        #expect(try await events(store, tweet(1)) == ["local_write", "coalesced", "local_write"])
        #expect(try await view(store) == [tweet(1)])

        try await store.remove([tweet(2)], from: c1)
        try await store.remove([tweet(2)], from: c1)
        #expect(try await ops(store, tweet(2)) == ["remove pending"])
        #expect(try await events(store, tweet(2)) == ["local_write", "coalesced", "local_write"])
    }

    @Test("a tweet repeated in one call counts once")
    func repeatsInOneCall() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        let queued = try await store.remove([tweet(3), tweet(4), tweet(3)], from: c1)
        #expect(queued.map(\.tweet) == [tweet(3), tweet(4)])
        #expect(try await events(store, tweet(3)) == ["local_write"])
    }

    @Test("a repeat in one call is not taken for an earlier op of its key: that one is coalesced or waited behind once")
    func repeatsOverEarlierOps() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        let earlier = try await store.add([tweet(5), tweet(6)], to: c1)
        guard case .acquired(let lease) = try await store.acquireFlusherLease() else { Issue.record("no lease"); return }
        #expect(try await store.claimDueOps(lease: lease, limit: 2).count == 2)  // both in flight
        // A pending op for tweet 5 behind its op in flight, then a call repeating 5 and 6.
        let waiting = try await store.remove([tweet(5)], from: c1)[0]
        let queued = try await store.add([tweet(5), tweet(6), tweet(5), tweet(6)], to: c1)
        #expect(queued.map(\.tweet) == [tweet(5), tweet(6)])
        #expect(try await ops(store, tweet(5)) == ["add in_flight", "add pending"])
        #expect(try await ops(store, tweet(6)) == ["add in_flight", "add pending"])
        #expect(try await events(store, tweet(5)) == ["local_write", "local_write", "coalesced", "local_write"])
        #expect(try await events(store, tweet(6)) == ["local_write", "local_write"])
        #expect(Set(queued.map(\.id)).isDisjoint(with: (earlier + [waiting]).map(\.id)))
    }

    @Test("an intent while the key's op is in flight waits behind it, and survives the answer")
    func intentWhileInFlight() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        let first = try await store.remove([tweet(9)], from: c1)[0]
        guard case .acquired(let lease) = try await store.acquireFlusherLease() else { Issue.record("no lease"); return }
        #expect(try await store.claimDueOps(lease: lease, limit: 10).map(\.id) == [first.id])

        let second = try await store.add([tweet(9)], to: c1)[0]
        #expect(try await ops(store, tweet(9)) == ["remove in_flight", "add pending"])
        #expect(!(try await events(store, tweet(9))).contains("coalesced"))
        // Another intent replaces the waiting one, never the one in flight.
        let third = try await store.remove([tweet(9)], from: c1)[0]
        let fourth = try await store.add([tweet(9)], to: c1)[0]
        #expect(try await ops(store, tweet(9)) == ["remove in_flight", "add pending"])
        #expect(try await store.outbox(.all).map(\.id) == [first.id, fourth.id])
        #expect(second.id != fourth.id && third.id != fourth.id)

        // The in-flight remove is applied: the newer add stays queued and visible.
        #expect(try await store.complete([OpResult(op: first.id, outcome: .applied)], lease: lease) == 1)
        #expect(try await store.outbox(.all).map(\.id) == [fourth.id])
        #expect(try await store.entries(of: c1) == [Entry(tweet: tweet(9), sortIndex: nil, pending: .add)])
        // And it is now due, not blocked.
        #expect(try await store.claimDueOps(lease: lease, limit: 10).map(\.id) == [fourth.id])
    }

    @Test("a failed op is replaced by a new intent like a pending one")
    func failedIsReplaced() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        let op = try await store.add([tweet(4)], to: c1)[0]
        guard case .acquired(let lease) = try await store.acquireFlusherLease() else { Issue.record("no lease"); return }
        _ = try await store.claimDueOps(lease: lease, limit: 10)
        try await store.complete([OpResult(op: op.id, outcome: .failed(reason: "not_found"))], lease: lease)
        #expect(try await ops(store, tweet(4)) == ["add failed"])
        try await store.add([tweet(4)], to: c1)
        #expect(try await ops(store, tweet(4)) == ["add pending"])
        #expect(try await events(store, tweet(4)) == ["local_write", "failed", "coalesced", "local_write"])
    }

    @Test("one call with many tweets is one transaction: ops, views and log lines all there")
    func batch() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        try await store.add(tweets(1...2_000), to: c1)
        try await store.remove(tweets(1_001...3_000), from: c1)
        let status = try await store.status()
        #expect(status.ops.pending == 3_000)
        #expect(try await view(store).count == 1_000)
        #expect(try await store.log(limit: 10_000).count == 2_000 + 2_000 + 1_000)
    }

    @Test("retry puts failed ops back; discard drops ops and reverts the view to the base")
    func retryAndDiscard() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        // The server has tweets 1 and 2 (first pull).
        let start = try await store.beginPull(of: c1)
        try await store.mergePull(start, entries: [RemoteEntry(tweet: tweet(1), sortIndex: "20"), RemoteEntry(tweet: tweet(2), sortIndex: "10")], metadata: nil)
        let removal = try await store.remove([tweet(1)], from: c1)[0]
        let addition = try await store.add([tweet(3)], to: c1)[0]
        #expect(try await view(store) == [tweet(3), tweet(2)])

        guard case .acquired(let lease) = try await store.acquireFlusherLease() else { Issue.record("no lease"); return }
        _ = try await store.claimDueOps(lease: lease, limit: 10)
        try await store.complete([OpResult(op: removal.id, outcome: .failed(reason: "forbidden_thing")),
                                  OpResult(op: addition.id, outcome: .failed(reason: "not_found"))], lease: lease)
        // Dead letters: the view reverts to the base.
        #expect(try await view(store) == [tweet(1), tweet(2)])
        #expect(try await store.outbox(.failed).map(\.lastError) == ["forbidden_thing", "not_found"])

        try await store.retry([removal.id])
        #expect(try await store.op(removal.id)?.state == .pending)
        #expect(try await view(store) == [tweet(2)])
        #expect(try await store.retryAllFailed() == [addition.id])
        #expect(try await view(store) == [tweet(3), tweet(2)])

        try await store.discard([removal.id, addition.id])
        #expect(try await store.outbox(.all).isEmpty)
        #expect(try await view(store) == [tweet(1), tweet(2)])
        let events = try await store.log(limit: 100).map(\.event)
        #expect(events.filter { $0 == .retried }.count == 2)
        #expect(events.filter { $0 == .discarded }.count == 2)
    }

    @Test("discard of an in-flight op is refused and changes nothing")
    func discardInFlight() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        let a = try await store.remove([tweet(1)], from: c1)[0]
        guard case .acquired(let lease) = try await store.acquireFlusherLease() else { Issue.record("no lease"); return }
        _ = try await store.claimDueOps(lease: lease, limit: 1)
        let b = try await store.remove([tweet(2)], from: c1)[0]
        let before = try snapshot(store.path)
        let error = await #expect(throws: SyncError.self) { try await store.discard([b.id, a.id]) }
        #expect(error?.code == .opInFlight)
        #expect(try snapshot(store.path) == before)
    }

    @Test("status counts per collection and state, with the oldest pending op and next attempt")
    func status() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock(1_900_000_000_000)
        let store = try await openStore(folder, clock: clock)
        try await store.remove(tweets(1...3), from: c1)
        clock.advance(by: 1_000)
        try await store.add(tweets(10...11), to: c2)
        guard case .acquired(let lease) = try await store.acquireFlusherLease() else { Issue.record("no lease"); return }
        let claimed = try await store.claimDueOps(lease: lease, limit: 2)
        try await store.complete([OpResult(op: claimed[0].id, outcome: .retry(at: Date(millis: clock.now + 60_000), error: "HTTP 503"))], lease: lease)
        try await store.recordRateLimit(RateLimitState(endpoint: .curate, limit: 10, remaining: 0,
                                                       resetAt: Date(millis: clock.now + 90_000), blockedUntil: Date(millis: clock.now + 90_000)),
                                        apiBase: "http://127.0.0.1:1/1.1")
        let status = try await store.status()
        #expect(status.ops == counts(pending: 4, inFlight: 1, failed: 0))
        #expect(status.collections.map(\.id) == [c1, c2])
        #expect(status.collections[0].ops == counts(pending: 2, inFlight: 1, failed: 0))
        #expect(status.collections[1].ops == counts(pending: 2, inFlight: 0, failed: 0))
        #expect(status.collections[1].entries == 2)
        #expect(status.oldestPendingAt == Date(millis: 1_900_000_000_000))
        #expect(status.nextAttemptAt == Date(millis: clock.now + 60_000))
        #expect(status.rateLimitedUntil == Date(millis: clock.now + 90_000))
        #expect(status.lastFlushAt == nil)
        try await store.releaseFlusherLease(lease)
        #expect(try await store.status().lastFlushAt == Date(millis: clock.now))
    }

    func counts(pending: Int, inFlight: Int, failed: Int) -> OpCounts {
        var counts = OpCounts()
        counts.pending = pending
        counts.inFlight = inFlight
        counts.failed = failed
        return counts
    }

    @Test("retrying a failed op that a newer op of its key supersedes drops it (coalesced), never replays it first")
    func retrySuperseded() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        let add = try await store.add([tweet(5)], to: c1)[0]
        guard case .acquired(let lease) = try await store.acquireFlusherLease() else { Issue.record("no lease"); return }
        _ = try await store.claimDueOps(lease: lease, limit: 10)
        let remove = try await store.remove([tweet(5)], from: c1)[0]
        try await store.complete([OpResult(op: add.id, outcome: .failed(reason: "x"))], lease: lease)
        #expect(try await store.retryAllFailed() == [add.id])
        #expect(try await store.outbox(.all).map(\.id) == [remove.id])
        let last = try #require(try await store.log(limit: 1).first)
        #expect(last.event == .coalesced && last.op == add.id)
    }
}
