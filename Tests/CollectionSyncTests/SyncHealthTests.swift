@_spi(Worker) @testable import CollectionSync
import CollectionsAPI
import Foundation
import Logging
import Testing
import TestSupport

/// The engine's health, as the log and the events tell it: each change once, not once per retry.
@Suite("Sync health: each change of state told once")
struct SyncHealthTests {
    static let down = CollectionsAPIError(code: .network, message: "connection refused")
    static let fiveHundred = CollectionsAPIError(code: .transient, message: "over capacity", httpStatus: 503, apiErrorCode: 130)
    static let rejected = CollectionsAPIError(code: .authentication, message: "bad token", httpStatus: 401, apiErrorCode: 89)
    static let at = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("an outage: unreachable once (with its event) however many retries; reachable again once")
    func outage() {
        var health = SyncHealth()
        var notices: [SyncHealth.Notice] = []
        for attempt in 0..<5 {
            notices += health.observe(.failed(attempt.isMultiple(of: 2) ? Self.down : Self.fiveHundred))
            notices += health.observe(.backingOff(ops: 3, until: Self.at + Double(attempt), error: "x"))
        }
        #expect(notices.map(\.message).filter { $0.hasPrefix("the API is unreachable") }.count == 1)
        #expect(notices.map(\.message).filter { $0.contains("back off until") }.count == 1)
        #expect(notices.first?.level == .warning && notices.first?.event == .unreachable(reason: Self.down.description))
        #expect(notices.compactMap(\.event).count == 1)
        let back = health.observe(.answered)
        #expect(back.map(\.message) == ["the API is reachable again"])
        #expect(health.observe(.answered).isEmpty, "no change, nothing to tell")
        #expect(health.observe(.failed(Self.down)).count == 1, "a new outage is a new change")
    }

    @Test("credentials rejected: told at error once until a request succeeds, then their acceptance once")
    func rejection() {
        var health = SyncHealth()
        let first = health.observe(.failed(Self.rejected))
        #expect(first.count == 1 && first[0].level == .error && first[0].event == .authenticationRejected(reason: Self.rejected.description))
        #expect(first[0].metadata["http.status"] == "401")
        for _ in 0..<3 { #expect(health.observe(.failed(Self.rejected)).isEmpty) }
        #expect(health.observe(.answered).map(\.message) == ["the credentials are accepted again"])
        #expect(health.observe(.failed(Self.rejected)).count == 1)
    }

    @Test("a rate-limit window is told once per endpoint and reset; a new window again")
    func rateLimits() {
        var health = SyncHealth()
        #expect(health.observe(.rateLimited(.curate, until: Self.at)).count == 1)
        #expect(health.observe(.rateLimited(.curate, until: Self.at)).isEmpty)
        #expect(health.observe(.rateLimited(.add, until: Self.at)).count == 1)
        let next = health.observe(.rateLimited(.curate, until: Self.at + 900))
        #expect(next.count == 1 && next[0].message.contains("collections/entries/curate") && next[0].level == .notice)
    }

    @Test("an answer with a status after an outage means the API is back, even an error one; cancellation says nothing")
    func otherFailures() {
        var health = SyncHealth()
        _ = health.observe(.failed(Self.down))
        #expect(health.observe(.failed(CollectionsAPIError(code: .cancelled, message: "cancelled"))).isEmpty)
        let invalid = CollectionsAPIError(code: .invalidRequest, message: "bad", httpStatus: 400, apiErrorCode: 44)
        #expect(health.observe(.failed(invalid)).map(\.message) == ["the API is reachable again"])
    }
}

/// The engine's events: a slow subscriber loses the oldest beyond its buffer, counted and logged.
@Suite("Events: a slow subscriber's losses are counted and logged, never silent")
struct EventDropTests {
    @Test("10,005 events to a subscriber that reads none: the 5 oldest dropped, counted, one warning")
    func slowSubscriber() async throws {
        let folder = TemporaryFolder()
        let capture = LogCapture()
        let store = try await openStore(folder)
        let client = try CollectionsClient(baseURL: "https://api.example.test/1.1", credentials: .bearer("t"),
                                           transport: ScriptedTransport { _ in ScriptedTransport.envelope() })
        let engine = try SyncEngine(store: store, client: client, logger: Logger(label: "test") { _ in capture.handler })
        let slow = engine.events()
        for index in 0..<(EventBroadcaster.capacity + 5) {
            engine.emit(.requestSent(endpoint: .curate, ops: index))
        }
        #expect(engine.droppedEvents == 5)
        #expect(capture.lines.filter { $0.contains("fell 10000 events behind") }.count == 1, "\(capture.lines.suffix(3))")
        var iterator = slow.makeAsyncIterator()
        #expect(await iterator.next() == .requestSent(endpoint: .curate, ops: 5), "the oldest went")
    }

    @Test("a subscriber's stream ends when the engine is released")
    func endsWithTheEngine() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        let client = try CollectionsClient(baseURL: "https://api.example.test/1.1", credentials: .bearer("t"),
                                           transport: ScriptedTransport { _ in ScriptedTransport.envelope() })
        var engine: SyncEngine? = try SyncEngine(store: store, client: client)
        let events = try #require(engine).events()
        engine?.emit(.requestSent(endpoint: .curate, ops: 1))
        engine = nil
        var received: [SyncEvent] = []
        for await event in events { received.append(event) }
        #expect(received == [.requestSent(endpoint: .curate, ops: 1)], "the buffered event, then the end")
    }
}
