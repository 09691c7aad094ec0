@_spi(Worker) @testable import CollectionSync
import Foundation
import Testing

@Suite("Pull merge and last-writer-wins")
struct PullMergeTests {
    typealias Key = LastWriterWins.Key

    // MARK: the pure decision

    @Test("decision table")
    func decisionTable() {
        let p1 = HLC(millis: 1_000), p2 = HLC(millis: 2_000)
        let before = HLC(millis: 500), after = HLC(millis: 1_500)
        let present = Key.Base(present: true, learned: p1)
        func decide(_ key: Key, previous: HLC? = p1) -> LastWriterWins.Decision {
            LastWriterWins.decide(key, previousPull: previous, pullStart: p2)
        }
        // Unchanged: nothing, whatever waits.
        #expect(decide(Key(server: true, base: present, waiting: .init(kind: .remove, hlc: after))) == .nothing)
        // Changed, nothing waiting: take the server's value, remote write stamped max(P, learned).
        #expect(decide(Key(server: false, base: present)) == .init(takeBase: true, remoteWrite: p1))
        // Changed, waiting op agrees with the server: no conflict.
        #expect(decide(Key(server: false, base: present, waiting: .init(kind: .remove, hlc: before)))
                == .init(takeBase: true, remoteWrite: p1))
        // Changed, op disagrees and is newer than the stamp: local wins.
        #expect(decide(Key(server: false, base: present, waiting: .init(kind: .add, hlc: after)))
                == .init(takeBase: true, remoteWrite: p1, conflict: .local))
        // ... older: remote wins, the op is cancelled.
        #expect(decide(Key(server: false, base: present, waiting: .init(kind: .add, hlc: before)))
                == .init(takeBase: true, remoteWrite: p1, conflict: .remote, cancelWaiting: true))
        // The stamp is the later of the previous pull and when the base was learned.
        let learnedLate = Key.Base(present: true, learned: HLC(millis: 1_800))
        #expect(decide(Key(server: false, base: learnedLate, waiting: .init(kind: .add, hlc: after)))
                == .init(takeBase: true, remoteWrite: HLC(millis: 1_800), conflict: .remote, cancelWaiting: true))
        // No base on a collection pulled before: absent as of the previous pull.
        #expect(decide(Key(server: true, base: nil)) == .init(takeBase: true, remoteWrite: p1))
        // First pull: load the base, no remote write; a disagreeing op wins.
        #expect(decide(Key(server: true, base: nil), previous: nil) == .init(takeBase: true))
        #expect(decide(Key(server: true, base: nil, waiting: .init(kind: .remove, hlc: after)), previous: nil)
                == .init(takeBase: true, conflict: .local))
        // A base learned after the pull started, or an op in flight: the pull does not touch the key.
        #expect(decide(Key(server: false, base: .init(present: true, learned: HLC(millis: 2_001)))) == .nothing)
        #expect(decide(Key(server: false, base: present, inFlight: true)) == .nothing)
        // ... except that a first pull loads the base of an in-flight key (no write, no conflict).
        #expect(decide(Key(server: true, base: nil, inFlight: true), previous: nil) == .init(takeBase: true))
    }

    // MARK: merges in the store

    @discardableResult
    func pull(_ store: SyncStore, _ server: [UInt64]) async throws -> PullReport {
        let start = try await store.beginPull(of: c1)
        return try await store.mergePull(start, entries: entries(server), metadata: nil)
    }

    func entries(_ server: [UInt64]) -> [RemoteEntry] {
        server.enumerated().map { RemoteEntry(tweet: tweet($1), sortIndex: String(1_000 - $0), featureContext: "fc\($1)") }
    }

    func view(_ store: SyncStore) async throws -> [UInt64] {
        try await store.entries(of: c1).map(\.tweet.value)
    }

    @Test("first pull loads the server's entries in order with metadata; local ops win and are logged")
    func firstPull() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock()
        let store = try await openStore(folder, clock: clock)
        let removal = try await store.remove([tweet(2)], from: c1)[0]
        try await store.add([tweet(9)], to: c1)
        let start = try await store.beginPull(of: c1)
        let report = try await store.mergePull(start, entries: entries([1, 2, 3]),
                                               metadata: CollectionMetadata(name: "Cats", timelineOrder: "curation_reverse_chron"))
        // Both local ops disagree with the server: the remove of 2 and the add of 9.
        #expect(report == PullReport(collection: c1, entries: 3, remoteWrites: 0, conflicts: 2))
        #expect(try await view(store) == [9, 1, 3])
        let conflict = try #require(try await store.log(conflictsOnly: true).first { $0.tweet == tweet(2) })
        #expect(conflict.winner == .local && conflict.op == removal.id && conflict.tweet == tweet(2))
        #expect(conflict.localHLC == removal.hlc && conflict.remoteHLC == nil)
        #expect(try await store.outbox().count == 2)
        #expect(try await store.status().collections.first?.lastPulledAt == Date(millis: clock.now))
        #expect(try rows(store.path, "SELECT name, timeline_order FROM collections") == [["Cats", "curation_reverse_chron"]])
    }

    @Test("remote writes without local ops take the server's value and are logged")
    func remoteWrites() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        try await pull(store, [1, 2, 3])
        let report = try await pull(store, [4, 1, 3])
        #expect(report == PullReport(collection: c1, entries: 3, remoteWrites: 2, conflicts: 0))
        #expect(try await view(store) == [4, 1, 3])
        let writes = try await store.log(limit: 10).filter { $0.event == .remoteWrite }
        #expect(Set(writes.map(\.tweet)) == [tweet(2), tweet(4)])
        // Unchanged again: nothing new.
        #expect(try await pull(store, [4, 1, 3]).remoteWrites == 0)
    }

    @Test("local wins: an op made after the remote write's earliest moment is kept")
    func localWins() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock()
        let store = try await openStore(folder, clock: clock)
        try await pull(store, [1])
        clock.advance(by: 1_000)
        // Remove and re-add: one add op, whose intent equals the base.
        try await store.remove([tweet(1)], from: c1)
        let add = try await store.add([tweet(1)], to: c1)[0]
        clock.advance(by: 1_000)
        // Meanwhile another device removed tweet 1.
        let report = try await pull(store, [])
        #expect(report.conflicts == 1 && report.remoteWrites == 1)
        let conflict = try #require(try await store.log(conflictsOnly: true).first)
        #expect(conflict.winner == .local && conflict.localHLC == add.hlc)
        #expect(try #require(conflict.remoteHLC) < add.hlc)
        #expect(try await store.outbox().map(\.id) == [add.id])
        #expect(try await view(store) == [1])
    }

    @Test("remote wins: an op older than the remote write is cancelled and the view takes the server's value")
    func remoteWins() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock()
        let store = try await openStore(folder, clock: clock)
        try await pull(store, [1])
        clock.advance(by: 1_000)
        try await store.remove([tweet(1)], from: c1)
        let add = try await store.add([tweet(1)], to: c1)[0]
        clock.advance(by: 1_000)
        try await pull(store, [1])  // unchanged: the op stays
        #expect(try await store.outbox().map(\.id) == [add.id])
        clock.advance(by: 1_000)
        let report = try await pull(store, [])  // removed remotely after the last pull began
        #expect(report.conflicts == 1)
        let conflict = try #require(try await store.log(conflictsOnly: true).first)
        #expect(conflict.winner == .remote && conflict.op == add.id)
        #expect(try #require(conflict.remoteHLC) > add.hlc)
        #expect(try await store.outbox().isEmpty)
        #expect(try await view(store).isEmpty)
    }

    @Test("a base learned from a flush answer after the last pull moves the remote write's stamp")
    func baseFromFlushAnswer() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock()
        let store = try await openStore(folder, clock: clock)
        try await pull(store, [])
        clock.advance(by: 1_000)
        let first = try await store.add([tweet(1)], to: c1)[0]
        guard case .acquired(let lease) = try await store.acquireFlusherLease() else { Issue.record("no lease"); return }
        _ = try await store.claimDueOps(lease: lease, limit: 10)
        // While the add is in flight the user removes and re-adds: one add op waits behind it.
        clock.advance(by: 1_000)
        try await store.remove([tweet(1)], from: c1)
        let behind = try await store.add([tweet(1)], to: c1)[0]
        clock.advance(by: 1_000)
        try await store.complete([OpResult(op: first.id, outcome: .applied)], lease: lease)  // base present, learned now
        clock.advance(by: 1_000)
        // Another device removed it after our add applied; the waiting add predates that answer.
        let report = try await pull(store, [])
        #expect(report.remoteWrites == 1 && report.conflicts == 1)
        let conflict = try #require(try await store.log(conflictsOnly: true).first)
        #expect(conflict.winner == .remote && conflict.op == behind.id)
        #expect(try await view(store).isEmpty)
    }

    @Test("a base learned after the pull started is not overwritten by it; in-flight keys are left alone")
    func answerDuringPull() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock()
        let store = try await openStore(folder, clock: clock)
        try await pull(store, [])
        let a = try await store.add([tweet(1)], to: c1)[0]
        try await store.add([tweet(2)], to: c1)
        guard case .acquired(let lease) = try await store.acquireFlusherLease() else { Issue.record("no lease"); return }
        _ = try await store.claimDueOps(lease: lease, limit: 10)
        let start = try await store.beginPull(of: c1)
        clock.advance(by: 10)
        try await store.complete([OpResult(op: a.id, outcome: .applied)], lease: lease)
        // The pages were fetched before either add reached the server.
        let report = try await store.mergePull(start, entries: [], metadata: nil)
        #expect(report == PullReport(collection: c1, entries: 2, remoteWrites: 0, conflicts: 0))
        #expect(try await view(store).sorted() == [1, 2])
    }

    @Test("rows absent everywhere with nothing waiting are dropped by a pull")
    func pruning() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        try await pull(store, Array(1...50))
        #expect(try rows(store.path, "SELECT count(*) FROM entries") == [["50"]])
        try await pull(store, [])
        #expect(try rows(store.path, "SELECT count(*) FROM entries") == [["0"]])
        #expect(try await view(store).isEmpty)
    }

    @Test("a pull that started before the last merged one changes nothing")
    func olderPullIgnored() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock()
        let store = try await openStore(folder, clock: clock)
        try await pull(store, [1, 2])
        let older = try await store.beginPull(of: c1)
        clock.advance(by: 10)
        let newer = try await store.beginPull(of: c1)
        try await store.mergePull(newer, entries: entries([1]), metadata: nil)
        let report = try await store.mergePull(older, entries: entries([1, 2]), metadata: nil)
        #expect(report == PullReport(collection: c1, entries: 1, remoteWrites: 0, conflicts: 0))
        #expect(try await view(store) == [1])
    }
}
