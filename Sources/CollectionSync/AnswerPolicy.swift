import CollectionsAPI
import Foundation

/// semantics.md's classification table ("Flush", 4 and 5) as pure functions: what an answer
/// means for the ops of a request. Successes are decided per change (``outcome(for:_:)``),
/// failures per request (``failure(_:_:)``), and the check behind a 404 (``confirmation(_:_:)``).
/// The flush (``FlushRound``) and the pull both decide through here.
enum AnswerPolicy {
    // MARK: - Success rows

    /// What a change-envelope answer means for one op: not in `errors` is applied; remove +
    /// `not_found` and add + `duplicate` are already applied; any other reason (or add +
    /// `not_found`) is a permanent failure of that one op.
    static func outcome(for kind: OpKind, _ change: ChangeOutcome) -> OpOutcome {
        switch (kind, change) {
        case (_, .applied): .applied
        case (.remove, .refused("not_found")), (.add, .refused("duplicate")): .alreadyApplied
        case (_, .refused(let reason)): .failed(reason: reason)
        }
    }

    static func change(for op: Op) -> EntryChange {
        EntryChange(op: op.kind == .add ? .add : .remove, tweetID: op.tweet?.rawValue ?? "")
    }

    // MARK: - Failure rows

    /// What is known about a request when its answer is a failure.
    struct Context: Hashable {
        /// Changes in the request.
        var ops = 1
        /// It is already the one retry after a clock correction.
        var skewRetried = false
        /// The API base has answered successfully before (recorded per base URL).
        var answeredBefore = false
        /// The flush's (or pull's) deadline has passed.
        var pastDeadline = false
        var apiBase: String
        var collection: CollectionID
    }

    /// What to do after a failed request.
    enum Failure: Hashable {
        /// 401/135 with a `Date` header, the first time: sign with the server's clock from now on
        /// and send the request again, once.
        case correctClock(serverDate: Date)
        /// 429 / 88: back to pending, attempt not counted; nothing goes to the endpoint before
        /// the reset (``rateLimitWait(_:now:)``).
        case rateLimited
        /// The flush's own deadline cut the request: back to pending, attempt not counted; stop.
        case deadline
        /// Network error, timeout, 5xx, 130/131, malformed or unexpected answer: back to pending,
        /// next attempt after a backoff; the attempt counts.
        case backOff
        /// Back to pending, attempt not counted, and the flush stops: authentication (401, 403,
        /// 400/215, a clock still skewed after its retry), a configuration problem (a base URL
        /// that does not serve the API, a request we should never have made), cancellation.
        case stop(FlushReport.StopReason)
        /// 400 / 422 for several changes: split in halves until the bad change is alone.
        case bisect
        /// Dead-lettered with `reason` (a change refused alone, a collection confirmed gone).
        case fail(reason: String)
        /// 404 / 34 from a base that has answered before: ask `collections/show` whether the
        /// collection is gone before deciding (``confirmation(_:_:)``).
        case confirmMissing
        /// The collection is confirmed gone (404 / 34 from `collections/show` too, from a base
        /// that answered before): it is marked gone and its waiting ops fail with "collection not
        /// found"; for a destroy, its intent is had: applied.
        case collectionGone
    }

    static func failure(_ error: CollectionsAPIError, _ context: Context) -> Failure {
        switch error.code {
        case .clockSkew where !context.skewRetried && error.serverDate != nil:
            return .correctClock(serverDate: error.serverDate!)
        case .rateLimited:
            return .rateLimited
        case .timeout where context.pastDeadline:
            return .deadline
        case .transient, .network, .timeout, .malformedResponse, .unexpectedStatus:
            return .backOff
        case .authentication, .forbidden, .clockSkew:
            return .stop(.authentication(error))
        case .notFound where error.apiErrorCode != 34:
            return .stop(.configuration(misconfigured("\(context.apiBase) answered 404 without the API's error envelope (code 34): check the API base URL", error)))
        case .notFound:
            // Also from a base that never answered: a mistyped collection is then told as such
            // (``confirmation(_:_:)``), though it still stops the flush as a configuration error.
            return .confirmMissing
        case .invalidRequest where context.ops > 1:
            return .bisect
        case .invalidRequest:
            return .fail(reason: "invalid request: \(error.description)")
        case .cancelled:
            return .stop(.cancelled)
        default:  // .permanent, .configuration, .tooManyChanges, .invalidArgument: our bug or our configuration
            return .stop(.configuration(error))
        }
    }

