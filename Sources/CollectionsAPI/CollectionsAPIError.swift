import Foundation

/// An answer (or the lack of one) that did not give the caller what it asked for, classified by
/// the engine's classes of api.md's error table.
///
/// Branch on ``code`` and ``isRetryable``, never on ``message``.
public struct CollectionsAPIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The class of the failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case transient, rateLimited, authentication, clockSkew, forbidden, notFound, invalidRequest
            case permanent, unexpectedStatus, malformedResponse, network, timeout, cancelled, configuration
            case tooManyChanges, invalidArgument
        }
        private let base: Base

        /// 5xx, 130/131: try again after a backoff.
        public static let transient = Code(base: .transient)
        /// 429 / 88: nothing more to this endpoint before the reset of ``CollectionsAPIError/rateLimit``.
        public static let rateLimited = Code(base: .rateLimited)
        /// 400/215, 401 (but 135), 401/403 with 89: credentials rejected; stop and keep the work.
        public static let authentication = Code(base: .authentication)
        /// 401/135: the request's timestamp is out of bounds; correct the clock from
        /// ``CollectionsAPIError/serverDate`` and retry once.
        public static let clockSkew = Code(base: .clockSkew)
        /// 403 (suspended, not permitted, locked, cannot write): stop and keep the work.
        public static let forbidden = Code(base: .forbidden)
        /// 404: an unknown or destroyed collection, or an unknown path. Whether the body was the
        /// API's error envelope with code 34 is in ``CollectionsAPIError/apiErrorCode``.
        public static let notFound = Code(base: .notFound)
        /// 400 (other than auth) or 422: the request is bad; isolate the bad change.
        public static let invalidRequest = Code(base: .invalidRequest)
        /// 400/86 (wrong HTTP method) and other answers that retrying cannot fix: a bug.
        public static let permanent = Code(base: .permanent)
        /// A status the API does not document (a proxy, a redirect): retried, never dead-lettered.
        public static let unexpectedStatus = Code(base: .unexpectedStatus)
        /// A body that is not the documented JSON (truncated, wrong type, too large, not JSON).
        public static let malformedResponse = Code(base: .malformedResponse)
        /// Connection refused or reset, DNS failure, TLS failure.
        public static let network = Code(base: .network)
        /// No answer within the request's timeout or the caller's deadline.
        public static let timeout = Code(base: .timeout)
        /// The caller's task was cancelled.
        public static let cancelled = Code(base: .cancelled)
        /// The client's configuration is unusable (a base URL that is not https or loopback http).
        public static let configuration = Code(base: .configuration)
        /// More than 100 changes in one curate request: refused before sending.
        public static let tooManyChanges = Code(base: .tooManyChanges)
        /// A malformed id or argument given by the caller (a collection or tweet id that does not
        /// validate, a count out of range): refused before anything was sent.
        public static let invalidArgument = Code(base: .invalidArgument)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// A sentence for people. Never contains credentials, signatures or request bodies.
    public let message: String
    /// The HTTP status, when an answer arrived.
    public let httpStatus: Int?
    /// The API's error code from `{"errors":[{"code":N}]}`, when the body was that envelope.
    public let apiErrorCode: Int?
    /// The answer's `x-rate-limit-*` headers, when it had them (with its `Date` header, to read
    /// the reset against the server's clock).
    public let rateLimit: RateLimit?
    /// The server's `Date` header, when the answer had one.
    public let serverDate: Date?

    public init(code: Code, message: String, httpStatus: Int? = nil, apiErrorCode: Int? = nil,
                rateLimit: RateLimit? = nil, serverDate: Date? = nil) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
        self.apiErrorCode = apiErrorCode
        self.rateLimit = rateLimit
        self.serverDate = serverDate
    }

    /// When the endpoint's window resets (`x-rate-limit-reset`), on the **server's** clock.
    public var rateLimitReset: Date? { rateLimit?.reset }

    /// Whether the same request may succeed later without anything being changed: transient
    /// failures, network errors, timeouts, malformed answers, unexpected statuses, rate limits
    /// (after the reset) and clock skew (after correcting the clock).
    public var isRetryable: Bool {
        switch code {
        case .transient, .network, .timeout, .malformedResponse, .unexpectedStatus, .rateLimited, .clockSkew: true
        default: false
        }
    }

    public var description: String {
        var text = message
        if let httpStatus { text += " (HTTP \(httpStatus)" + (apiErrorCode.map { ", code \($0))" } ?? ")") }
        return text
    }
}
