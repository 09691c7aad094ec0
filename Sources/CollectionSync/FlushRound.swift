import CollectionsAPI
import Foundation

/// One flush, as a state machine with no I/O.
///
/// It takes events (what the store said, ops claimed, an answer, a failure, a commit done, a
/// wake-up, cancellation) and returns the actions that follow (read the store, claim, send a
/// request, commit outcomes, sleep, finish). ``SyncEngine`` performs the actions and feeds their
/// results back; every decision of semantics.md's "Flush" is made here or in ``AnswerPolicy``.
///
/// A flush is a series of passes:
///
///     gating ──▶ running ──▶ (idle) ──▶ gating ...      a pass claims and sends until the queue
///       │           │                                    has nothing due, then the next begins
///       │           └─▶ readingQueue (first claim empty) ──▶ finished (drained, not due)
///       ├─▶ sleeping (a rate-limit wait, with `wait`) ──▶ gating
///       └─▶ finished (rate limited, deadline, cancelled)
///
/// While running, up to `concurrency` requests are in flight; the next claim goes out when at
/// most one batch is left to send, so that requests stay back to back. A stop (authentication,
/// configuration, deadline, cancellation), a rate limit or a store failure starts nothing new:
/// ops claimed but not sent go back to pending, answers on the wire are committed, and the pass
/// winds down before the flush finishes.
struct FlushRound {
    /// How the flush works (``SyncEngine/Configuration`` and ``FlushOptions``).
    struct Settings: Sendable {
        var batchSize = 100
        var concurrency = 4
        /// Sleep through backoff and rate-limit waits until the queue is empty or the deadline.
        var wait = false
        /// The deadline, as time since the flush began.
        var deadline: Duration?
        var backoff = Backoff()
        var maxAttempts: Int?
        var apiBase = ""
        /// The user whose `collections/list` a create reads first; nil: creates are held back
        /// (the flush sends the rest and stops with a configuration error).
        var userID: String?
        /// A draw in [0, 1] for the backoff's jitter: one per failed request.
        var jitter: @Sendable () -> Double = { Double.random(in: 0...1) }

        /// The endpoints this flush sends changes to.
        var endpoints: [Endpoint] { batchSize == 1 ? [.add, .remove] : [.curate] }
    }

    /// When an event happens: time since the flush began (deadlines) and the wall clock (stamps
    /// and the server's times), in milliseconds since 1970.
    struct Now: Hashable, Sendable {
        var elapsed: Duration
        var wall: Int64
    }

    struct RequestID: Hashable, Sendable {
        let rawValue: Int
    }

    /// One request: a batch of ops of one collection, or the `collections/show` check that
    /// decides what a 404 for that batch means.
    struct Request: Hashable, Sendable {
        let id: RequestID
        let ops: [Op]
        /// The endpoint the ops go to (`collections/show` is asked instead when ``confirmsMissing``).
        let endpoint: Endpoint
        /// A `collections/show` of the batch's collection, not the batch itself.
        var confirmsMissing = false
        /// The one retry after a clock correction.
        let skewRetried: Bool

        var collection: CollectionID { ops[0].collection }
    }

    /// What a request got back.
    enum Answer: Hashable, Sendable {
        /// One outcome per op of the request, in its order, and the rate-limit headers.
        case changes([ChangeOutcome], rateLimit: RateLimit?)
        /// `collections/show` answered 2xx.
        case found
        /// A collection op's answer (or what listing showed for a create).
        case collection(CollectionAnswer)
    }

    /// Store calls whose failure the machine must know of, to count what is still outstanding.
    enum StoreCall: Hashable, Sendable {
        case gate, claim, queue, commit
        /// A renewal of the lease while sleeping.
        case sleep
        /// The lease check before a request: the request was never sent.
        case request(RequestID)
    }

    enum Event: Hashable, Sendable {
        case gateRead(FlushGate)
        case claimed([Op])
        case queueRead(QueueSummary)
        case answered(RequestID, Answer)
        case failed(RequestID, CollectionsAPIError)
        case committed(Commit)
        case woke
        case cancelled
        /// A store call threw (the driver keeps the error and throws it when the flush ends).
        case storeFailed(StoreCall)
    }

