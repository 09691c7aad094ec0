import CollectionsAPI
import Foundation
import Synchronization

/// One request as the HTTP layer hands it over.
struct IncomingRequest: Sendable {
    var method: String
    /// Path and query, as on the request line.
    var uri: String
    /// The `Host` header.
    var host: String?
    /// `host:port` of the listener, when the request has no `Host` header.
    var localAuthority: String
    var authorization: String?
    var contentType: String?
    var body: [UInt8]
    /// Whether it came to the admin-only listener.
    var adminOnly: Bool = false
}

/// What to send back, and how.
struct OutgoingResponse: Sendable {
    enum Delivery: Sendable, Hashable {
        /// Status, headers and body, then keep the connection if the client wants to.
        case answer
        /// Close the connection without answering.
        case drop
        /// Never answer.
        case blackhole
        /// Status, headers and half the body, then close.
        case truncate
        /// Reset the connection (TCP RST) without answering.
        case reset
    }

    /// Something the server must do after the answer went out (I/O the service cannot do).
    enum Action: Sendable, Hashable {
        /// Stop accepting on the API port (and drop its connections), for `seconds` if given.
        case beginOutage(seconds: Double?)
        /// Accept again on the API port.
        case endOutage
    }

    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
    var delivery: Delivery = .answer
    /// Seconds to wait before answering.
    var delay: Double = 0
    var action: Action? = nil
}

/// Everything behind the server's one lock.
struct MockState: Sendable {
    var store: MockStore
    var faults = MockFaults()
    var rateLimiter: RateLimiter
    var nonces = NonceCache()
    var journal: Journal
    var dateCache: (second: Int64, text: String) = (.min, "")

    init(configuration: MockConfiguration) {
        store = MockStore(capacity: configuration.capacity)
        rateLimiter = RateLimiter(limits: configuration.rateLimits)
        journal = Journal(limit: configuration.journalLimit)
    }

    /// The `Date` header value for `now`, formatted once per second.
    mutating func httpDate(_ now: Double) -> String {
        let second = Int64(now.rounded(.down))
        if dateCache.second != second { dateCache = (second, HTTPDate.format(second)) }
        return dateCache.text
    }
}

/// The mock's behaviour: state, faults, auth and rate limits behind one lock, and the pipeline
/// each request goes through. No I/O: the HTTP layer calls ``handle(_:)`` and carries out the
/// answer.
final class MockService: Sendable {
    let configuration: MockConfiguration
    let credentials: CredentialBook
    let endpoints: EndpointHandler
    let state: Mutex<MockState>

    init(configuration: MockConfiguration) {
        self.configuration = configuration
        credentials = CredentialBook(configuration.credentials)
        endpoints = EndpointHandler(credentials: credentials)
        state = Mutex(MockState(configuration: configuration))
    }

    /// The mock's clock, offset included.
    func now(_ state: borrowing MockState) -> Double {
        Double(configuration.clock.nowMillis()) / 1000 + state.faults.clockOffset
    }

    /// The mock's clock, offset included.
    var now: Double { state.withLock { now($0) } }

    func handle(_ request: IncomingRequest) -> OutgoingResponse {
        let (path, query) = Self.split(request.uri)
        if path == "/__mock" || path.hasPrefix("/__mock/") {
            return handleAdmin(request, path: path, query: query)
        }
        if request.adminOnly {
            return adminAnswer(404, ["error": "this listener serves only /__mock/ routes"])
        }
        return handleAPI(request, path: path, query: query)
    }

