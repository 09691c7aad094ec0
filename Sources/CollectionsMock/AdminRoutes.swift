import CollectionsAPI

/// The admin routes under `/__mock/`: JSON in, JSON out, no auth, no rate limits, never faulted,
/// not journaled. See `README.md` for every route with an example.
extension MockService {
    /// Every admin route, as `GET /__mock/` lists them.
    static let adminRoutes: [(String, String)] = [
        ("GET /__mock/state", "the whole state: collections (entries oldest-added first), deleted and protected tweets"),
        ("POST /__mock/seed", "add or replace collections and tweet marks; body like GET /__mock/state; answers {\"collection_ids\":[...]}"),
        ("POST /__mock/reset", "empty state, faults, journal, rate-limit windows and nonces"),
        ("GET /__mock/journal?since=N", "{\"requests\":[...]} after sequence N (default 0)"),
        ("DELETE /__mock/journal", "forget the journal"),
        ("GET /__mock/faults", "the faults in force and the mock's clock"),
        ("POST /__mock/faults", "add faults: fail_next, blackhole, drop_after_apply, reset, reset_after_apply, malformed_next, truncated_next, latency_ms, rate_limit_until, clock_offset_s"),
        ("DELETE /__mock/faults", "clear every fault (not an outage)"),
        ("POST /__mock/tweets", "{\"deleted\":[...],\"protected\":[...],\"restored\":[...]}"),
        ("POST /__mock/outage", "{\"seconds\":N} refuse connections for N seconds; {\"on\":true|false}"),
        ("GET /__mock/rate_limits", "the limits"),
        ("POST /__mock/rate_limits", "{\"window_s\":900,\"default\":1000,\"limits\":{\"\(Endpoint.entries.rawValue)\":5}}; resets the windows"),
    ]

