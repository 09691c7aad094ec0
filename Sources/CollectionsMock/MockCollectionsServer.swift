import CollectionsAPI
import NIOCore

/// A faithful, fault-injecting mock of the Twitter v1.1 Collections API, served over real HTTP/1.1
/// (keep-alive) on a local port.
///
/// It serves the ten endpoints of api.md under `/1.1/`, verifies OAuth 1.0a signatures (and
/// Bearer tokens), keeps per-endpoint, per-token rate-limit windows, and takes fault
/// instructions from Swift or from its admin routes under `/__mock/` (see the module's README).
///
/// ```swift
/// try await withMockServer { server in
///     let id = try server.createCollection(tweetIDs: ["20", "21"])
///     server.failNext(2, status: 503, code: 130)
///     // point the client at server.baseURL with server.credentials ...
/// }
/// ```
///
/// All methods are thread-safe; state and faults sit behind one lock.
public final class MockCollectionsServer: Sendable {
    let core: ServerCore

    private init(core: ServerCore) {
        self.core = core
    }

    /// Starts a server (on a free port when ``MockConfiguration/port`` is 0). Call ``shutdown()``
    /// when done, or use ``withMockServer(isolation:configuration:_:)``.
    public static func start(configuration: MockConfiguration = MockConfiguration()) async throws -> MockCollectionsServer {
        MockCollectionsServer(core: try await ServerCore.start(configuration: configuration))
    }

    /// Stops listening, lets answers being delayed by latency finish (up to
    /// ``MockConfiguration/shutdownGracePeriod``) and closes every connection. Idempotent.
    public func shutdown() async {
        await core.shutdown()
    }

    // MARK: Where it is

    /// The configuration it started with.
    public var configuration: MockConfiguration { core.configuration }

    /// The host it listens on.
    public var host: String { core.configuration.host }

    /// The API port (the one actually bound, also during an outage).
    public var port: Int { core.port }

    /// The admin-only port, when ``MockConfiguration/adminPort`` was set.
    public var adminPort: Int? { core.adminPort }

    /// The API base URL, e.g. `http://127.0.0.1:54321/1.1`.
    public var baseURL: String { "http://\(authority(port))/1.1" }

    /// The admin routes' base, e.g. `http://127.0.0.1:54321/__mock` (on the admin port when there
    /// is one).
    public var adminURL: String { "http://\(authority(adminPort ?? port))/__mock" }

    /// The first configured user's credentials (``MockCredentials/test`` by default).
    public var credentials: MockCredentials { core.configuration.credentials.first ?? .test }