    /// After a 404 / 34: what `collections/show`'s answer says (nil: it answered 2xx). Only a
    /// 404 / 34 there too, from a base that answered before, means the collection is gone; a 2xx,
    /// or a 404 that is not the API's, means the base URL is wrong; a 404 / 34 from a base that
    /// never answered is a configuration stop that names the collection first.
    static func confirmation(_ show: CollectionsAPIError?, _ context: Context) -> Failure {
        guard let show else {
            return .stop(.configuration(misconfigured("\(context.apiBase) answered 404 for \(context.collection) but collections/show finds it: check the API base URL", nil)))
        }
        switch show.code {
        case .notFound where show.apiErrorCode == 34 && context.answeredBefore:
            return .collectionGone
        case .notFound where show.apiErrorCode == 34:
            // The envelope looks like the API's, but this base URL never answered successfully: it
            // may still be the wrong server, so nothing is dead-lettered (semantics.md, the 404 rows).
            return .stop(.configuration(misconfigured("no collection \(context.collection) at \(context.apiBase) (collections/show says so too): "
                + "check the collection id; this base URL has never answered successfully before, so check the API base URL too", show)))
        case .notFound:
            return .stop(.configuration(misconfigured("\(context.apiBase) answered collections/show with a 404 that is not the API's: check the API base URL", show)))
        case .authentication, .forbidden, .clockSkew:
            return .stop(.authentication(show))
        case .cancelled:
            return .stop(.cancelled)
        default:
            return .backOff
        }
    }

    /// A configuration stop the engine diagnosed itself: `why`, with the status and API code of
    /// the answer it comes from.
    private static func misconfigured(_ why: String, _ answer: CollectionsAPIError?) -> CollectionsAPIError {
        CollectionsAPIError(code: .configuration, message: why, httpStatus: answer?.httpStatus, apiErrorCode: answer?.apiErrorCode)
    }

    // MARK: - Time from the server

    /// A time on the server's clock (an `x-rate-limit-reset`) on the local clock: it minus the
    /// server's lead, `Date` header − local now (semantics.md "Flush", 5). Without a `Date`
    /// header the clocks are taken to agree.
    static func localTime(of serverTime: Date, serverDate: Date?, now: Int64) -> Int64 {
        guard let serverDate else { return serverTime.millis }
        return serverTime.millis - (serverDate.millis - now)
    }

    /// Until when (local wall ms) nothing goes to an endpoint after a 429 with these headers: its
    /// reset, at least a second from now (a reset already past still waits a moment); 15
    /// minutes, the API's window, when the answer gave no reset.
    static func rateLimitWait(_ limit: RateLimit?, now: Int64) -> Int64 {
        guard let limit else { return now + 15 * 60 * 1000 }
        return max(localTime(of: limit.reset, serverDate: limit.serverDate, now: now), now + 1_000)
    }

    /// Until when (local wall ms) an answer's exhausted window (`x-rate-limit-remaining: 0`)
    /// keeps its endpoint closed, or nil when it is not exhausted or its reset is past.
    static func exhaustedUntil(_ limit: RateLimit?, now: Int64) -> Int64? {
        guard let limit, limit.remaining == 0 else { return nil }
        let reset = localTime(of: limit.reset, serverDate: limit.serverDate, now: now)
        return reset > now ? reset : nil
    }

    /// The offset of the server's clock from the local one, from the server's `Date` header.
    static func clockOffset(serverDate: Date, now: Int64) -> Duration {
        .milliseconds(serverDate.millis - now)
    }
}