    func handleAdmin(_ request: IncomingRequest, path: String, query: Substring?) -> OutgoingResponse {
        let route = path.hasSuffix("/") ? String(path.dropLast()) : path
        let body: JSONValue?
        if request.body.isEmpty {
            body = nil
        } else {
            do {
                body = try JSONValue.parse(request.body)
            } catch {
                return adminAnswer(400, ["error": "the body is not JSON: \(error)"])
            }
        }
        do throws(MockError) {
            switch (request.method, route) {
            case ("GET", "/__mock"):
                return adminAnswer(200, .object([("routes", .array(Self.adminRoutes.map { .object([("route", .string($0.0)), ("does", .string($0.1))]) }))]))
            case ("GET", "/__mock/state"):
                return adminAnswer(200, snapshot().json)
            case ("POST", "/__mock/seed"):
                let ids = try seed(try MockSnapshot(json: body ?? .object([])))
                return adminAnswer(200, .object([("collection_ids", .array(ids.map { .string($0) }))]))
            case ("POST", "/__mock/reset"):
                reset()
                return adminAnswer(200, .object([("reset", .bool(true))]))
            case ("GET", "/__mock/journal"):
                var since = 0
                if let query, let pairs = PercentEncoding.parseQuery(query), let text = pairs.first(where: { $0.0 == "since" })?.1 {
                    guard let value = Int(text) else { throw MockError("since must be an integer") }
                    since = value
                }
                let entries = journal().filter { $0.sequence > since }
                return adminAnswer(200, .object([("requests", .array(entries.map(\.json)))]))
            case ("DELETE", "/__mock/journal"):
                clearJournal()
                return adminAnswer(200, .object([("cleared", .bool(true))]))
            case ("GET", "/__mock/faults"):
                return adminAnswer(200, faultsDocument())
            case ("POST", "/__mock/faults"):
                try applyFaults(body ?? .object([]))
                return adminAnswer(200, faultsDocument())
            case ("DELETE", "/__mock/faults"):
                clearFaults()
                return adminAnswer(200, faultsDocument())
            case ("POST", "/__mock/tweets"):
                let document = body ?? .object([])
                try Self.expectKeys(document, ["deleted", "protected", "restored"])
                let deleted = try Self.tweetList(document["deleted"], "deleted")
                let protected = try Self.tweetList(document["protected"], "protected")
                let restored = try Self.tweetList(document["restored"], "restored")
                let snapshot = state.withLock { state in
                    state.store.restore(restored)
                    state.store.markDeleted(deleted)
                    state.store.markProtected(protected)
                    return state.store.snapshot
                }
                return adminAnswer(200, .object([
                    ("deleted", .array(snapshot.deletedTweets.map { .string($0) })),
                    ("protected", .array(snapshot.protectedTweets.map { .string($0) })),
                ]))
            case ("POST", "/__mock/outage"):
                let document = body ?? .object([])
                try Self.expectKeys(document, ["seconds", "on"])
                if let seconds = document["seconds"] {
                    guard let value = seconds.doubleValue, value > 0, value <= 86_400 else {
                        throw MockError("seconds must be a number of seconds in (0, 86400]")
                    }
                    return adminAnswer(200, .object([("outage", .bool(true)), ("seconds", seconds)]), action: .beginOutage(seconds: value))
                }
                switch document["on"] {
                case .bool(true)?: return adminAnswer(200, .object([("outage", .bool(true))]), action: .beginOutage(seconds: nil))
                case .bool(false)?: return adminAnswer(200, .object([("outage", .bool(false))]), action: .endOutage)
                default: throw MockError("give {\"seconds\":N} or {\"on\":true|false}")
                }
            case ("GET", "/__mock/rate_limits"):
                return adminAnswer(200, rateLimits().json)
            case ("POST", "/__mock/rate_limits"):
                let document = body ?? .object([])
                try Self.expectKeys(document, ["window_s", "default", "limits"])
                var limits = rateLimits()
                if let window = document["window_s"] {
                    guard let seconds = window.doubleValue, seconds > 0 else { throw MockError("window_s must be a positive number") }
                    limits.window = .milliseconds(Int64(seconds * 1000))
                }
                if let value = document["default"] {
                    guard let limit = value.int64Value, limit >= 0, limit <= Int32.max else { throw MockError("default must be a count") }
                    limits.defaultLimit = Int(limit)
                }
                if let members = document["limits"] {
                    guard let members = members.objectValue else { throw MockError("limits must be an object") }
                    for (name, value) in members {
                        guard let endpoint = Endpoint(rawValue: name) else { throw MockError("no endpoint \(name)") }
                        guard let limit = value.int64Value, limit >= 0, limit <= Int32.max else { throw MockError("the limit of \(name) must be a count") }
                        limits[endpoint] = Int(limit)
                    }
                }
                setRateLimits(limits)
                return adminAnswer(200, limits.json)
            default:
                let known = Self.adminRoutes.contains { $0.0.split(separator: " ")[1].split(separator: "?")[0] == route }
                return known
                    ? adminAnswer(405, ["error": "\(request.method) is not allowed on \(route)"])
                    : adminAnswer(404, ["error": "no admin route \(route); GET /__mock/ lists them"])
            }
        } catch {
            return adminAnswer(400, ["error": error.message])
        }
    }

    private func faultsDocument() -> JSONValue {
        let (faults, clock) = state.withLock { state -> (MockFaults, Double) in (state.faults, self.now(state)) }
        var document = faults.json
        if case .object(var members) = document {
            members.append(("now", .double(clock)))
            document = .object(members)
        }
        return document
    }

