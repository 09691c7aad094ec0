import CollectionsAPI
import Foundation

/// What one batch (and its retries and bisections) did.
struct BatchResult: Sendable {
    var sent = 0
    var requests = 0
    /// Ops dead-lettered here (refused batches); answered ops are counted when committed.
    var failed = 0
    /// An answer arrived (the API is reachable).
    var answered = false
    /// The batch's last attempt failed transiently with this error.
    var transient: String?
    /// The flush must stop.
    var stop: FlushReport.StopReason?
    /// An endpoint is now blocked until its rate-limit reset.
    var blocked = false
    /// Answers received but not yet committed: the caller commits them (``SyncEngine/commit(_:lease:)``)
    /// after freeing the request's slot, so that the next request goes out while they commit.
    var answers: [(op: Op, result: OpResult)] = []
}

/// What committing a request's answers did.
struct CommitResult: Sendable {
    var applied = 0
    var alreadyApplied = 0
    var failed = 0
}

extension SyncEngine {
    /// Sends one batch and works out what its answer means for each op, per semantics.md's table.
    /// Failures are committed here; the answers of requests that got one are returned in
    /// ``BatchResult/answers`` for the caller to commit.
    func process(_ batch: [Op], lease: FlusherLease, deadline: ContinuousClock.Instant?) async throws -> BatchResult {
        var result = BatchResult()
        do {
            try await attempt(batch, lease: lease, deadline: deadline, result: &result, skewRetried: false)
        } catch {
            // Answers already in (a bisection's first half) are not dropped with the error.
            if !result.answers.isEmpty { _ = try? await commit(result.answers, lease: lease) }
            throw error
        }
        return result
    }

    private func endpoint(for batch: [Op]) -> String {
        configuration.batchSize == 1
            ? (batch[0].kind == .add ? "collections/entries/add" : "collections/entries/remove")
            : "collections/entries/curate"
    }

    private func attempt(_ batch: [Op], lease: FlusherLease, deadline: ContinuousClock.Instant?,
                         result: inout BatchResult, skewRetried: Bool) async throws {
        let collection = batch[0].collection
        let endpoint = endpoint(for: batch)
        // A flusher whose lease was taken over sends nothing more: the new holder owns these ops.
        // (A lease renewed moments ago is surely held: the database is asked only when it is not.)
        guard holdsLeaseSurely(lease) ? true : try await store.holdsFlusherLease(lease) else {
            throw SyncError(code: .leaseNotHeld, message: "the flusher lease was taken over by another flusher")
        }
        result.requests += 1
        result.sent += batch.count
        emit(.requestSent(endpoint: endpoint, ops: batch.count))
        logger.debug("sending", metadata: ["collection.id": "\(collection)", "api.endpoint": "\(endpoint)", "op.count": "\(batch.count)"])
        do {
            let outcomes: [ChangeOutcome]
            if configuration.batchSize == 1 {
                let op = batch[0]
                let answer = op.kind == .add
                    ? try await client.add(op.tweet.rawValue, to: collection.rawValue, deadline: deadline)
                    : try await client.remove(op.tweet.rawValue, from: collection.rawValue, deadline: deadline)
                outcomes = [answer.outcomes.first?.outcome ?? .applied]
            } else {
                let changes = batch.map(AnswerOutcomes.change(for:))
                let answer = try await client.curate(collection.rawValue, changes: changes, deadline: deadline)
                outcomes = answer.outcomes.map(\.outcome)  // one per change, in the request's order
            }
            result.answered = true
            result.transient = nil
            if try await noteAnswer(endpoint: endpoint, success: true) { result.blocked = true }
            for (op, outcome) in zip(batch, outcomes) {
                result.answers.append((op, OpResult(op: op.id, outcome: AnswerOutcomes.outcome(for: op.kind, outcome))))
            }
        } catch let error as CollectionsAPIError {
            if try await noteAnswer(endpoint: endpoint, success: false) { result.blocked = true }
            try await handle(error, batch, lease: lease, deadline: deadline, result: &result, skewRetried: skewRetried)
        } catch is CancellationError {
            try await store.complete(batch.map { OpResult(op: $0.id, outcome: .release(error: "cancelled")) }, lease: lease)
            result.stop = .cancelled
        }
    }

