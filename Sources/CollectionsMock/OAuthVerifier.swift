import Foundation
import CollectionsAPI

/// An answer outside the change envelope: `{"errors":[{"code":N,"message":"..."}]}` with a status.
struct APIFailure: Error, Sendable, Hashable {
    let status: Int
    /// nil for answers whose table row has no code (422): the body then has only a message.
    let code: Int?
    let message: String

    static let missingAuth = APIFailure(status: 400, code: 215, message: "Bad Authentication data.")
    static let badSignature = APIFailure(status: 401, code: 32, message: "Could not authenticate you.")
    static let timestamp = APIFailure(status: 401, code: 135, message: "Timestamp out of bounds.")
    static let invalidToken = APIFailure(status: 401, code: 89, message: "Invalid or expired token.")
    static let notFound = APIFailure(status: 404, code: 34, message: "Sorry, that page does not exist.")
    static let rateLimited = APIFailure(status: 429, code: 88, message: "Rate limit exceeded.")
    static let notOwner = APIFailure(status: 403, code: 220, message: "Your credentials do not allow access to this resource.")

    static func wrongMethod(_ expected: String) -> APIFailure {
        APIFailure(status: 400, code: 86, message: "This method requires a \(expected).")
    }
    static func missing(_ parameter: String) -> APIFailure {
        APIFailure(status: 400, code: 38, message: "\(parameter) parameter is missing.")
    }
    static func invalid(_ parameter: String) -> APIFailure {
        APIFailure(status: 400, code: 44, message: "\(parameter) parameter is invalid.")
    }
    static func badJSON(_ detail: String) -> APIFailure {
        APIFailure(status: 422, code: nil, message: "Badly formed JSON body: \(detail).")
    }

    var body: JSONValue {
        var error: [(String, JSONValue)] = []
        if let code { error.append(("code", .int(code))) }
        error.append(("message", .string(message)))
        return .object([("errors", .array([.object(error)]))])
    }
}

/// The accepted credentials, indexed for lookups.
struct CredentialBook: Sendable {
    let users: [MockCredentials]
    private let byToken: [String: MockCredentials]
    private let byBearer: [String: MockCredentials]
    private let consumerKeys: Set<String>

    init(_ credentials: [MockCredentials]) {
        users = credentials
        var byToken: [String: MockCredentials] = [:]
        var byBearer: [String: MockCredentials] = [:]
        for user in credentials {
            byToken[user.accessToken] = byToken[user.accessToken] ?? user
            if let bearer = user.bearerToken { byBearer[bearer] = byBearer[bearer] ?? user }
        }
        self.byToken = byToken
        self.byBearer = byBearer
        consumerKeys = Set(credentials.map(\.consumerKey))
    }

    func user(token: String) -> MockCredentials? { byToken[token] }
    func user(bearer: String) -> MockCredentials? { byBearer[bearer] }
    func knowsConsumer(_ key: String) -> Bool { consumerKeys.contains(key) }
    func user(id: String) -> MockCredentials? { users.first { $0.userID == id } }
    func user(screenName: String) -> MockCredentials? {
        users.first { $0.screenName.lowercased() == screenName.lowercased() }
    }
}

/// What the verifier needs of a request.
struct SignedRequest: Sendable {
    /// `GET`, `POST`, ...
    var method: String
    /// Scheme, host and path, without query: the signature base URL.
    var baseURL: String
    /// The query's parameters followed by the form body's (never a JSON body), decoded.
    var parameters: [(String, String)]
    /// The `Authorization` header, if any.
    var authorization: String?
}

/// OAuth 1.0a (HMAC-SHA1) and Bearer verification, as pure functions.
///
/// Verification has two steps so that the costly part runs outside the server's lock:
/// ``evaluate(_:credentials:)`` parses and checks the signature against the credentials;
/// ``complete(_:now:tolerance:nonces:)`` applies the clock and the nonce memory.
enum OAuthVerifier {
    /// A request whose credentials are known, with its signature checked.
    struct Claim: Sendable {
        var user: MockCredentials
        var consumerKey: String
        var nonce: String
        var timestamp: Int64
        var signatureValid: Bool
    }

