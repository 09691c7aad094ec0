import CollectionsAPI
/// Decoded request parameters (query then form), first occurrence wins.
struct Parameters: Sendable {
    let pairs: [(String, String)]

    subscript(name: String) -> String? {
        pairs.first { $0.0 == name }?.1
    }

    func required(_ name: String) throws(APIFailure) -> String {
        guard let value = self[name], !value.isEmpty else { throw .missing(name) }
        return value
    }

    func tweet(_ name: String) throws(APIFailure) -> UInt64 {
        guard let tweet = Identifier.tweet(try required(name)) else { throw .invalid(name) }
        return tweet
    }

    func optionalTweet(_ name: String) throws(APIFailure) -> UInt64? {
        guard let text = self[name], !text.isEmpty else { return nil }
        guard let tweet = Identifier.tweet(text) else { throw .invalid(name) }
        return tweet
    }

    func count(default value: Int) throws(APIFailure) -> Int {
        guard let text = self["count"] else { return value }
        guard let count = Int(text), (1...200).contains(count) else { throw .invalid("count") }
        return count
    }

    func position(_ name: String) throws(APIFailure) -> UInt64? {
        guard let text = self[name] else { return nil }
        guard let position = Identifier.position(text) else { throw .invalid(name) }
        return position
    }

    func bool(_ name: String, default value: Bool) throws(APIFailure) -> Bool {
        guard let text = self[name] else { return value }
        switch text.lowercased() {
        case "true", "t", "1": return true
        case "false", "f", "0": return false
        default: throw .invalid(name)
        }
    }
}

/// The body of `entries/curate`, parsed (outside the lock) into changes or the reason it is bad.
struct CurateBody: Sendable {
    struct Change: Sendable, Hashable {
        var op: String
        /// The tweet id as sent (validated later: a malformed id is a 400, not a 422).
        var tweetID: String
    }

    var collectionID: String
    var changes: [Change]

    /// `{"id":ID,"changes":[{"op":"add"|"remove","tweet_id":"..."}]}`; tweet ids may be strings
    /// or integers. Anything else is a 422.
    static func parse(_ bytes: [UInt8]) -> Result<CurateBody, APIFailure> {
        let document: JSONValue
        do {
            document = try JSONValue.parse(bytes)
        } catch {
            return .failure(.badJSON(error.description))
        }
        guard case .object = document else { return .failure(.badJSON("not an object")) }
        guard let id = document["id"]?.stringValue else { return .failure(.badJSON("id must be a string")) }
        guard let list = document["changes"]?.arrayValue else { return .failure(.badJSON("changes must be an array")) }
        var changes: [Change] = []
        changes.reserveCapacity(list.count)
        for item in list {
            guard case .object = item, let op = item["op"]?.stringValue else {
                return .failure(.badJSON("each change needs an op string"))
            }
            switch item["tweet_id"] {
            case .string(let text)?: changes.append(Change(op: op, tweetID: text))
            case .number(let text)?: changes.append(Change(op: op, tweetID: text))
            default: return .failure(.badJSON("each change needs a tweet_id"))
            }
        }
        return .success(CurateBody(collectionID: id, changes: changes))
    }
}

/// What an endpoint answered: a JSON body (status 200) and whether state changed.
struct EndpointAnswer: Sendable {
    var body: JSONValue
    var applied: Bool
}

/// The ten endpoints over a ``MockStore``: validation, ownership, state changes, and the
/// documented response shapes.
struct EndpointHandler {
    let credentials: CredentialBook

    /// The constant body of a change envelope with no errors.
    static let emptyEnvelope: JSONValue = .object([("objects", .object([])), ("response", .object([("errors", .array([]))]))])

