import CollectionsAPI
import CoreMetrics
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// How a flush went.
public struct FlushReport: Sendable, Hashable {
    /// Why the flush ended.
    public enum StopReason: Sendable, Hashable {
        /// Nothing is pending.
        case drained
        /// Ops are pending but none is due yet (backoff).
        case notDue
        /// An endpoint is rate limited until this time.
        case rateLimited(until: Date)
        /// The deadline passed with ops pending.
        case deadline
        /// The API rejected the credentials (401/403, 400/215): the error a pull would throw for
        /// the same answer. Ops are kept, attempts not counted.
        case authentication(CollectionsAPIError)
        /// The configuration is unusable (a base URL that does not serve the API, a collection id
        /// it does not know, ...): the error a pull would throw. Ops are kept.
        case configuration(CollectionsAPIError)
        /// Another flusher holds the lease.
        case leaseHeld(LeaseHolder)
        /// The flush's task was cancelled, or its service group shut down (see ``SyncEngine/flush(_:)``).
        case cancelled
    }

    /// Ops sent in requests (an op sent twice counts twice).
    public var sent = 0
    public var applied = 0
    /// Ops whose intent the server already had (`not_found` removes, `duplicate` adds).
    public var alreadyApplied = 0
    /// Ops dead-lettered by this flush.
    public var failed = 0
    /// Ops pending or in flight when the flush ended.
    public var pending = 0
    /// Dead-lettered ops in the outbox when the flush ended (from this flush or earlier).
    public var deadLetters = 0
    /// Requests sent.
    public var requests = 0
    /// The earliest time a pending op becomes due.
    public var nextAttemptAt: Date?
    /// The last transient failure (network, timeout, 5xx, malformed answer) if the last attempt
    /// of the flush failed that way: the API could not be reached. A pull throws the same error.
    public var unreachable: CollectionsAPIError?
    public var stopReason: StopReason = .drained

    public init() {}
}

/// Options of one flush.
public struct FlushOptions: Sendable {
    /// How long the flush may take, from the moment it is called, on the engine's clock
    /// (``SyncEngine/Configuration/clock``): no request outlives it, and the flush stops there.
    public var timeLimit: Duration?
    /// Sleep through backoff and rate-limit waits (and a held lease) until the queue is empty or
    /// the time limit passes.
    public var wait = false

    public init(timeLimit: Duration? = nil, wait: Bool = false) {
        self.timeLimit = timeLimit
        self.wait = wait
    }
}

/// The sync worker: replays the outbox against the Collections API and pulls collections.
///
/// ## Errors
/// One model for ``flush(_:)`` and ``pull(_:timeLimit:)``; every error keeps its code:
/// - The **local database** failing throws ``SyncError`` from both (``SyncError/Code``).
/// - The **API** failing is a `CollectionsAPIError` in both, decided by the same rules
///   (semantics.md's classification table). A pull is one thing that either merges or changes
///   nothing, so it throws that error. A flush is many independent ops, so it never throws an
///   API error: each op's fate is in the outbox (and in ``events()``), and what stopped the flush
///   is in its report: the very error a pull would throw for the same answer, in
///   ``FlushReport/StopReason/authentication(_:)``, ``FlushReport/StopReason/configuration(_:)``
///   or ``FlushReport/unreachable``.
/// - Cancellation: a pull throws `CollectionsAPIError` with code `.cancelled`; a flush reports
///   ``FlushReport/StopReason/cancelled``.
public final class SyncEngine: Sendable {
    // A flush is a `FlushRound` (the decisions, no I/O) driven by this engine
    // (SyncEngine+Flush.swift: claim, send, commit, sleep), under the flusher lease, which a
    // heartbeat child task renews.

