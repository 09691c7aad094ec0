@_spi(Worker) @testable import CollectionSync
import CollectionsAPI
import Foundation
import Testing

/// The flush round with no network and no database: every row of semantics.md's "Flush"
/// classification table, the pass (claims, slots, the end), waits, the deadline, cancellation.
@Suite("Flush round: the state machine, row by row of the classification table")
struct FlushRoundTests {
    static let t0: Int64 = 1_800_000_000_000
    static let base = "https://api.example.test/1.1"

    /// Drives a round: events in, actions out, with a hand-moved time.
    struct Driver {
        var round: FlushRound
        var now = FlushRound.Now(elapsed: .zero, wall: FlushRoundTests.t0)

        init(batchSize: Int = 100, concurrency: Int = 4, wait: Bool = false, deadline: Duration? = nil,
             maxAttempts: Int? = nil, jitter: Double = 1) {
            var settings = FlushRound.Settings()
            settings.batchSize = batchSize
            settings.concurrency = concurrency
            settings.wait = wait
            settings.deadline = deadline
            settings.maxAttempts = maxAttempts
            settings.apiBase = FlushRoundTests.base
            settings.jitter = { jitter }
            round = FlushRound(settings)
        }

        mutating func start() -> [FlushRound.Action] { round.start() }
        mutating func on(_ event: FlushRound.Event) -> [FlushRound.Action] { round.receive(event, at: now) }
        mutating func advance(_ duration: Duration) {
            now.elapsed += duration
            now.wall += duration.milliseconds
        }

        /// Starts the flush and runs its first pass up to the requests for `ops`.
        mutating func begin(_ ops: [Op], answeredBefore: Bool = true) -> [FlushRound.Action] {
            #expect(start() == [.readGate])
            let limit = round.settings.batchSize * round.settings.concurrency
            #expect(on(.gateRead(FlushGate(blockedUntil: nil, answeredBefore: answeredBefore))) == [.claim(limit: limit)])
            return on(.claimed(ops))
        }

        /// Commits a commit action as the store would, returning what follows.
        mutating func commit(_ actions: [FlushRound.Action]) -> [FlushRound.Action] {
            actions.commits.flatMap { on(.committed($0)) }
        }
    }

    static func op(_ id: Int64, _ kind: OpKind = .remove, _ collection: CollectionID = c1, tweet: UInt64? = nil, attempts: Int = 1) -> Op {
        Op(id: OpID(id), kind: kind, collection: collection, tweet: TweetID(tweet ?? UInt64(id))!, state: .inFlight, hlc: HLC(rawValue: id),
           createdAt: Date(millis: t0), attempts: attempts, nextAttemptAt: nil, lastError: nil)
    }

    static func apiError(_ code: CollectionsAPIError.Code, status: Int? = nil, apiCode: Int? = nil, rateLimit: RateLimit? = nil,
                         serverDate: Date? = nil) -> CollectionsAPIError {
        CollectionsAPIError(code: code, message: "x: \(code)", httpStatus: status, apiErrorCode: apiCode, rateLimit: rateLimit, serverDate: serverDate)
    }

    // MARK: - Answers that arrive