    /// The result of the first step.
    enum Evaluation: Sendable {
        /// Authorized by a Bearer token: no clock or nonce checks.
        case bearer(MockCredentials)
        /// An OAuth 1.0a request from known credentials, awaiting the clock and nonce checks.
        case oauth(Claim)
        /// Rejected already.
        case rejected(APIFailure, claimedUser: MockCredentials?)

        /// The user the request says it acts for, if its token is known (even when rejected):
        /// whose rate-limit headers an answer shows.
        var claimedUser: MockCredentials? {
            switch self {
            case .bearer(let user): user
            case .oauth(let claim): claim.user
            case .rejected(_, let user): user
            }
        }
    }

    /// Parses the credentials of `request` (from the `Authorization` header, else the `oauth_*`
    /// query and form parameters), looks them up and checks the signature.
    static func evaluate(_ request: SignedRequest, credentials: CredentialBook) -> Evaluation {
        var oauth: [(String, String)]
        var others: [(String, String)]
        if let header = request.authorization, !header.isEmpty {
            if header.hasPrefix("Bearer ") {
                let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
                guard !token.isEmpty else { return .rejected(.missingAuth, claimedUser: nil) }
                guard let user = credentials.user(bearer: token) else { return .rejected(.invalidToken, claimedUser: nil) }
                return .bearer(user)
            }
            guard let pairs = OAuth1.parseAuthorizationHeader(header) else { return .rejected(.missingAuth, claimedUser: nil) }
            oauth = pairs.filter { $0.0 != "realm" }
            others = request.parameters
        } else {
            oauth = request.parameters.filter { $0.0.hasPrefix("oauth_") }
            others = request.parameters.filter { !$0.0.hasPrefix("oauth_") }
            guard !oauth.isEmpty else { return .rejected(.missingAuth, claimedUser: nil) }
        }
        func value(_ name: String) -> String? {
            let values = oauth.filter { $0.0 == name }
            return values.count == 1 ? values[0].1 : nil
        }
        guard let consumerKey = value("oauth_consumer_key"), let signature = value("oauth_signature"),
              let method = value("oauth_signature_method"), let nonce = value("oauth_nonce"), !nonce.isEmpty,
              let timestampText = value("oauth_timestamp"), let token = value("oauth_token") else {
            return .rejected(.missingAuth, claimedUser: nil)
        }
        let user = credentials.user(token: token)
        guard let timestamp = Int64(timestampText) else { return .rejected(.missingAuth, claimedUser: user) }
        guard credentials.knowsConsumer(consumerKey) else { return .rejected(.badSignature, claimedUser: user) }
        guard let user, user.consumerKey == consumerKey else { return .rejected(.invalidToken, claimedUser: user) }
        guard method == "HMAC-SHA1", value("oauth_version").map({ $0 == "1.0" }) ?? true else {
            return .rejected(.badSignature, claimedUser: user)
        }
        let signed = others + oauth.filter { $0.0 != "oauth_signature" }
        let base = OAuth1.signatureBaseString(method: request.method, baseURL: request.baseURL, parameters: signed)
        let expected = OAuth1.signature(baseString: base, consumerSecret: user.consumerSecret, tokenSecret: user.accessTokenSecret)
        return .oauth(Claim(user: user, consumerKey: consumerKey, nonce: nonce, timestamp: timestamp,
                            signatureValid: constantTimeEqual(expected, signature)))
    }

    /// The second step: the timestamp within `tolerance` of `now` (else 401/135), the signature
    /// (else 401/32), a nonce not seen before for this consumer key (else 401/32, and the nonce
    /// is remembered only when everything else passed).
    static func complete(_ evaluation: Evaluation, now: Double, tolerance: Int64, nonces: inout NonceCache) -> Result<MockCredentials, APIFailure> {
        switch evaluation {
        case .bearer(let user):
            return .success(user)
        case .rejected(let failure, _):
            return .failure(failure)
        case .oauth(let claim):
            let nowSeconds = Int64(now.rounded(.down))
            guard abs(claim.timestamp - nowSeconds) <= tolerance else { return .failure(.timestamp) }
            guard claim.signatureValid else { return .failure(.badSignature) }
            guard nonces.insert(consumerKey: claim.consumerKey, nonce: claim.nonce, timestamp: claim.timestamp,
                                now: nowSeconds, tolerance: tolerance) else { return .failure(.badSignature) }
            return .success(claim.user)
        }
    }