    /// Commits answers received by ``process(_:lease:deadline:)`` in one transaction and emits
    /// their events.
    func commit(_ answers: [(op: Op, result: OpResult)], lease: FlusherLease) async throws -> CommitResult {
        var counts = CommitResult()
        try await store.complete(answers.map(\.result), lease: lease)
        for (op, opResult) in answers {
            switch opResult.outcome {
            case .applied:
                counts.applied += 1
                emit(.applied(op))
            case .alreadyApplied:
                counts.alreadyApplied += 1
                emit(.reconciled(op))
            case .failed(let reason):
                counts.failed += 1
                emit(.failed(op, reason: reason))
                logger.info("op dead-lettered", metadata: ["op.id": "\(op.id)", "collection.id": "\(op.collection)", "reason": "\(reason)"])
            default:
                break
            }
        }
        return counts
    }

    private func handle(_ error: CollectionsAPIError, _ batch: [Op], lease: FlusherLease, deadline: ContinuousClock.Instant?,
                        result: inout BatchResult, skewRetried: Bool) async throws {
        let ids = batch.map(\.id)
        let message = error.description
        func release(until: Date? = nil) async throws {
            try await store.complete(ids.map { OpResult(op: $0, outcome: .release(error: message, until: until)) }, lease: lease)
        }
        if error.httpStatus != nil { result.answered = true }
        switch error.code {
        case .clockSkew where !skewRetried && error.serverDate != nil:
            let offset = client.clockOffset(serverDate: error.serverDate!)
            client.clockOffset = offset
            try await store.recordClockOffset(offset, apiBase: apiBase)
            logger.notice("corrected the clock from the server's Date header", metadata: ["clock.offset_ms": "\(offset.milliseconds)"])
            try await attempt(batch, lease: lease, deadline: deadline, result: &result, skewRetried: true)

        case .rateLimited:
            // A reset already past (clocks differ, or the server says so) still waits a moment.
            let now = store.wallClock.nowMillis()
            let until = Date(millis: max(error.rateLimitReset?.millis ?? now + 15 * 60 * 1000, now + 1_000))
            try await store.recordRateLimit(RateLimitState(endpoint: endpoint(for: batch), limit: nil, remaining: 0, resetAt: until, blockedUntil: until),
                                            apiBase: apiBase)
            try await release(until: until)
            result.blocked = true
            emit(.waitingForRateLimit(endpoint: endpoint(for: batch), until: until))

        case .timeout where deadline.map { ContinuousClock.now >= $0 } ?? false:
            // The flush's own deadline cut the request: not the op's fault, no backoff.
            try await release()
            result.stop = .deadline

        case .transient, .network, .timeout, .malformedResponse, .unexpectedStatus:
            try await retryLater(batch, error: error, lease: lease, result: &result)

        case .authentication, .forbidden, .clockSkew:
            try await release()
            result.stop = .authentication(message)

        case .notFound:
            try await collectionMissing(error, batch, lease: lease, deadline: deadline, result: &result)

        case .invalidRequest where batch.count > 1:
            // Bisect until the bad change is alone.
            let half = batch.count / 2
            try await attempt(Array(batch[..<half]), lease: lease, deadline: deadline, result: &result, skewRetried: skewRetried)
            if result.stop == nil {
                try await attempt(Array(batch[half...]), lease: lease, deadline: deadline, result: &result, skewRetried: skewRetried)
            } else {
                try await store.complete(batch[half...].map { OpResult(op: $0.id, outcome: .release(error: "not sent: the flush stopped")) }, lease: lease)
            }

        case .invalidRequest:
            try await fail(batch, reason: "invalid request: \(message)", lease: lease, result: &result)

        case .cancelled:
            try await release()
            result.stop = .cancelled

        default:  // .permanent, .configuration, .tooManyChanges: our bug or our configuration
            try await release()
            result.stop = .configuration(message)
        }
    }

