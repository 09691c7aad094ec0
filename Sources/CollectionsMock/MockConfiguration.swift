import Foundation
import CollectionsAPI
import Logging

/// How a ``MockCollectionsServer`` is set up: where it listens, whom it accepts, how big a
/// collection gets, its rate limits and its clock. Every property has a documented default.
public struct MockConfiguration: Sendable {
    /// The address to listen on. Default `127.0.0.1`.
    public var host: String = "127.0.0.1"
    /// The API port; `0` (the default) picks a free one, readable from ``MockCollectionsServer/port``.
    public var port: Int = 0
    /// A second, admin-only listener (`/__mock/...` routes only) that stays up during an outage,
    /// so that a script can end the outage over HTTP. `nil` (the default): no such listener; the
    /// admin routes are still served on the API port while it is up. `0` picks a free port.
    public var adminPort: Int? = nil
    /// The accepted users. Each has OAuth 1.0a credentials and optionally a Bearer token.
    /// Default: ``MockCredentials/test`` alone.
    public var credentials: [MockCredentials] = [.test]
    /// The most entries a collection holds; adding past it silently evicts the oldest-added
    /// entry. Default 5000 (api.md's choice for the mock).
    public var capacity: Int = 5000
    /// Requests allowed per endpoint and token in each window. Default: 1000 per endpoint per
    /// 15 minutes.
    public var rateLimits: MockRateLimits = MockRateLimits()
    /// The wall clock the mock answers by (the `Date` header, OAuth timestamps, rate-limit
    /// windows, the journal). Default: the system clock. A clock offset fault shifts it.
    public var clock: WallClock = .system
    /// The scheme and authority used instead of `http://<Host header>` when rebuilding the
    /// signature base URL, e.g. `https://api.twitter.com` to verify a request signed for the real
    /// service (Twitter's known-answer example). Default `nil`: the request's own `Host`.
    public var signatureOrigin: String? = nil
    /// How far an `oauth_timestamp` may be from the mock's clock before 401/135. Default 300 s
    /// (5 minutes); nonces are remembered for as long as their timestamp is acceptable.
    public var timestampTolerance: Int64 = 300
    /// The journal keeps the most recent requests up to this many. Default 1,000 (entries keep
    /// curate's JSON body, so a long benchmark should not hold them all).
    public var journalLimit: Int = 1_000
    /// The largest request body accepted (413 beyond it). Default 1 MiB.
    public var maxBodyBytes: Int = 1 << 20
    /// How long ``MockCollectionsServer/shutdown()`` lets answers already being delayed by a
    /// latency fault go out before closing their connections. Default 1 s.
    public var shutdownGracePeriod: Duration = .seconds(1)
    /// Where the server logs (connections, outages, errors; never credentials). Default: no-op.
    public var logger: Logger = Logger(label: "collections-mock", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The defaults; change the properties you need.
    public init() {}
}

/// One user the mock accepts: OAuth 1.0a consumer and token credentials, an optional OAuth 2.0
/// Bearer token, and the user they act as.
public struct MockCredentials: Sendable, Hashable {
    /// The application's consumer key (`oauth_consumer_key`).
    public var consumerKey: String
    /// The application's consumer secret.
    public var consumerSecret: String
    /// The user's access token (`oauth_token`).
    public var accessToken: String
    /// The user's access token secret.
    public var accessTokenSecret: String
    /// An OAuth 2.0 user-context token accepted as `Authorization: Bearer TOKEN`, if any.
    public var bearerToken: String?
    /// The user's numeric id (a decimal string), owner of the collections they create.
    public var userID: String
    /// The user's screen name.
    public var screenName: String

    /// Credentials for one user.
    public init(consumerKey: String, consumerSecret: String, accessToken: String, accessTokenSecret: String,
                bearerToken: String? = nil, userID: String, screenName: String) {
        self.consumerKey = consumerKey
        self.consumerSecret = consumerSecret
        self.accessToken = accessToken
        self.accessTokenSecret = accessTokenSecret
        self.bearerToken = bearerToken
        self.userID = userID
        self.screenName = screenName
    }

    /// Fixed, made-up credentials for tests (never valid anywhere but in this mock).
    public static let test = MockCredentials(
        consumerKey: "mock-consumer-key-TEST-ONLY",
        consumerSecret: "mock-consumer-secret-TEST-ONLY-not-a-secret",
        accessToken: "1000000001-mock-access-token-TEST-ONLY",
        accessTokenSecret: "mock-access-token-secret-TEST-ONLY-not-a-secret",
        bearerToken: "mock-bearer-token-TEST-ONLY",
        userID: "1000000001",
        screenName: "mock_test_user")

    /// A second fixed test user (another token of the same application), for tests of per-token
    /// rate limits and ownership.
    public static let otherTest = MockCredentials(
        consumerKey: "mock-consumer-key-TEST-ONLY",
        consumerSecret: "mock-consumer-secret-TEST-ONLY-not-a-secret",
        accessToken: "1000000002-mock-access-token-TEST-ONLY",
        accessTokenSecret: "mock-access-token-secret-2-TEST-ONLY-not-a-secret",
        bearerToken: "mock-bearer-token-2-TEST-ONLY",
        userID: "1000000002",
        screenName: "mock_other_user")
}

extension Endpoint {
    /// The path the mock serves the endpoint at, e.g. `/1.1/collections/entries.json`.
    public var servedPath: String { "/1.1/" + path }

    /// The endpoint served at `path` (e.g. `/1.1/collections/show.json`), if any.
    public init?(servedPath path: some StringProtocol) {
        guard path.hasPrefix("/1.1/"), path.hasSuffix(".json") else { return nil }
        self.init(rawValue: String(path.dropFirst(5).dropLast(5)))
    }
}

/// Per-endpoint request budgets per token and window, reported in the `x-rate-limit-*` headers.
public struct MockRateLimits: Sendable, Hashable {
    /// The length of a window. Default 15 minutes.
    public var window: Duration = .seconds(900)
    /// The budget of endpoints not listed in ``limits``. Default 1000 (api.md's GET figure; POST
    /// limits are not published, so the mock uses the same).
    public var defaultLimit: Int = 1000
    /// Budgets that differ from ``defaultLimit``.
    public var limits: [Endpoint: Int] = [:]

    /// Every endpoint at ``defaultLimit`` per 15 minutes.
    public init() {}

    /// Every endpoint at `defaultLimit` per `window`, except those in `limits`.
    public init(window: Duration = .seconds(900), defaultLimit: Int = 1000, limits: [Endpoint: Int] = [:]) {
        self.window = window
        self.defaultLimit = defaultLimit
        self.limits = limits
    }

    /// Limits high enough never to be reached in a benchmark.
    public static let unlimited = MockRateLimits(defaultLimit: Int(Int32.max))

    /// The budget of `endpoint`.
    public subscript(endpoint: Endpoint) -> Int {
        get { limits[endpoint] ?? defaultLimit }
        set { limits[endpoint] = newValue }
    }

    var windowSeconds: Double {
        let parts = window.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}

/// A problem with something handed to the mock from Swift or over its admin route.
public struct MockError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong, for people.
    public let message: String

    /// An error saying `message`.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}

extension MockCredentials {
    /// These credentials as `CollectionsClient` takes them (OAuth 1.0a user context).
    public var apiCredentials: APICredentials {
        .oauth1(consumerKey: consumerKey, consumerSecret: consumerSecret, accessToken: accessToken, accessTokenSecret: accessTokenSecret)
    }
}
