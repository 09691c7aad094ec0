import CollectionsAPI
import Foundation
import ServiceLifecycle

/// The flush's driver: it performs the actions of a ``FlushRound`` and feeds their results back
/// to it. Every decision is the round's; here are only the claims, requests, commits and sleeps.
extension SyncEngine {
    /// What a child task of the flush brings back.
    private enum Completion: Sendable {
        case event(FlushRound.Event)
        /// A store call (or the lease check before a request) threw.
        case storeFailed(FlushRound.StoreCall, any Error)
    }

    /// Flushes while holding `lease`, until the round finishes.
    func drain(lease: FlusherLease, options: FlushOptions, stopwatch: Stopwatch) async throws -> FlushReport {
        client.setClockOffset(try await store.clockOffset(apiBase: apiBase))
        var settings = FlushRound.Settings()
        settings.batchSize = configuration.batchSize
        settings.concurrency = configuration.concurrency
        settings.wait = options.wait
        settings.deadline = options.timeLimit
        settings.backoff = configuration.backoff
        settings.maxAttempts = configuration.maxAttempts
        settings.apiBase = apiBase
        settings.userID = userID
        settings.jitter = configuration.jitter
        var round = FlushRound(settings)
        let creates = settings.userID != nil
        let wallClock = store.wallClock
        func now() -> FlushRound.Now { FlushRound.Now(elapsed: stopwatch.elapsed, wall: wallClock.nowMillis()) }

        var failure: (any Error)?
        // A graceful shutdown of the service group stops the round as cancellation does, but the
        // requests on the wire go on: their answers are committed.
        let (shutdown, shutdownStarted) = AsyncStream<Void>.makeStream()
        let report = await withGracefulShutdownHandler {
            await withTaskGroup(of: Completion.self, returning: FlushReport.self) { group in
                group.addTask {
                    for await _ in shutdown { return .event(.cancelled) }
                    return .event(.cancelled)  // the flush ended first: ignored
                }
                var actions = round.start()
                var toldCancelled = false
                while true {
                    for action in actions {
                        switch action {
                        case .finish(let report):
                            group.cancelAll()
                            return report
                        case .readGate:
                            let endpoints = settings.endpoints
                            group.addTask { [store, apiBase] in
                                await Self.storeCall(.gate) { .gateRead(try await store.flushGate(apiBase: apiBase, endpoints: endpoints)) }
                            }
                        case .claim(let limit):
                            group.addTask { [store, creates] in await Self.storeCall(.claim) { .claimed(try await store.claimDueOps(lease: lease, limit: limit, creates: creates)) } }
                        case .readQueue:
                            group.addTask { [store, creates] in await Self.storeCall(.queue) { .queueRead(try await store.queueSummary(holdingCreates: !creates)) } }
                        case .send(let request):
                            let timeout = options.timeLimit.map { $0 - stopwatch.elapsed }
                            group.addTask { await self.perform(request, lease: lease, timeout: timeout) }
                        case .commit(let commit):
                            group.addTask { await self.commit(commit, lease: lease) }
                        case .correctClock(let offset):
                            adopt(clockOffset: offset)
                        case .sleep(let pause):
                            group.addTask { await self.sleep(pause, renewing: lease) }
                        case .emit(let event):
                            emit(event)
                            switch event {
                            case .retryScheduled(let ops, let at, let error): observe(.backingOff(ops: ops, until: at, error: error))
                            case .waitingForRateLimit(let endpoint, let until):
                                observe(.rateLimited(endpoint, until: until))
                                metrics.rateLimited(endpoint, now: store.wallClock.nowMillis(), until: until.millis)
                            default: break
                            }
                        }
                    }
                    guard let completion = await group.next() else {
                        preconditionFailure("the flush round waits for nothing")  // every pass ends in an action
                    }
                    actions = []
                    if Task.isCancelled, !toldCancelled {
                        toldCancelled = true
                        actions += round.receive(.cancelled, at: now())
                    }
                    switch completion {
                    case .event(let event):
                        switch event {
                        case .answered: observe(.answered)
                        case .failed(_, let error): observe(.failed(error))
                        default: break
                        }
                        actions += round.receive(event, at: now())
                    case .storeFailed(let call, let error):
                        if failure == nil { failure = error }
                        actions += round.receive(.storeFailed(call), at: now())
                    }
                }
            }
        } onGracefulShutdown: {
            shutdownStarted.yield()
        }
        shutdownStarted.finish()
        if let failure { throw failure }
        return try await finalReport(report)
    }

    /// A store call's result as the round takes it.
    private static func storeCall(_ call: FlushRound.StoreCall, _ body: () async throws -> FlushRound.Event) async -> Completion {
        do { return .event(try await body()) } catch { return .storeFailed(call, error) }
    }

