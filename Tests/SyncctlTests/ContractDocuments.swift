/// The `--json` documents of `syncctl.md`, with the contract's types.
struct QueuedDocument: Decodable {
    struct Queued: Decodable, Equatable {
        let id: Int
        let op: String
        let collection_id: String
        let tweet_id: String
    }
    let queued: [Queued]
}

struct StatusDocument: Decodable {
    struct Collection: Decodable {
        let id: String
        let entries: Int
        let pending: Int
        let in_flight: Int
        let failed: Int
        let last_pulled_at: String?
    }
    let pending: Int
    let in_flight: Int
    let failed: Int
    let oldest_pending_at: String?
    let next_attempt_at: String?
    let rate_limited_until: String?
    let last_flush_at: String?
    let collections: [Collection]

    static let keys: Set<String> = ["pending", "in_flight", "failed", "oldest_pending_at", "next_attempt_at",
                                    "rate_limited_until", "last_flush_at", "collections"]
    static let collectionKeys: Set<String> = ["id", "entries", "pending", "in_flight", "failed", "last_pulled_at"]
}

struct OutboxDocument: Decodable {
    struct Op: Decodable {
        let id: Int
        let op: String
        let collection_id: String
        let tweet_id: String
        let state: String
        let attempts: Int
        let created_at: String
        let next_attempt_at: String?
        let last_error: String?
    }
    let ops: [Op]

    static let opKeys: Set<String> = ["id", "op", "collection_id", "tweet_id", "state", "attempts", "created_at",
                                      "next_attempt_at", "last_error"]
}

struct EntriesDocument: Decodable {
    struct Entry: Decodable, Equatable {
        let tweet_id: String
        let sort_index: String?
        let pending: String?
    }
    let collection_id: String
    let entries: [Entry]
}

struct LogDocument: Decodable {
    struct Event: Decodable {
        let id: Int
        let at: String
        let event: String
        let collection_id: String
        let tweet_id: String?
        let winner: String?
        let detail: String
    }
    let events: [Event]

    static let eventKeys: Set<String> = ["id", "at", "event", "collection_id", "tweet_id", "winner", "detail"]
}

struct ErrorDocument: Decodable {
    struct Body: Decodable {
        let exit_code: Int
        let message: String
    }
    let error: Body
}
