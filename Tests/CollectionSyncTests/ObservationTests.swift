@testable import CollectionSync
import CollectionsAPI
import Foundation
import Testing

/// Observing the local view and the status: the current value first, then each change, none
/// repeated; another connection's commits too; ending the iteration stops the detector.
@Suite("Observation of the local store", .timeLimit(.minutes(1)))
struct ObservationTests {
    let folder = TemporaryFolder()

    @Test("the current view first, then one value per change, in order; a commit that leaves the view as it was gives none")
    func sameProcess() async throws {
        let store = try await openStore(folder)
        try await store.add(tweets(1...3), to: c1)
        var values = store.observeEntries(of: c1).makeAsyncIterator()
        #expect(try await values.next().map { Set($0.map(\.tweet)) } == Set(tweets(1...3)))
        try await store.remove([tweet(2)], from: c1)
        #expect(try await values.next().map { Set($0.map(\.tweet)) } == [tweet(1), tweet(3)])
        // Another collection's edit commits, but this view stays the same: no value for it.
        let c2 = try CollectionID(validating: "custom-2")
        try await store.add([tweet(9)], to: c2)
        try await store.add([tweet(4)], to: c1)
        #expect(try await values.next().map { Set($0.map(\.tweet)) } == [tweet(1), tweet(3), tweet(4)])
        var status = store.observeStatus().makeAsyncIterator()
        #expect(try await status.next()?.ops.pending == 5)
        try await store.discard([OpID(1)])
        #expect(try await status.next()?.ops.pending == 4)
    }

    @Test("another connection's commit (another process's, the same way) is seen through data_version")
    func otherConnection() async throws {
        let store = try await openStore(folder)
        let other = try await openStore(folder)  // a second connection to the same file
        var values = store.observeEntries(of: c1).makeAsyncIterator()
        #expect(try await values.next() == [])
        try await other.add([tweet(7)], to: c1)
        #expect(try await values.next()?.map(\.tweet) == [tweet(7)])
        try await other.remove([tweet(7)], from: c1)
        #expect(try await values.next() == [])
    }

    @Test("ending the iteration or cancelling its task stops the check; many observers share one")
    func stops() async throws {
        let store = try await openStore(folder)
        #expect(!store.changes.isChecking)
        do {
            var first = store.observeEntries(of: c1).makeAsyncIterator()
            var second = store.observeStatus().makeAsyncIterator()
            _ = try await first.next()
            _ = try await second.next()
            #expect(store.changes.isChecking)
        }
        #expect(!store.changes.isChecking, "the iterators are gone: nothing checks any more")

        let started = AsyncStream<Void>.makeStream()
        let task = Task {
            var count = 0
            for try await _ in store.observeEntries(of: c1) {
                count += 1
                started.continuation.yield()
            }
            return count
        }
        var iterator = started.stream.makeAsyncIterator()
        await iterator.next()
        #expect(store.changes.isChecking)
        task.cancel()
        #expect(try await task.value == 1, "cancelled while waiting: the sequence ends")
        #expect(!store.changes.isChecking)
    }
}