    /// Outcomes to commit in one transaction, with the ops they are about (for the events the
    /// driver emits and the report's counts).
    struct Commit: Hashable, Sendable {
        var ops: [Op] = []
        var store = FlushCommit()

        mutating func add(_ op: Op, _ outcome: OpOutcome) {
            ops.append(op)
            store.results.append(OpResult(op: op, outcome: outcome))
        }

        mutating func add(_ batch: [Op], _ outcome: OpOutcome) {
            for op in batch { add(op, outcome) }
        }
    }

    enum Action: Hashable, Sendable {
        /// Read the recorded rate limits and whether the base answered before (``FlushGate``).
        case readGate
        case claim(limit: Int)
        /// Read how many ops wait and when the next one is due (``QueueSummary``).
        case readQueue
        case send(Request)
        case commit(Commit)
        /// Sign requests with this offset from the server's clock from now on.
        case correctClock(Duration)
        case sleep(Duration)
        case emit(SyncEvent)
        case finish(FlushReport)
    }

    private enum Phase {
        case gating, running, readingQueue, sleeping, finished
    }

    let settings: Settings
    private(set) var report = FlushReport()
    private var phase = Phase.gating
    private var nextRequest = 0
    private var answeredBefore = false
    private var recordedSuccess = false

    // The pass.
    /// Claimed, not yet sent; bisection halves, clock retries and 404 checks go first.
    private var queued: [Request] = []
    private var inFlight: [RequestID: Request] = [:]
    private var claiming = false
    private var claimsThisPass = 0
    /// The last claim found nothing due: no more claims this pass.
    private var exhausted = false
    private var commits = 0
    /// An endpoint now waits for its rate-limit reset: nothing more starts this pass.
    private var blocked = false
    private var sawTransient = false
    /// The flush ends when the pass has wound down.
    private var stop: FlushReport.StopReason?
    private var storeFailed = false
    private var cancelled = false

    init(_ settings: Settings) {
        self.settings = settings
    }

    // MARK: - Events

    /// The first actions of the flush.
    mutating func start() -> [Action] {
        phase = .gating
        return [.readGate]
    }

    mutating func receive(_ event: Event, at now: Now) -> [Action] {
        guard phase != .finished else { return [] }
        switch event {
        case .gateRead(let gate): return gateRead(gate, now)
        case .claimed(let ops): return claimed(ops, now)
        case .queueRead(let summary): return queueRead(summary, now)
        case .answered(let id, let answer): return answered(id, answer, now)
        case .failed(let id, let error): return failed(id, error, now)
        case .committed(let commit): return committed(commit, now)
        case .woke:
            phase = .gating
            return [.readGate]
        case .cancelled:
            cancelled = true
            switch phase {
            case .sleeping: return finish(.cancelled)
            case .running: return advance(now)
            default: return []  // the store call in progress reports back first
            }
        case .storeFailed(let call):
            storeFailed = true
            switch call {
            case .gate, .queue, .sleep: return finish(.cancelled)
            case .claim: claiming = false
            case .commit: commits -= 1
            case .request(let id): inFlight[id] = nil  // never sent: its ops stay in flight for the lease's next holder
            }
            return advance(now)
        }
    }

    private mutating func gateRead(_ gate: FlushGate, _ now: Now) -> [Action] {
        answeredBefore = answeredBefore || gate.answeredBefore
        if cancelled { return finish(.cancelled) }
        if pastDeadline(now) { return finish(.deadline) }
        if let until = gate.blockedUntil, until > now.wall {
            let waiting = settings.endpoints.map { Action.emit(.waitingForRateLimit(endpoint: $0, until: Date(millis: until))) }
            // A wait is a millisecond past the reset, so that it is surely over.
            if let sleep = sleep(until: until + 1, now) { return waiting + [sleep] }
            return waiting + finish(.rateLimited(until: Date(millis: until)))
        }
        phase = .running
        queued = []
        inFlight = [:]
        claiming = true
        claimsThisPass = 1
        exhausted = false
        blocked = false
        sawTransient = false
        return [.claim(limit: settings.batchSize * settings.concurrency)]
    }