    /// Signs with `offset` from the server's clock from now on (its persistence is the caller's:
    /// a flush commits it with the answer, a pull records it).
    func adopt(clockOffset offset: Duration) {
        client.setClockOffset(offset)
        logger.notice("corrected the clock from the server's Date header", metadata: ["clock.offset_ms": "\(offset.milliseconds)"])
    }

    /// Sends one request of the round, unless the lease was lost.
    private func perform(_ request: FlushRound.Request, lease: FlusherLease, timeout: Duration?) async -> Completion {
        // A flusher whose lease was taken over sends nothing more: the new holder owns these ops.
        // (A lease renewed moments ago is surely held: the database is asked only when it is not.)
        do {
            guard holdsLeaseSurely(lease) ? true : try await store.holdsFlusherLease(lease) else {
                throw SyncError(code: .leaseNotHeld, message: "the flusher lease was taken over by another flusher")
            }
        } catch {
            return .storeFailed(.request(request.id), error)
        }
        let collection = request.collection
        do {
            if request.confirmsMissing {
                _ = try await client.show(collection, timeout: timeout)
                return .event(.answered(request.id, .found))
            }
            emit(.requestSent(endpoint: request.endpoint, ops: request.ops.count))
            logger.debug("sending", metadata: ["collection.id": "\(collection)", "api.endpoint": "\(request.endpoint.rawValue)",
                                               "op.count": "\(request.ops.count)"])
            if request.ops[0].kind.isCollectionOp {
                do {
                    return .event(.answered(request.id, .collection(try await send(collectionOp: request.ops[0], timeout: timeout))))
                } catch let error as SyncError {
                    return .storeFailed(.request(request.id), error)
                }
            }
            let answer: ChangeResult
            switch request.endpoint {
            case .add, .remove:
                guard let tweet = request.ops[0].tweet else { preconditionFailure("an entry op has a tweet") }
                answer = request.endpoint == .add ? try await client.add(tweet, to: collection, timeout: timeout)
                    : try await client.remove(tweet, from: collection, timeout: timeout)
            default: answer = try await client.curate(collection, changes: request.ops.map(AnswerPolicy.change(for:)), timeout: timeout)
            }
            return .event(.answered(request.id, .changes(answer.outcomes.map(\.outcome), rateLimit: answer.rateLimit)))
        } catch let error as CollectionsAPIError {
            return .event(.failed(request.id, error))
        } catch {
            // The client throws only its own errors; anything else is taken for a lost connection.
            return .event(.failed(request.id, CollectionsAPIError(code: .network, message: "\(request.endpoint.rawValue) failed: \(type(of: error))")))
        }
    }

    /// Sleeps for `pause` in steps of a third of the lease's time to live, renewing the lease
    /// after each. The heartbeat renews it too; this way a long wait (a 15-minute rate-limit
    /// window) keeps the lease whatever the heartbeat's timing, also on a clock whose sleeps
    /// jump time forward (a test's).
    private func sleep(_ pause: Duration, renewing lease: FlusherLease) async -> Completion {
        var remaining = pause
        while remaining > .zero {
            let step = min(remaining, configuration.leaseTTL / 3)
            do {
                try await configuration.clock.sleep(for: step)
            } catch {
                return .event(.cancelled)
            }
            remaining -= step
            do {
                noteLease(try await store.renewFlusherLease(lease, ttl: configuration.leaseTTL))
            } catch {
                return .storeFailed(.sleep, error)
            }
        }
        return .event(.woke)
    }

    /// Commits one set of outcomes, then announces them.
    private func commit(_ commit: FlushRound.Commit, lease: FlusherLease) async -> Completion {
        do {
            try await store.commit(commit.store, apiBase: apiBase, lease: lease)
        } catch {
            return .storeFailed(.commit, error)
        }
        var deadLetters: [(op: Op, reason: String)] = []
        for (op, result) in zip(commit.ops, commit.store.results) {
            metrics.answered(op, result.outcome)
            let op = op.answered(result.outcome)
            switch result.outcome {
            case .applied:
                emit(.applied(op))
            case .alreadyApplied:
                emit(.reconciled(op))
            case .collection(let answer):
                emit(answer.wasAlreadyApplied ? .reconciled(op) : .applied(op))
            case .failed(let reason):
                emit(.failed(op, reason: reason))
                deadLetters.append((op, reason))
            case .retry, .release:
                break
            }
        }
        // Each dead letter is a change an operator must hear of: one line per collection and
        // reason, with the op ids (`syncctl outbox --failed` lists them).
        for (key, letters) in deadLetters.grouped(by: { [$0.op.collection.rawValue, $0.reason] }) {
            logger.warning("\(plural(letters.count, "op")) dead-lettered: \(key[1])", metadata: [
                "collection.id": "\(key[0])", "op.ids": "\(letters.map { String($0.op.id.rawValue) }.joined(separator: ","))",
            ])
        }
        return .event(.committed(commit))
    }
}