    /// How the engine works. Defaults are the spec's.
    public struct Configuration: Sendable {
        /// Changes per `entries/curate` request, 1...100; 1 uses `entries/add` / `entries/remove`.
        public var batchSize = 100
        /// Requests in flight at once.
        public var concurrency = 4
        /// How long the flusher lease lasts between renewals (the heartbeat renews it every third).
        public var leaseTTL: Duration = .seconds(30)
        /// Backoff after transient failures.
        public var backoff = Backoff()
        /// Dead-letter an op after this many transient failures; nil (the default) never does.
        public var maxAttempts: Int?
        /// The engine's one clock for time limits and sleeps (backoff and rate-limit waits, the
        /// lease's heartbeat, the watch loop). Stamps and the server's times are read on the
        /// store's wall clock (``SyncStore/Configuration/wallClock``), which the client shares.
        public var clock: any Clock<Duration> = ContinuousClock()
        /// A draw in [0, 1] for the jitter: one per failed request.
        public var jitter: @Sendable () -> Double = { Double.random(in: 0...1) }
        /// How often the watch loop looks for new or newly due ops.
        public var watchInterval: Duration = .seconds(1)
        /// The user whose `collections/list` a create of a collection made offline reads first
        /// (semantics.md, offline collections, 4); nil: the numeric prefix of the OAuth 1.0a
        /// access token. With neither (a Bearer token alone) creates are not sent: a flush sends
        /// the other ops and stops with a configuration error.
        public var userID: String?
        /// Where the engine's metrics go (names and dimensions: "Metrics" in the article on
        /// running the sync worker); nil: the process's `MetricsSystem`, as bootstrapped when the
        /// engine is made (nothing when it was not). The library never bootstraps it.
        public var metricsFactory: (any MetricsFactory)?

        public init() {}
    }

    public let store: SyncStore
    public let client: CollectionsClient
    let configuration: Configuration
    let logger: Logger
    let metrics: SyncMetrics
    private let broadcaster = EventBroadcaster()
    private let health = Mutex(SyncHealth())
    /// The newest expiry this engine set on its lease, by holder token (see ``holdsLeaseSurely(_:)``).
    private let leaseExpiry = Mutex<(holder: String, expiresAt: Date)?>(nil)
    var apiBase: String { client.baseURL }

    /// - Throws: ``SyncError/Code/invalidInput`` for a batch size outside 1...100 or a
    ///   concurrency below 1.
    public init(store: SyncStore, client: CollectionsClient, configuration: Configuration = Configuration(),
                logger: Logger = Logger(label: "collection-sync", factory: { _ in SwiftLogNoOpLogHandler() })) throws {
        guard (1...100).contains(configuration.batchSize) else {
            throw SyncError.invalid("the batch size must be 1 to 100, not \(configuration.batchSize)")
        }
        guard configuration.concurrency >= 1 else {
            throw SyncError.invalid("the concurrency must be 1 or more, not \(configuration.concurrency)")
        }
        self.store = store
        self.client = client
        self.configuration = configuration
        self.logger = logger
        metrics = SyncMetrics(configuration.metricsFactory)
    }

    deinit { broadcaster.finish() }

    /// A stream of progress events from now on. Ends when the subscriber stops iterating, when
    /// ``run()`` returns (after the events it caused), or when the engine is released.
    ///
    /// Each stream buffers up to 10,000 events. A subscriber that falls further behind loses the
    /// oldest: never silently, they are counted in ``droppedEvents`` and the first loss of each
    /// stream is logged as a warning.
    public func events() -> AsyncStream<SyncEvent> { broadcaster.subscribe() }

    /// Events lost by subscribers that fell more than 10,000 events behind (see ``events()``).
    public var droppedEvents: Int { broadcaster.dropped }

    /// Ends every event stream given out so far.
    func finishEvents() { broadcaster.finish() }

    func emit(_ event: SyncEvent) {
        if broadcaster.emit(event) > 0 {
            logger.warning("a subscriber of the engine's events fell \(EventBroadcaster.capacity) events behind: it loses the oldest from now on",
                           metadata: ["events.dropped": "\(broadcaster.dropped)"])
        }
    }

    /// Notes what a request got (or what followed from it), and logs and announces a change of
    /// the sync's health, once.
    func observe(_ observation: SyncHealth.Observation) {
        for notice in health.withLock({ $0.observe(observation) }) {
            logger.log(level: notice.level, "\(notice.message)", metadata: notice.metadata)
            if let event = notice.event { emit(event) }
        }
    }

    // MARK: - Flush

    /// Replays due ops: takes the flusher lease, claims due ops, sends them in batches (up to
    /// ``Configuration/concurrency`` requests at once), commits every answer, and returns why it
    /// stopped. Database failures throw ``SyncError``; API failures are in the report (see
    /// "Errors" in ``SyncEngine``).
    ///
    /// Two ways to stop it early, both ending in a report with ``FlushReport/StopReason/cancelled``
    /// and the lease released:
    /// - a **graceful shutdown** of the swift-service-lifecycle `ServiceGroup` it runs in: no new
    ///   request starts, answers already on the wire are awaited and committed, and ops claimed
    ///   but not sent go back to pending (a group's `maximumGracefulShutdownDuration` bounds the
    ///   wait by cancelling);
    /// - **cancelling its task**: requests on the wire are abandoned too, and their ops go back to
    ///   pending without counting an attempt.
    public func flush(_ options: FlushOptions = FlushOptions()) async throws -> FlushReport {
        let stopwatch = Stopwatch(configuration.clock)
        let lease: FlusherLease
        switch try await takeLease(options, stopwatch) {
        case .heldBy(let holder):
            var report = try await finalReport(FlushReport())
            report.stopReason = .leaseHeld(holder)
            emit(.stopped(report))
            return report
        case .acquired(let acquired):
            lease = noteLease(acquired)
        }
        do {
            let report = try await withHeartbeat(lease) { try await drain(lease: lease, options: options, stopwatch: stopwatch) }
            try await store.releaseFlusherLease(lease)
            emit(.stopped(report))
            return report
        } catch {
            try? await store.releaseFlusherLease(lease)
            throw error
        }
    }

