@_spi(Worker) @testable import CollectionSync
import CollectionsAPI
import Foundation
import Synchronization
import Testing

/// The worker against a scripted transport: each row of semantics.md's classification table.
@Suite("Sync worker: classification, batching, backoff, rate limits, auth, bisection")
struct SyncEngineTests {
    let folder = TemporaryFolder()
    let wall = ManualWallClock(1_800_000_000_000)
    let base = "https://api.example.test/1.1"

    func engine(_ transport: ScriptedTransport, batchSize: Int = 100, jitter: Double = 1.0,
                configure: (inout SyncEngine.Configuration) -> Void = { _ in }) async throws -> SyncEngine {
        let store = try await openStore(folder, clock: wall)
        var clientConfiguration = CollectionsClient.Configuration()
        let wall = self.wall
        clientConfiguration.wallClock = wall.wallClock
        let client = try CollectionsClient(baseURL: base, credentials: .oauth1(consumerKey: "k", consumerSecret: "s", accessToken: "t", accessTokenSecret: "ts"),
                                           transport: transport, configuration: clientConfiguration)
        var configuration = SyncEngine.Configuration()
        configuration.batchSize = batchSize
        configuration.jitter = { jitter }
        configuration.clock = wall.clock
        configure(&configuration)
        return try SyncEngine(store: store, client: client, configuration: configuration)
    }

    @Test("per change: applied, already removed, already present, failed (view reverted); one curate per 100")
    func perChangeOutcomes() async throws {
        let transport = ScriptedTransport { sent in
            ScriptedTransport.envelope(sent.changes.compactMap { change in
                switch change.tweetID {
                case "2": (change, "not_found")
                case "3": (change, "duplicate")
                case "4": (change, "not_found")   // add + not_found: a real failure
                case "5": (change, "some_new_reason")
                default: nil
                }
            })
        }
        let engine = try await engine(transport)
        try await engine.store.remove([tweet(1), tweet(2), tweet(5)], from: c1)
        try await engine.store.add([tweet(3), tweet(4)], to: c1)
        try await engine.store.remove(tweets(100...349), from: c2)
        let report = try await engine.flush()
        #expect(report.stopReason == .drained || report.stopReason == .notDue)
        #expect(report.applied == 251 && report.alreadyApplied == 2 && report.failed == 2)
        #expect(report.requests == 4 && report.sent == 255)
        #expect(transport.sent.map(\.changes.count).sorted() == [5, 50, 100, 100])
        #expect(transport.sent.allSatisfy { $0.path == "/1.1/collections/entries/curate.json" })
        let failed = try await engine.store.outbox(.failed)
        #expect(failed.map(\.tweet) == [tweet(5), tweet(4)] || failed.map(\.tweet) == [tweet(4), tweet(5)])
        #expect(Set(failed.compactMap(\.lastError)) == ["not_found", "some_new_reason"])
        #expect(report.pending == 0 && report.deadLetters == 2)
        // The failed add reverted (tweet 4 absent); the already-present add stays.
        #expect(try await engine.store.entries(of: c1).map(\.tweet) == [tweet(3)])
        let events = try await engine.store.log(limit: 1_000).map(\.event)
        #expect(events.contains(.alreadyRemoved) && events.contains(.alreadyPresent) && events.filter { $0 == .failed }.count == 2)
    }

    @Test("events carry each op as it is after the event: applied and reconciled have left the outbox, a dead letter is failed with its reason")
    func eventsCarryTheOpAfterwards() async throws {
        let transport = ScriptedTransport { sent in
            ScriptedTransport.envelope(sent.changes.compactMap { change in
                switch change.tweetID {
                case "2": (change, "not_found")
                case "3": (change, "some_new_reason")
                default: nil
                }
            })
        }
        let engine = try await engine(transport)
        let events = engine.events()
        let queued = try await engine.store.remove([tweet(1), tweet(2), tweet(3)], from: c1)
        _ = try await engine.flush()
        var seen: [OpID: (String, Op)] = [:]
        for await event in events {
            switch event {
            case .applied(let op): seen[op.id] = ("applied", op)
            case .reconciled(let op): seen[op.id] = ("reconciled", op)
            case .failed(let op, _): seen[op.id] = ("failed", op)
            case .stopped: break
            default: continue
            }
            if case .stopped = event { break }
        }
        #expect(seen[queued[0].id]?.0 == "applied" && seen[queued[0].id]?.1.state == .applied)
        #expect(seen[queued[1].id]?.0 == "reconciled" && seen[queued[1].id]?.1.state == .applied)
        let dead = try #require(seen[queued[2].id])
        #expect(dead.0 == "failed" && dead.1.state == .failed && dead.1.lastError == "some_new_reason")
        #expect(try await engine.store.op(queued[2].id) == dead.1, "the event's op is the outbox's")
        #expect(seen.values.allSatisfy { $0.1.attempts == 1 })
    }