    private mutating func claimed(_ ops: [Op], _ now: Now) -> [Action] {
        claiming = false
        if ops.isEmpty {
            if claimsThisPass == 1, !cancelled, !storeFailed {
                phase = .readingQueue
                return [.readQueue]
            }
            exhausted = true
        } else {
            queued += batches(ops)
        }
        return advance(now)
    }

    private mutating func queueRead(_ summary: QueueSummary, _ now: Now) -> [Action] {
        if cancelled { return finish(.cancelled) }
        if summary.pending == 0 { return finish(.drained) }
        if summary.pending > summary.held, let next = summary.nextAttemptAt, let sleep = sleep(until: next + 1, now) { return [sleep] }
        if summary.held > 0 {
            // semantics.md, offline collections, 4: with no user id a create is not sent.
            return finish(.configuration(CollectionsAPIError(
                code: .configuration,
                message: "no user id to list collections with: \(plural(summary.held, "op")) of collections made offline wait; "
                    + "set TWITTER_USER_ID (a Bearer token does not name its user)")))
        }
        return finish(.notDue)
    }

    private mutating func answered(_ id: RequestID, _ answer: Answer, _ now: Now) -> [Action] {
        guard let request = inFlight.removeValue(forKey: id) else { return advance(now) }
        report.unreachable = nil
        var commit = Commit()
        var actions: [Action] = []
        switch answer {
        case .found:
            actions += decide(AnswerPolicy.confirmation(nil, context(request, now)), request, nil, now, &commit)
        case .collection(let answer):
            noteSuccess(&commit)
            commit.add(request.ops, .collection(answer))
        case .changes(let outcomes, let rateLimit):
            noteSuccess(&commit)
            for (op, outcome) in zip(request.ops, outcomes) {
                commit.add(op, AnswerPolicy.outcome(for: op.kind, outcome))
            }
            actions += noteWindow(rateLimit, request.endpoint, now, &commit)
        }
        return actions + send(commit) + advance(now)
    }

    private mutating func noteSuccess(_ commit: inout Commit) {
        guard !recordedSuccess else { return }
        recordedSuccess = true
        answeredBefore = true
        commit.store.apiSucceeded = true
    }

    private mutating func failed(_ id: RequestID, _ error: CollectionsAPIError, _ now: Now) -> [Action] {
        guard let request = inFlight.removeValue(forKey: id) else { return advance(now) }
        if error.httpStatus != nil { report.unreachable = nil }
        var commit = Commit()
        var actions: [Action] = []
        var decision: AnswerPolicy.Failure
        if request.confirmsMissing {
            decision = AnswerPolicy.confirmation(error, context(request, now))
        } else {
            actions += noteWindow(error.rateLimit, request.endpoint, now, &commit)
            decision = AnswerPolicy.failure(error, context(request, now))
        }
        if request.endpoint == .create, decision == .confirmMissing {
            // A create (or the listing before it) has no collection that could be missing.
            decision = .stop(.configuration(CollectionsAPIError(
                code: .configuration, message: "\(settings.apiBase) answered 404 to \(error.description): check the API base URL",
                httpStatus: error.httpStatus, apiErrorCode: error.apiErrorCode)))
        }
        actions += decide(decision, request, error, now, &commit)
        return actions + send(commit) + advance(now)
    }

    private mutating func committed(_ commit: Commit, _ now: Now) -> [Action] {
        commits -= 1
        for result in commit.store.results {
            switch result.outcome {
            case .applied: report.applied += 1
            case .alreadyApplied: report.alreadyApplied += 1
            case .collection(let answer): if answer.wasAlreadyApplied { report.alreadyApplied += 1 } else { report.applied += 1 }
            case .failed: report.failed += 1
            case .retry, .release: break
            }
        }
        return advance(now)
    }

    // MARK: - Decisions