    /// Takes the lease, waiting for it with `wait` until the time limit.
    private func takeLease(_ options: FlushOptions, _ stopwatch: Stopwatch) async throws -> LeaseAcquisition {
        while true {
            let acquisition = try await store.acquireFlusherLease(ttl: configuration.leaseTTL)
            guard case .heldBy(let holder) = acquisition, options.wait, !Task.isShuttingDownGracefully else { return acquisition }
            let untilExpiry = max(holder.expiresAt.millis - store.wallClock.nowMillis(), 50)
            let pause = Duration.milliseconds(min(untilExpiry, 1_000))
            if let limit = options.timeLimit, stopwatch.elapsed + pause >= limit { return acquisition }
            try await configuration.clock.sleep(for: pause)
        }
    }

    func finalReport(_ report: FlushReport) async throws -> FlushReport {
        var report = report
        let status = try await store.status()
        report.pending = status.ops.pending + status.ops.inFlight
        report.deadLetters = status.ops.failed
        report.nextAttemptAt = status.nextAttemptAt
        if report.pending == 0 { report.unreachable = nil }
        metrics.queue(status, now: store.wallClock.now())
        return report
    }

    // MARK: - The lease

    /// Runs `body` while a child task renews `lease` every third of its time to live, so that
    /// slow answers and long waits do not let another flusher take it over.
    func withHeartbeat<T: Sendable>(_ lease: FlusherLease, _ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
            group.addTask { await self.heartbeat(lease) }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    private func heartbeat(_ initial: FlusherLease) async {
        var lease = initial
        let interval = configuration.leaseTTL / 3
        while true {
            // A beat may come a little late: its tolerance says so (and lets test clocks tell it
            // from the flush's own sleeps).
            do { try await configuration.clock.sleep(for: interval, tolerance: interval / 10) } catch { return }
            do {
                lease = noteLease(try await store.renewFlusherLease(lease, ttl: configuration.leaseTTL))
            } catch let error as SyncError where error.code == .leaseNotHeld {
                // Taken over: the next request asks the database, finds it lost and stops the flush.
                leaseExpiry.withLock { $0 = nil }
                logger.warning("the flusher lease was taken over by another flusher")
                return
            } catch {
                continue  // the database is busy: the next beat tries again, well before the lease expires
            }
        }
    }

    /// Remembers the expiry a renewal (or the acquisition) gave `lease`.
    @discardableResult
    func noteLease(_ lease: FlusherLease) -> FlusherLease {
        leaseExpiry.withLock { known in
            if let current = known, current.holder == lease.holder, current.expiresAt >= lease.expiresAt { return }
            known = (lease.holder, lease.expiresAt)
        }
        return lease
    }

    /// Whether `lease` is surely still this engine's without asking the database: its last
    /// renewal is recent (more than half its time to live is left). Another flusher takes a
    /// lease over only once it has expired (or its holder's process is gone, and this one is
    /// running), so only a wall clock more than half a TTL ahead of this one elsewhere could
    /// take it sooner; and an answer for ops another holder took over is not committed anyway.
    func holdsLeaseSurely(_ lease: FlusherLease) -> Bool {
        guard let known = leaseExpiry.withLock({ $0 }), known.holder == lease.holder else { return false }
        let left = known.expiresAt.millis - store.wallClock.nowMillis()
        return left > configuration.leaseTTL.milliseconds / 2
    }
}

/// Time on an injected clock since a start.
struct Stopwatch: Sendable {
    private let read: @Sendable () -> Duration

    init<C: Clock>(_ clock: C) where C.Duration == Duration {
        let start = clock.now
        read = { start.duration(to: clock.now) }
    }

    var elapsed: Duration { read() }
}

/// ``SyncEngine/run()`` is the watch loop, to run in a `ServiceGroup` beside an application's
/// other services.
extension SyncEngine: Service {}
