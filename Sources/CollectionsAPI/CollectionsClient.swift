import CoreMetrics
import Foundation
import Logging
import Synchronization

/// A signed client for every endpoint of the Twitter v1.1 Collections API.
///
/// Each call is one request, signed afresh (new nonce and timestamp), with no retries of its own:
/// the caller decides from the thrown ``CollectionsAPIError`` whether to reconcile, retry, wait or
/// stop. Rate-limit headers of every answer are kept per endpoint (``rateLimit(for:)``).
public final class CollectionsClient: Sendable {
    /// How the client behaves. Defaults suit the real API.
    public struct Configuration: Sendable {
        /// Each request's own timeout.
        public var requestTimeout: Duration = .seconds(30)
        /// The wall clock behind `oauth_timestamp` (plus ``CollectionsClient/clockOffset``).
        public var wallClock: WallClock = .system
        /// The source of `oauth_nonce`; fresh for every attempt.
        public var nonce: @Sendable () -> String = {
            var generator = SystemRandomNumberGenerator()
            return OAuth1.makeNonce(using: &generator)
        }
        /// Where the request metrics go (`collectionsync_requests_total`,
        /// `collectionsync_request_duration_seconds`); nil: the process's `MetricsSystem`, as
        /// bootstrapped when the client is made (nothing when it was not).
        public var metricsFactory: (any MetricsFactory)?

        public init() {}
    }

    /// The API base URL, e.g. `https://api.twitter.com/1.1`, without a trailing slash.
    public let baseURL: String
    /// `baseURL` as signature base strings want it (see ``signatureBaseURL(_:)``), made once.
    private let signatureBase: String
    private let credentials: APICredentials
    private let transport: any HTTPTransport
    private let configuration: Configuration
    private let logger: Logger
    private let state = Mutex(State())
    private let metrics: RequestMetrics

    private struct State {
        var clockOffset: Duration = .zero
        var rateLimits: [Endpoint: RateLimit] = [:]
    }