    /// Carries out the answer policy's decision for a failed request (or a 404's check).
    private mutating func decide(_ decision: AnswerPolicy.Failure, _ request: Request, _ error: CollectionsAPIError?,
                                 _ now: Now, _ commit: inout Commit) -> [Action] {
        let message = error?.description ?? ""
        switch decision {
        case .correctClock(let serverDate):
            let offset = AnswerPolicy.clockOffset(serverDate: serverDate, now: now.wall)
            commit.store.clockOffset = offset
            queued.insert(makeRequest(request.ops, request.endpoint, skewRetried: true), at: 0)
            return [.correctClock(offset)]
        case .rateLimited:
            let until = AnswerPolicy.rateLimitWait(error?.rateLimit, now: now.wall)
            commit.add(request.ops, .release(error: message, until: Date(millis: until)))
            return block(request.endpoint, until: until, limit: error?.rateLimit, &commit)
        case .deadline:
            commit.add(request.ops, .release(error: message))
            stopping(.deadline)
        case .backOff:
            // One draw per request, so that the batch stays together.
            let attempts = request.ops.map(\.attempts).max() ?? 1
            let at = now.wall + settings.backoff.delay(afterAttempts: attempts, unit: settings.jitter()).milliseconds
            for op in request.ops {
                if let cap = settings.maxAttempts, op.attempts >= cap {
                    commit.add(op, .failed(reason: "gave up after \(op.attempts) attempts: \(message)"))
                } else {
                    commit.add(op, .retry(at: Date(millis: at), error: message))
                }
            }
            sawTransient = true
            report.unreachable = error
            return [.emit(.retryScheduled(ops: request.ops.count, at: Date(millis: at), error: message))]
        case .stop(let reason):
            commit.add(request.ops, .release(error: reason.message ?? message))
            stopping(reason)
        case .bisect:
            let half = request.ops.count / 2
            queued.insert(contentsOf: [makeRequest(Array(request.ops[..<half]), request.endpoint, skewRetried: request.skewRetried),
                                       makeRequest(Array(request.ops[half...]), request.endpoint, skewRetried: request.skewRetried)], at: 0)
        case .fail(let reason):
            commit.add(request.ops, .failed(reason: reason))
        case .confirmMissing:
            queued.insert(makeRequest(request.ops, request.endpoint, confirming: true, skewRetried: request.skewRetried), at: 0)
        case .collectionGone:
            if request.endpoint == .destroy {
                commit.add(request.ops, .alreadyApplied)  // destroyed: what the destroy wanted
            } else {
                commit.add(request.ops, .failed(reason: "collection not found"))
                commit.store.gone.append(request.collection)
            }
        }
        return []
    }

    /// An answer whose window is exhausted (`x-rate-limit-remaining: 0`) closes its endpoint
    /// until the reset, whatever the answer was.
    private mutating func noteWindow(_ limit: RateLimit?, _ endpoint: Endpoint, _ now: Now, _ commit: inout Commit) -> [Action] {
        guard let until = AnswerPolicy.exhaustedUntil(limit, now: now.wall) else { return [] }
        return block(endpoint, until: until, limit: limit, &commit)
    }

    private mutating func block(_ endpoint: Endpoint, until: Int64, limit: RateLimit?, _ commit: inout Commit) -> [Action] {
        commit.store.rateLimits.removeAll { $0.endpoint == endpoint }
        commit.store.rateLimits.append(RateLimitState(endpoint: endpoint, limit: limit?.limit, remaining: 0,
                                                      resetAt: Date(millis: until), blockedUntil: Date(millis: until)))
        blocked = true
        return [.emit(.waitingForRateLimit(endpoint: endpoint, until: Date(millis: until)))]
    }

    private mutating func stopping(_ reason: FlushReport.StopReason) {
        if stop == nil { stop = reason }
    }

    // MARK: - The pass

    /// What to start now: nothing when the flush is stopping (ops claimed but not sent go back
    /// to pending); else the next claim when at most one batch is left, and requests up to
    /// `concurrency`. When nothing is outstanding any more, the pass ends.
    private mutating func advance(_ now: Now) -> [Action] {
        guard phase == .running else { return [] }
        var actions: [Action] = []
        if !queued.isEmpty, !windingDown, pastDeadline(now) { stopping(.deadline) }
        if windingDown {
            var release = Commit()
            for request in queued { release.add(request.ops, .release(error: "not sent: the flush stopped")) }
            queued = []
            actions += send(release)
        } else {
            if !claiming, !exhausted, queued.count <= 1, !sawTransient, !pastDeadline(now) {
                claiming = true
                claimsThisPass += 1
                actions.append(.claim(limit: settings.batchSize * settings.concurrency))
            }
            while inFlight.count < settings.concurrency, !queued.isEmpty {
                let request = queued.removeFirst()
                inFlight[request.id] = request
                if !request.confirmsMissing {
                    report.requests += 1
                    report.sent += request.ops.count
                }
                actions.append(.send(request))
            }
        }
        if inFlight.isEmpty, queued.isEmpty, !claiming, commits == 0 {
            actions += endPass(now)
        }
        return actions
    }

