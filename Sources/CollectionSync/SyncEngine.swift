import CollectionsAPI
import Foundation
import Logging
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
        /// The API rejected the credentials (401/403, 400/215); ops are kept, attempts not counted.
        case authentication(String)
        /// The configuration is unusable (a base URL that does not serve the API, ...); ops kept.
        case configuration(String)
        /// Another flusher holds the lease.
        case leaseHeld(LeaseHolder)
        /// The flush's task was cancelled.
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
    /// of the flush failed that way: the API could not be reached.
    public var unreachable: String?
    public var stopReason: StopReason = .drained

    public init() {}
}

/// Options of one flush.
public struct FlushOptions: Sendable {
    /// No request outlives it; the flush stops there.
    public var deadline: ContinuousClock.Instant?
    /// Sleep through backoff and rate-limit waits (and a held lease) until the queue is empty or
    /// the deadline passes.
    public var wait = false

    public init(deadline: ContinuousClock.Instant? = nil, wait: Bool = false) {
        self.deadline = deadline
        self.wait = wait
    }
}

/// The sync worker: replays the outbox against the Collections API and pulls collections.
public final class SyncEngine: Sendable {
    /// How the engine works. Defaults are the spec's.
    public struct Configuration: Sendable {
        /// Changes per `entries/curate` request, 1...100; 1 uses `entries/add` / `entries/remove`.
        public var batchSize = 100
        /// Requests in flight at once.
        public var concurrency = 4
        /// How long the flusher lease lasts between renewals.
        public var leaseTTL: Duration = .seconds(30)
        /// Backoff after transient failures.
        public var backoff = Backoff()
        /// Dead-letter an op after this many transient failures; nil (the default) never does.
        public var maxAttempts: Int?
        /// The clock the engine sleeps on (waits for backoff, rate limits, the lease).
        public var sleepClock: any Clock<Duration> = ContinuousClock()
        /// A draw in [0, 1] for the jitter: one per failed request.
        public var jitter: @Sendable () -> Double = { Double.random(in: 0...1) }
        /// How often the watch loop looks for new or newly due ops.
        public var watchInterval: Duration = .seconds(1)

        public init() {}
    }

