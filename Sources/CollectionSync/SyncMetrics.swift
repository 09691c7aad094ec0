import CollectionsAPI
import CoreMetrics
import Foundation
import Synchronization

/// The engine's metrics, through swift-metrics. The library only emits: the application
/// bootstraps a backend (`MetricsSystem.bootstrap`) before it opens the store and makes the
/// engine, or passes a factory in their configurations. Names and dimensions (the client adds
/// `collectionsync_requests_total` and `collectionsync_request_duration_seconds`):
///
/// | name | type | dimensions | when |
/// |---|---|---|---|
/// | `collectionsync_ops_queued_total` | counter | `kind` (`add`, `remove`) | an edit queued ops |
/// | `collectionsync_ops_applied_total` | counter | `kind` | the server applied an op |
/// | `collectionsync_ops_reconciled_total` | counter | `kind` | the server already had its intent |
/// | `collectionsync_ops_failed_total` | counter | `kind` | an op was dead-lettered |
/// | `collectionsync_queue_depth` | gauge | `state` (`pending`, `in_flight`, `failed`) | after each flush, pull and watch round |
/// | `collectionsync_oldest_pending_age_seconds` | gauge | | the same (0 with nothing pending) |
/// | `collectionsync_rate_limited_seconds_total` | floating-point counter | `endpoint` | each second an endpoint is rate limited, counted once |
final class SyncMetrics: Sendable {
    static let queued = "collectionsync_ops_queued_total"
    static let applied = "collectionsync_ops_applied_total"
    static let reconciled = "collectionsync_ops_reconciled_total"
    static let failed = "collectionsync_ops_failed_total"
    static let queueDepth = "collectionsync_queue_depth"
    static let oldestPendingAge = "collectionsync_oldest_pending_age_seconds"
    static let rateLimited = "collectionsync_rate_limited_seconds_total"

    private let factory: any MetricsFactory
    /// Per endpoint, the end of the rate-limit window counted so far (wall ms).
    private let countedUntil = Mutex<[Endpoint: Int64]>([:])
    // Made once: a flush counts every answered op (100,000 counter lookups are not free).
    private let queuedOps: [OpKind: Counter]
    private let appliedOps: [OpKind: Counter]
    private let reconciledOps: [OpKind: Counter]
    private let failedOps: [OpKind: Counter]

    init(_ factory: (any MetricsFactory)?) {
        let factory = factory ?? MetricsSystem.factory
        self.factory = factory
        func byKind(_ label: String) -> [OpKind: Counter] {
            Dictionary(uniqueKeysWithValues: OpKind.allCases.map {
                ($0, Counter(label: label, dimensions: [("kind", $0.rawValue)], factory: factory))
            })
        }
        queuedOps = byKind(Self.queued)
        appliedOps = byKind(Self.applied)
        reconciledOps = byKind(Self.reconciled)
        failedOps = byKind(Self.failed)
    }

    func queued(_ count: Int, _ kind: OpKind) {
        guard count > 0 else { return }
        queuedOps[kind]?.increment(by: count)
    }

    /// An answered op, as ``SyncEngine`` commits it.
    func answered(_ op: Op, _ outcome: OpOutcome) {
        switch outcome {
        case .applied: appliedOps[op.kind]?.increment()
        case .alreadyApplied: reconciledOps[op.kind]?.increment()
        case .collection(let answer): (answer.wasAlreadyApplied ? reconciledOps : appliedOps)[op.kind]?.increment()
        case .failed: failedOps[op.kind]?.increment()
        case .retry, .release: break
        }
    }

    func queue(_ status: SyncStatus, now: Date) {
        for (state, count) in [("pending", status.ops.pending), ("in_flight", status.ops.inFlight), ("failed", status.ops.failed)] {
            Gauge(label: Self.queueDepth, dimensions: [("state", state)], factory: factory).record(count)
        }
        let age = status.oldestPendingAt.map { max(now.timeIntervalSince($0), 0) } ?? 0
        Gauge(label: Self.oldestPendingAge, factory: factory).record(age)
    }

    /// `endpoint` is rate limited from `now` until `until`: the seconds of that window not
    /// counted yet are added (a window seen again adds nothing).
    func rateLimited(_ endpoint: Endpoint, now: Int64, until: Int64) {
        let added = countedUntil.withLock { counted -> Int64 in
            let from = max(now, counted[endpoint] ?? .min)
            guard until > from else { return 0 }
            counted[endpoint] = until
            return until - from
        }
        guard added > 0 else { return }
        FloatingPointCounter(label: Self.rateLimited, dimensions: [("endpoint", endpoint.rawValue)], factory: factory)
            .increment(by: Double(added) / 1000)
    }
}
