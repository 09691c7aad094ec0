@_spi(Worker) @testable import CollectionSync
import Foundation
import Testing

@Suite("Worker seams: the flusher lease, claiming, committing answers")
struct FlushSeamTests {
    @Test("one flusher at a time; a live holder elsewhere is waited out until expiry")
    func leaseExclusiveUntilExpiry() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock()
        let store = try await openStore(folder, clock: clock)
        let first = try acquired(try await store.acquireFlusherLease(ttl: .seconds(10), host: "host-a", pid: 100, isAlive: { _ in true }))
        let second = try await store.acquireFlusherLease(ttl: .seconds(10), host: "host-b", pid: 200, isAlive: { _ in true })
        guard case .heldBy(let holder) = second else { Issue.record("second flusher got the lease"); return }
        #expect(holder.host == "host-a" && holder.pid == 100)

        clock.advance(by: 9_999)
        if case .acquired = try await store.acquireFlusherLease(ttl: .seconds(10), host: "host-b", pid: 200, isAlive: { _ in true }) {
            Issue.record("taken before expiry")
        }
        clock.advance(by: 1)
        let taken = try acquired(try await store.acquireFlusherLease(ttl: .seconds(10), host: "host-b", pid: 200, isAlive: { _ in true }))
        let lost = await #expect(throws: SyncError.self) { try await store.renewFlusherLease(first) }
        #expect(lost?.code == .leaseNotHeld)
        _ = try await store.renewFlusherLease(taken)
    }

    @Test("an expired lease is not renewed, even when nobody has taken it yet: its holder stops instead of racing a takeover")
    func expiredLeaseNotRenewed() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock()
        let store = try await openStore(folder, clock: clock)
        let lease = try acquired(try await store.acquireFlusherLease(ttl: .seconds(10)))
        clock.advance(by: 9_999)
        let renewed = try await store.renewFlusherLease(lease, ttl: .seconds(10))
        clock.advance(by: 10_000)
        let lost = await #expect(throws: SyncError.self) { try await store.renewFlusherLease(renewed, ttl: .seconds(10)) }
        #expect(lost?.code == .leaseNotHeld)
        #expect(try await !store.holdsFlusherLease(renewed))
    }

    @Test("a holder on this host whose process is gone is taken over at once, its in-flight ops back to pending")
    func deadHolderTakenOver() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        try await store.remove(tweets(1...3), from: c1)
        let dead = try acquired(try await store.acquireFlusherLease(host: "here", pid: 4242, isAlive: { _ in true }))
        #expect(try await store.claimDueOps(lease: dead, limit: 2).count == 2)
        #expect(try await store.status().ops.inFlight == 2)

        let next = try acquired(try await store.acquireFlusherLease(host: "here", pid: 5151, isAlive: { $0 != 4242 }))
        let ops = try await store.outbox(.all)
        #expect(ops.map(\.state) == [.pending, .pending, .pending])
        #expect(ops.map(\.attempts) == [1, 1, 0], "a crashed attempt still counts")
        // The dead holder's late answers are ignored; the new holder's replay reconciles.
        #expect(try await store.complete([OpResult(op: ops[0].id, outcome: .applied)], lease: dead) == 0)
        let claimed = try await store.claimDueOps(lease: next, limit: 10)
        #expect(claimed.map(\.id) == ops.map(\.id))
        await #expect(throws: SyncError.self) { try await store.claimDueOps(lease: dead, limit: 10) }
    }

    @Test("op id lists reach SQL as the JSON a formatter writes")
    func opIDJSON() {
        let samples: [[Int64]] = [[], [1], [0, 9, 10, 99, 100], [Int64.max, 1, 1_234_567_890_123], (1...500).map { $0 * 7_919 }]
        for ids in samples {
            #expect(WriteTransaction.jsonArray(ids.map(OpID.init)) == "[" + ids.map(String.init).joined(separator: ",") + "]")
        }
    }

    @Test("the real process probe: this process exists, a reaped child does not")
    func processProbe() throws {
        #expect(LocalHost.processExists(getpid()))
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        #expect(!LocalHost.processExists(child.processIdentifier))
    }

    @Test("claiming: due ops only, oldest first, never two ops of one key, attempts counted")
    func claiming() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock()
        let store = try await openStore(folder, clock: clock)
        let a = try await store.remove([tweet(1)], from: c1)[0]
        let b = try await store.add([tweet(2)], to: c2)[0]
        let lease = try acquired(try await store.acquireFlusherLease(ttl: .seconds(60)))
        #expect(try await store.claimDueOps(lease: lease, limit: 1).map(\.id) == [a.id])
        let behind = try await store.add([tweet(1)], to: c1)[0]
        let claimed = try await store.claimDueOps(lease: lease, limit: 10)
        #expect(claimed.map(\.id) == [b.id], "the op behind an in-flight op of its key waits")
        #expect(claimed[0].state == .inFlight && claimed[0].attempts == 1)

        // b fails transiently and is due in 30 s; a is applied, which frees the op behind it.
        try await store.complete([OpResult(op: b.id, outcome: .retry(at: Date(millis: clock.now + 30_000), error: "HTTP 503")),
                                  OpResult(op: a.id, outcome: .applied)], lease: lease)
        #expect(try await store.claimDueOps(lease: lease, limit: 10).map(\.id) == [behind.id])
        clock.advance(by: 30_000)
        let lease2 = try await store.renewFlusherLease(lease, ttl: .seconds(60))
        let retried = try await store.claimDueOps(lease: lease2, limit: 10)
        #expect(retried.map(\.id) == [b.id])
        #expect(retried[0].attempts == 2)
        // An auth stop gives the attempt back.
        try await store.complete([OpResult(op: b.id, outcome: .release(error: "HTTP 401 code 89"))], lease: lease2)
        let released = try #require(try await store.op(b.id))
        #expect(released.state == .pending && released.attempts == 1 && released.lastError == "HTTP 401 code 89")
    }

    @Test("answers set the key's base, log the outcome and keep the view")
    func answers() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        let removals = try await store.remove(tweets(1...2), from: c1)
        let additions = try await store.add(tweets(3...4), to: c1)
        let lease = try acquired(try await store.acquireFlusherLease())
        _ = try await store.claimDueOps(lease: lease, limit: 10)
        try await store.complete([
            OpResult(op: removals[0].id, outcome: .applied), OpResult(op: removals[1].id, outcome: .alreadyApplied),
            OpResult(op: additions[0].id, outcome: .applied), OpResult(op: additions[1].id, outcome: .alreadyApplied),
        ], lease: lease)
        #expect(try await store.outbox(.all).isEmpty)
        #expect(try await store.entries(of: c1).map(\.tweet) == [tweet(4), tweet(3)])
        #expect(try await store.entries(of: c1).allSatisfy { $0.pending == nil })
        let events = try await store.log(limit: 4).reversed().map(\.event)
        #expect(events == [.applied, .alreadyRemoved, .applied, .alreadyPresent])
        let bases = try rows(store.path, "SELECT tweet_id, present, base_present FROM entries ORDER BY tweet_id")
        #expect(bases == [["1", "0", "0"], ["2", "0", "0"], ["3", "1", "1"], ["4", "1", "1"]])
    }

    @Test("an answer for a key whose row is gone makes the row, with the view the rule gives, and counts it")
    func answerWithoutRow() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        let added = try await store.add(tweets(1...2), to: c1)
        let lease = try acquired(try await store.acquireFlusherLease())
        _ = try await store.claimDueOps(lease: lease, limit: 10)
        try await store.remove(tweets(2...2), from: c1)  // waits behind its in-flight add
        // No write leaves a key with an op but no row; a hand-edited database can.
        try execute(store.path, "DELETE FROM entries WHERE tweet_id IN ('1', '2')")
        try execute(store.path, "UPDATE collections SET entries_present = 0")
        try await store.complete(added.map { OpResult(op: $0.id, outcome: .applied) }, lease: lease)
        let made = try rows(store.path, "SELECT tweet_id, present, base_present FROM entries ORDER BY tweet_id")
        #expect(made == [["1", "1", "1"], ["2", "0", "1"]])
        #expect(try await store.status().collections.first?.entries == 1)
    }

    @Test("the counts status reads match the rows after every kind of write: edits, folds, claims, answers, retries, discards, takeovers, pulls")
    func countersFollowEveryWrite() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        func check(_ step: String) async throws { try await expectCountersMatchRows(store, after: step) }
        try await store.add(tweets(1...6), to: c1)
        try await store.remove(tweets(7...8), from: c2)
        try await check("edits")
        // Enough ops to fold the counts (0004): the ops above are counted by the counters from
        // here on, the ones below from their rows; every step moves some of each kind.
        try await store.remove(tweets(10_001...11_500), from: try CollectionID(validating: "custom-3"))
        #expect(Int(try rows(store.path, "SELECT counted_op_id FROM replica")[0][0])! >= 1_500)
        try await check("a fold")
        let first = try acquired(try await store.acquireFlusherLease(host: "here", pid: 4242, isAlive: { _ in true }))
        let claimed = try await store.claimDueOps(lease: first, limit: 6)
        try await check("a claim")
        try await store.remove(tweets(1...1), from: c1)  // waits behind its in-flight add
        try await store.add(tweets(2...2), to: c1)       // same intent as the in-flight op
        try await store.complete([OpResult(op: claimed[0].id, outcome: .applied),
                                  OpResult(op: claimed[1].id, outcome: .failed(reason: "no")),
                                  OpResult(op: claimed[2].id, outcome: .retry(at: Date(timeIntervalSinceNow: 3600), error: "later")),
                                  OpResult(op: claimed[3].id, outcome: .release(error: "unsent"))], lease: first)
        try await check("answers of every kind")
        let second = try acquired(try await store.acquireFlusherLease(host: "here", pid: 5151, isAlive: { $0 != 4242 }))
        try await check("a takeover of ops left in flight")
        try await store.retry([claimed[1].id])
        try await check("a retry")
        let again = try await store.claimDueOps(lease: second, limit: 1)
        try await store.complete(again.map { OpResult(op: $0.id, outcome: .failed(reason: "no")) }, lease: second)
        _ = try await store.retryAllFailed()
        try await check("retry all")
        try await store.discard(try await store.outbox(.waiting).filter { $0.state == .pending }.prefix(2).map(\.id))
        try await check("a discard")
        let start = try await store.beginPull(of: c1)
        try await store.mergePull(start, entries: [RemoteEntry(tweet: tweet(1), sortIndex: "9"), RemoteEntry(tweet: tweet(40), sortIndex: "8")],
                                  metadata: nil)
        try await check("a pull")
    }

    @Test("the log holds only the decision log's columns; deleting its lines (pruning, by hand) leaves the counters exact")
    func logCarriesNoBookkeeping() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        let columns = try rows(store.path, "SELECT name FROM pragma_table_info('log') ORDER BY cid").map { $0[0] }
        #expect(columns == ["id", "hlc", "replica_id", "collection_id", "tweet_id", "event", "op_id", "winner", "local_hlc", "remote_hlc", "detail"])
        try await store.add(tweets(1...600), to: c1)
        try await store.remove(tweets(1...500), from: c1)
        try await store.add(tweets(601...700), to: c2)
        let lease = try acquired(try await store.acquireFlusherLease())
        let claimed = try await store.claimDueOps(lease: lease, limit: 300)
        try await store.complete(claimed.prefix(200).map { OpResult(op: $0.id, outcome: .applied) }, lease: lease)
        try await expectCountersMatchRows(store, after: "edits and answers")
        try execute(store.path, "DELETE FROM log")
        try await expectCountersMatchRows(store, after: "deleting every log line")
        try await store.remove(tweets(521...530), from: c1)
        try await store.complete(claimed.suffix(100).map { OpResult(op: $0.id, outcome: .failed(reason: "no")) }, lease: lease)
        try await expectCountersMatchRows(store, after: "edits and answers after the deletion")
    }
}