    private func retryLater(_ batch: [Op], error: CollectionsAPIError, lease: FlusherLease, result: inout BatchResult) async throws {
        let attempts = batch.map(\.attempts).max() ?? 1
        // One draw per request, so that the batch stays together.
        let delay = configuration.backoff.delay(afterAttempts: attempts, unit: configuration.jitter())
        let at = Date(millis: store.wallClock.nowMillis() + delay.milliseconds)
        let results = batch.map { op -> OpResult in
            if let cap = configuration.maxAttempts, op.attempts >= cap {
                return OpResult(op: op.id, outcome: .failed(reason: "gave up after \(op.attempts) attempts: \(error.description)"))
            }
            return OpResult(op: op.id, outcome: .retry(at: at, error: error.description))
        }
        try await store.complete(results, lease: lease)
        result.transient = error.description
        emit(.retryScheduled(ops: batch.count, at: at, error: error.description))
        logger.info("transient failure, backing off", metadata: ["op.count": "\(batch.count)", "retry.at": "\(at)", "error": "\(error.code)"])
    }

    private func fail(_ batch: [Op], reason: String, lease: FlusherLease, result: inout BatchResult) async throws {
        try await store.complete(batch.map { OpResult(op: $0.id, outcome: .failed(reason: reason)) }, lease: lease)
        result.failed += batch.count
        for op in batch { emit(.failed(op, reason: reason)) }
    }

    /// A 404 is "collection not found" only when this base URL has answered before, the body was
    /// the API's envelope with code 34, and `collections/show` confirms it; otherwise the base
    /// URL is wrong and nothing is dead-lettered.
    private func collectionMissing(_ error: CollectionsAPIError, _ batch: [Op], lease: FlusherLease,
                                   deadline: ContinuousClock.Instant?, result: inout BatchResult) async throws {
        let collection = batch[0].collection
        func wrongBase(_ why: String) async throws {
            try await store.complete(batch.map { OpResult(op: $0.id, outcome: .release(error: why)) }, lease: lease)
            result.stop = .configuration(why)
        }
        guard error.apiErrorCode == 34, try await store.hasAnsweredSuccessfully(apiBase: apiBase) else {
            try await wrongBase("\(apiBase) answered 404 without ever answering successfully: check the API base URL")
            return
        }
        do {
            _ = try await client.show(collection.rawValue, deadline: deadline)
            try await wrongBase("\(apiBase) answered 404 for a change to \(collection) but collections/show finds it: check the API base URL")
        } catch let confirm as CollectionsAPIError where confirm.code == .notFound && confirm.apiErrorCode == 34 {
            try await fail(batch, reason: "collection not found", lease: lease, result: &result)
        } catch let confirm as CollectionsAPIError where confirm.code == .notFound {
            try await wrongBase("\(apiBase) answered collections/show with a 404 that is not the API's: check the API base URL")
        } catch let confirm as CollectionsAPIError where [.authentication, .forbidden, .clockSkew].contains(confirm.code) {
            try await store.complete(batch.map { OpResult(op: $0.id, outcome: .release(error: confirm.description)) }, lease: lease)
            result.stop = .authentication(confirm.description)
        } catch let confirm as CollectionsAPIError {
            try await retryLater(batch, error: confirm, lease: lease, result: &result)
        }
    }

    /// Records a success of the base URL (once per engine) and an exhausted window, so that
    /// nothing more goes to that endpoint before its reset.
    /// Returns whether the endpoint is now blocked.
    @discardableResult
    private func noteAnswer(endpoint: String, success: Bool) async throws -> Bool {
        if success, !hasRecordedSuccess.withLock({ $0 }) {
            try await store.recordAPISuccess(apiBase: apiBase)
            hasRecordedSuccess.withLock { $0 = true }
        }
        if let limit = client.rateLimit(for: endpoint), limit.remaining == 0, limit.reset.millis > store.wallClock.nowMillis() {
            try await store.recordRateLimit(RateLimitState(endpoint: endpoint, limit: limit.limit, remaining: 0,
                                                           resetAt: limit.reset, blockedUntil: limit.reset), apiBase: apiBase)
            emit(.waitingForRateLimit(endpoint: endpoint, until: limit.reset))
            return true
        }
        return false
    }
}