    @Test("one error model: the answer that stops a flush is the error a pull throws, with its codes", arguments: [
        (401, 89, CollectionsAPIError.Code.authentication),
        (403, 64, .forbidden),
        (400, 86, .permanent),
    ])
    func oneErrorModel(status: Int, apiCode: Int, code: CollectionsAPIError.Code) async throws {
        let engine = try await engine(ScriptedTransport { _ in ScriptedTransport.apiError(status, apiCode) })
        try await engine.store.remove([tweet(1)], from: c1)
        let report = try await engine.flush()
        let stopped: CollectionsAPIError
        switch report.stopReason {
        case .authentication(let error), .configuration(let error): stopped = error
        default: Issue.record("\(report.stopReason)"); return
        }
        let thrown = try await #require(throws: CollectionsAPIError.self) { try await engine.pull(c1) }
        #expect([thrown.code, stopped.code] == [code, code])
        #expect([thrown.httpStatus, stopped.httpStatus] == [status, status] && [thrown.apiErrorCode, stopped.apiErrorCode] == [apiCode, apiCode])
        #expect(try await engine.store.outbox().count == 1, "the op is kept")
    }

    @Test("one error model: an unreachable API is reported by a flush and thrown by a pull as the same error")
    func oneErrorModelUnreachable() async throws {
        let engine = try await engine(ScriptedTransport { _ in ScriptedTransport.apiError(503, 130) })
        try await engine.store.remove([tweet(1)], from: c1)
        let report = try await engine.flush()
        let unreachable = try #require(report.unreachable)
        let thrown = try await #require(throws: CollectionsAPIError.self) { try await engine.pull(c1) }
        for error in [unreachable, thrown] {
            #expect(error.code == .transient && error.httpStatus == 503 && error.apiErrorCode == 130)
        }
    }

    @Test("batch size 1 uses entries/add and entries/remove")
    func singleEndpoints() async throws {
        let transport = ScriptedTransport { _ in ScriptedTransport.envelope() }
        let engine = try await engine(transport, batchSize: 1)
        try await engine.store.remove([tweet(1)], from: c1)
        try await engine.store.add([tweet(2)], to: c1)
        let report = try await engine.flush()
        #expect(report.applied == 2 && report.requests == 2)
        #expect(Set(transport.sent.map(\.path)) == ["/1.1/collections/entries/remove.json", "/1.1/collections/entries/add.json"])
    }

    @Test("5xx: back to pending with backoff inside the jitter bounds, one draw per request")
    func transientBackoff() async throws {
        let transport = ScriptedTransport { _ in ScriptedTransport.apiError(503, 130) }
        let draw = Mutex(1.0)
        let engine = try await engine(transport) { $0.jitter = { draw.withLock { $0 } } }
        try await engine.store.remove(tweets(1...3), from: c1)
        var report = try await engine.flush()
        #expect(report.stopReason == .notDue && report.pending == 3 && report.unreachable != nil)
        var ops = try await engine.store.outbox()
        #expect(ops.allSatisfy { $0.attempts == 1 && $0.state == .pending })
        #expect(Set(ops.compactMap(\.nextAttemptAt)) == [Date(millis: wall.now + 1_000)], "ceiling 1 s after the first failure, one draw for the batch")
        #expect(report.nextAttemptAt == Date(millis: wall.now + 1_000))

        // Not due yet: nothing is sent.
        #expect(try await engine.flush().requests == 0)
        for (attempt, expectedCeiling) in [(2, 2_000), (3, 4_000), (4, 8_000)] as [(Int, Int64)] {
            wall.advance(by: 300_000)
            draw.withLock { $0 = 0.5 }
            report = try await engine.flush()
            ops = try await engine.store.outbox()
            #expect(ops.allSatisfy { $0.attempts == attempt })
            #expect(ops[0].nextAttemptAt == Date(millis: wall.now + expectedCeiling / 2))
        }
        // The cap: 5 minutes.
        #expect(Backoff().ceiling(afterAttempts: 40) == .seconds(300))
        #expect(Backoff().delay(afterAttempts: 10, unit: 1) == .seconds(300))
        #expect(Backoff().delay(afterAttempts: 1, unit: 0) == .zero)
    }