    /// Compares two strings in time independent of where they differ.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for index in 0..<max(x.count, y.count) {
            difference |= (index < x.count ? x[index] : 0) ^ (index < y.count ? y[index] : 0)
        }
        return difference == 0
    }

    /// The signature base URL: `origin` (or `http://` + the Host header) + path, with the host
    /// lower-cased and a default port dropped.
    static func baseURL(origin: String?, host: String?, fallbackHost: String, path: String) -> String {
        if let origin {
            return (origin.hasSuffix("/") ? String(origin.dropLast()) : origin) + path
        }
        var authority = (host?.isEmpty == false ? host! : fallbackHost).lowercased()
        if authority.hasSuffix(":80") { authority.removeLast(3) }
        return "http://" + authority + path
    }
}

/// The nonces seen per consumer key, each kept while its timestamp is within the tolerance.
struct NonceCache: Sendable {
    private var seen: [String: Int64] = [:]
    private var sweepAt = 4096

    /// How many nonces are remembered.
    var count: Int { seen.count }

    /// Remembers the nonce; false if it was already there.
    mutating func insert(consumerKey: String, nonce: String, timestamp: Int64, now: Int64, tolerance: Int64) -> Bool {
        let key = consumerKey + "\u{0}" + nonce
        guard seen[key] == nil else { return false }
        seen[key] = timestamp
        if seen.count >= sweepAt {
            // A nonce whose timestamp is out of bounds can never be accepted again anyway.
            seen = seen.filter { now - $0.value <= tolerance }
            sweepAt = max(4096, seen.count * 2)
        }
        return true
    }

    mutating func removeAll() {
        seen = [:]
        sweepAt = 4096
    }
}

/// Fixed windows of requests per (endpoint, token).
struct RateLimiter: Sendable {
    struct Quota: Sendable, Hashable {
        var limit: Int
        var remaining: Int
        /// Epoch seconds.
        var reset: Int64
    }

    private struct Key: Hashable {
        var endpoint: Endpoint
        var token: String
    }

    private struct Window {
        var used: Int
        var resetAt: Double
    }

    var limits: MockRateLimits
    private var windows: [Key: Window] = [:]

    init(limits: MockRateLimits) {
        self.limits = limits
    }

    /// Counts one request; the quota after it, or nil when the window is exhausted (429).
    mutating func consume(_ endpoint: Endpoint, token: String, now: Double) -> (allowed: Bool, quota: Quota) {
        let key = Key(endpoint: endpoint, token: token)
        let limit = limits[endpoint]
        var window = windows[key].flatMap { $0.resetAt > now ? $0 : nil } ?? Window(used: 0, resetAt: now + limits.windowSeconds)
        let allowed = window.used < limit
        if allowed { window.used += 1 }
        windows[key] = window
        return (allowed, Quota(limit: limit, remaining: max(0, limit - window.used), reset: Int64(window.resetAt.rounded(.up))))
    }

    /// The quota without counting a request (`token` nil: a fresh window).
    func peek(_ endpoint: Endpoint?, token: String?, now: Double) -> Quota {
        let limit = endpoint.map { limits[$0] } ?? limits.defaultLimit
        if let endpoint, let token, let window = windows[Key(endpoint: endpoint, token: token)], window.resetAt > now {
            return Quota(limit: limit, remaining: max(0, limit - window.used), reset: Int64(window.resetAt.rounded(.up)))
        }
        return Quota(limit: limit, remaining: limit, reset: Int64((now + limits.windowSeconds).rounded(.up)))
    }

    /// Forgets every window.
    mutating func reset() { windows = [:] }
}