    @Test("applied, remove + not_found, add + duplicate, other reasons and add + not_found: one commit with each op's outcome")
    func changeOutcomes() {
        var driver = Driver()
        let ops = [Self.op(1), Self.op(2), Self.op(3, .add), Self.op(4, .add), Self.op(5)]
        let sent = driver.begin(ops)
        #expect(sent == [.claim(limit: 400), .send(sent.requests[0])])
        let request = sent.requests[0]
        #expect(request.endpoint == .curate && request.ops == ops)
        let answer = driver.on(.answered(request.id, .changes([.applied, .refused(reason: "not_found"), .refused(reason: "duplicate"),
                                                               .refused(reason: "not_found"), .refused(reason: "no_such_reason")], rateLimit: nil)))
        #expect(answer.commits.count == 1)
        let commit = answer.commits[0]
        #expect(commit.store.results.map(\.outcome) == [.applied, .alreadyApplied, .alreadyApplied,
                                                        .failed(reason: "not_found"), .failed(reason: "no_such_reason")])
        #expect(commit.store.apiSucceeded, "the first success of the base is recorded with the answer")
        #expect(driver.on(.claimed([])) == [], "the pass waits for its commit")
        #expect(driver.commit(answer) == [.readGate], "the pass is over: the next one begins")
        #expect(driver.on(.gateRead(FlushGate(blockedUntil: nil, answeredBefore: true))) == [.claim(limit: 400)])
        #expect(driver.on(.claimed([])) == [.readQueue])
        let end = driver.on(.queueRead(QueueSummary(pending: 0, failed: 2, nextAttemptAt: nil)))
        guard case .finish(let report) = end.first else { Issue.record("\(end)"); return }
        #expect(report.stopReason == .drained && report.applied == 1 && report.alreadyApplied == 2 && report.failed == 2)
        #expect(report.requests == 1 && report.sent == 5)
    }

    @Test("ops of one collection go in batches of the batch size; batch size 1 uses entries/add and entries/remove")
    func batching() {
        var driver = Driver(batchSize: 2, concurrency: 2)
        #expect(driver.start() == [.readGate])
        #expect(driver.on(.gateRead(FlushGate(blockedUntil: nil, answeredBefore: true))) == [.claim(limit: 4)])
        let sent = driver.on(.claimed([Self.op(1), Self.op(2, .remove, c2), Self.op(3), Self.op(4)]))
        #expect(sent.requests.map { $0.ops.map(\.id.rawValue) } == [[1, 3], [4]], "two slots: the third batch waits")
        #expect(!sent.contains(.claim(limit: 4)), "two batches are left to send: no claim yet")

        var single = Driver(batchSize: 1)
        #expect(single.start() == [.readGate])
        _ = single.on(.gateRead(FlushGate(blockedUntil: nil, answeredBefore: true)))
        let singles = single.on(.claimed([Self.op(1, .add), Self.op(2, .remove)]))
        #expect(singles.requests.map(\.endpoint) == [.add, .remove])
    }

    @Test("the next claim goes out when at most one batch is left to send; a claim that finds nothing ends the claims of the pass")
    func pipelining() {
        var driver = Driver(batchSize: 1, concurrency: 2)
        #expect(driver.start() == [.readGate])
        #expect(driver.on(.gateRead(FlushGate(blockedUntil: nil, answeredBefore: true))) == [.claim(limit: 2)])
        let first = driver.on(.claimed([Self.op(1), Self.op(2), Self.op(3)]))
        #expect(first.requests.count == 2 && !first.contains(.claim(limit: 2)))
        let afterAnswer = driver.on(.answered(first.requests[0].id, .changes([.applied], rateLimit: nil)))
        #expect(afterAnswer.requests.map { $0.ops[0].id } == [OpID(3)])
        #expect(afterAnswer.contains(.claim(limit: 2)), "one batch left: the next round is claimed while it goes")
        let more = driver.on(.claimed([Self.op(4)]))
        #expect(more.requests.isEmpty, "both slots are busy")
        #expect(driver.on(.claimed([])) == [], "a claim is already out")
    }

    // MARK: - Failures

    @Test("network error, timeout, 5xx, 130/131, malformed or unexpected answer: back to pending after one backoff draw per request; the flush without wait ends")
    func transient() {
        for error in [Self.apiError(.network), Self.apiError(.timeout), Self.apiError(.transient, status: 503, apiCode: 130),
                      Self.apiError(.transient, status: 500, apiCode: 131), Self.apiError(.malformedResponse, status: 200),
                      Self.apiError(.unexpectedStatus, status: 302)] {
            var driver = Driver(jitter: 0.5)
            let sent = driver.begin([Self.op(1, attempts: 3), Self.op(2, attempts: 1)])
            let failed = driver.on(.failed(sent.requests[0].id, error))
            // The batch stays together: the largest attempt count, one draw (0.5 of 4 s after 3 attempts).
            let at = Date(millis: Self.t0 + 2_000)
            #expect(failed.commits.first?.store.results.map(\.outcome) == [.retry(at: at, error: error.description), .retry(at: at, error: error.description)],
                    "\(error.code)")
            #expect(failed.contains(.emit(.retryScheduled(ops: 2, at: at, error: error.description))))
            #expect(driver.on(.claimed([])) == [])
            let end = driver.commit(failed)
            guard case .finish(let report) = end.first else { Issue.record("\(error.code): \(end)"); continue }
            #expect(report.stopReason == .notDue && report.unreachable == error, "\(error.code)")
        }
    }

    @Test("an attempt cap, when set, dead-letters an op whose transient failures reached it")
    func attemptCap() {
        var driver = Driver(maxAttempts: 3)
        let sent = driver.begin([Self.op(1, attempts: 3), Self.op(2, attempts: 2)])
        let failed = driver.on(.failed(sent.requests[0].id, Self.apiError(.transient, status: 503)))
        let outcomes = failed.commits[0].store.results.map(\.outcome)
        #expect(outcomes.first == .failed(reason: "gave up after 3 attempts: x: transient (HTTP 503)"))
        if case .retry = outcomes.last {} else { Issue.record("\(outcomes)") }
    }

    @Test("with wait, a transient failure does not end the flush: the next pass sleeps until the next attempt is due")
    func transientWithWait() {
        var driver = Driver(wait: true, jitter: 1)
        let sent = driver.begin([Self.op(1)])
        let failed = driver.on(.failed(sent.requests[0].id, Self.apiError(.network)))
        _ = driver.on(.claimed([]))
        #expect(driver.commit(failed) == [.readGate])
        #expect(driver.on(.gateRead(FlushGate(blockedUntil: nil, answeredBefore: true))) == [.claim(limit: 400)])
        #expect(driver.on(.claimed([])) == [.readQueue])
        #expect(driver.on(.queueRead(QueueSummary(pending: 1, failed: 0, nextAttemptAt: Self.t0 + 1_000))) == [.sleep(.milliseconds(1_001))])
        driver.advance(.milliseconds(1_001))
        #expect(driver.on(.woke) == [.readGate])
    }

    @Test("429 / 88: released until the reset (the attempt given back), the endpoint closed; the next pass stops rate limited")
    func rateLimited() {
        var driver = Driver()
        let reset = Date(millis: Self.t0 + 600_000)
        let sent = driver.begin([Self.op(1), Self.op(2, .remove, c2), Self.op(3)])
        #expect(sent.requests.count == 2)
        let limited = driver.on(.failed(sent.requests[0].id, Self.apiError(.rateLimited, status: 429, apiCode: 88,
                                                                             rateLimit: RateLimit(limit: 15, remaining: 0, reset: reset))))
        let store = limited.commits[0].store
        #expect(store.results.allSatisfy { $0.outcome == .release(error: "x: rateLimited (HTTP 429, code 88)", until: reset) })
        #expect(store.rateLimits == [RateLimitState(endpoint: .curate, limit: 15, remaining: 0, resetAt: reset, blockedUntil: reset)])
        #expect(limited.contains(.emit(.waitingForRateLimit(endpoint: .curate, until: reset))))
        // The claim that comes back is released unsent; nothing more goes out.
        let claimed = driver.on(.claimed([Self.op(4)]))
        #expect(claimed.requests.isEmpty && claimed.commits.first?.store.results.map(\.outcome) == [.release(error: "not sent: the flush stopped")])
        var end = driver.commit(limited) + driver.commit(claimed)
        #expect(end.isEmpty, "the other request is still on the wire")
        end = driver.on(.answered(sent.requests[1].id, .changes([.applied], rateLimit: nil)))
        end = driver.commit(end)
        #expect(end == [.readGate])
        let gate = driver.on(.gateRead(FlushGate(blockedUntil: reset.millis, answeredBefore: true)))
        #expect(gate.first == .emit(.waitingForRateLimit(endpoint: .curate, until: reset)))
        guard case .finish(let report) = gate.last else { Issue.record("\(gate)"); return }
        #expect(report.stopReason == .rateLimited(until: reset) && report.applied == 1)
    }

    @Test("x-rate-limit-reset is on the server's clock: a server 15 minutes ahead still means a 5-second wait")
    func resetOnTheServersClock() {
        var driver = Driver()
        let serverNow = Date(millis: Self.t0 + 15 * 60 * 1000)
        let reset = serverNow.addingTimeInterval(5)
        let sent = driver.begin([Self.op(1)])
        let limited = driver.on(.failed(sent.requests[0].id, Self.apiError(.rateLimited, status: 429, apiCode: 88,
            rateLimit: RateLimit(limit: 15, remaining: 0, reset: reset, serverDate: serverNow), serverDate: serverNow)))
        let until = Date(millis: Self.t0 + 5_000)
        #expect(limited.commits[0].store.rateLimits.map(\.blockedUntil) == [until])
        #expect(limited.commits[0].store.results.map(\.outcome) == [.release(error: "x: rateLimited (HTTP 429, code 88)", until: until)])
        // And a server behind: its reset, read on our clock, is not already past.
        #expect(AnswerPolicy.localTime(of: Date(millis: Self.t0 - 3_595_000), serverDate: Date(millis: Self.t0 - 3_600_000), now: Self.t0)
                == Self.t0 + 5_000)
        // A 429 with no reset header waits the API's 15-minute window; a reset already past, a second.
        #expect(AnswerPolicy.rateLimitWait(nil, now: Self.t0) == Self.t0 + 900_000)
        #expect(AnswerPolicy.rateLimitWait(RateLimit(limit: 1, remaining: 0, reset: Date(millis: Self.t0 - 1)), now: Self.t0) == Self.t0 + 1_000)
    }

    @Test("any answer with x-rate-limit-remaining 0 is classified as usual, then closes its endpoint until the reset")
    func exhaustedWindow() {
        var driver = Driver()
        let reset = Date(millis: Self.t0 + 60_000)
        let sent = driver.begin([Self.op(1), Self.op(2, .remove, c2)])
        let answered = driver.on(.answered(sent.requests[0].id, .changes([.applied], rateLimit: RateLimit(limit: 15, remaining: 0, reset: reset))))
        #expect(answered.commits[0].store.results.map(\.outcome) == [.applied])
        #expect(answered.commits[0].store.rateLimits.map(\.blockedUntil) == [reset])
        #expect(answered.requests.isEmpty && !answered.contains(.claim(limit: 400)))
        // A window with requests left, or one whose reset is past, closes nothing.
        #expect(AnswerPolicy.exhaustedUntil(RateLimit(limit: 15, remaining: 1, reset: reset), now: Self.t0) == nil)
        #expect(AnswerPolicy.exhaustedUntil(RateLimit(limit: 15, remaining: 0, reset: Date(millis: Self.t0)), now: Self.t0) == nil)
    }

    @Test("with wait, a rate limit is slept through when it ends before the deadline; otherwise the flush stops rate limited",
          arguments: [(Duration.seconds(3_600), true), (Duration.seconds(60), false)])
    func rateLimitWait(_ row: (Duration, Bool)) {
        var driver = Driver(wait: true, deadline: row.0)
        #expect(driver.start() == [.readGate])
        let until = Self.t0 + 300_000
        let actions = driver.on(.gateRead(FlushGate(blockedUntil: until, answeredBefore: true)))
        if row.1 {
            #expect(actions.last == .sleep(.milliseconds(300_001)))
        } else {
            guard case .finish(let report) = actions.last else { Issue.record("\(actions)"); return }
            #expect(report.stopReason == .rateLimited(until: Date(millis: until)))
        }
    }

    @Test("401, 403, 400/215: back to pending with the attempt given back; the flush stops and says why",
          arguments: [(401, 89, CollectionsAPIError.Code.authentication), (401, 32, .authentication), (403, 64, .forbidden), (400, 215, .authentication)])
    func authentication(_ row: (Int, Int, CollectionsAPIError.Code)) {
        var driver = Driver(concurrency: 1)
        let sent = driver.begin([Self.op(1), Self.op(2, .remove, c2)])
        let error = Self.apiError(row.2, status: row.0, apiCode: row.1)
        let failed = driver.on(.failed(sent.requests[0].id, error))
        #expect(failed.requests.isEmpty, "nothing more is sent")
        let released = failed.commits.flatMap { $0.store.results.map(\.outcome) }
        #expect(released == [.release(error: error.description), .release(error: "not sent: the flush stopped")])
        let end = driver.commit(failed)
        guard case .finish(let report) = end.last else { Issue.record("\(end)"); return }
        #expect(report.stopReason == .authentication(error) && report.requests == 1)
    }

    @Test("401 / 135: re-signed with the offset from the server's Date header and sent again once; a second 135 stops the flush")
    func clockSkew() {
        var driver = Driver()
        let serverDate = Date(millis: Self.t0 + 3_600_000)
        let sent = driver.begin([Self.op(1)])
        let skew = Self.apiError(.clockSkew, status: 401, apiCode: 135, serverDate: serverDate)
        let corrected = driver.on(.failed(sent.requests[0].id, skew))
        #expect(corrected.first == .correctClock(.seconds(3_600)))
        #expect(corrected.commits.map(\.store.clockOffset) == [.seconds(3_600)] && corrected.commits[0].store.results.isEmpty)
        let retry = corrected.requests
        #expect(retry.count == 1 && retry[0].skewRetried && retry[0].ops == sent.requests[0].ops)
        let again = driver.on(.failed(retry[0].id, skew))
        #expect(again.commits.first?.store.results.map(\.outcome) == [.release(error: skew.description)])
        _ = driver.on(.claimed([]))
        let end = driver.commit(corrected) + driver.commit(again)
        guard case .finish(let report) = end.last else { Issue.record("\(end)"); return }
        #expect(report.stopReason == .authentication(skew) && report.requests == 2)
    }

    @Test("400 / 422 for a batch: split in halves until the bad change is alone; that one fails, the rest go on", arguments: [400, 422])
    func bisection(_ status: Int) {
        var driver = Driver(concurrency: 1)
        let ops = (1...4).map { Self.op(Int64($0)) }
        let sent = driver.begin(ops)
        let bad = Self.apiError(.invalidRequest, status: status)
        var actions = driver.on(.failed(sent.requests[0].id, bad))
        var failed: [OpID] = []
        var applied: [OpID] = []
        // Op 3 is poisoned: every request holding it is refused.
        while let request = actions.requests.first {
            if request.ops.contains(where: { $0.id == OpID(3) }) {
                actions = driver.on(.failed(request.id, bad))
            } else {
                actions = driver.on(.answered(request.id, .changes(request.ops.map { _ in .applied }, rateLimit: nil)))
            }
            for commit in actions.commits {
                for result in commit.store.results {
                    if case .failed = result.outcome { failed.append(result.op) } else { applied.append(result.op) }
                }
            }
        }
        #expect(failed == [OpID(3)] && Set(applied) == [OpID(1), OpID(2), OpID(4)])
        #expect(driver.round.report.requests == 5, "4, then 2 + 2, then 1 + 1")
    }

    @Test("404 / 34 from a base that answered before, confirmed by collections/show 404 / 34: the batch fails \"collection not found\"")
    func collectionGone() {
        var driver = Driver()
        let sent = driver.begin([Self.op(1), Self.op(2)], answeredBefore: true)
        let check = driver.on(.failed(sent.requests[0].id, Self.apiError(.notFound, status: 404, apiCode: 34)))
        #expect(check.requests.count == 1 && check.requests[0].confirmsMissing && check.requests[0].ops.map(\.id) == [OpID(1), OpID(2)])
        #expect(check.commits.isEmpty)
        let gone = driver.on(.failed(check.requests[0].id, Self.apiError(.notFound, status: 404, apiCode: 34)))
        #expect(gone.commits[0].store.results.map(\.outcome) == [.failed(reason: "collection not found"), .failed(reason: "collection not found")])
        #expect(gone.commits[0].store.gone == [Self.op(1).collection], "the collection is marked gone, its other waiting ops fail with it")
        #expect(driver.round.report.requests == 1, "the check is not one of the flush's requests")
    }

    @Test("any other 404 is a wrong base URL: no earlier success, no API envelope, or collections/show finding it; the flush stops, nothing dead-lettered")
    func wrongBase() {
        let notFound = Self.apiError(.notFound, status: 404, apiCode: 34)
        let cases: [(Bool, CollectionsAPIError, CollectionsAPIError??)] = [
            (false, notFound, .some(notFound)),                           // the base never answered before (show: 404 / 34)
            (false, notFound, .some(nil)),                                // ... show answers 2xx
            (true, Self.apiError(.notFound, status: 404), nil),           // not the API's envelope
            (true, notFound, .some(nil)),                                 // collections/show answers 2xx
            (true, notFound, .some(Self.apiError(.notFound, status: 404))),  // show's 404 is not the API's
        ]
        for (answeredBefore, error, show) in cases {
            var driver = Driver()
            let sent = driver.begin([Self.op(1)], answeredBefore: answeredBefore)
            var actions = driver.on(.failed(sent.requests[0].id, error))
            if let show {
                let check = actions.requests[0]
                #expect(check.confirmsMissing)
                actions = show.map { driver.on(.failed(check.id, $0)) } ?? driver.on(.answered(check.id, .found))
            }
            let outcomes = actions.commits.flatMap { $0.store.results.map(\.outcome) }
            guard case .release(let why, nil) = outcomes.first, outcomes.count == 1 else { Issue.record("\(outcomes)"); continue }
            #expect(why.contains("check the API base URL"))
            if !answeredBefore, show == .some(notFound) { #expect(why.hasPrefix("no collection \(c1)"), "a mistyped id is told as such") }
            _ = driver.on(.claimed([]))
            let end = driver.commit(actions)
            guard case .finish(let report) = end.last, case .configuration = report.stopReason else { Issue.record("\(end)"); continue }
        }
    }

    @Test("the check behind a 404 answered with a transient failure backs off; with a rejection, stops for authentication")
    func collectionCheckFails() {
        let context = AnswerPolicy.Context(answeredBefore: true, apiBase: Self.base, collection: c1)
        #expect(AnswerPolicy.confirmation(Self.apiError(.transient, status: 503), context) == .backOff)
        #expect(AnswerPolicy.confirmation(Self.apiError(.network), context) == .backOff)
        let rejected = Self.apiError(.authentication, status: 401, apiCode: 89)
        #expect(AnswerPolicy.confirmation(rejected, context) == .stop(.authentication(rejected)))
    }

    @Test("the failure rows of the table, decided by one function")
    func failureRows() {
        let context = AnswerPolicy.Context(ops: 2, answeredBefore: true, apiBase: Self.base, collection: c1)
        let date = Date(millis: Self.t0)
        let rows: [(CollectionsAPIError, AnswerPolicy.Failure)] = [
            (Self.apiError(.network), .backOff),
            (Self.apiError(.timeout), .backOff),
            (Self.apiError(.transient, status: 503, apiCode: 130), .backOff),
            (Self.apiError(.malformedResponse, status: 200), .backOff),
            (Self.apiError(.unexpectedStatus, status: 418), .backOff),
            (Self.apiError(.rateLimited, status: 429, apiCode: 88), .rateLimited),
            (Self.apiError(.clockSkew, status: 401, apiCode: 135, serverDate: date), .correctClock(serverDate: date)),
            (Self.apiError(.clockSkew, status: 401, apiCode: 135), .stop(.authentication(Self.apiError(.clockSkew, status: 401, apiCode: 135)))),
            (Self.apiError(.forbidden, status: 403, apiCode: 64), .stop(.authentication(Self.apiError(.forbidden, status: 403, apiCode: 64)))),
            (Self.apiError(.invalidRequest, status: 422), .bisect),
            (Self.apiError(.notFound, status: 404, apiCode: 34), .confirmMissing),
            (Self.apiError(.cancelled), .stop(.cancelled)),
            (Self.apiError(.permanent, status: 400, apiCode: 86), .stop(.configuration(Self.apiError(.permanent, status: 400, apiCode: 86)))),
        ]
        for (error, expected) in rows {
            #expect(AnswerPolicy.failure(error, context) == expected, "\(error)")
        }
        var alone = context
        alone.ops = 1
        #expect(AnswerPolicy.failure(Self.apiError(.invalidRequest, status: 400), alone) == .fail(reason: "invalid request: x: invalidRequest (HTTP 400)"))
        var late = context
        late.pastDeadline = true
        #expect(AnswerPolicy.failure(Self.apiError(.timeout), late) == .deadline)
        var retried = context
        retried.skewRetried = true
        if case .stop(.authentication) = AnswerPolicy.failure(Self.apiError(.clockSkew, status: 401, apiCode: 135, serverDate: date), retried) {} else {
            Issue.record("a second clock skew must stop the flush")
        }
    }

    // MARK: - The deadline, cancellation, the store

    @Test("the deadline: no claim or request after it; a request it cuts goes back without an attempt, and the flush stops")
    func deadline() {
        var driver = Driver(concurrency: 1, deadline: .seconds(10))
        let sent = driver.begin([Self.op(1), Self.op(2, .remove, c2)])
        driver.advance(.seconds(10))
        let cut = driver.on(.failed(sent.requests[0].id, Self.apiError(.timeout)))
        let outcomes = cut.commits.flatMap { $0.store.results.map(\.outcome) }
        #expect(outcomes == [.release(error: "x: timeout"), .release(error: "not sent: the flush stopped")])
        #expect(cut.requests.isEmpty)
        let end = driver.commit(cut)
        guard case .finish(let report) = end.last else { Issue.record("\(end)"); return }
        #expect(report.stopReason == .deadline)

        var late = Driver(deadline: .seconds(1))
        #expect(late.start() == [.readGate])
        late.advance(.seconds(2))
        guard case .finish(let lateReport) = late.on(.gateRead(FlushGate(blockedUntil: nil, answeredBefore: true))).last else {
            Issue.record("a pass past the deadline must not begin"); return
        }
        #expect(lateReport.stopReason == .deadline)
    }

    @Test("cancellation: nothing new starts, what is on the wire is answered and committed, the flush stops cancelled")
    func cancellation() {
        var driver = Driver(concurrency: 1)
        let sent = driver.begin([Self.op(1), Self.op(2, .remove, c2)])
        let cancelled = driver.on(.cancelled)
        #expect(cancelled.commits.first?.store.results.map(\.outcome) == [.release(error: "not sent: the flush stopped")])
        let answered = driver.on(.answered(sent.requests[0].id, .changes([.applied], rateLimit: nil)))
        #expect(answered.requests.isEmpty && answered.commits.count == 1)
        let end = driver.commit(cancelled) + driver.commit(answered)
        guard case .finish(let report) = end.last else { Issue.record("\(end)"); return }
        #expect(report.stopReason == .cancelled && report.applied == 1)

        var sleeping = Driver(wait: true)
        #expect(sleeping.start() == [.readGate])
        #expect(sleeping.on(.gateRead(FlushGate(blockedUntil: Self.t0 + 5_000, answeredBefore: true))).last == .sleep(.milliseconds(5_001)))
        guard case .finish(let asleep) = sleeping.on(.cancelled).last else { Issue.record("a sleeping flush ends when cancelled"); return }
        #expect(asleep.stopReason == .cancelled)
    }

    @Test("a store call that fails: nothing new starts, the answers on the wire are still committed, then the flush ends")
    func storeFailure() {
        var driver = Driver(concurrency: 2)
        let sent = driver.begin([Self.op(1), Self.op(2, .remove, c2), Self.op(3, .remove, try! CollectionID(validating: "custom-3"))])
        #expect(sent.requests.count == 2)
        #expect(driver.on(.storeFailed(.claim)).commits.first?.store.results.map(\.outcome) == [.release(error: "not sent: the flush stopped")])
        let answered = driver.on(.answered(sent.requests[0].id, .changes([.applied], rateLimit: nil)))
        #expect(answered.commits.count == 1 && answered.requests.isEmpty)
        // The lease check before the second request failed: it was never sent.
        #expect(driver.on(.storeFailed(.request(sent.requests[1].id))).isEmpty)
        let end = driver.on(.storeFailed(.commit)) + driver.commit(answered)
        guard case .finish = end.last else { Issue.record("\(end)"); return }
        #expect(driver.on(.claimed([Self.op(9)])).isEmpty, "a finished round takes no more events")
    }
}