    /// Applies a `POST /__mock/faults` document, validating all of it first.
    private func applyFaults(_ document: JSONValue) throws(MockError) {
        try Self.expectKeys(document, ["fail_next", "blackhole", "drop_after_apply", "reset", "reset_after_apply", "malformed_next", "truncated_next",
                                       "latency_ms", "rate_limit_until", "clock_offset_s"])
        var rules: [MockFaultRule] = []
        if let value = document["fail_next"] {
            try Self.expectKeys(value, ["count", "status", "code", "message", "endpoint"])
            guard let status = value["status"]?.int64Value, (100...599).contains(status) else {
                throw MockError("fail_next needs a status between 100 and 599")
            }
            var code: Int?
            if let given = value["code"], !given.isNull {
                guard let number = given.int64Value else { throw MockError("fail_next.code must be an integer") }
                code = Int(number)
            }
            var message: String?
            if let given = value["message"], !given.isNull {
                guard let text = given.stringValue else { throw MockError("fail_next.message must be a string") }
                message = text
            }
            let (count, endpoint) = try Self.countAndEndpoint(value, "fail_next")
            rules.append(MockFaultRule(fault: .fail(status: Int(status), code: code, message: message), remaining: count, endpoint: endpoint))
        }
        var clearBlackhole = false
        if let value = document["blackhole"] {
            switch value {
            case .bool(true): rules.append(MockFaultRule(fault: .blackhole, remaining: nil, endpoint: nil))
            case .bool(false): clearBlackhole = true
            default:
                let (count, endpoint) = try Self.countAndEndpoint(value, "blackhole")
                rules.append(MockFaultRule(fault: .blackhole, remaining: count, endpoint: endpoint))
            }
        }
        if let value = document["drop_after_apply"] {
            let (count, endpoint) = try Self.countAndEndpoint(value, "drop_after_apply")
            rules.append(MockFaultRule(fault: .dropAfterApply, remaining: count, endpoint: endpoint))
        }
        if let value = document["reset"] {
            let (count, endpoint) = try Self.countAndEndpoint(value, "reset")
            rules.append(MockFaultRule(fault: .reset, remaining: count, endpoint: endpoint))
        }
        if let value = document["reset_after_apply"] {
            let (count, endpoint) = try Self.countAndEndpoint(value, "reset_after_apply")
            rules.append(MockFaultRule(fault: .resetAfterApply, remaining: count, endpoint: endpoint))
        }
        if let value = document["malformed_next"] {
            let (count, endpoint) = try Self.countAndEndpoint(value, "malformed_next", extraKeys: ["body"])
            var body: String?
            if let given = value["body"], !given.isNull {
                guard let text = given.stringValue else { throw MockError("malformed_next.body must be a string") }
                body = text
            }
            rules.append(MockFaultRule(fault: MockFault(.malformedBody(body: body)), remaining: count, endpoint: endpoint))
        }
        if let value = document["truncated_next"] {
            let (count, endpoint) = try Self.countAndEndpoint(value, "truncated_next")
            rules.append(MockFaultRule(fault: .truncatedBody, remaining: count, endpoint: endpoint))
        }
        var latency: Duration?
        if let value = document["latency_ms"] {
            guard let milliseconds = value.doubleValue, milliseconds >= 0, milliseconds <= 600_000 else {
                throw MockError("latency_ms must be a number of milliseconds in [0, 600000]")
            }
            latency = .microseconds(Int64(milliseconds * 1000))
        }
        var rateLimitUntil: Double??
        if let value = document["rate_limit_until"] {
            if value.isNull {
                rateLimitUntil = .some(nil)
            } else {
                guard let seconds = value.doubleValue else { throw MockError("rate_limit_until must be epoch seconds or null") }
                rateLimitUntil = seconds
            }
        }
        var clockOffset: Double?
        if let value = document["clock_offset_s"] {
            guard let seconds = value.doubleValue else { throw MockError("clock_offset_s must be a number of seconds") }
            clockOffset = seconds
        }
        state.withLock { state in
            if clearBlackhole { state.faults.rules.removeAll { $0.fault == .blackhole } }
            state.faults.rules += rules
            if let latency { state.faults.latency = latency }
            if let rateLimitUntil { state.faults.rateLimitedUntil = rateLimitUntil }
            if let clockOffset { state.faults.clockOffset = clockOffset }
        }
    }

    /// `N`, `{"count":N|null,"endpoint":"collections/..."}` (count defaults to 1; null means
    /// every request until cleared).
    private static func countAndEndpoint(_ value: JSONValue, _ name: String, extraKeys: [String] = []) throws(MockError) -> (Int?, Endpoint?) {
        if let count = value.int64Value {
            guard count >= 1 else { throw MockError("\(name) needs a count of at least 1") }
            return (Int(count), nil)
        }
        guard value.objectValue != nil else { throw MockError("\(name) must be a count or an object") }
        try expectKeys(value, ["count", "endpoint", "status", "code", "message"] + extraKeys)
        var count: Int? = 1
        if let given = value["count"] {
            if given.isNull {
                count = nil
            } else {
                guard let number = given.int64Value, number >= 1 else { throw MockError("\(name).count must be at least 1 or null") }
                count = Int(number)
            }
        }
        var endpoint: Endpoint?
        if let given = value["endpoint"], !given.isNull {
            guard let text = given.stringValue, let parsed = Endpoint(rawValue: text) ?? Endpoint(servedPath: text) else {
                throw MockError("\(name).endpoint must name an endpoint, e.g. collections/entries/curate")
            }
            endpoint = parsed
        }
        return (count, endpoint)
    }