    func handle(_ endpoint: Endpoint, parameters: Parameters, curate: Result<CurateBody, APIFailure>?,
                user: MockCredentials, store: inout MockStore) throws(APIFailure) -> EndpointAnswer {
        switch endpoint {
        case .entries: return EndpointAnswer(body: try entries(parameters, store: store), applied: false)
        case .show:
            let id = try parameters.required("id")
            guard let collection = store.collection(id) else { throw .notFound }
            return EndpointAnswer(body: collectionDocument(collection), applied: false)
        case .list: return EndpointAnswer(body: try list(parameters, store: store), applied: false)
        case .create: return try create(parameters, user: user, store: &store)
        case .update: return try update(parameters, user: user, store: &store)
        case .destroy:
            let id = try parameters.required("id")
            _ = try owned(id, by: user, in: store)
            store.destroy(id)
            return EndpointAnswer(body: .object([("destroyed", .bool(true))]), applied: true)
        case .add:
            let id = try parameters.required("id")
            let tweet = try parameters.tweet("tweet_id")
            let relativeTo = try parameters.optionalTweet("relative_to")
            let above = try parameters.bool("above", default: true)
            _ = try owned(id, by: user, in: store)
            let outcome = store.add(id, tweet: tweet, relativeTo: relativeTo, above: above)
            return envelope([("add", String(tweet), outcome)])
        case .remove:
            let id = try parameters.required("id")
            let tweet = try parameters.tweet("tweet_id")
            _ = try owned(id, by: user, in: store)
            return envelope([("remove", String(tweet), store.remove(id, tweet: tweet))])
        case .move:
            let id = try parameters.required("id")
            let tweet = try parameters.tweet("tweet_id")
            let relativeTo = try parameters.tweet("relative_to")
            let above = try parameters.bool("above", default: true)
            let collection = try owned(id, by: user, in: store)
            guard collection.order == .curationReverseChron else {
                throw APIFailure(status: 400, code: 44, message: "move works only in curation_reverse_chron collections.")
            }
            return envelope([("move", String(tweet), store.move(id, tweet: tweet, relativeTo: relativeTo, above: above))])
        case .curate:
            let body = try (curate ?? .failure(.badJSON("empty body"))).get()
            guard body.changes.count <= 100 else {
                throw APIFailure(status: 400, code: 44, message: "changes parameter is invalid: at most 100 changes.")
            }
            var changes: [(op: String, tweet: UInt64)] = []
            for change in body.changes {
                guard change.op == "add" || change.op == "remove" else { throw .invalid("op") }
                guard let tweet = Identifier.tweet(change.tweetID) else { throw .invalid("tweet_id") }
                changes.append((change.op, tweet))
            }
            _ = try owned(body.collectionID, by: user, in: store)
            let results = changes.map { change in
                (change.op, String(change.tweet), change.op == "add"
                    ? store.add(body.collectionID, tweet: change.tweet)
                    : store.remove(body.collectionID, tweet: change.tweet))
            }
            return envelope(results)
        }
    }

    // MARK: Endpoints

    private func entries(_ parameters: Parameters, store: MockStore) throws(APIFailure) -> JSONValue {
        let id = try parameters.required("id")
        let count = try parameters.count(default: 20)
        let maxPosition = try parameters.position("max_position")
        let minPosition = try parameters.position("min_position")
        guard let collection = store.collection(id),
              let page = store.page(id, maxPosition: maxPosition, minPosition: minPosition, count: count) else { throw .notFound }
        var tweets: [(String, JSONValue)] = []
        var timeline: [JSONValue] = []
        tweets.reserveCapacity(page.entries.count)
        timeline.reserveCapacity(page.entries.count)
        for slot in page.entries {
            let tweet = String(slot.tweet)
            tweets.append((tweet, .object([
                ("id_str", .string(tweet)),
                ("text", .string("Mock tweet \(tweet)")),
                ("user", .object([("id_str", .string(collection.userID))])),
            ])))
            timeline.append(.object([
                ("feature_context", .string(Self.featureContext)),
                ("tweet", .object([("id", .string(tweet)), ("sort_index", .string(String(slot.position)))])),
            ]))
        }
        var position: [(String, JSONValue)] = []
        if let first = page.entries.first, let last = page.entries.last {
            position.append(("max_position", .string(String(first.position))))
            position.append(("min_position", .string(String(last.position))))
        }
        position.append(("was_truncated", .bool(page.wasTruncated)))
        return .object([
            ("objects", .object([
                ("timelines", .object([(id, timelineObject(collection))])),
                ("tweets", .object(tweets)),
                ("users", usersObject([collection.userID])),
            ])),
            ("response", .object([
                ("timeline_id", .string(id)),
                ("timeline", .array(timeline)),
                ("position", .object(position)),
            ])),
        ])
    }

    private func list(_ parameters: Parameters, store: MockStore) throws(APIFailure) -> JSONValue {
        let userID: String
        if let id = parameters["user_id"], !id.isEmpty {
            guard Identifier.tweet(id) != nil else { throw .invalid("user_id") }
            userID = id
        } else if let name = parameters["screen_name"], !name.isEmpty {
            userID = credentials.user(screenName: name)?.userID ?? "0"
        } else {
            throw APIFailure(status: 400, code: 38, message: "user_id or screen_name parameter is missing.")
        }
        let tweet = try parameters.optionalTweet("tweet_id")
        let count = try parameters.count(default: 20)
        var cursor: UInt64?
        if let text = parameters["cursor"], !text.isEmpty, text != "-1" {
            guard let value = Identifier.position(text) else { throw .invalid("cursor") }
            cursor = value
        }
        let (collections, more) = store.list(userID: userID, containing: tweet, after: cursor, count: count)
        var cursors: [(String, JSONValue)] = []
        if more, let last = collections.last { cursors.append(("next_cursor", .string(String(last.number)))) }
        return .object([
            ("objects", .object([
                ("timelines", .object(collections.map { ($0.id, timelineObject($0)) })),
                ("users", usersObject(collections.isEmpty ? [] : [userID])),
            ])),
            ("response", .object([
                ("results", .array(collections.map { .object([("timeline_id", .string($0.id))]) })),
                ("cursors", .object(cursors)),
            ])),
        ])
    }