    /// Nothing new starts: the flush stops, an endpoint waits for its reset, a store call
    /// failed, or the flush was cancelled.
    private var windingDown: Bool { stop != nil || blocked || storeFailed || cancelled }

    /// Nothing is outstanding: the flush ends, or the next pass begins.
    private mutating func endPass(_ now: Now) -> [Action] {
        if let stop { return finish(stop) }
        // After a store failure the driver throws its error: the reason is not reported.
        if storeFailed || cancelled { return finish(.cancelled) }
        // The API is failing: a flush that does not wait ends here instead of hammering it with
        // retries whose backoff happened to be short; the next flush (or --wait) goes on.
        if sawTransient, !settings.wait { return finish(.notDue) }
        phase = .gating
        return [.readGate]
    }

    private mutating func finish(_ reason: FlushReport.StopReason) -> [Action] {
        phase = .finished
        report.stopReason = reason
        return [.finish(report)]
    }

    private mutating func send(_ commit: Commit) -> [Action] {
        guard !commit.store.isEmpty else { return [] }
        commits += 1
        return [.commit(commit)]
    }

    /// A sleep until the wall time `until`, with `wait`, when it ends before the deadline.
    private mutating func sleep(until: Int64, _ now: Now) -> Action? {
        guard settings.wait else { return nil }
        let pause = Duration.milliseconds(max(until - now.wall, 0))
        if let deadline = settings.deadline, now.elapsed + pause >= deadline { return nil }
        phase = .sleeping
        return .sleep(pause)
    }

    private func pastDeadline(_ now: Now) -> Bool {
        settings.deadline.map { now.elapsed >= $0 } ?? false
    }

    private func context(_ request: Request, _ now: Now) -> AnswerPolicy.Context {
        AnswerPolicy.Context(ops: request.ops.count, skewRetried: request.skewRetried, answeredBefore: answeredBefore,
                             pastDeadline: pastDeadline(now), apiBase: settings.apiBase, collection: request.collection)
    }

    private mutating func makeRequest(_ ops: [Op], _ endpoint: Endpoint, confirming: Bool = false, skewRetried: Bool = false) -> Request {
        nextRequest += 1
        return Request(id: RequestID(rawValue: nextRequest), ops: ops, endpoint: endpoint, confirmsMissing: confirming, skewRetried: skewRetried)
    }

    /// Claimed ops grouped per collection in claim order, cut into requests of `batchSize`
    /// (single `entries/add` / `entries/remove` requests when it is 1).
    private mutating func batches(_ ops: [Op]) -> [Request] {
        var requests: [Request] = []
        // A collection op is a request of its own, to its endpoint.
        for op in ops where op.kind.isCollectionOp {
            requests.append(makeRequest([op], op.kind == .create ? .create : op.kind == .update ? .update : .destroy))
        }
        for (_, all) in ops.filter({ !$0.kind.isCollectionOp }).grouped(by: \.collection) {
            for start in stride(from: 0, to: all.count, by: settings.batchSize) {
                let batch = Array(all[start..<min(start + settings.batchSize, all.count)])
                let endpoint: Endpoint = settings.batchSize == 1 ? (batch[0].kind == .add ? .add : .remove) : .curate
                requests.append(makeRequest(batch, endpoint))
            }
        }
        return requests
    }
}

extension FlushReport.StopReason {
    /// The reason's own message, for the ops it puts back.
    var message: String? {
        switch self {
        case .authentication(let error), .configuration(let error): error.description
        case .cancelled: "cancelled"
        default: nil
        }
    }
}
