/// A collection's timeline object (`objects.timelines[ID]`).
public struct Timeline: Sendable, Hashable, Decodable {
    public let name: String
    public let description: String
    public let url: String
    public let userID: String?
    public let collectionURL: String?
    public let timelineOrder: String?
    public let visibility: String?
    public let collectionType: String?

    enum CodingKeys: String, CodingKey {
        case name, description, url, visibility
        case userID = "user_id"
        case collectionURL = "collection_url"
        case timelineOrder = "timeline_order"
        case collectionType = "collection_type"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decodeIfPresent(String.self, forKey: .name) ?? ""
        description = try container.decodeIfPresent(String.self, forKey: .description) ?? ""
        url = try container.decodeIfPresent(String.self, forKey: .url) ?? ""
        userID = try container.decodeIfPresent(String.self, forKey: .userID)
        collectionURL = try container.decodeIfPresent(String.self, forKey: .collectionURL)
        timelineOrder = try container.decodeIfPresent(String.self, forKey: .timelineOrder)
        visibility = try container.decodeIfPresent(String.self, forKey: .visibility)
        collectionType = try container.decodeIfPresent(String.self, forKey: .collectionType)
    }
}

/// The answer of `show`, `create` and `update`: a collection id and its timeline object.
public struct CollectionInfo: Sendable, Hashable, Decodable {
    public let timelineID: String
    public let timeline: Timeline?

    private struct Objects: Decodable { let timelines: [String: Timeline]? }
    private struct Response: Decodable {
        let timeline_id: String
    }
    private enum CodingKeys: String, CodingKey { case objects, response }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        timelineID = try container.decode(Response.self, forKey: .response).timeline_id
        timeline = try container.decodeIfPresent(Objects.self, forKey: .objects)?.timelines?[timelineID]
    }
}

/// One page of `collections/entries`.
public struct EntriesPage: Sendable, Hashable, Decodable {
    /// One entry: a tweet id and its opaque, integer-valued `sort_index`.
    public struct Entry: Sendable, Hashable {
        public let tweet: TweetID
        /// Opaque, compared as an integer: decimal digits (checked when decoded).
        public let sortIndex: String
        public let featureContext: String?

        public init(tweet: TweetID, sortIndex: String, featureContext: String? = nil) {
            self.tweet = tweet
            self.sortIndex = sortIndex
            self.featureContext = featureContext
        }

        /// The tweet id as the API wrote it.
        public var tweetID: String { tweet.rawValue }
    }

    /// Where the page sits: pass ``minPosition`` as the next request's `max_position`.
    public struct Position: Sendable, Hashable, Decodable {
        public let maxPosition: String?
        public let minPosition: String?
        public let wasTruncated: Bool

        enum CodingKeys: String, CodingKey {
            case maxPosition = "max_position"
            case minPosition = "min_position"
            case wasTruncated = "was_truncated"
        }

        public init(maxPosition: String?, minPosition: String?, wasTruncated: Bool) {
            self.maxPosition = maxPosition
            self.minPosition = minPosition
            self.wasTruncated = wasTruncated
        }
    }

    public let timelineID: String
    public let timeline: Timeline?
    public let entries: [Entry]
    public let position: Position

    private struct RawEntry: Decodable {
        struct Tweet: Decodable {
            let id: String
            let sort_index: String
        }
        let tweet: Tweet
        let feature_context: String?
    }
    private struct Response: Decodable {
        let timeline_id: String
        let timeline: [RawEntry]?
        let position: Position
    }
    private struct Objects: Decodable { let timelines: [String: Timeline]? }
    private enum CodingKeys: String, CodingKey { case objects, response }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let response = try container.decode(Response.self, forKey: .response)
        timelineID = response.timeline_id
        timeline = try container.decodeIfPresent(Objects.self, forKey: .objects)?.timelines?[response.timeline_id]
        entries = try (response.timeline ?? []).enumerated().map { index, raw in
            // A tweet id or sort_index that is not a decimal number is a malformed answer, never stored.
            guard TweetID.isCanonical(raw.tweet.id), !raw.tweet.sort_index.isEmpty,
                  raw.tweet.sort_index.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .response, in: container,
                    debugDescription: "entry \(index) has a malformed tweet id or sort_index")
            }
            return Entry(tweet: TweetID(trusted: raw.tweet.id), sortIndex: raw.tweet.sort_index, featureContext: raw.feature_context)
        }
        position = response.position
    }
}

