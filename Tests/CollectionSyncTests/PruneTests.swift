@_spi(Worker) @testable import CollectionSync
import Foundation
import Testing

@Suite("Pruning the LWW log: what is kept, the cutoff, ids, space")
struct PruneTests {
    static let day: Int64 = 86_400_000

    /// The op ids of the lines left in the log, one per line, in id order.
    func loggedOps(_ store: SyncStore) throws -> [String] {
        try rows(store.path, "SELECT coalesce(op_id, '-') FROM log ORDER BY id").map { $0[0] }
    }

    @Test("the events of ops still in the outbox are kept in every state; the others go when old")
    func keepsOutboxOps() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock()
        let store = try await openStore(folder, clock: clock)
        let queued = try await store.remove(tweets(1...5), from: c1)
        let lease = try acquired(try await store.acquireFlusherLease())
        let claimed = try await store.claimDueOps(lease: lease, limit: 3)   // 1, 2, 3 in flight
        try await store.complete([OpResult(op: claimed[0], outcome: .applied),
                                  OpResult(op: claimed[1], outcome: .failed(reason: "no"))], lease: lease)
        try await store.discard([queued[4].id])
        // Op 1 applied, 2 failed, 3 in flight, 4 pending, 5 discarded.
        #expect(try await store.outbox(.all).map { "\($0.id):\($0.state.rawValue)" } == ["2:failed", "3:in_flight", "4:pending"])
        let before = try loggedOps(store)

        // Too young: nothing goes.
        #expect(try await store.prune(olderThan: .seconds(3_600)) == 0)
        clock.advance(by: 31 * Self.day)
        let pruned = try await store.prune(olderThan: .seconds(30 * 86_400))
        let after = try loggedOps(store)
        #expect(after == before.filter { ["2", "3", "4"].contains($0) }, "\(before) -> \(after)")
        #expect(pruned == before.count - after.count)
        #expect(pruned == 4, "op 1's local_write and applied, op 5's local_write and discarded")