@Suite("The flush round with collection ops")
struct FlushRoundCollectionOpTests {
    static let local = try! CollectionID(validating: "local-1")

    static func op(_ id: Int64, _ kind: OpKind, _ collection: CollectionID = c1) -> Op {
        Op(id: OpID(id), kind: kind, collection: collection, tweet: kind.isCollectionOp ? nil : TweetID(UInt64(id))!, state: .inFlight,
           hlc: HLC(rawValue: id), createdAt: Date(millis: FlushRoundTests.t0), attempts: 1, nextAttemptAt: nil, lastError: nil)
    }

    @Test("each collection op is a request of its own, to its endpoint; entry ops of the claim are batched as before")
    func ownRequests() {
        var driver = FlushRoundTests.Driver()
        let sent = driver.begin([Self.op(1, .create, Self.local), Self.op(2, .remove), Self.op(3, .update), Self.op(4, .remove), Self.op(5, .destroy)])
        #expect(sent.requests.map(\.endpoint) == [.create, .update, .destroy, .curate])
        #expect(sent.requests.map { $0.ops.map(\.id.rawValue) } == [[1], [3], [5], [2, 4]])
    }

    @Test("a create's answer commits the binding; a listing match counts as already applied")
    func createAnswered() {
        var driver = FlushRoundTests.Driver()
        let sent = driver.begin([Self.op(1, .create, Self.local), Self.op(2, .create, try! CollectionID(validating: "local-2"))])
        let metadata = CollectionMetadata(name: "n")
        let made = driver.on(.answered(sent.requests[0].id, .collection(.created(c1, metadata))))
        #expect(made.commits.first?.store.results.map(\.outcome) == [.collection(.created(c1, metadata))])
        _ = driver.commit(made)
        let matched = driver.on(.answered(sent.requests[1].id, .collection(.matched(c1, metadata, candidates: [c1]))))
        _ = driver.commit(matched)
        #expect(driver.round.report.applied == 1 && driver.round.report.alreadyApplied == 1)
    }

