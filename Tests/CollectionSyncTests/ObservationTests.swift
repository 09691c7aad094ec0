@testable import CollectionSync
import CollectionsAPI
import Foundation
import Synchronization
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
            #if os(Linux)
            #expect(store.changes.watcherMode == .notified, "inotify tells of other processes' commits")
            #endif
        }
        #expect(!store.changes.isChecking, "the iterators are gone: nothing checks any more")
        #expect(store.changes.watcherMode == nil)

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

/// The watcher behind other processes' commits: woken by writes to the database and its WAL,
/// not by other files of the folder, and silent once stopped.
@Suite("Commit watcher", .timeLimit(.minutes(1)))
struct CommitWatcherTests {
    let folder = TemporaryFolder()

    /// Wakes, as they come.
    final class Wakes: Sendable {
        let stream: AsyncStream<Void>
        let continuation: AsyncStream<Void>.Continuation
        private let total = Atomic<Int>(0)
        var count: Int { total.load(ordering: .relaxed) }
        init() { (stream, continuation) = AsyncStream<Void>.makeStream() }
        func wake() {
            total.add(1, ordering: .relaxed)
            continuation.yield()
        }
    }

    func append(_ name: String) throws {
        let url = folder.url.appendingPathComponent(name)
        if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("frame".utf8))
        try handle.close()
    }

    #if os(Linux)
    @Test("a write to the WAL wakes it, with follow-up looks; another file of the folder does not; after stop, nothing")
    func wakes() async throws {
        try append("sync.sqlite")
        let wakes = Wakes()
        // No fallback within the test: every wake comes from a write.
        let watcher = CommitWatcher(path: folder.path("sync.sqlite"), interval: .milliseconds(50), fallback: .seconds(3_600)) {
            wakes.wake()
        }
        #expect(watcher.mode == .notified)
        var iterator = wakes.stream.makeAsyncIterator()
        try append("sync.sqlite-wal")
        for _ in 0...CommitWatcher.followUps.count { await iterator.next() }   // the event, then each follow-up
        let settled = wakes.count
        try append("unrelated.txt")
        try await Task.sleep(for: .milliseconds(100))   // (a window for a wake that must not come)
        #expect(wakes.count == settled, "another file of the folder")
        try append("sync.sqlite-wal")
        await iterator.next()
        watcher.stop()
        let stopped = wakes.count
        try append("sync.sqlite-wal")
        try await Task.sleep(for: .milliseconds(100))   // (a window for a wake that must not come)
        #expect(wakes.count == stopped)
    }
    #endif

    @Test("writes to another file of the folder, however frequent, do not hold back the follow-up looks")
    func busyFolder() async throws {
        try append("sync.sqlite")
        let wakes = Wakes()
        let watcher = CommitWatcher(path: folder.path("sync.sqlite"), interval: .milliseconds(50), fallback: .seconds(3_600)) {
            wakes.wake()
        }
        defer { watcher.stop() }
        let busy = Task.detached { [folder] in
            let other = folder.url.appendingPathComponent("busy.log")
            _ = FileManager.default.createFile(atPath: other.path, contents: nil)
            let handle = try FileHandle(forWritingTo: other)
            defer { try? handle.close() }
            while !Task.isCancelled { try handle.write(contentsOf: Data("x".utf8)) }   // many writes a millisecond
        }
        defer { busy.cancel() }
        var iterator = wakes.stream.makeAsyncIterator()
        try append("sync.sqlite-wal")
        // The event, then each follow-up: a busy neighbour that pushed the next look back at
        // each of its writes would keep this waiting until the time limit.
        for _ in 0...CommitWatcher.followUps.count { await iterator.next() }
        #expect(wakes.count >= CommitWatcher.followUps.count + 1)
    }

    @Test("where it cannot watch the folder it wakes on the clock, and stops")
    func polls() async throws {
        let wakes = Wakes()
        let watcher = CommitWatcher(path: "/nonexistent-\(UUID().uuidString)/sync.sqlite", interval: .milliseconds(5),
                                    fallback: .seconds(3_600)) { wakes.wake() }
        #expect(watcher.mode == .polling)
        var iterator = wakes.stream.makeAsyncIterator()
        for _ in 0..<3 { await iterator.next() }
        watcher.stop()
        watcher.stop()   // idempotent
    }
}