    static func split(_ uri: String) -> (path: String, query: Substring?) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, nil) }
        return (String(uri[..<mark]), uri[uri.index(after: mark)...])
    }

    // MARK: API pipeline

    /// faults (blackhole, reset, fail, rate_limit_until) -> auth (under /1.1/) -> path (404/34) ->
    /// method (400/86) -> rate limit (429/88) -> endpoint -> answer faults (drop, reset after
    /// apply, malformed, truncated) -> journal.
    private func handleAPI(_ request: IncomingRequest, path: String, query: Substring?) -> OutgoingResponse {
        let endpoint = Endpoint(servedPath: path)
        // Parsing and signature checking happen outside the lock.
        var pairs: [(String, String)] = []
        var parseFailure: APIFailure?
        if let query {
            if let parsed = PercentEncoding.parseQuery(query) { pairs = parsed } else { parseFailure = .invalid("query") }
        }
        let isForm = request.contentType?.lowercased().hasPrefix("application/x-www-form-urlencoded") ?? false
        var bodyText: String?
        if isForm {
            if let text = String(validating: request.body, as: UTF8.self), let parsed = PercentEncoding.parseQuery(text[...]) {
                pairs += parsed
            } else {
                parseFailure = .invalid("body")
            }
        } else if !request.body.isEmpty {
            bodyText = String(decoding: request.body, as: UTF8.self)
        }
        let isAPIPath = path.hasPrefix("/1.1/")
        let evaluation: OAuthVerifier.Evaluation? = isAPIPath ? OAuthVerifier.evaluate(
            SignedRequest(
                method: request.method,
                baseURL: OAuthVerifier.baseURL(origin: configuration.signatureOrigin, host: request.host,
                                               fallbackHost: request.localAuthority, path: path),
                parameters: pairs, authorization: request.authorization),
            credentials: credentials) : nil
        let curate = endpoint == .curate && request.method == "POST" ? CurateBody.parse(request.body) : nil
        let parameters = Parameters(pairs: pairs)
        var journalParameters: [String: String] = [:]
        for (name, value) in pairs where !name.hasPrefix("oauth_") { journalParameters[name] = value }

        return state.withLock { state in
            let now = now(state)
            var entry = MockJournalEntry(
                sequence: state.journal.takeSequence(), time: now, method: request.method, path: path, endpoint: endpoint,
                parameters: journalParameters, body: bodyText, userID: nil, status: nil, errorCode: nil, applied: false,
                fault: nil, outcome: .answered)
            let fault = state.faults.take(for: endpoint)
            entry.fault = fault?.name
            if fault?.kind == .blackhole {
                entry.outcome = .blackholed
                state.journal.append(entry)
                return OutgoingResponse(status: 0, headers: [], body: [], delivery: .blackhole)
            }
            if fault?.kind == .reset {
                entry.outcome = .reset
                state.journal.append(entry)
                return OutgoingResponse(status: 0, headers: [], body: [], delivery: .reset)
            }

            var quota: RateLimiter.Quota?
            var token = evaluation?.claimedUser?.accessToken
            let result: Result<EndpointAnswer, APIFailure>
            if case .fail(let status, let code, let message)? = fault?.kind {
                result = .failure(APIFailure(status: status, code: code, message: message ?? Self.reason(status)))
            } else if let until = state.faults.rateLimitedUntil, now < until {
                entry.fault = "rate_limit_until"
                var limited = state.rateLimiter.peek(endpoint, token: token, now: now)
                limited.remaining = 0
                limited.reset = Int64(until.rounded(.up))
                quota = limited
                result = .failure(.rateLimited)
            } else {
                result = Result { () throws(APIFailure) -> EndpointAnswer in
                    guard let evaluation else { throw .notFound }
                    if let parseFailure { throw parseFailure }
                    let user: MockCredentials
                    switch OAuthVerifier.complete(evaluation, now: now, tolerance: configuration.timestampTolerance,
                                                  nonces: &state.nonces) {
                    case .success(let verified): user = verified
                    case .failure(let failure): throw failure
                    }
                    entry.userID = user.userID
                    if case .bearer = evaluation { token = user.bearerToken }
                    guard let endpoint else { throw .notFound }
                    guard request.method == endpoint.method else { throw .wrongMethod(endpoint.method) }
                    let (allowed, counted) = state.rateLimiter.consume(endpoint, token: token ?? user.accessToken, now: now)
                    quota = counted
                    guard allowed else { throw .rateLimited }
                    return try endpoints.handle(endpoint, parameters: parameters, curate: curate, user: user, store: &state.store)
                }
            }

            var response: OutgoingResponse
            switch result {
            case .success(let answer):
                entry.status = 200
                entry.applied = answer.applied
                response = OutgoingResponse(status: 200, headers: [], body: answer.body.bytes)
            case .failure(let failure):
                entry.status = failure.status
                entry.errorCode = failure.code
                response = OutgoingResponse(status: failure.status, headers: [], body: failure.body.bytes)
            }
            switch fault?.kind {
            case .dropAfterApply?:
                response.delivery = .drop
                entry.outcome = .dropped
            case .resetAfterApply?:
                response.delivery = .reset
                entry.outcome = .reset
            case .malformedBody(let body)?:
                response.body = Array((body ?? Self.malformedBody).utf8)
                entry.outcome = .malformed
            case .truncatedBody?:
                response.delivery = .truncate
                entry.outcome = .truncated
            default:
                break
            }
            let shown = quota ?? state.rateLimiter.peek(endpoint, token: token, now: now)
            response.headers = [
                ("content-type", "application/json;charset=utf-8"),
                ("date", state.httpDate(now)),
                ("x-rate-limit-limit", String(shown.limit)),
                ("x-rate-limit-remaining", String(shown.remaining)),
                ("x-rate-limit-reset", String(shown.reset)),
            ]
            response.delay = Self.seconds(state.faults.latency)
            state.journal.append(entry)
            return response
        }
    }

    /// The body of a ``MockFault/malformedBody`` answer: what a proxy's error page looks like.
    static let malformedBody = "<!DOCTYPE html><html><head><title>Over capacity</title></head><body><p>Something is technically wrong.</p></body></html>"

    static func reason(_ status: Int) -> String {
        switch status {
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 420: "Enhance Your Calm"
        case 422: "Unprocessable Entity"
        case 429: "Too Many Requests"
        case 500: "Internal error"
        case 502: "Bad Gateway"
        case 503: "Over capacity"
        case 504: "Gateway Timeout"
        default: "Error \(status)"
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }

    // MARK: Admin answers

    func adminAnswer(_ status: Int, _ body: JSONValue, action: OutgoingResponse.Action? = nil) -> OutgoingResponse {
        let date = state.withLock { state in state.httpDate(now(state)) }
        return OutgoingResponse(status: status, headers: [("content-type", "application/json"), ("date", date)],
                                body: body.bytes, action: action)
    }

    func adminAnswer(_ status: Int, _ error: [String: String]) -> OutgoingResponse {
        adminAnswer(status, .object(error.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
    }
}

/// RFC 9110 `IMF-fixdate`, e.g. `Fri, 14 Oct 2011 20:09:18 GMT`.
enum HTTPDate {
    static func format(_ epochSeconds: Int64) -> String {
        var seconds = time_t(epochSeconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