/// One page of `collections/list`.
public struct CollectionList: Sendable, Hashable, Decodable {
    public let timelineIDs: [String]
    public let timelines: [String: Timeline]
    /// Pass as `cursor` for the next page; nil or "0"-like values mean no more pages.
    public let nextCursor: String?

    private struct Result: Decodable { let timeline_id: String }
    private struct Cursors: Decodable { let next_cursor: String? }
    private struct Response: Decodable {
        let results: [Result]?
        let cursors: Cursors?
    }
    private struct Objects: Decodable { let timelines: [String: Timeline]? }
    private enum CodingKeys: String, CodingKey { case objects, response }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let response = try container.decode(Response.self, forKey: .response)
        timelineIDs = (response.results ?? []).map(\.timeline_id)
        timelines = try container.decodeIfPresent(Objects.self, forKey: .objects)?.timelines ?? [:]
        nextCursor = response.cursors?.next_cursor
    }
}

/// An entry change of `entries/curate` (and the single-change endpoints).
public struct EntryChange: Sendable, Hashable, Codable {
    public enum Op: String, Sendable, Hashable, Codable {
        case add
        case remove
    }
    public let op: Op
    public let tweetID: String

    enum CodingKeys: String, CodingKey {
        case op
        case tweetID = "tweet_id"
    }

    public init(op: Op, tweetID: String) {
        self.op = op
        self.tweetID = tweetID
    }

    /// The change of `tweet`.
    public init(op: Op, tweet: TweetID) {
        self.init(op: op, tweetID: tweet.rawValue)
    }
}

/// What the server said about each change of a request.
public enum ChangeOutcome: Sendable, Hashable {
    /// Not in `errors`: applied.
    case applied
    /// In `errors` with this reason (`not_found`, `duplicate`, or any other string, kept as is).
    case refused(reason: String)
}

/// The change envelope `{"objects":{},"response":{"errors":[...]}}`, matched to the request's
/// changes by (op, tweet id) whatever the order of `errors`.
public struct ChangeResult: Sendable, Hashable {
    /// One outcome per change of the request, in the request's order.
    public let outcomes: [(change: EntryChange, outcome: ChangeOutcome)]
    /// Errors that name no change of the request (kept for diagnosis, ignored otherwise).
    public let unmatched: [(change: EntryChange?, reason: String)]
    /// The answer's `x-rate-limit-*` headers, when it had them.
    public let rateLimit: RateLimit?

    public static func == (a: ChangeResult, b: ChangeResult) -> Bool {
        a.outcomes.elementsEqual(b.outcomes) { $0.change == $1.change && $0.outcome == $1.outcome }
            && a.unmatched.elementsEqual(b.unmatched) { $0.change == $1.change && $0.reason == $1.reason }
    }

    public func hash(into hasher: inout Hasher) {
        for (change, outcome) in outcomes {
            hasher.combine(change)
            hasher.combine(outcome)
        }
    }

    /// The outcome of `change`, or nil if it was not in the request.
    public func outcome(for change: EntryChange) -> ChangeOutcome? {
        outcomes.first { $0.change == change }?.outcome
    }

    struct Envelope: Decodable {
        struct Response: Decodable {
            struct ChangeError: Decodable {
                struct Change: Decodable {
                    let op: String?
                    let tweet_id: String?
                }
                let change: Change?
                let reason: String?
            }
            let errors: [ChangeError]?
        }
        let response: Response
    }

    /// Matches the envelope's errors to `changes`.
    init(envelope: Envelope, changes: [EntryChange], rateLimit: RateLimit? = nil) {
        var refused: [EntryChange: String] = [:]
        var unmatched: [(EntryChange?, String)] = []
        let requested = Set(changes)
        for error in envelope.response.errors ?? [] {
            let reason = error.reason ?? "unknown"
            if let op = error.change?.op.flatMap(EntryChange.Op.init(rawValue:)), let tweet = error.change?.tweet_id,
               requested.contains(EntryChange(op: op, tweetID: tweet)) {
                refused[EntryChange(op: op, tweetID: tweet)] = reason
            } else {
                unmatched.append((error.change.flatMap { change in
                    change.op.flatMap(EntryChange.Op.init(rawValue:)).flatMap { op in change.tweet_id.map { EntryChange(op: op, tweetID: $0) } }
                }, reason))
            }
        }
        outcomes = changes.map { ($0, refused[$0].map { .refused(reason: $0) } ?? .applied) }
        self.unmatched = unmatched
        self.rateLimit = rateLimit
    }
}

/// `{"destroyed":true}`.
struct DestroyAnswer: Decodable {
    let destroyed: Bool
}