    @Test("429: ops released until the reset, nothing sent to the endpoint before it; remaining 0 does the same proactively")
    func rateLimits() async throws {
        let reset = (wall.now / 1000) + 600
        let transport = ScriptedTransport { _ in
            ScriptedTransport.apiError(429, 88, [("x-rate-limit-limit", "15"), ("x-rate-limit-remaining", "0"), ("x-rate-limit-reset", "\(reset)")])
        }
        let engine = try await engine(transport)
        try await engine.store.remove([tweet(1)], from: c1)
        var report = try await engine.flush()
        #expect(report.stopReason == .rateLimited(until: Date(millis: reset * 1000)) || report.stopReason == .notDue)
        let op = try #require(try await engine.store.outbox().first)
        #expect(op.attempts == 0 && op.nextAttemptAt == Date(millis: reset * 1000))
        #expect(try await engine.store.status().rateLimitedUntil == Date(millis: reset * 1000))

        transport.answer { _ in
            ScriptedTransport.envelope().with(headers: [("x-rate-limit-limit", "15"), ("x-rate-limit-remaining", "0"), ("x-rate-limit-reset", "\(reset + 900)")])
        }
        try await engine.store.add([tweet(2)], to: c1)
        wall.advance(by: 300_000)
        report = try await engine.flush()
        #expect(report.requests == 0, "nothing before the reset")
        #expect(report.stopReason == .rateLimited(until: Date(millis: reset * 1000)))

        wall.set(reset * 1000 + 1)
        report = try await engine.flush()
        #expect(report.requests == 1 && report.applied == 2)
        // That answer said remaining 0: the next op waits for the new reset without a request.
        try await engine.store.add([tweet(3)], to: c1)
        report = try await engine.flush()
        #expect(report.requests == 0 && report.stopReason == .rateLimited(until: Date(millis: (reset + 900) * 1000)))
        // With wait, the flush sleeps through it (a deadline shorter than the wait stops it instead).
        report = try await engine.flush(FlushOptions(timeLimit: .seconds(60), wait: true))
        #expect(report.requests == 0 && report.stopReason == .rateLimited(until: Date(millis: (reset + 900) * 1000)))
        report = try await engine.flush(FlushOptions(timeLimit: .seconds(3_600), wait: true))
        #expect(report.stopReason == .drained && report.applied == 1)
    }

    @Test("auth rejection: the flush stops, ops pending with attempts unchanged", arguments: [(401, 89), (401, 32), (403, 64), (400, 215)])
    func authentication(_ row: (Int, Int)) async throws {
        let transport = ScriptedTransport { _ in ScriptedTransport.apiError(row.0, row.1) }
        let engine = try await engine(transport) { $0.concurrency = 1 }
        try await engine.store.remove(tweets(1...3), from: c1)
        try await engine.store.remove(tweets(1...3), from: c2)
        let report = try await engine.flush()
        guard case .authentication = report.stopReason else { Issue.record("\(report.stopReason)"); return }
        #expect(report.requests == 1, "the flush stops at the first rejection")
        let ops = try await engine.store.outbox()
        #expect(ops.count == 6 && ops.allSatisfy { $0.state == .pending && $0.attempts == 0 && $0.nextAttemptAt == nil })
    }

