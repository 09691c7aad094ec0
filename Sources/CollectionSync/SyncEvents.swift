import CollectionsAPI
import Foundation
import Synchronization

/// Progress of the engine, for embedding applications (``SyncEngine/events()``).
public enum SyncEvent: Sendable, Hashable {
    /// A request left with these ops.
    case requestSent(endpoint: Endpoint, ops: Int)
    /// The server applied an op.
    case applied(Op)
    /// The server already had the op's intent (`not_found` on a remove, `duplicate` on an add).
    case reconciled(Op)
    /// The server refused an op for good: it is dead-lettered.
    case failed(Op, reason: String)
    /// Ops go back to pending until `at` after a transient failure.
    case retryScheduled(ops: Int, at: Date, error: String)
    /// Nothing is sent to `endpoint` before `until`.
    case waitingForRateLimit(endpoint: Endpoint, until: Date)
    /// A flush ended.
    case stopped(FlushReport)
    /// A pull merged.
    case pulled(PullReport)
    /// A pull fetched a page: `pages` so far, with `entries` entries in all.
    case pageFetched(collection: CollectionID, pages: Int, entries: Int)
    /// The API stopped answering (refused, reset, timeout, 5xx, malformed answers). Announced
    /// once when it happens, not at each retry; the engine logs when it answers again.
    case unreachable(reason: String)
    /// The API rejected the credentials (401/403). Announced once until a request succeeds.
    case authenticationRejected(reason: String)
}

/// Fans events out to every live subscriber; events with no subscriber are dropped.
///
/// Each subscriber has a buffer of ``capacity`` events. A subscriber that falls that far behind
/// loses the oldest ones, never silently: they are counted (``dropped``) and the first loss of
/// each subscriber is reported to the caller of ``emit(_:)`` to log.
final class EventBroadcaster: Sendable {
    static let capacity = 10_000

    private struct Subscriber {
        let continuation: AsyncStream<SyncEvent>.Continuation
        var dropping = false
    }

    /// In a class of its own, held by each stream's termination handler: a weak reference to
    /// the broadcaster there left its side table behind when the engine went first (valgrind,
    /// through the C interface: 32 bytes definitely lost per subscription).
    private final class Subscribers: Sendable {
        let table = Mutex<[UInt64: Subscriber]>([:])
    }

    private let subscribers = Subscribers()
    private let nextID = Atomic<UInt64>(0)
    private let droppedCount = Atomic<Int>(0)

    /// Events lost by slow subscribers so far.
    var dropped: Int { droppedCount.load(ordering: .relaxed) }

    func subscribe() -> AsyncStream<SyncEvent> {
        let (stream, continuation) = AsyncStream<SyncEvent>.makeStream(bufferingPolicy: .bufferingNewest(Self.capacity))
        let id = nextID.add(1, ordering: .relaxed).newValue
        continuation.onTermination = { [subscribers] _ in
            _ = subscribers.table.withLock { $0.removeValue(forKey: id) }
        }
        subscribers.table.withLock { $0[id] = Subscriber(continuation: continuation) }
        return stream
    }

    /// Sends `event` to every subscriber; returns how many subscribers started losing events now.
    @discardableResult
    func emit(_ event: SyncEvent) -> Int {
        var started = 0
        for (id, subscriber) in subscribers.table.withLock({ Array($0) }) {
            guard case .dropped = subscriber.continuation.yield(event) else { continue }
            droppedCount.add(1, ordering: .relaxed)
            if !subscriber.dropping {
                subscribers.table.withLock { $0[id]?.dropping = true }
                started += 1
            }
        }
        return started
    }

    func finish() {
        for subscriber in subscribers.table.withLock({ Array($0.values) }) { subscriber.continuation.finish() }
    }
}
