import Foundation
import Synchronization

extension SyncStore {
    /// The values of `fetch` over this store as they change: the current value first, then a new
    /// value after each committed transaction that changes it, whether this process or another
    /// process on the same database file made it. Equal consecutive values are not repeated.
    ///
    /// The shape of GRDB's `ValueObservation.values(in:)`: iterate it in a task; ending the
    /// iteration, or cancelling the task, stops all work for it.
    ///
    /// ```swift
    /// for try await entries in store.observeEntries(of: collection) {
    ///     show(entries)   // now, and after every change, from any process
    /// }
    /// ```
    ///
    /// This store's own commits are seen at once; another process's within
    /// ``Configuration/observationInterval`` (`PRAGMA data_version`, read only while someone
    /// observes; every observer of the store shares that one check).
    public func observe<Value: Sendable & Equatable>(
        _ fetch: @escaping @Sendable (SyncStore) async throws -> Value
    ) -> StoreObservation<Value> {
        StoreObservation(store: self, fetch: fetch)
    }

    /// The local view of `collection` as it changes (see ``observe(_:)``).
    public func observeEntries(of collection: CollectionID) -> StoreObservation<[Entry]> {
        observe { try await $0.entries(of: collection) }
    }

    /// The collections of the store (``collections()``) as they change: made, renamed, bound to
    /// their server ids, destroyed (see ``observe(_:)``).
    public func observeCollections() -> StoreObservation<[LocalCollection]> {
        observe { try await $0.collections() }
    }

    /// The queue and sync state as they change (see ``observe(_:)``).
    public func observeStatus() -> StoreObservation<SyncStatus> {
        observe { try await $0.status() }
    }
}

/// An asynchronous sequence of a value over a ``SyncStore``, as it changes (``SyncStore/observe(_:)``).
public struct StoreObservation<Value: Sendable & Equatable>: AsyncSequence, Sendable {
    public typealias Element = Value

    let store: SyncStore
    let fetch: @Sendable (SyncStore) async throws -> Value

    public func makeAsyncIterator() -> Iterator {
        Iterator(store: store, fetch: fetch)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let store: SyncStore
        let fetch: @Sendable (SyncStore) async throws -> Value
        private var registration: ChangeDetector.Registration?
        private var last: Value?
        /// The change count the last value was read after.
        private var seen: UInt64 = 0
        private var finished = false

        init(store: SyncStore, fetch: @escaping @Sendable (SyncStore) async throws -> Value) {
            self.store = store
            self.fetch = fetch
        }

        /// The current value on the first call; then the next different value, or nil once the
        /// task is cancelled.
        public mutating func next() async throws -> Value? {
            guard !finished, !Task.isCancelled else { return end() }
            let detector = store.changes
            if registration == nil {
                registration = detector.register()
                seen = detector.count
                let value = try await fetch(store)
                last = value
                return value
            }
            while true {
                guard let count = await detector.change(after: seen) else { return end() }
                // Read the count before the value: a commit during the read is seen next time.
                seen = count
                let value = try await fetch(store)
                if value != last {
                    last = value
                    return value
                }
            }
        }

        private mutating func end() -> Value? {
            finished = true
            registration = nil  // the last observer gone stops the detector's check
            return nil
        }
    }
}

/// Tells a store's observers that the database may have changed: after each of the store's own
/// write transactions (at once), and when another connection committed, which `PRAGMA
/// data_version` shows, read when a ``CommitWatcher`` says the file was written (or every
/// `interval` where it cannot tell), while at least one observer is registered.
final class ChangeDetector: Sendable {
    private struct State {
        var count: UInt64 = 0
        var observers = 0
        var waiters: [UInt64: CheckedContinuation<UInt64?, Never>] = [:]
        var nextWaiter: UInt64 = 0
        var check: Task<Void, Never>?
        var watcher: CommitWatcher.Mode?
    }

    private let state = Mutex(State())
    private let path: String
    private let interval: Duration
    private let dataVersion: @Sendable () async throws -> Int64

    init(path: String, interval: Duration, dataVersion: @escaping @Sendable () async throws -> Int64) {
        self.path = path
        self.interval = interval
        self.dataVersion = dataVersion
    }

    /// How the running check learns of other processes' commits (tests); nil when none runs.
    var watcherMode: CommitWatcher.Mode? { state.withLock { $0.check == nil ? nil : $0.watcher } }

    /// How many changes were seen so far.
    var count: UInt64 { state.withLock { $0.count } }

    /// Whether the check for other processes' commits runs (tests).
    var isChecking: Bool { state.withLock { $0.check != nil } }

    /// A change happened: wakes every waiting observer.
    func changed() {
        let (count, waiters) = state.withLock { state in
            state.count += 1
            defer { state.waiters.removeAll() }
            return (state.count, Array(state.waiters.values))
        }
        for waiter in waiters { waiter.resume(returning: count) }
    }

    /// Waits until the count passes `seen`; nil when the task is cancelled.
    func change(after seen: UInt64) async -> UInt64? {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<UInt64?, Never>) in
                let resumeNow: UInt64?? = state.withLock { state in
                    if state.count > seen { return .some(state.count) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiters[id] = continuation
                    return .none
                }
                if let value = resumeNow { continuation.resume(returning: value) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(returning: nil)
        }
    }

    /// An observer's hold on the check: the first starts it, the last one released stops it.
    final class Registration: Sendable {
        let detector: ChangeDetector
        init(_ detector: ChangeDetector) { self.detector = detector }
        deinit { detector.release() }
    }

    func register() -> Registration {
        state.withLock { state in
            state.observers += 1
            if state.check == nil { (state.check, state.watcher) = startCheck() }
        }
        return Registration(self)
    }

    private func release() {
        let check = state.withLock { state -> Task<Void, Never>? in
            state.observers -= 1
            guard state.observers == 0 else { return nil }
            defer { state.check = nil }
            return state.check
        }
        check?.cancel()
    }

    /// The check, started (its watcher's way of learning of commits with it).
    private func startCheck() -> (Task<Void, Never>, CommitWatcher.Mode) {
        let dataVersion = dataVersion
        let (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let watcher = CommitWatcher(path: path, interval: interval, fallback: max(interval * 20, .seconds(1))) {
            wake.yield()
        }
        let check = Task { [weak self] in
            // Its thread ends, and its descriptors close, with this task.
            defer { watcher.stop() }
            var known = try? await dataVersion()
            // A commit of another process between an observer's first read and this first look
            // would never show in the version: one check of everything now covers it (observers
            // read again, and keep quiet when nothing differs).
            self?.changed()
            for await _ in wakes {  // ends when the task is cancelled
                guard let version = try? await dataVersion() else { continue }  // busy: next time
                if version != known {
                    known = version
                    self?.changed()
                }
            }
        }
        return (check, watcher.mode)
    }
}