    @Test("clock skew: re-signed with the offset from the Date header, retried once")
    func clockSkew() async throws {
        let serverNow = Date(millis: wall.now + 3_600_000)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let date = formatter.string(from: serverNow)
        let transport = ScriptedTransport { sent in
            let stamp = OAuth1.parseAuthorizationHeader(sent.authorization)?.first { $0.0 == "oauth_timestamp" }.flatMap { Double($0.1) } ?? 0
            return abs(stamp - serverNow.timeIntervalSince1970) > 300
                ? ScriptedTransport.apiError(401, 135, [("date", date)]) : ScriptedTransport.envelope()
        }
        let engine = try await engine(transport)
        try await engine.store.remove([tweet(1)], from: c1)
        let report = try await engine.flush()
        #expect(report.applied == 1 && report.requests == 2)
        #expect(try await engine.store.clockOffset(apiBase: base) == .seconds(3_600))
        // A later flush signs with the stored offset from the start.
        try await engine.store.remove([tweet(2)], from: c1)
        #expect(try await engine.flush().requests == 1)
    }

    @Test("a poisoned batch (400/422) is bisected until the bad change is alone", arguments: [400, 422])
    func bisection(_ status: Int) async throws {
        let transport = ScriptedTransport { sent in
            sent.changes.contains { $0.tweetID == "13" } ? ScriptedTransport.json(status, status == 400 ? #"{"errors":[{"code":44,"message":"x"}]}"# : "{}") : ScriptedTransport.envelope()
        }
        let engine = try await engine(transport)
        try await engine.store.remove(tweets(10...17), from: c1)
        let report = try await engine.flush()
        #expect(report.applied == 7 && report.failed == 1)
        #expect(try await engine.store.outbox(.failed).map(\.tweet) == [tweet(13)])
        #expect(transport.sent.count == 7, "8 -> 4+4 -> 2+2 -> 1+1")
    }

    @Test("404: without an earlier success the base URL is wrong: stop, nothing dead-lettered")
    func notFoundWrongBase() async throws {
        let transport = ScriptedTransport { _ in ScriptedTransport.apiError(404, 34) }
        let engine = try await engine(transport)
        try await engine.store.remove(tweets(1...2), from: c1)
        let report = try await engine.flush()
        guard case .configuration = report.stopReason else { Issue.record("\(report.stopReason)"); return }
        #expect(try await engine.store.outbox().allSatisfy { $0.state == .pending && $0.attempts == 0 })
        #expect(try await engine.store.outbox(.failed).isEmpty)
    }

    @Test("404 confirmed by collections/show: that collection's ops fail, the others go on")
    func collectionGone() async throws {
        let transport = ScriptedTransport { sent in
            if sent.path.hasSuffix("show.json") { return ScriptedTransport.apiError(404, 34) }
            return sent.changes.contains { $0.tweetID.hasPrefix("1") } ? ScriptedTransport.apiError(404, 34) : ScriptedTransport.envelope()
        }
        let engine = try await engine(transport) { $0.concurrency = 1 }
        try await engine.store.remove([tweet(20)], from: c2)
        _ = try await engine.flush()  // an earlier success from this base URL
        try await engine.store.remove(tweets(10...12), from: c1)
        try await engine.store.remove([tweet(21)], from: c2)
        let report = try await engine.flush()
        #expect(report.failed == 3 && report.applied == 1)
        #expect(try await engine.store.outbox(.failed).allSatisfy { $0.lastError == "collection not found" && $0.collection == c1 })
        // And show answering 2xx means the base URL is wrong after all: nothing dead-lettered.
        transport.answer { sent in
            sent.path.hasSuffix("show.json")
                ? ScriptedTransport.json(200, #"{"objects":{},"response":{"timeline_id":"custom-1"}}"#)
                : ScriptedTransport.apiError(404, 34)
        }
        try await engine.store.remove([tweet(30)], from: c1)
        let second = try await engine.flush()
        guard case .configuration = second.stopReason else { Issue.record("\(second.stopReason)"); return }
        #expect(second.failed == 0)
    }

    @Test("an intent made while its key's op is in flight survives the answer")
    func intentDuringFlight() async throws {
        let storeBox = Mutex<SyncStore?>(nil)
        let transport = ScriptedTransport { sent in
            if let store = storeBox.withLock({ $0 }), sent.changes.contains(where: { $0.tweetID == "1" && $0.op == .remove }) {
                try await store.add([tweet(1)], to: c1)
            }
            return ScriptedTransport.envelope()
        }
        let engine = try await engine(transport) { $0.concurrency = 1; $0.batchSize = 1 }
        storeBox.withLock { $0 = engine.store }
        try await engine.store.remove([tweet(1)], from: c1)
        let report = try await engine.flush()
        #expect(report.applied == 2, "the remove, then the add made while it was in flight")
        #expect(transport.sent.map { $0.changes.map(\.op) } == [[.remove], [.add]])
        #expect(try await engine.store.entries(of: c1).map(\.tweet) == [tweet(1)])
    }

    @Test("another live flusher holds the lease: the flush reports it and changes nothing")
    func leaseHeld() async throws {
        let transport = ScriptedTransport { _ in ScriptedTransport.envelope() }
        let engine = try await engine(transport)
        try await engine.store.remove([tweet(1)], from: c1)
        _ = try await engine.store.acquireFlusherLease(host: "elsewhere", pid: 1, isAlive: { _ in true })
        let report = try await engine.flush()
        guard case .leaseHeld(let holder) = report.stopReason else { Issue.record("\(report.stopReason)"); return }
        #expect(holder.host == "elsewhere" && report.pending == 1 && transport.sent.isEmpty)
    }

    @Test("with wait, a flush sleeps through backoff until the queue is empty")
    func waitThroughBackoff() async throws {
        let failures = Mutex(3)
        let transport = ScriptedTransport { _ in
            failures.withLock { left in defer { left -= 1 }; return left > 0 } ? ScriptedTransport.apiError(502, 0) : ScriptedTransport.envelope()
        }
        let engine = try await engine(transport)
        try await engine.store.remove(tweets(1...5), from: c1)
        let report = try await engine.flush(FlushOptions(timeLimit: .seconds(60), wait: true))
        #expect(report.stopReason == .drained && report.applied == 5 && report.requests == 4)
        #expect(report.unreachable == nil)
    }

    @Test("an optional attempt cap dead-letters after N transient failures")
    func attemptCap() async throws {
        let transport = ScriptedTransport { _ in ScriptedTransport.apiError(500, 131) }
        let engine = try await engine(transport) { $0.maxAttempts = 2 }
        try await engine.store.remove([tweet(1)], from: c1)
        _ = try await engine.flush()
        wall.advance(by: 10_000)
        let report = try await engine.flush()
        #expect(report.pending == 0 && report.deadLetters == 1)
        #expect(try await engine.store.outbox(.failed).first?.lastError?.hasPrefix("gave up after 2 attempts") == true)
    }

    @Test("after a 429 no further batch of the round goes to the endpoint")
    func rateLimitStopsTheRound() async throws {
        let reset = (wall.now / 1000) + 600
        let transport = ScriptedTransport { _ in
            ScriptedTransport.apiError(429, 88, [("x-rate-limit-limit", "15"), ("x-rate-limit-remaining", "0"), ("x-rate-limit-reset", "\(reset)")])
        }
        let engine = try await engine(transport) { $0.concurrency = 1 }
        for collection in [c1, c2, try CollectionID(validating: "custom-3")] {
            try await engine.store.remove([tweet(1)], from: collection)
        }
        let report = try await engine.flush()
        #expect(report.requests == 1 && transport.sent.count == 1)
        #expect(try await engine.store.outbox().allSatisfy { $0.state == .pending && $0.attempts == 0 })
    }

    @Test("a lease renewed moments ago is trusted without a read; past half its time to live, or another holder's, is not")
    func leaseTrustedWhileFresh() async throws {
        let engine = try await engine(ScriptedTransport { _ in ScriptedTransport.envelope() })
        let lease = try acquired(try await engine.store.acquireFlusherLease())
        #expect(!engine.holdsLeaseSurely(lease), "unknown to the engine until it notes it")
        engine.noteLease(lease)
        #expect(engine.holdsLeaseSurely(lease))
        #expect(!engine.holdsLeaseSurely(FlusherLease(holder: "someone-else", expiresAt: lease.expiresAt)))
        wall.advance(by: 15_001)  // more than half of the default 30 s
        #expect(!engine.holdsLeaseSurely(lease))
        engine.noteLease(try await engine.store.renewFlusherLease(lease))
        #expect(engine.holdsLeaseSurely(lease))
    }

    @Test("a flusher whose lease was taken over mid-round sends nothing more")
    func leaseLostMidRound() async throws {
        let storeBox = Mutex<SyncStore?>(nil)
        let wall = self.wall
        let transport = ScriptedTransport { _ in
            if let store = storeBox.withLock({ $0 }) {
                // The lease expires while this request is slow, and another host takes it over.
                wall.advance(by: 60_000)
                _ = try await store.acquireFlusherLease(host: "elsewhere", pid: 1, isAlive: { _ in true })
            }
            return ScriptedTransport.envelope()
        }
        let engine = try await engine(transport) { $0.concurrency = 1 }
        storeBox.withLock { $0 = engine.store }
        for collection in [c1, c2, try CollectionID(validating: "custom-3")] {
            try await engine.store.remove([tweet(1)], from: collection)
        }
        let error = await #expect(throws: SyncError.self) { try await engine.flush() }
        #expect(error?.code == .leaseNotHeld)
        #expect(transport.sent.count == 1)
    }

    @Test("pull pages back by max_position and reaches every entry exactly once across repeated boundary entries")
    func pullPaging() async throws {
        // 450 entries with sort_index 1000...1449; max_position is inclusive, so boundaries repeat.
        let all = (0..<450).map { (tweet: String(10_000 + $0), sortIndex: 1_000 + $0) }.reversed()
        let transport = ScriptedTransport { sent in
            let count = Int(sent.query.first { $0.0 == "count" }?.1 ?? "") ?? 0
            let max = sent.query.first { $0.0 == "max_position" }.flatMap { Int($0.1) } ?? Int.max
            let page = Array(all.filter { $0.sortIndex <= max }.prefix(count))
            let truncated = all.filter { $0.sortIndex <= max }.count > count
            let timeline = page.map { #"{"tweet":{"id":"\#($0.tweet)","sort_index":"\#($0.sortIndex)"}}"# }.joined(separator: ",")
            return ScriptedTransport.json(200, #"{"objects":{},"response":{"timeline_id":"custom-1","timeline":[\#(timeline)],"position":{"max_position":"\#(page.first?.sortIndex ?? 0)","min_position":"\#(page.last?.sortIndex ?? 0)","was_truncated":\#(truncated)}}}"#)
        }
        let engine = try await engine(transport)
        let report = try await engine.pull(c1)
        #expect(report.entries == 450)
        #expect(try await engine.store.entries(of: c1).map(\.tweet.rawValue) == all.map(\.tweet))
        #expect(transport.sent.count == 4, "200 + 200 (1 repeated) + 52, then the metadata")
        #expect(transport.sent.dropLast().allSatisfy { $0.path == "/1.1/collections/entries.json" })
        #expect(transport.sent.last?.path == "/1.1/collections/show.json")
    }

    @Test("pull reads a 404 by the flush's rule: gone only when the base answered before and collections/show confirms it")
    func pullNotFound() async throws {
        let showFinds = Mutex(false)
        let transport = ScriptedTransport { sent in
            if sent.path.hasSuffix("show.json") {
                if sent.query.contains(where: { $0 == ("id", "custom-1") }) {
                    return ScriptedTransport.json(200, #"{"objects":{},"response":{"timeline_id":"custom-1"}}"#)
                }
                return showFinds.withLock { $0 } ? ScriptedTransport.json(200, #"{"objects":{},"response":{"timeline_id":"custom-2"}}"#)
                    : ScriptedTransport.apiError(404, 34)
            }
            if sent.query.contains(where: { $0 == ("id", "custom-1") }) {
                return ScriptedTransport.json(200, #"{"objects":{},"response":{"timeline_id":"custom-1","timeline":[],"position":{"was_truncated":false}}}"#)
            }
            return ScriptedTransport.apiError(404, 34)
        }
        let engine = try await engine(transport)
        // No earlier success from this base: a configuration error (the base may be wrong), but the
        // check is sent, and its 404 / 34 makes the message name the collection first.
        let wrong = await #expect(throws: CollectionsAPIError.self) { try await engine.pull(c2) }
        #expect(wrong?.code == .configuration && wrong?.message.contains("check the API base URL") == true)
        #expect(wrong?.message.hasPrefix("no collection custom-2") == true, "\(String(describing: wrong))")
        #expect(transport.sent.last?.path.hasSuffix("show.json") == true)
        try await engine.pull(c1)  // the base answers
        let gone = await #expect(throws: CollectionsAPIError.self) { try await engine.pull(c2) }
        #expect(gone?.code == .notFound && gone?.message == "no collection custom-2 at \(base)")
        #expect(transport.sent.last?.path.hasSuffix("show.json") == true)
        showFinds.withLock { $0 = true }
        let found = await #expect(throws: CollectionsAPIError.self) { try await engine.pull(c2) }
        #expect(found?.code == .configuration)
    }

    @Test("pull: a clock-skew answer is retried once with the server's clock, which is remembered")
    func pullClockSkew() async throws {
        let serverNow = Date(millis: wall.now + 3_600_000)
        let transport = ScriptedTransport { sent in
            let stamp = OAuth1.parseAuthorizationHeader(sent.authorization)?.first { $0.0 == "oauth_timestamp" }.flatMap { Double($0.1) } ?? 0
            return abs(stamp - serverNow.timeIntervalSince1970) > 300
                ? ScriptedTransport.apiError(401, 135, [("date", Self.httpDate(serverNow))])
                : ScriptedTransport.json(200, #"{"objects":{},"response":{"timeline_id":"custom-1","timeline":[],"position":{"was_truncated":false}}}"#)
        }
        let engine = try await engine(transport)
        try await engine.pull(c1)
        #expect(transport.sent.count == 3, "the entries refused, again with the server's clock, then the metadata")
        #expect(try await engine.store.clockOffset(apiBase: base) == .seconds(3_600))
    }

    @Test("a request slower than the lease's time to live keeps the lease: the heartbeat, a child task of the flush, renews it")
    func heartbeatKeepsTheLease() async throws {
        let (sending, sent) = AsyncStream<Void>.makeStream()
        let (answering, answer) = AsyncStream<Void>.makeStream()
        let transport = ScriptedTransport { _ in
            sent.yield()
            for await _ in answering { break }
            return ScriptedTransport.envelope()
        }
        let engine = try await engine(transport)
        try await engine.store.remove([tweet(1)], from: c1)
        let flush = Task { try await engine.flush() }
        for await _ in sending { break }
        // 100 s of a hung request, 5 s at a time: the heartbeat (every 10 s) keeps the lease.
        let limit = ContinuousClock.now + .seconds(30)
        for _ in 0..<20 {
            let before = try expiry()
            wall.advance(by: 5_000)
            while try expiry() == before, try expiry() < wall.now + 20_000, ContinuousClock.now < limit { await Task.yield() }
            #expect(try expiry() > wall.now, "the lease expired while the request hung")
        }
        let other = try await engine.store.acquireFlusherLease(host: "elsewhere", pid: 1, isAlive: { _ in true })
        guard case .heldBy = other else { Issue.record("another flusher took the lease of a live one"); return }
        answer.yield()
        let report = try await flush.value
        #expect(report.applied == 1)
        #expect(try rows(engine.store.path, "SELECT count(*) FROM flusher_lease") == [["0"]], "released at the end")

        func expiry() throws -> Int64 {
            Int64(try rows(engine.store.path, "SELECT coalesce(max(expires_at), 0) FROM flusher_lease")[0][0])!
        }
    }

    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}

extension HTTPResponseData {
    func with(headers extra: [(String, String)]) -> HTTPResponseData {
        HTTPResponseData(status: status, headers: headers + extra, body: body)
    }

}
