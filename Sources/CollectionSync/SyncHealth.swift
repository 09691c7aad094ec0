import CollectionsAPI
import Foundation
import Logging

/// What the engine knows of the sync's health, so that each change is logged (and announced)
/// once, not once per retry: the API unreachable and reachable again, credentials rejected and
/// accepted again, a rate-limit window, ops backing off.
///
/// An engine keeps one for its life: the watch loop's flushes and pulls share it, so an outage
/// that lasts an hour is one line when it starts and one when it ends.
struct SyncHealth: Sendable {
    /// What happened to a request, or what the flush decided after it.
    enum Observation: Sendable {
        /// The API answered a request (with any outcome for its ops).
        case answered
        /// A request failed.
        case failed(CollectionsAPIError)
        /// Ops wait until `until` after a transient failure.
        case backingOff(ops: Int, until: Date, error: String)
        /// Nothing goes to `endpoint` before `until`.
        case rateLimited(Endpoint, until: Date)
    }

    /// One line for the log, and the event that goes with it, if any.
    struct Notice: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata = [:]
        var event: SyncEvent?
    }

    private enum Reachability { case unknown, reachable, unreachable }
    private var reachability = Reachability.unknown
    private var authRejected = false
    private var backingOff = false
    /// The reset each endpoint's logged wait ends at (milliseconds since 1970).
    private var rateLimited: [Endpoint: Int64] = [:]

    mutating func observe(_ observation: Observation) -> [Notice] {
        switch observation {
        case .answered:
            var notices: [Notice] = []
            if reachability == .unreachable {
                notices.append(Notice(level: .notice, message: "the API is reachable again"))
            }
            if authRejected {
                notices.append(Notice(level: .notice, message: "the credentials are accepted again"))
            }
            if backingOff, reachability != .unreachable {
                notices.append(Notice(level: .info, message: "requests succeed again: the backoff is over"))
            }
            reachability = .reachable
            authRejected = false
            backingOff = false
            return notices
        case .failed(let error):
            return failed(error)
        case .backingOff(let ops, let until, let error):
            guard !backingOff else { return [] }
            backingOff = true
            // While the API is unreachable the backoff is part of that story: said once, here.
            return [Notice(level: .notice, message: "\(plural(ops, "op")) back off until \(Self.format(until)): \(error)",
                           metadata: ["op.count": "\(ops)", "retry.at": "\(Self.format(until))"])]
        case .rateLimited(let endpoint, let until):
            let millis = until.millis
            guard rateLimited[endpoint] != millis else { return [] }
            rateLimited[endpoint] = millis
            return [Notice(level: .notice, message: "rate limited on \(endpoint.rawValue) until \(Self.format(until))",
                           metadata: ["api.endpoint": "\(endpoint.rawValue)", "rate_limit.until": "\(Self.format(until))"])]
        }
    }

    private mutating func failed(_ error: CollectionsAPIError) -> [Notice] {
        var metadata: Logger.Metadata = ["error.code": "\(error.code)"]
        if let status = error.httpStatus { metadata["http.status"] = "\(status)" }
        if let code = error.apiErrorCode { metadata["api.error_code"] = "\(code)" }
        switch error.code {
        case .network, .timeout, .transient, .malformedResponse, .unexpectedStatus:
            // An answer of any kind (a 5xx, a malformed body) shows that something listens, but the
            // API is not doing its job: for the operator it is down either way (exit 69).
            guard reachability != .unreachable else { return [] }
            reachability = .unreachable
            return [Notice(level: .warning, message: "the API is unreachable: \(error.description)", metadata: metadata,
                           event: .unreachable(reason: error.description))]
        case .authentication, .forbidden:
            reachability = .reachable
            guard !authRejected else { return [] }
            authRejected = true
            return [Notice(level: .error, message: "authentication rejected: \(error.description); ops are kept until the credentials work",
                           metadata: metadata, event: .authenticationRejected(reason: error.description))]
        default:
            // Rate limits are told with their reset (``Observation/rateLimited``), clock corrections
            // by the engine, a refused op with its dead letter; cancellation is the caller's.
            if error.httpStatus != nil, reachability == .unreachable {
                reachability = .reachable
                return [Notice(level: .notice, message: "the API is reachable again")]
            }
            return []
        }
    }

    static func format(_ date: Date) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
    }
}

/// "1 op", "2 ops": a count and its noun, in the right number.
func plural(_ number: Int, _ noun: String) -> String {
    "\(number) \(noun)\(number == 1 ? "" : "s")"
}
