import CollectionsAPI
/// A misbehaviour the mock can be told to show on some of the next API requests.
///
/// Faults are queued with ``MockCollectionsServer/inject(_:count:endpoint:)`` (or `POST
/// /__mock/faults`). Each API request consumes at most one: the oldest queued fault that matches
/// its endpoint. Admin routes are never affected.
public struct MockFault: Sendable, Hashable {
    /// What the fault does.
    public enum Kind: Sendable, Hashable {
        /// Answer with `status` and `{"errors":[{"code":code,"message":message}]}` (no `code`
        /// member when `code` is nil) without touching state or rate limits.
        case fail(status: Int, code: Int?, message: String?)
        /// Accept the request and never answer it (the connection stays open until the client
        /// gives up or the server shuts down). Nothing is applied.
        case blackhole
        /// Process the request as usual (applying any change), then close the connection
        /// instead of answering: a lost answer.
        case dropAfterApply
        /// Reset the connection (a TCP RST: `SO_LINGER` 0, then close) instead of answering,
        /// without processing the request. Nothing is applied.
        case reset
        /// Process the request as usual (applying any change), then reset the connection (a TCP
        /// RST) instead of answering: a lost answer the client sees as a reset.
        case resetAfterApply
        /// Process the request as usual, then answer with the same status but a body that is not
        /// JSON (`body`, or an HTML error page).
        case malformedBody(body: String?)
        /// Process the request as usual, then send the status, headers (with the full
        /// `Content-Length`) and only the first half of the body, and close the connection.
        case truncatedBody
    }

    /// What the fault does.
    public var kind: Kind

    /// A fault of this kind.
    public init(_ kind: Kind) { self.kind = kind }

    /// An error answer: e.g. `.fail(status: 503, code: 130)` (over capacity).
    public static func fail(status: Int, code: Int?, message: String? = nil) -> MockFault {
        MockFault(.fail(status: status, code: code, message: message))
    }
    /// Never answer.
    public static let blackhole = MockFault(.blackhole)
    /// Apply, then drop the connection.
    public static let dropAfterApply = MockFault(.dropAfterApply)
    /// Reset the connection without applying anything.
    public static let reset = MockFault(.reset)
    /// Apply, then reset the connection.
    public static let resetAfterApply = MockFault(.resetAfterApply)
    /// Apply, then answer with a body that is not JSON.
    public static let malformedBody = MockFault(.malformedBody(body: nil))
    /// Apply, then send half the body and close.
    public static let truncatedBody = MockFault(.truncatedBody)

    var name: String {
        switch kind {
        case .fail: "fail"
        case .blackhole: "blackhole"
        case .dropAfterApply: "drop_after_apply"
        case .reset: "reset"
        case .resetAfterApply: "reset_after_apply"
        case .malformedBody: "malformed"
        case .truncatedBody: "truncated"
        }
    }
}

/// A queued fault: the fault, how many more requests it affects (nil: all, until cleared) and
/// which endpoint (nil: any API request, including unknown paths).
public struct MockFaultRule: Sendable, Hashable {
    /// The fault.
    public var fault: MockFault
    /// Requests it still affects; nil means every request until the faults are cleared.
    public var remaining: Int?
    /// The only endpoint it affects, or nil for all.
    public var endpoint: Endpoint?

    /// A rule for `fault`.
    public init(fault: MockFault, remaining: Int?, endpoint: Endpoint?) {
        self.fault = fault
        self.remaining = remaining
        self.endpoint = endpoint
    }
}

/// Every fault in force.
public struct MockFaults: Sendable, Hashable {
    /// Queued faults, oldest first.
    public var rules: [MockFaultRule] = []
    /// Added before every API answer (not admin answers).
    public var latency: Duration = .zero
    /// Until this time (epoch seconds, on the mock's clock) every API request is answered 429/88
    /// with `x-rate-limit-remaining: 0` and `x-rate-limit-reset` at it.
    public var rateLimitedUntil: Double? = nil
    /// Added to the configured clock (seconds): the skew between the mock and its clients.
    public var clockOffset: Double = 0
    /// Whether the API listener is down (connections refused).
    public var outage: Bool = false

    /// No faults.
    public init() {}

    /// Takes the oldest rule matching `endpoint`, counting one use of it.
    mutating func take(for endpoint: Endpoint?) -> MockFault? {
        guard let index = rules.firstIndex(where: { $0.endpoint == nil || $0.endpoint == endpoint }) else { return nil }
        let fault = rules[index].fault
        if let remaining = rules[index].remaining {
            if remaining <= 1 { rules.remove(at: index) } else { rules[index].remaining = remaining - 1 }
        }
        return fault
    }
}

/// One request the mock received, for assertions.
public struct MockJournalEntry: Sendable, Hashable {
    /// What became of the request.
    public enum Outcome: String, Sendable, Hashable {
        /// Answered in full.
        case answered
        /// The connection was closed instead of answering (``MockFault/dropAfterApply``).
        case dropped
        /// Never answered (``MockFault/blackhole``).
        case blackholed
        /// Answered with a body that is not JSON (``MockFault/malformedBody``).
        case malformed
        /// Answered with half a body (``MockFault/truncatedBody``).
        case truncated
        /// The connection was reset (a TCP RST) instead of answering: before processing
        /// (``MockFault/reset``, nothing applied, no status) or after (``MockFault/resetAfterApply``).
        case reset
    }

    /// Increasing from 1 for each API request since the server started (or was reset).
    public var sequence: Int
    /// When it arrived, in epoch seconds on the mock's clock (offset included).
    public var time: Double
    /// The HTTP method.
    public var method: String
    /// The path, without query.
    public var path: String
    /// The endpoint, if the path is one.
    public var endpoint: Endpoint?
    /// The query and form parameters other than `oauth_*`, decoded (the last of a repeated name).
    public var parameters: [String: String]
    /// The body, when it was not a form (curate's JSON).
    public var body: String?
    /// The user the request was authenticated as, if it was.
    public var userID: String?
    /// The status the mock decided (also for a dropped, truncated or reset-after-apply answer);
    /// nil when blackholed or reset before processing.
    public var status: Int?
    /// The API error code of an error answer.
    public var errorCode: Int?
    /// Whether the request changed the state (a collection created, updated or destroyed, or at
    /// least one entry change applied).
    public var applied: Bool
    /// The fault the request consumed, if any (`fail`, `blackhole`, `drop_after_apply`, `reset`,
    /// `reset_after_apply`, `malformed`, `truncated`, `rate_limit_until`).
    public var fault: String?
    /// What became of it.
    public var outcome: Outcome
}

/// The last requests, oldest first, capped.
struct Journal: Sendable {
    let limit: Int
    private(set) var entries: [MockJournalEntry] = []
    private var head = 0
    private(set) var nextSequence = 1

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    mutating func append(_ entry: MockJournalEntry) {
        entries.append(entry)
        if entries.count - head > limit { head += 1 }
        if head > 1024, head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }

    var all: [MockJournalEntry] { Array(entries[head...]) }

    mutating func takeSequence() -> Int {
        defer { nextSequence += 1 }
        return nextSequence
    }

    mutating func removeAll(resetSequence: Bool) {
        entries = []
        head = 0
        if resetSequence { nextSequence = 1 }
    }
}