    /// - Throws: ``CollectionsAPIError/Code/configuration`` when `baseURL` is not an `https` URL
    ///   or an `http` URL of a loopback host (127.0.0.0/8, ::1, localhost).
    public init(
        baseURL: String, credentials: APICredentials, transport: any HTTPTransport,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "collections-api", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws {
        self.baseURL = try Self.validate(baseURL: baseURL)
        signatureBase = Self.signatureBaseURL(self.baseURL)
        self.credentials = credentials
        self.transport = transport
        self.configuration = configuration
        self.logger = logger
        metrics = RequestMetrics(configuration.metricsFactory)
    }

    // MARK: - Clock and rate limits

    /// Added to the wall clock for `oauth_timestamp`: the sync engine sets it from a 401/135
    /// answer's `Date` header to correct a skewed local clock.
    public var clockOffset: Duration { state.withLock { $0.clockOffset } }

    /// Sets ``clockOffset``; only the sync engine does (it is part of this package, not of the API).
    package func setClockOffset(_ offset: Duration) {
        state.withLock { $0.clockOffset = offset }
    }

    /// The user id an OAuth 1.0a access token names (its numeric prefix); nil for a Bearer token.
    package var accessTokenUserID: String? { credentials.accessTokenUserID }

    /// The last rate-limit headers seen from `endpoint`.
    public func rateLimit(for endpoint: Endpoint) -> RateLimit? {
        state.withLock { $0.rateLimits[endpoint] }
    }

    // MARK: - Endpoints

    /// One page of `GET collections/entries`: entries in descending `sort_index`. Page back by
    /// passing the page's `min_position` as the next `maxPosition` (the boundary entry can repeat).
    public func entries(of collection: CollectionID, count: Int = 200, maxPosition: String? = nil, minPosition: String? = nil,
                        timeout: Duration? = nil) async throws -> EntriesPage {
        guard (1...200).contains(count) else { throw invalidArgument("count must be 1 to 200, not \(count)") }
        var query = [("id", try serverID(collection)), ("count", String(count))]
        if let maxPosition { query.append(("max_position", maxPosition)) }
        if let minPosition { query.append(("min_position", minPosition)) }
        let response = try await send(.entries, query: query, timeout: timeout)
        return try AnswerClassifier.decode(EntriesPage.self, from: response, path: Endpoint.entries.rawValue)
    }

    /// `GET collections/show`.
    public func show(_ collection: CollectionID, timeout: Duration? = nil) async throws -> CollectionInfo {
        let response = try await send(.show, query: [("id", try serverID(collection))], timeout: timeout)
        return try AnswerClassifier.decode(CollectionInfo.self, from: response, path: Endpoint.show.rawValue)
    }

    /// Who to list the collections of.
    public enum Owner: Sendable, Hashable {
        case userID(String)
        case screenName(String)
    }

    /// `GET collections/list`: one page of a user's collections (optionally only those holding `tweetID`).
    public func list(owner: Owner, tweet: TweetID? = nil, count: Int = 200, cursor: String? = nil,
                     timeout: Duration? = nil) async throws -> CollectionList {
        guard (1...200).contains(count) else { throw invalidArgument("count must be 1 to 200, not \(count)") }
        var query: [(String, String)]
        switch owner {
        case .userID(let id): query = [("user_id", id)]
        case .screenName(let name): query = [("screen_name", name)]
        }
        if let tweet { query.append(("tweet_id", tweet.rawValue)) }
        query.append(("count", String(count)))
        if let cursor { query.append(("cursor", cursor)) }
        let response = try await send(.list, query: query, timeout: timeout)
        return try AnswerClassifier.decode(CollectionList.self, from: response, path: Endpoint.list.rawValue)
    }

    /// `POST collections/create`.
    public func create(name: String, description: String? = nil, url: String? = nil, timelineOrder: String? = nil,
                       timeout: Duration? = nil) async throws -> CollectionInfo {
        var form = [("name", name)]
        if let description { form.append(("description", description)) }
        if let url { form.append(("url", url)) }
        if let timelineOrder { form.append(("timeline_order", timelineOrder)) }
        let response = try await send(.create, form: form, timeout: timeout)
        return try AnswerClassifier.decode(CollectionInfo.self, from: response, path: Endpoint.create.rawValue)
    }

    /// `POST collections/update`. The API has no partial updates: all three fields are always
    /// sent, and an empty string clears a field.
    public func update(_ collection: CollectionID, name: String, description: String, url: String,
                       timeout: Duration? = nil) async throws -> CollectionInfo {
        let form = [("id", try serverID(collection)), ("name", name), ("description", description), ("url", url)]
        let response = try await send(.update, form: form, timeout: timeout)
        return try AnswerClassifier.decode(CollectionInfo.self, from: response, path: Endpoint.update.rawValue)
    }

    /// `POST collections/destroy`; true when the answer says `destroyed`.
    public func destroy(_ collection: CollectionID, timeout: Duration? = nil) async throws -> Bool {
        let response = try await send(.destroy, form: [("id", try serverID(collection))], timeout: timeout)
        return try AnswerClassifier.decode(DestroyAnswer.self, from: response, path: Endpoint.destroy.rawValue).destroyed
    }

    /// `POST collections/entries/add`.
    public func add(_ tweet: TweetID, to collection: CollectionID, relativeTo: TweetID? = nil, above: Bool? = nil,
                    timeout: Duration? = nil) async throws -> ChangeResult {
        var form = [("id", try serverID(collection)), ("tweet_id", tweet.rawValue)]
        if let relativeTo { form.append(("relative_to", relativeTo.rawValue)) }
        if let above { form.append(("above", above ? "true" : "false")) }
        return try await change(.add, form: form, changes: [EntryChange(op: .add, tweet: tweet)], timeout: timeout)
    }

    /// `POST collections/entries/remove`.
    public func remove(_ tweet: TweetID, from collection: CollectionID, timeout: Duration? = nil) async throws -> ChangeResult {
        try await change(.remove, form: [("id", try serverID(collection)), ("tweet_id", tweet.rawValue)],
                         changes: [EntryChange(op: .remove, tweet: tweet)], timeout: timeout)
    }

    /// `POST collections/entries/move` (`curation_reverse_chron` collections only): applied, or
    /// refused with the reason the server gave for this tweet.
    public func move(_ tweet: TweetID, in collection: CollectionID, relativeTo: TweetID, above: Bool = true,
                     timeout: Duration? = nil) async throws -> ChangeOutcome {
        let form = [("id", try serverID(collection)), ("tweet_id", tweet.rawValue), ("relative_to", relativeTo.rawValue),
                    ("above", above ? "true" : "false")]
        let response = try await send(.move, form: form, timeout: timeout)
        let envelope = try AnswerClassifier.decode(ChangeResult.Envelope.self, from: response, path: Endpoint.move.rawValue)
        let reason = envelope.response.errors?.first { $0.change?.tweet_id == tweet.rawValue }?.reason
        return reason.map { .refused(reason: $0) } ?? .applied
    }

    /// `POST collections/entries/curate` with a JSON body of at most 100 changes (more are refused
    /// before sending, as ``CollectionsAPIError/Code/tooManyChanges``). The JSON body is not signed.
    public func curate(_ collection: CollectionID, changes: [EntryChange], timeout: Duration? = nil) async throws -> ChangeResult {
        guard changes.count <= 100 else {
            throw CollectionsAPIError(code: .tooManyChanges, message: "collections/entries/curate takes at most 100 changes, not \(changes.count)")
        }
        guard !changes.isEmpty else { throw invalidArgument("curate needs at least one change") }
        let (response, rateLimit) = try await exchange(.curate, json: Self.curateBody(try serverID(collection), changes), timeout: timeout)
        let envelope = try AnswerClassifier.decode(ChangeResult.Envelope.self, from: response, path: Endpoint.curate.rawValue)
        return ChangeResult(envelope: envelope, changes: changes, rateLimit: rateLimit)
    }

    /// `{"id":"…","changes":[{"op":"remove","tweet_id":"…"},…]}`, written directly: the same bytes
    /// JSONEncoder makes, at a fraction of its cost on the flush's hot path.
    static func curateBody(_ collection: String, _ changes: [EntryChange]) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(32 + collection.utf8.count + changes.count * 48)
        body.append(contentsOf: #"{"id":"#.utf8)
        appendJSONString(collection, to: &body)
        body.append(contentsOf: #","changes":["#.utf8)
        for (index, change) in changes.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.append(contentsOf: #"{"op":"#.utf8)
            appendJSONString(change.op.rawValue, to: &body)
            body.append(contentsOf: #","tweet_id":"#.utf8)
            appendJSONString(change.tweetID, to: &body)
            body.append(UInt8(ascii: "}"))
        }
        body.append(contentsOf: "]}".utf8)
        return body
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped (ids are
    /// validated before they get here, but the encoding must not depend on it).
    static func appendJSONString(_ string: String, to body: inout [UInt8]) {
        body.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): body.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): body.append(contentsOf: #"\\"#.utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                body.append(contentsOf: #"\u00"#.utf8)
                body.append(hex[Int(byte >> 4)])
                body.append(hex[Int(byte & 0xF)])
            default: body.append(byte)
            }
        }
        body.append(UInt8(ascii: "\""))
    }

    private func change(_ endpoint: Endpoint, form: [(String, String)], changes: [EntryChange],
                        timeout: Duration?) async throws -> ChangeResult {
        let (response, rateLimit) = try await exchange(endpoint, form: form, timeout: timeout)
        let envelope = try AnswerClassifier.decode(ChangeResult.Envelope.self, from: response, path: endpoint.rawValue)
        return ChangeResult(envelope: envelope, changes: changes, rateLimit: rateLimit)
    }

    /// The id to send: a local id (`local-N`) is only a sync store's name, never the API's.
    private func serverID(_ collection: CollectionID) throws -> String {
        guard !collection.isLocal else {
            throw invalidArgument("\(collection) is a local id: only the sync store that made it knows it (it becomes a server id once its create is applied)")
        }
        return collection.rawValue
    }

    // MARK: - Sending

    /// Sends one signed request and returns its 2xx answer; anything else throws the classified
    /// ``CollectionsAPIError``. The request ends within `timeout` (a caller's deadline), and
    /// within the configured request timeout in any case.
    public func send(_ endpoint: Endpoint, query: [(String, String)] = [], form: [(String, String)]? = nil,
                     json: [UInt8]? = nil, timeout: Duration? = nil) async throws -> HTTPResponseData {
        try await exchange(endpoint, query: query, form: form, json: json, timeout: timeout).response
    }

    /// ``send(_:query:form:json:timeout:)``, with the answer's rate-limit headers, read once.
    private func exchange(_ endpoint: Endpoint, query: [(String, String)] = [], form: [(String, String)]? = nil,
                          json: [UInt8]? = nil, timeout callerTimeout: Duration? = nil) async throws -> (response: HTTPResponseData, rateLimit: RateLimit?) {
        let method = endpoint.method
        var timeout = configuration.requestTimeout
        if let callerTimeout { timeout = min(timeout, callerTimeout) }
        guard timeout > .zero else {
            throw CollectionsAPIError(code: .timeout, message: "\(endpoint.rawValue): the deadline passed before the request was sent")
        }
        if Task.isCancelled { throw CollectionsAPIError(code: .cancelled, message: "\(endpoint.rawValue) was cancelled") }

        let resource = "\(baseURL)/\(endpoint.path)"
        var url = resource
        if !query.isEmpty { url += "?" + Self.encode(query) }
        var headers: [(String, String)] = [("accept", "application/json")]
        var body: [UInt8]?
        if let form {
            headers.append(("content-type", "application/x-www-form-urlencoded"))
            body = Array(Self.encode(form).utf8)
        } else if let json {
            headers.append(("content-type", "application/json"))
            body = json
        }
        // The endpoint is a fixed path: the signature's URL is the base's plus it.
        headers.append(("authorization", authorization(method: method, signatureURL: "\(signatureBase)/\(endpoint.path)",
                                                       parameters: query + (form ?? []))))

        logger.debug("request", metadata: ["http.method": "\(method)", "api.endpoint": "\(endpoint.rawValue)"])
        let sent = ContinuousClock.now
        let response: HTTPResponseData
        do {
            response = try await transport.send(HTTPRequestData(method: method, url: url, headers: headers, body: body),
                                                timeout: timeout, maxBodyBytes: AnswerClassifier.maxBodyBytes)
        } catch {
            let failure: CollectionsAPIError
            switch error {
            case let error as CollectionsAPIError: failure = error
            case is CancellationError: failure = CollectionsAPIError(code: .cancelled, message: "\(endpoint.rawValue) was cancelled")
            default: failure = CollectionsAPIError(code: .network, message: "\(endpoint.rawValue) failed: \(type(of: error))")
            }
            logger.debug("request failed", metadata: ["api.endpoint": "\(endpoint.rawValue)", "error.code": "\(failure.code)"])
            metrics.record(endpoint, outcome: failure.code.description, duration: .now - sent)
            throw failure
        }
        let rateLimit = RateLimit(headers: response)
        if let rateLimit {
            state.withLock { $0.rateLimits[endpoint] = rateLimit }
        }
        logger.debug("answer", metadata: ["api.endpoint": "\(endpoint.rawValue)", "http.status": "\(response.status)"])
        let failure = AnswerClassifier.failure(of: response, path: endpoint.rawValue)
        metrics.record(endpoint, outcome: failure?.code.description ?? "success", duration: .now - sent)
        if let failure { throw failure }
        return (response, rateLimit)
    }

    /// The `Authorization` header for one attempt: a fresh nonce and timestamp every time.
    private func authorization(method: String, signatureURL: String, parameters: [(String, String)]) -> String {
        switch credentials.kind {
        case .bearer(let token):
            return "Bearer \(token)"
        case .oauth1(let consumerKey, let consumerSecret, let token, let tokenSecret):
            let now = configuration.wallClock.now().addingTimeInterval(Double(clockOffset.wholeMilliseconds) / 1000)
            return OAuth1.authorize(
                method: method, baseURL: signatureURL, parameters: parameters,
                consumerKey: consumerKey, consumerSecret: consumerSecret, token: token, tokenSecret: tokenSecret,
                nonce: configuration.nonce(), timestamp: Int64(now.timeIntervalSince1970.rounded(.down)))
        }
    }

    private func invalidArgument(_ message: String) -> CollectionsAPIError {
        CollectionsAPIError(code: .invalidArgument, message: message)
    }

    static func encode(_ parameters: [(String, String)]) -> String {
        parameters.map { "\(PercentEncoding.encode($0.0))=\(PercentEncoding.encode($0.1))" }.joined(separator: "&")
    }

    /// The URL as the signature base string wants it: scheme and host lower-cased, the port only
    /// when it is not the scheme's default, no query.
    static func signatureBaseURL(_ url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              let host = components.host?.lowercased() else { return url }
        var base = "\(scheme)://\(host.contains(":") ? "[\(host)]" : host)"
        if let port = components.port, !(scheme == "https" && port == 443), !(scheme == "http" && port == 80) {
            base += ":\(port)"
        }
        return base + components.percentEncodedPath
    }

    /// Checks and normalises a base URL: `https`, or `http` to a loopback host only.
    public static func validate(baseURL: String) throws -> String {
        var trimmed = baseURL
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let components = URLComponents(string: trimmed), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty, components.query == nil, components.fragment == nil else {
            throw CollectionsAPIError(code: .configuration, message: "the API base URL \"\(trimmed.prefix(200))\" is not an absolute http(s) URL")
        }
        guard components.user == nil, components.password == nil else {
            throw CollectionsAPIError(code: .configuration, message: "the API base URL must not carry a user name or password")
        }
        switch scheme {
        case "https":
            return trimmed
        case "http" where isLoopback(host):
            return trimmed
        case "http":
            throw CollectionsAPIError(code: .configuration,
                                      message: "plain http is accepted only for loopback hosts (127.0.0.0/8, ::1, localhost), not \(host): use https")
        default:
            throw CollectionsAPIError(code: .configuration, message: "the API base URL must use https, not \(scheme)")
        }
    }

    /// 127.0.0.0/8, ::1 or localhost.
    public static func isLoopback(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare.lowercased() == "localhost" || bare == "::1" || bare == "0:0:0:0:0:0:0:1" { return true }
        let octets = bare.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4, octets[0] == "127" else { return false }
        return octets.allSatisfy { octet in
            guard let value = Int(octet), (0...255).contains(value), String(value) == octet else { return false }
            return true
        }
    }
}