        // Once op 3 is answered its old line goes; the answer's own line is new and stays.
        try await store.complete([OpResult(op: claimed[2], outcome: .applied)], lease: lease)
        #expect(try await store.prune(olderThan: .seconds(30 * 86_400)) == 1)
        #expect(try loggedOps(store) == ["2", "4", "2", "3"])
        try await expectCountersMatchRows(store, after: "the prunes")
    }

    @Test("conflict events are kept unless asked for; lines with no op go by age")
    func conflicts() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock()
        let store = try await openStore(folder, clock: clock)
        // A first pull that disagrees with a waiting op: a conflict, local wins. The op then goes.
        let op = try await store.remove([tweet(1)], from: c1)[0]
        let start = try await store.beginPull(of: c1)
        let report = try await store.mergePull(start, entries: [RemoteEntry(tweet: tweet(1), sortIndex: "10", featureContext: "fc1")],
                                               metadata: nil)
        #expect(report.conflicts == 1)
        try await store.discard([op.id])
        // A later pull sees a remote write (a line with no op).
        clock.advance(by: 1_000)
        let second = try await store.beginPull(of: c1)
        try await store.mergePull(second, entries: [], metadata: nil)
        let events = Set(try await store.log(limit: 100).map(\.event))
        #expect(events.isSuperset(of: [.localWrite, .conflict, .discarded, .remoteWrite]), "\(events)")

        clock.advance(by: 2 * Self.day)
        #expect(try await store.prune(olderThan: .seconds(86_400)) == 3, "local_write, discarded, remote_write")
        #expect(try await store.log(limit: 100).map(\.event) == [.conflict])
        #expect(try await store.prune(olderThan: .seconds(86_400), includingConflicts: true) == 1)
        #expect(try await store.log(limit: 100).isEmpty)
    }

    @Test("the cutoff: a line exactly the age old is kept, one a millisecond older goes; 0 prunes all before now")
    func cutoffBoundary() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock(2_000_000_000_000)
        let store = try await openStore(folder, clock: clock)
        for tweetID in UInt64(1)...3 {
            let op = try await store.add([tweet(tweetID)], to: c1)[0]
            try await store.discard([op.id])   // two lines stamped at this millisecond, no op left
            clock.advance(by: 1)
        }
        // Lines at T, T+1 and T+2 (ms); now T+3. Older than 2 ms: the lines at T only.
        #expect(try await store.prune(olderThan: .milliseconds(2)) == 2)
        #expect(Set(try await store.log(limit: 10).map { $0.hlc.millis }) == [2_000_000_000_001, 2_000_000_000_002])
        #expect(try await store.prune(olderThan: .zero) == 4)
        #expect(try await store.log(limit: 10).isEmpty)
        // A negative age is refused; an age past 1970 prunes nothing.
        let error = await #expect(throws: SyncError.self) { try await store.prune(olderThan: .seconds(-1)) }
        #expect(error?.code == .invalidInput)
        try await store.add([tweet(9)], to: c2)
        #expect(try await store.prune(olderThan: .seconds(Int64.max)) == 0)
        #expect(LogCutoff.before(nowMillis: 5, age: .seconds(Int64.max)) == .zero)
        #expect(LogCutoff.before(nowMillis: 5_000, age: .milliseconds(1_500)) == HLC(millis: 3_500))
    }

    @Test("after the newest lines are pruned, a later line never takes a deleted id or stamp (next transaction, same transaction)")
    func idsNeverReused() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock()
        let store = try await openStore(folder, clock: clock)
        let ops = try await store.add(tweets(1...3), to: c1)
        try await store.discard(ops.map(\.id))
        let newest = try await store.log(limit: 1)[0]
        clock.advance(by: Self.day)
        #expect(try await store.prune(olderThan: .seconds(60)) == 6)
        // The wall clock goes back: the stamp must still move on.
        clock.advance(by: -2 * Self.day)
        let next = try await store.add([tweet(4)], to: c1)[0]
        let line = try await store.log(limit: 1)[0]
        #expect(line.id > newest.id && line.hlc > newest.hlc && next.hlc > newest.hlc)

        // In one transaction: prune the newest lines, then write one. The transaction read the
        // id gap when it began (none: the newest line was there); it must read it again.
        try await store.discard([next.id])
        let newestBefore = try await store.log(limit: 1)[0].id
        clock.advance(by: 3 * Self.day)
        let (pruned, written) = try await store.write { tx in
            let pruned = try tx.pruneLog(before: HLC(millis: tx.wallMillis), includingConflicts: true)
            try tx.log(.retried, c1, tweet(4), detail: "a line written after the prune, same transaction")
            return (pruned, tx.db.lastInsertRowID)
        }
        #expect(pruned == 2)
        #expect(written > newestBefore, "line \(written) reuses an id at or below \(newestBefore)")
        #expect(try await store.log(limit: 10).map(\.id) == [written])
    }

    @Test("a new file is incremental auto-vacuum, and shrinks after a prune")
    func newFileShrinks() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock()
        let path = folder.path("sync.sqlite")
        do {
            let store = try await openStore(folder, clock: clock)
            #expect(try pragma(path, "auto_vacuum") == "2")
            // 3,000 flushed ops: 6,000 lines (local_write, applied).
            let queued = try await store.remove(tweets(1...3_000), from: c1)
            let lease = try acquired(try await store.acquireFlusherLease())
            while case let claimed = try await store.claimDueOps(lease: lease, limit: 500), !claimed.isEmpty {
                try await store.complete(claimed.map { OpResult(op: $0, outcome: .applied) }, lease: lease)
            }
            #expect(queued.count == 3_000)
            try await store.releaseFlusherLease(lease)
            let pagesBefore = Int(try pragma(path, "page_count"))!
            let sizeBefore = pagesBefore * Int(try pragma(path, "page_size"))!
            clock.advance(by: 31 * Self.day)
            #expect(try await store.prune(olderThan: .seconds(30 * 86_400)) == 6_000)
            let pagesAfter = Int(try pragma(path, "page_count"))!
            #expect(try pragma(path, "freelist_count") == "0", "the freed pages were given back")
            #expect(pagesAfter * 2 < pagesBefore, "\(pagesBefore) -> \(pagesAfter) pages")
            // With every commit checkpointed into it, the file itself is that small.
            try execute(path, "PRAGMA wal_checkpoint(TRUNCATE)")
            let bytes = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
            #expect(bytes == pagesAfter * Int(try pragma(path, "page_size"))!)
            #expect(bytes * 2 < sizeBefore, "\(sizeBefore) -> \(bytes) bytes")
            #expect(try pragma(path, "integrity_check") == "ok")
        }
    }

    @Test("a file made before incremental auto-vacuum still prunes; its pages stay free for later lines (no VACUUM)")
    func oldFile() async throws {
        let folder = TemporaryFolder()
        let path = folder.path("sync.sqlite")
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/schema-0003.sqlite").path
        try FileManager.default.copyItem(atPath: fixture, toPath: path)
        let store = try await openStore(folder, clock: ManualWallClock(1_800_000_100_000 + 400 * Self.day))
        #expect(try pragma(path, "auto_vacuum") == "0")
        let pagesBefore = try pragma(path, "page_count")
        let keptOps = Set(try rows(path, "SELECT id FROM ops").map { $0[0] })
        let linesBefore = try rows(path, "SELECT op_id FROM log").count
        let pruned = try await store.prune(olderThan: .seconds(86_400))
        #expect(pruned > 0)
        let left = try rows(path, "SELECT coalesce(op_id, '-'), event FROM log")
        #expect(left.count == linesBefore - pruned)
        #expect(left.allSatisfy { keptOps.contains($0[0]) || $0[1] == "conflict" }, "\(left)")
        #expect(try pragma(path, "auto_vacuum") == "0")
        #expect(try pragma(path, "page_count") == pagesBefore, "no vacuum of any kind")
        #expect(try pragma(path, "integrity_check") == "ok")
        try await store.add([tweet(77)], to: c1)
        try await expectCountersMatchRows(store, after: "a prune of a 0003 file")
    }
}