    @Test("a 404 to a create (or the listing before it) is a configuration stop, never a check of a local id")
    func createNotFound() {
        var driver = FlushRoundTests.Driver()
        let sent = driver.begin([Self.op(1, .create, Self.local)], answeredBefore: true)
        let stop = driver.on(.failed(sent.requests[0].id, FlushRoundTests.apiError(.notFound, status: 404, apiCode: 34)))
        #expect(stop.requests.isEmpty, "no collections/show of local-1")
        #expect(stop.commits.first?.store.results.map(\.op) == [OpID(1)], "the create goes back to pending")
        _ = driver.commit(stop)
        _ = driver.on(.claimed([]))  // the pass's next claim, sent with the request
        guard case .configuration = driver.round.report.stopReason else {
            Issue.record("expected a configuration stop, got \(driver.round.report.stopReason)")
            return
        }
    }

    @Test("a destroy whose collection is confirmed gone is applied; an update's fails and marks the collection gone")
    func goneOnDestroyAndUpdate() {
        var driver = FlushRoundTests.Driver()
        let sent = driver.begin([Self.op(1, .destroy), Self.op(2, .update, c2)], answeredBefore: true)
        var checks: [FlushRound.Request] = []
        for request in sent.requests {
            checks += driver.on(.failed(request.id, FlushRoundTests.apiError(.notFound, status: 404, apiCode: 34))).requests
        }
        #expect(checks.count == 2 && checks.allSatisfy(\.confirmsMissing))
        var commits: [FlushRound.Commit] = []
        for check in checks {
            commits += driver.on(.failed(check.id, FlushRoundTests.apiError(.notFound, status: 404, apiCode: 34))).commits
        }
        #expect(commits.map { $0.store.results.map(\.outcome) } == [[.alreadyApplied], [.failed(reason: "collection not found")]])
        #expect(commits.map(\.store.gone) == [[], [c2]])
    }

    @Test("with creates held back (no user id), a queue of only their ops ends the flush with a configuration stop")
    func heldCreates() {
        var driver = FlushRoundTests.Driver()
        #expect(driver.start() == [.readGate])
        _ = driver.on(.gateRead(FlushGate(blockedUntil: nil, answeredBefore: true)))
        #expect(driver.on(.claimed([])) == [.readQueue])
        let end = driver.on(.queueRead(QueueSummary(pending: 3, failed: 0, nextAttemptAt: nil, held: 3)))
        guard case .finish(let report) = end.last, case .configuration(let error) = report.stopReason else {
            Issue.record("expected a configuration stop, got \(end)")
            return
        }
        #expect(error.message.contains("TWITTER_USER_ID"))
    }
}

extension Array where Element == FlushRound.Action {
    var requests: [FlushRound.Request] {
        compactMap { if case .send(let request) = $0 { request } else { nil } }
    }

    var commits: [FlushRound.Commit] {
        compactMap { if case .commit(let commit) = $0 { commit } else { nil } }
    }
}
