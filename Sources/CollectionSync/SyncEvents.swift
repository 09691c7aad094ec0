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
final class EventBroadcaster: Sendable {
    private let subscribers = Mutex<[UInt64: AsyncStream<SyncEvent>.Continuation]>([:])
    private let nextID = Atomic<UInt64>(0)

    func subscribe() -> AsyncStream<SyncEvent> {
        let (stream, continuation) = AsyncStream<SyncEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let id = nextID.add(1, ordering: .relaxed).newValue
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        subscribers.withLock { $0[id] = continuation }
        return stream
    }

    func emit(_ event: SyncEvent) {
        for continuation in subscribers.withLock({ Array($0.values) }) { continuation.yield(event) }
    }

    func finish() {
        for continuation in subscribers.withLock({ Array($0.values) }) { continuation.finish() }
    }
}