    static func expectKeys(_ value: JSONValue, _ allowed: [String]) throws(MockError) {
        guard let members = value.objectValue else { throw MockError("expected a JSON object") }
        for (key, _) in members where !allowed.contains(key) {
            throw MockError("unknown key \(key) (known: \(allowed.joined(separator: ", ")))")
        }
    }

    static func tweetList(_ value: JSONValue?, _ name: String) throws(MockError) -> [UInt64] {
        guard let value, !value.isNull else { return [] }
        guard let items = value.arrayValue else { throw MockError("\(name) must be an array of tweet ids") }
        var tweets: [UInt64] = []
        for item in items {
            let text: String
            switch item {
            case .string(let string): text = string
            case .number(let number): text = number
            default: throw MockError("\(name) must be an array of tweet ids")
            }
            guard let tweet = Identifier.tweet(text) else { throw MockError("\(text) is not a tweet id") }
            tweets.append(tweet)
        }
        return tweets
    }
}

// MARK: Swift operations (the admin routes and MockCollectionsServer share them)

extension MockService {
    func snapshot() -> MockSnapshot { state.withLock { $0.store.snapshot } }

    func seed(_ snapshot: MockSnapshot) throws(MockError) -> [String] {
        let deleted = try Self.tweets(snapshot.deletedTweets)
        let protected = try Self.tweets(snapshot.protectedTweets)
        let defaultUser = configuration.credentials.first?.userID ?? MockCredentials.test.userID
        return try state.withLock { (state) throws(MockError) -> [String] in
            let ids = try state.store.seed(snapshot.collections, defaultUserID: defaultUser)
            state.store.markDeleted(deleted)
            state.store.markProtected(protected)
            return ids
        }
    }

    static func tweets(_ ids: [String]) throws(MockError) -> [UInt64] {
        var tweets: [UInt64] = []
        for id in ids {
            guard let tweet = Identifier.tweet(id) else { throw MockError("\(id) is not a tweet id") }
            tweets.append(tweet)
        }
        return tweets
    }

    func reset() {
        state.withLock { state in
            let outage = state.faults.outage
            state = MockState(configuration: configuration)
            state.faults.outage = outage
        }
    }

    func journal() -> [MockJournalEntry] { state.withLock { $0.journal.all } }

    func clearJournal() { state.withLock { $0.journal.removeAll(resetSequence: false) } }

    func clearFaults() {
        state.withLock { state in
            let outage = state.faults.outage
            state.faults = MockFaults()
            state.faults.outage = outage
        }
    }

    func rateLimits() -> MockRateLimits { state.withLock { $0.rateLimiter.limits } }

    func setRateLimits(_ limits: MockRateLimits) {
        state.withLock { state in
            state.rateLimiter = RateLimiter(limits: limits)
        }
    }
}

// MARK: JSON forms

extension MockSnapshot {
    /// The JSON of `GET /__mock/state`, also accepted by `POST /__mock/seed`.
    var json: JSONValue {
        .object([
            ("collections", .array(collections.map(\.json))),
            ("deleted_tweets", .array(deletedTweets.map { .string($0) })),
            ("protected_tweets", .array(protectedTweets.map { .string($0) })),
        ])
    }

    init(json: JSONValue) throws(MockError) {
        try MockService.expectKeys(json, ["collections", "deleted_tweets", "protected_tweets"])
        var collections: [MockCollection] = []
        if let list = json["collections"], !list.isNull {
            guard let items = list.arrayValue else { throw MockError("collections must be an array") }
            for item in items { collections.append(try MockCollection(json: item)) }
        }
        self.init(collections: collections,
                  deletedTweets: try MockService.tweetList(json["deleted_tweets"], "deleted_tweets").map { String($0) },
                  protectedTweets: try MockService.tweetList(json["protected_tweets"], "protected_tweets").map { String($0) })
    }
}