    private func authority(_ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The mock's clock now (epoch seconds), clock offset included.
    public var now: Double { core.service.now }

    // MARK: State

    /// Adds (or replaces, by id) collections and marks tweets; returns the collections' ids in
    /// order. Validates everything before changing anything.
    @discardableResult
    public func seed(_ snapshot: MockSnapshot) throws(MockError) -> [String] {
        try core.service.seed(snapshot)
    }

    /// Adds (or replaces, by id) collections; returns their ids in order.
    @discardableResult
    public func seed(_ collections: [MockCollection]) throws(MockError) -> [String] {
        try core.service.seed(MockSnapshot(collections: collections))
    }

    /// Creates a collection holding `tweetIDs` (oldest-added first, so the last one is at the
    /// top of a `curation_reverse_chron` collection); returns its id.
    @discardableResult
    public func createCollection(name: String = "Mock collection", tweetIDs: [String] = [],
                                 timelineOrder: MockTimelineOrder = .curationReverseChron,
                                 userID: String? = nil) throws(MockError) -> String {
        try seed([MockCollection(name: name, timelineOrder: timelineOrder, userID: userID, tweetIDs: tweetIDs)])[0]
    }

    /// The whole state.
    public func snapshot() -> MockSnapshot {
        core.service.snapshot()
    }

    /// The entries of a collection in page order (highest `sort_index` first), deleted and
    /// protected tweets included; nil if there is no such collection.
    public func entries(of collectionID: String) -> [MockEntry]? {
        core.service.state.withLock { $0.store.orderedEntries(collectionID) }
    }

    /// The tweet ids of a collection in page order; nil if there is no such collection.
    public func tweetIDs(of collectionID: String) -> [String]? {
        entries(of: collectionID)?.map(\.tweetID)
    }

    /// Back to the state it started in: no collections, marks, faults, journal, rate-limit
    /// windows or remembered nonces (an outage in progress goes on).
    public func reset() {
        core.service.reset()
    }

    /// Marks tweets deleted: `add` fails with `not_found`, entries pages skip them.
    public func markDeleted(_ tweetIDs: [String]) throws(MockError) {
        let tweets = try MockService.tweets(tweetIDs)
        core.service.state.withLock { $0.store.markDeleted(tweets) }
    }

    /// Marks tweets protected (the same effects as deleted, for a reader who may not see them).
    public func markProtected(_ tweetIDs: [String]) throws(MockError) {
        let tweets = try MockService.tweets(tweetIDs)
        core.service.state.withLock { $0.store.markProtected(tweets) }
    }

    /// Clears the deleted and protected marks of tweets.
    public func restoreTweets(_ tweetIDs: [String]) throws(MockError) {
        let tweets = try MockService.tweets(tweetIDs)
        core.service.state.withLock { $0.store.restore(tweets) }
    }

    // MARK: Journal

    /// The API requests received (up to ``MockConfiguration/journalLimit``), oldest first.
    public func journal() -> [MockJournalEntry] {
        core.service.journal()
    }

    /// Forgets the journal (sequence numbers keep increasing).
    public func clearJournal() {
        core.service.clearJournal()
    }

    // MARK: Faults

    /// The faults in force.
    public var faults: MockFaults {
        core.service.state.withLock { $0.faults }
    }

    /// Queues `fault` for the next `count` API requests (nil: every request until
    /// ``clearFaults()``) to `endpoint` (nil: any). Each request consumes at most one queued fault,
    /// the oldest that matches.
    public func inject(_ fault: MockFault, count: Int? = 1, endpoint: Endpoint? = nil) {
        guard count.map({ $0 > 0 }) ?? true else { return }
        core.service.state.withLock { $0.faults.rules.append(MockFaultRule(fault: fault, remaining: count, endpoint: endpoint)) }
    }

    /// The next `count` requests fail with `status` and `{"errors":[{"code":code,...}]}`, e.g.
    /// `failNext(3, status: 503, code: 130)`.
    public func failNext(_ count: Int = 1, status: Int, code: Int?, message: String? = nil, endpoint: Endpoint? = nil) {
        inject(.fail(status: status, code: code, message: message), count: count, endpoint: endpoint)
    }

    /// Accept requests and never answer them (`true`), or stop doing so (`false`).
    public func setBlackhole(_ on: Bool, endpoint: Endpoint? = nil) {
        if on {
            inject(.blackhole, count: nil, endpoint: endpoint)
        } else {
            core.service.state.withLock { $0.faults.rules.removeAll { $0.fault == .blackhole } }
        }
    }

    /// The next `count` requests are applied, then their connection is closed unanswered.
    public func dropAfterApply(next count: Int = 1, endpoint: Endpoint? = nil) {
        inject(.dropAfterApply, count: count, endpoint: endpoint)
    }

    /// The connection of each of the next `count` requests is reset (a TCP RST) before the
    /// request is processed: nothing is applied, and the client reads `ECONNRESET`.
    public func resetConnection(next count: Int = 1, endpoint: Endpoint? = nil) {
        inject(.reset, count: count, endpoint: endpoint)
    }

    /// The next `count` requests are applied, then their connection is reset (a TCP RST)
    /// instead of answering.
    public func resetConnectionAfterApply(next count: Int = 1, endpoint: Endpoint? = nil) {
        inject(.resetAfterApply, count: count, endpoint: endpoint)
    }

    /// The next `count` answers carry a body that is not JSON (same status).
    public func malformedBody(next count: Int = 1, endpoint: Endpoint? = nil) {
        inject(.malformedBody, count: count, endpoint: endpoint)
    }

    /// The next `count` answers are cut off halfway through the body, then the connection closes.
    public func truncatedBody(next count: Int = 1, endpoint: Endpoint? = nil) {
        inject(.truncatedBody, count: count, endpoint: endpoint)
    }

    /// Every API answer waits this long first (`.zero` to stop).
    public func setLatency(_ latency: Duration) {
        core.service.state.withLock { $0.faults.latency = max(.zero, latency) }
    }

    /// Every API request is answered 429/88 until `epochSeconds` on the mock's clock (nil to
    /// stop), with `x-rate-limit-reset` at that time.
    public func rateLimit(until epochSeconds: Double?) {
        core.service.state.withLock { $0.faults.rateLimitedUntil = epochSeconds }
    }

    /// Shifts the mock's clock by `seconds` relative to the configured clock (the `Date` header,
    /// OAuth timestamp checks, rate-limit windows).
    public func setClockOffset(_ seconds: Double) {
        core.service.state.withLock { $0.faults.clockOffset = seconds }
    }

    /// Clears every fault: queued ones, latency, rate limiting, clock offset (an outage goes on:
    /// end it with ``endOutage()``).
    public func clearFaults() {
        core.service.clearFaults()
    }

    /// The rate limits in force.
    public var rateLimits: MockRateLimits { core.service.rateLimits() }

    /// Replaces the rate limits and starts every window afresh.
    public func setRateLimits(_ limits: MockRateLimits) {
        core.service.setRateLimits(limits)
    }

    // MARK: Outage

    /// Whether the API port is down.
    public var isInOutage: Bool { core.isInOutage }

    /// Stops accepting on the API port and closes its open connections: clients get "connection
    /// refused". With `duration`, it listens again on the same port after that long.
    public func beginOutage(for duration: Duration? = nil) async {
        let seconds = duration.map(MockService.seconds)
        try? await core.beginOutage(seconds: seconds).get()
    }

    /// Listens again on the same API port. Throws if the port was taken meanwhile.
    public func endOutage() async throws {
        try await core.endOutage().get()
    }

    /// Runs `body` during an outage, then recovers (also when `body` throws). `body` runs in the
    /// caller's isolation (from `@MainActor` code too).
    public func withOutage<T>(isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T) async throws -> T {
        await beginOutage()
        do {
            let result = try await body()
            try await endOutage()
            return result
        } catch {
            try? await endOutage()
            throw error
        }
    }
}

/// Starts a mock server, runs `body` with it and shuts it down, whether `body` throws or not.
public func withMockServer<T>(
    isolation: isolated (any Actor)? = #isolation,
    configuration: MockConfiguration = MockConfiguration(),
    _ body: (MockCollectionsServer) async throws -> T
) async throws -> T {
    let server = try await MockCollectionsServer.start(configuration: configuration)
    do {
        let result = try await body(server)
        await server.shutdown()
        return result
    } catch {
        await server.shutdown()
        throw error
    }
}