    private func create(_ parameters: Parameters, user: MockCredentials, store: inout MockStore) throws(APIFailure) -> EndpointAnswer {
        let (name, description, url) = try details(parameters)
        var order = MockTimelineOrder.curationReverseChron
        if let text = parameters["timeline_order"] {
            guard let value = MockTimelineOrder(rawValue: text) else { throw .invalid("timeline_order") }
            order = value
        }
        let id = store.create(name: name, description: description, url: url, order: order, userID: user.userID)
        return EndpointAnswer(body: collectionDocument(store.collection(id)!), applied: true)
    }

    private func update(_ parameters: Parameters, user: MockCredentials, store: inout MockStore) throws(APIFailure) -> EndpointAnswer {
        let id = try parameters.required("id")
        let (name, description, url) = try details(parameters)
        _ = try owned(id, by: user, in: store)
        store.update(id, name: name, description: description, url: url)
        return EndpointAnswer(body: collectionDocument(store.collection(id)!), applied: true)
    }

    /// name (required, <= 25 characters), description (<= 160), url; omitted ones become "".
    private func details(_ parameters: Parameters) throws(APIFailure) -> (String, String, String) {
        let name = try parameters.required("name")
        guard name.count <= 25 else { throw APIFailure(status: 400, code: 44, message: "name parameter is invalid: at most 25 characters.") }
        let description = parameters["description"] ?? ""
        guard description.count <= 160 else {
            throw APIFailure(status: 400, code: 44, message: "description parameter is invalid: at most 160 characters.")
        }
        return (name, description, parameters["url"] ?? "")
    }

    /// The collection, if it exists (else 404/34) and `user` owns it (else 403/220).
    private func owned(_ id: String, by user: MockCredentials, in store: MockStore) throws(APIFailure) -> MockStore.Collection {
        guard let collection = store.collection(id) else { throw .notFound }
        guard collection.userID == user.userID else { throw .notOwner }
        return collection
    }

    // MARK: Shapes

    /// `feature_context` is opaque; the mock sends the same one for every entry.
    static let featureContext = "HBgGY3VzdG9tFoCAsMOh9ovyDQAA"

    /// The change envelope. Errors are listed by reason, then tweet id, then op: not the
    /// request's order, as api.md warns.
    private func envelope(_ results: [(op: String, tweet: String, outcome: ChangeOutcome)]) -> EndpointAnswer {
        var errors: [(op: String, tweet: String, reason: String)] = []
        var applied = false
        for result in results {
            switch result.outcome {
            case .applied: applied = true
            case .refused(let reason): errors.append((result.op, result.tweet, reason))
            }
        }
        guard !errors.isEmpty else { return EndpointAnswer(body: Self.emptyEnvelope, applied: applied) }
        errors.sort { ($0.reason, $0.tweet, $0.op) < ($1.reason, $1.tweet, $1.op) }
        let list: [JSONValue] = errors.map { error in
            .object([
                ("change", .object([("op", .string(error.op)), ("tweet_id", .string(error.tweet))])),
                ("reason", .string(error.reason)),
            ])
        }
        return EndpointAnswer(body: .object([("objects", .object([])), ("response", .object([("errors", .array(list))]))]),
                              applied: applied)
    }

    /// The answer of show, create and update.
    func collectionDocument(_ collection: MockStore.Collection) -> JSONValue {
        .object([
            ("objects", .object([
                ("timelines", .object([(collection.id, timelineObject(collection))])),
                ("users", usersObject([collection.userID])),
            ])),
            ("response", .object([("timeline_id", .string(collection.id))])),
        ])
    }

    func timelineObject(_ collection: MockStore.Collection) -> JSONValue {
        .object([
            ("name", .string(collection.name)),
            ("user_id", .string(collection.userID)),
            ("collection_url", .string("https://twitter.com/\(screenName(collection.userID))/timelines/\(collection.id.dropFirst(7))")),
            ("description", .string(collection.description)),
            ("url", .string(collection.url)),
            ("visibility", .string("public")),
            ("timeline_order", .string(collection.order.rawValue)),
            ("collection_type", .string("user")),
        ])
    }

    private func usersObject(_ ids: [String]) -> JSONValue {
        .object(ids.map { id in
            (id, .object([("id_str", .string(id)), ("screen_name", .string(screenName(id))), ("name", .string(screenName(id)))]))
        })
    }

    private func screenName(_ userID: String) -> String {
        credentials.user(id: userID)?.screenName ?? "user\(userID)"
    }
}