extension MockCollection {
    var json: JSONValue {
        .object([
            ("id", id.map { .string($0) } ?? .null),
            ("name", .string(name)),
            ("description", .string(description)),
            ("url", .string(url)),
            ("timeline_order", .string(timelineOrder.rawValue)),
            ("user_id", userID.map { .string($0) } ?? .null),
            ("entries", .array(entries.map { entry in
                .object([("tweet_id", .string(entry.tweetID)), ("sort_index", entry.sortIndex.map { .string($0) } ?? .null)])
            })),
        ])
    }

    init(json: JSONValue) throws(MockError) {
        try MockService.expectKeys(json, ["id", "name", "description", "url", "timeline_order", "user_id", "entries"])
        func text(_ key: String) throws(MockError) -> String? {
            guard let value = json[key], !value.isNull else { return nil }
            guard let string = value.stringValue else { throw MockError("\(key) must be a string") }
            return string
        }
        var order = MockTimelineOrder.curationReverseChron
        if let given = try text("timeline_order") {
            guard let parsed = MockTimelineOrder(rawValue: given) else { throw MockError("unknown timeline_order \(given)") }
            order = parsed
        }
        var entries: [MockEntry] = []
        if let list = json["entries"], !list.isNull {
            guard let items = list.arrayValue else { throw MockError("entries must be an array") }
            for item in items {
                switch item {
                case .string(let tweet): entries.append(MockEntry(tweetID: tweet))
                case .number(let tweet): entries.append(MockEntry(tweetID: tweet))
                case .object:
                    guard let tweet = item["tweet_id"]?.stringValue else { throw MockError("an entry needs a tweet_id string") }
                    let sortIndex = item["sort_index"]?.stringValue ?? item["sort_index"].flatMap { value -> String? in
                        if case .number(let text) = value { return text }
                        return nil
                    }
                    entries.append(MockEntry(tweetID: tweet, sortIndex: sortIndex))
                default: throw MockError("an entry is a tweet id or {\"tweet_id\":...,\"sort_index\":...}")
                }
            }
        }
        self.init(id: try text("id"), name: try text("name") ?? "Mock collection", description: try text("description") ?? "",
                  url: try text("url") ?? "", timelineOrder: order, userID: try text("user_id"), entries: entries)
    }
}

extension MockFaults {
    var json: JSONValue {
        .object([
            ("rules", .array(rules.map { rule in
                var members: [(String, JSONValue)] = [("kind", .string(rule.fault.name))]
                switch rule.fault.kind {
                case .fail(let status, let code, let message):
                    members.append(("status", .int(status)))
                    members.append(("code", code.map { .int($0) } ?? .null))
                    members.append(("message", message.map { .string($0) } ?? .null))
                case .malformedBody(let body):
                    members.append(("body", body.map { .string($0) } ?? .null))
                default:
                    break
                }
                members.append(("remaining", rule.remaining.map { .int($0) } ?? .null))
                members.append(("endpoint", rule.endpoint.map { .string($0.rawValue) } ?? .null))
                return .object(members)
            })),
            ("latency_ms", .double(MockService.seconds(latency) * 1000)),
            ("rate_limit_until", rateLimitedUntil.map { .double($0) } ?? .null),
            ("clock_offset_s", .double(clockOffset)),
            ("outage", .bool(outage)),
        ])
    }
}

extension MockJournalEntry {
    var json: JSONValue {
        .object([
            ("sequence", .int(sequence)),
            ("time", .double(time)),
            ("method", .string(method)),
            ("path", .string(path)),
            ("endpoint", endpoint.map { .string($0.rawValue) } ?? .null),
            ("params", .object(parameters.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
            ("body", body.map { .string($0) } ?? .null),
            ("user_id", userID.map { .string($0) } ?? .null),
            ("status", status.map { .int($0) } ?? .null),
            ("code", errorCode.map { .int($0) } ?? .null),
            ("applied", .bool(applied)),
            ("fault", fault.map { .string($0) } ?? .null),
            ("outcome", .string(outcome.rawValue)),
        ])
    }
}

extension MockRateLimits {
    var json: JSONValue {
        .object([
            ("window_s", .double(MockService.seconds(window))),
            ("default", .int(defaultLimit)),
            ("limits", .object(Endpoint.allCases.map { ($0.rawValue, .int(self[$0])) })),
        ])
    }
}