    public let store: SyncStore
    public let client: CollectionsClient
    let configuration: Configuration
    let logger: Logger
    private let broadcaster = EventBroadcaster()
    let hasRecordedSuccess = Mutex(false)
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
    }

    /// A stream of progress events from now on. Ends when the subscriber stops iterating.
    public func events() -> AsyncStream<SyncEvent> { broadcaster.subscribe() }

    func emit(_ event: SyncEvent) { broadcaster.emit(event) }

    // MARK: - Flush

    /// Replays due ops: takes the flusher lease, claims due ops, sends them in batches (up to
    /// ``Configuration/concurrency`` requests at once), commits every answer, and returns why it
    /// stopped. Database failures throw ``SyncError``; API failures are in the report.
    public func flush(_ options: FlushOptions = FlushOptions()) async throws -> FlushReport {
        let lease: FlusherLease
        switch try await takeLease(options) {
        case .heldBy(let holder):
            var report = try await finalReport(FlushReport())
            report.stopReason = .leaseHeld(holder)
            emit(.stopped(report))
            return report
        case .acquired(let acquired):
            lease = acquired
            noteLease(acquired)
        }
        do {
            let report = try await drain(lease: lease, options: options)
            try await store.releaseFlusherLease(lease)
            emit(.stopped(report))
            return report
        } catch {
            try? await store.releaseFlusherLease(lease)
            throw error
        }
    }

    /// Takes the lease, waiting for it with `wait` until the deadline.
    private func takeLease(_ options: FlushOptions) async throws -> LeaseAcquisition {
        while true {
            let acquisition = try await store.acquireFlusherLease(ttl: configuration.leaseTTL)
            guard case .heldBy(let holder) = acquisition, options.wait else { return acquisition }
            let untilExpiry = max(holder.expiresAt.timeIntervalSince(Date(millis: store.wallClock.nowMillis())), 0.05)
            let pause = Duration.milliseconds(Int64(min(untilExpiry, 1) * 1000))
            if let deadline = options.deadline, ContinuousClock.now + pause >= deadline { return acquisition }
            try await configuration.sleepClock.sleep(for: pause)
        }
    }

    /// The flush loop while holding `lease`.
    func drain(lease initial: FlusherLease, options: FlushOptions) async throws -> FlushReport {
        var lease = initial
        var report = FlushReport()
        client.clockOffset = try await store.clockOffset(apiBase: apiBase)
        let endpoints = configuration.batchSize == 1
            ? ["collections/entries/add", "collections/entries/remove"] : ["collections/entries/curate"]

        while true {
            if Task.isCancelled { report.stopReason = .cancelled; break }
            if let deadline = options.deadline, ContinuousClock.now >= deadline { report.stopReason = .deadline; break }
            lease = try await renew(lease)

            let now = Date(millis: store.wallClock.nowMillis())
            if let blocked = try await store.rateLimits(apiBase: apiBase)
                .filter({ endpoints.contains($0.endpoint) }).compactMap(\.blockedUntil).filter({ $0 > now }).max() {
                for endpoint in endpoints { emit(.waitingForRateLimit(endpoint: endpoint, until: blocked)) }
                if options.wait, try await sleep(until: blocked, deadline: options.deadline, lease: &lease) { continue }
                report.stopReason = .rateLimited(until: blocked)
                break
            }

            let ops = try await claimRound(lease)
            if ops.isEmpty {
                let summary = try await store.pendingSummary()
                if summary.pending == 0 { report.stopReason = .drained; break }
                if options.wait, let next = summary.nextAttemptAt, try await sleep(until: next, deadline: options.deadline, lease: &lease) { continue }
                report.stopReason = .notDue
                break
            }

            // More ops are claimed before the last ones are sent, so that requests stay in flight
            // back to back instead of waiting at the end of each claimed set for its slowest answer.
            let (stop, sawTransient) = try await send(batches(ops), lease: lease, into: &report, deadline: options.deadline) { [lease] in
                if let deadline = options.deadline, ContinuousClock.now >= deadline { return [] }
                return self.batches(try await self.claimRound(lease))
            }
            if let stop { report.stopReason = stop; break }
            // The API is failing: a flush that does not wait ends here instead of hammering it
            // with retries whose backoff happened to be short; the next flush (or --wait) goes on.
            if sawTransient, !options.wait { report.stopReason = .notDue; break }
        }
        return try await finalReport(report)
    }

    private func finalReport(_ report: FlushReport) async throws -> FlushReport {
        var report = report
        let summary = try await store.pendingSummary()
        report.pending = summary.pending
        report.deadLetters = summary.failed
        report.nextAttemptAt = summary.nextAttemptAt
        if report.pending == 0 { report.unreachable = nil }
        return report
    }

    private func renew(_ lease: FlusherLease) async throws -> FlusherLease {
        let remaining = lease.expiresAt.timeIntervalSince(Date(millis: store.wallClock.nowMillis()))
        guard remaining < configuration.leaseTTL.seconds / 2 else { return lease }
        return noteLease(try await store.renewFlusherLease(lease, ttl: configuration.leaseTTL))
    }

    /// Sleeps until the wall time `wallTime`, renewing the lease on the way so that a long wait
    /// (a 15-minute rate-limit window) does not let another flusher take over; false (without
    /// sleeping) when that is past the deadline.
    private func sleep(until wallTime: Date, deadline: ContinuousClock.Instant?, lease: inout FlusherLease) async throws -> Bool {
        var remaining = Duration.milliseconds(max(wallTime.millis - store.wallClock.nowMillis(), 0) + 1)
        if let deadline, ContinuousClock.now + remaining >= deadline { return false }
        while remaining > .zero {
            let chunk = min(remaining, configuration.leaseTTL / 3)
            try await configuration.sleepClock.sleep(for: chunk)
            remaining -= chunk
            lease = noteLease(try await store.renewFlusherLease(lease, ttl: configuration.leaseTTL))
        }
        return true
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

    /// Claims one round: a batch for every request slot.
    private func claimRound(_ lease: FlusherLease) async throws -> [Op] {
        try await store.claimDueOps(lease: lease, limit: configuration.batchSize * configuration.concurrency)
    }

    /// Claimed ops grouped per collection in claim order, cut into batches.
    func batches(_ ops: [Op]) -> [[Op]] {
        var order: [CollectionID] = []
        var byCollection: [CollectionID: [Op]] = [:]
        for op in ops {
            if byCollection[op.collection] == nil { order.append(op.collection) }
            byCollection[op.collection, default: []].append(op)
        }
        return order.flatMap { collection in
            stride(from: 0, to: byCollection[collection]!.count, by: configuration.batchSize).map {
                Array(byCollection[collection]![$0..<min($0 + configuration.batchSize, byCollection[collection]!.count)])
            }
        }
    }

    /// Sends the batches with at most `concurrency` requests in flight, committing each answer
    /// as it arrives, and asks `refill` for more when they run out, until it has none or a batch
    /// failed transiently, hit a rate limit or says the flush must stop. Returns that stop reason.
    ///
    /// A request's slot is free as soon as its answer is in: the next request goes out while
    /// the answer commits (commits queue up for the connection and are committed together).
    /// The next round is claimed while the last batches of this one are still waiting to go.
    private func send(_ batches: [[Op]], lease: FlusherLease, into report: inout FlushReport,
                      deadline: ContinuousClock.Instant?,
                      refill: @escaping @Sendable () async throws -> [[Op]]) async throws -> (stop: FlushReport.StopReason?, sawTransient: Bool) {
        var stop: FlushReport.StopReason?
        var sawTransient = false
        var blocked = false
        // Keep the lease alive however long the round takes (slow answers, a bisection).
        let heartbeat = Task { [store, ttl = configuration.leaseTTL] in
            while !Task.isCancelled {
                try await Task.sleep(for: ttl / 3)
                self.noteLease(try await store.renewFlusherLease(lease, ttl: ttl))
            }
        }
        defer { heartbeat.cancel() }
        enum Step: Sendable {
            case answered(BatchResult)
            case committed(CommitResult)
            case claimed([[Op]])
            /// A task threw: the round stops, but answers already in are still committed.
            case failed(any Error, request: Bool)
        }
        /// Runs `work` as a task of `group`; its error becomes a step instead of ending the loop.
        func spawn(_ group: inout ThrowingTaskGroup<Step, any Error>, request: Bool = false,
                   _ work: @escaping @Sendable () async throws -> Step) {
            group.addTask {
                do { return try await work() } catch { return .failed(error, request: request) }
            }
        }
        var firstError: (any Error)?
        try await withThrowingTaskGroup(of: Step.self) { group in
            var pending = batches[...]
            var running = 0
            var claiming = false
            var exhausted = false
            /// Starts batches until `concurrency` requests are in flight or none is left.
            func fillSlots() {
                while running < configuration.concurrency, let batch = pending.popFirst() {
                    running += 1
                    spawn(&group, request: true) { .answered(try await self.process(batch, lease: lease, deadline: deadline)) }
                }
            }
            /// Starts batches, and claims the next round when at most one batch is left to start.
            func keepGoing() {
                guard stop == nil, !blocked, firstError == nil else { return }
                if !claiming, !exhausted, pending.count <= 1, !sawTransient, !Task.isCancelled {
                    claiming = true
                    spawn(&group) { .claimed(try await refill()) }
                }
                fillSlots()
            }
            keepGoing()
            while let step = try await group.next() {
                let result: BatchResult
                switch step {
                case .committed(let counts):
                    report.applied += counts.applied
                    report.alreadyApplied += counts.alreadyApplied
                    report.failed += counts.failed
                    continue
                case .failed(let error, let request):
                    if request { running -= 1 }
                    claiming = false
                    if firstError == nil { firstError = error }
                    continue
                case .claimed(let more):
                    claiming = false
                    if more.isEmpty { exhausted = true }
                    pending.append(contentsOf: more)
                    keepGoing()
                    continue
                case .answered(let answered):
                    result = answered
                }
                running -= 1
                if !result.answers.isEmpty {
                    let answers = result.answers
                    spawn(&group) { .committed(try await self.commit(answers, lease: lease)) }
                }
                report.sent += result.sent
                report.requests += result.requests
                report.failed += result.failed
                if let transient = result.transient {
                    report.unreachable = transient
                    sawTransient = true
                } else if result.answered {
                    report.unreachable = nil
                }
                if let reason = result.stop, stop == nil { stop = reason }
                // An endpoint now waits for its rate-limit reset: start nothing more this round.
                if result.blocked { blocked = true }
                keepGoing()
            }
            // Claimed but never sent (the flush stops, or a rate limit): back to pending, attempt not counted.
            let unsent = pending.flatMap { $0 }.map { OpResult(op: $0.id, outcome: .release(error: "not sent: the flush stopped")) }
            if let firstError {
                if !unsent.isEmpty { _ = try? await store.complete(unsent, lease: lease) }
                throw firstError
            }
            if !unsent.isEmpty { try await store.complete(unsent, lease: lease) }
        }
        return (stop, sawTransient)
    }
}

extension Duration {
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
