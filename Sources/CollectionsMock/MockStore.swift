/// The order in which a collection's entries are shown (api.md, `timeline_order`).
public enum MockTimelineOrder: String, Sendable, Hashable, CaseIterable, Codable {
    /// Newest curated first (the default): `sort_index` increases with curation time; the only
    /// order `entries/move` and `relative_to` work in.
    case curationReverseChron = "curation_reverse_chron"
    /// Oldest tweet first.
    case tweetChron = "tweet_chron"
    /// Newest tweet first.
    case tweetReverseChron = "tweet_reverse_chron"
}

/// One entry of a collection: a tweet and its `sort_index`.
public struct MockEntry: Sendable, Hashable {
    /// The tweet id (a decimal string).
    public var tweetID: String
    /// The entry's `sort_index` (a decimal string). When seeding, `nil` lets the mock assign one
    /// (entries seeded in a list get increasing ones, like successive adds).
    public var sortIndex: String?

    /// An entry for `tweetID`, optionally at `sortIndex`.
    public init(tweetID: String, sortIndex: String? = nil) {
        self.tweetID = tweetID
        self.sortIndex = sortIndex
    }
}

/// A collection as the mock holds it, for seeding and for reading the state.
public struct MockCollection: Sendable, Hashable {
    /// `custom-<digits>`; `nil` when seeding lets the mock choose one.
    public var id: String?
    /// At most 25 characters.
    public var name: String
    /// At most 160 characters; "" when unset.
    public var description: String
    /// "" when unset.
    public var url: String
    /// How entries are ordered.
    public var timelineOrder: MockTimelineOrder
    /// The owner's user id; `nil` when seeding means the first configured user.
    public var userID: String?
    /// The entries, oldest-added first (the order capacity eviction follows).
    public var entries: [MockEntry]

    /// A collection to seed.
    public init(id: String? = nil, name: String = "Mock collection", description: String = "", url: String = "",
                timelineOrder: MockTimelineOrder = .curationReverseChron, userID: String? = nil,
                entries: [MockEntry] = []) {
        self.id = id
        self.name = name
        self.description = description
        self.url = url
        self.timelineOrder = timelineOrder
        self.userID = userID
        self.entries = entries
    }

    /// A collection to seed whose entries are `tweetIDs`, oldest-added first.
    public init(id: String? = nil, name: String = "Mock collection", timelineOrder: MockTimelineOrder = .curationReverseChron,
                userID: String? = nil, tweetIDs: [String]) {
        self.init(id: id, name: name, timelineOrder: timelineOrder, userID: userID,
                  entries: tweetIDs.map { MockEntry(tweetID: $0) })
    }
}

/// The mock's whole remote state: collections and the tweets marked deleted or protected.
public struct MockSnapshot: Sendable, Hashable {
    /// Every collection, oldest-created first.
    public var collections: [MockCollection]
    /// Tweets marked deleted (add fails with `not_found`; hidden from entries pages).
    public var deletedTweets: [String]
    /// Tweets marked protected (same effects as deleted).
    public var protectedTweets: [String]

    /// A state to seed.
    public init(collections: [MockCollection] = [], deletedTweets: [String] = [], protectedTweets: [String] = []) {
        self.collections = collections
        self.deletedTweets = deletedTweets
        self.protectedTweets = protectedTweets
    }
}

/// Parsing of the API's identifiers (semantics.md).
enum Identifier {
    /// `^[1-9][0-9]{0,19}$` below 2^64, as a number; nil otherwise.
    static func tweet(_ text: some StringProtocol) -> UInt64? {
        let utf8 = text.utf8
        guard let first = utf8.first, first >= UInt8(ascii: "1"), first <= UInt8(ascii: "9"), utf8.count <= 20,
              utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return UInt64(text)
    }

    /// Whether `text` matches `^custom-[0-9]{1,20}$`.
    static func isCollection(_ text: some StringProtocol) -> Bool {
        guard text.hasPrefix("custom-") else { return false }
        let digits = text.utf8.dropFirst(7)
        return (1...20).contains(digits.count) && digits.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// A non-negative decimal integer (a position or cursor).
    static func position(_ text: some StringProtocol) -> UInt64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return UInt64(text)
    }
}

/// What happened to one change of an add, remove, move or curate request.
enum ChangeOutcome: Sendable, Hashable {
    case applied
    case refused(String)
}

/// The collections and their entries: every rule of api.md about state, as a value type.
struct MockStore: Sendable {
    struct Entry: Sendable, Hashable {
        var position: UInt64
        /// When the entry was added (a store-wide counter): capacity evicts the smallest.
        var added: UInt64
    }

    struct Collection: Sendable {
        let id: String
        /// Creation order, store-wide (list.json's order and cursor).
        let number: UInt64
        var name: String
        var description: String
        var url: String
        let order: MockTimelineOrder
        let userID: String
        var entries: [UInt64: Entry] = [:]
        var index = EntryIndex()
        /// Tweets in the order they were added; stale pairs (removed, or re-added later) are
        /// skipped when evicting.
        var addedOrder: [(tweet: UInt64, added: UInt64)] = []
        var addedHead = 0
    }

    let capacity: Int
    private(set) var collections: [String: Collection] = [:]
    private(set) var deleted: Set<UInt64> = []
    private(set) var protected: Set<UInt64> = []
    private var nextCollectionNumber: UInt64 = 1
    private var curationCounter: UInt64 = 0
    private var addCounter: UInt64 = 0

    /// Positions of `curation_reverse_chron` entries are spaced this far apart so that moves can
    /// land between neighbours without renumbering.
    static let positionStep: UInt64 = 1 << 20
    /// Makes fresh positions look like Twitter's large `sort_index` values.
    static let positionBase: UInt64 = 1_000_000

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    // MARK: Tweets

    /// Whether a tweet can be seen and added (not deleted, not protected).
    func isVisible(_ tweet: UInt64) -> Bool {
        !deleted.contains(tweet) && !protected.contains(tweet)
    }

    mutating func markDeleted(_ tweets: [UInt64]) { deleted.formUnion(tweets) }
    mutating func markProtected(_ tweets: [UInt64]) { protected.formUnion(tweets) }
    mutating func restore(_ tweets: [UInt64]) {
        deleted.subtract(tweets)
        protected.subtract(tweets)
    }

    // MARK: Collections

    func collection(_ id: String) -> Collection? { collections[id] }

    /// Creates a collection and returns its id.
    mutating func create(name: String, description: String, url: String, order: MockTimelineOrder, userID: String,
                         id requested: String? = nil) -> String {
        var number = nextCollectionNumber
        while requested == nil, collections["custom-\(1_000_000_000_000_000_000 + number)"] != nil { number += 1 }
        nextCollectionNumber = number + 1
        let id = requested ?? "custom-\(1_000_000_000_000_000_000 + number)"
        collections[id] = Collection(id: id, number: number, name: name, description: description, url: url,
                                     order: order, userID: userID)
        return id
    }

    /// Replaces name, description and url (no partial updates).
    mutating func update(_ id: String, name: String, description: String, url: String) {
        collections[id]?.name = name
        collections[id]?.description = description
        collections[id]?.url = url
    }

    /// Removes a collection; false if there was none.
    @discardableResult
    mutating func destroy(_ id: String) -> Bool {
        collections.removeValue(forKey: id) != nil
    }

    /// The collections of `userID` (or all, when nil) that contain `tweet` (when given), newest
    /// first, after `cursor` (a creation number), at most `count`; and whether more follow.
    func list(userID: String?, containing tweet: UInt64?, after cursor: UInt64?, count: Int) -> (ids: [Collection], more: Bool) {
        let matching = collections.values
            .filter { (userID == nil || $0.userID == userID) && (tweet == nil || $0.entries[tweet!] != nil) }
            .filter { cursor == nil || $0.number < cursor! }
            .sorted { $0.number > $1.number }
        return (Array(matching.prefix(count)), matching.count > count)
    }

    // MARK: Entries

    /// Adds `tweet` at the top (or above/below `relativeTo` in `curation_reverse_chron`),
    /// evicting the oldest-added entry past capacity.
    mutating func add(_ id: String, tweet: UInt64, relativeTo: UInt64? = nil, above: Bool = true) -> ChangeOutcome {
        guard var collection = collections.removeValue(forKey: id) else { return .refused("not_found") }
        defer { collections[id] = collection }
        guard isVisible(tweet) else { return .refused("not_found") }
        guard collection.entries[tweet] == nil else { return .refused("duplicate") }
        let position: UInt64
        switch collection.order {
        case .curationReverseChron:
            if let relativeTo, relativeTo != tweet {
                guard let anchor = collection.entries[relativeTo] else { return .refused("not_found") }
                position = placement(in: &collection, relativeTo: anchor.position, above: above)
            } else {
                position = freshPosition()
            }
        case .tweetReverseChron: position = tweet
        case .tweetChron: position = UInt64.max - tweet
        }
        insert(into: &collection, tweet: tweet, position: position)
        return .applied
    }

    /// Removes `tweet`; `not_found` when absent.
    mutating func remove(_ id: String, tweet: UInt64) -> ChangeOutcome {
        guard var collection = collections.removeValue(forKey: id) else { return .refused("not_found") }
        defer { collections[id] = collection }
        guard let entry = collection.entries.removeValue(forKey: tweet) else { return .refused("not_found") }
        collection.index.remove(position: entry.position)
        return .applied
    }

    /// Moves `tweet` just above (or below) `relativeTo`; `curation_reverse_chron` only.
    mutating func move(_ id: String, tweet: UInt64, relativeTo: UInt64, above: Bool) -> ChangeOutcome {
        guard var collection = collections.removeValue(forKey: id) else { return .refused("not_found") }
        defer { collections[id] = collection }
        guard collection.order == .curationReverseChron, let entry = collection.entries[tweet],
              let anchor = collection.entries[relativeTo] else { return .refused("not_found") }
        guard tweet != relativeTo else { return .applied }
        collection.index.remove(position: entry.position)
        collection.entries[tweet] = nil
        let position = placement(in: &collection, relativeTo: anchor.position, above: above)
        collection.entries[tweet] = Entry(position: position, added: entry.added)
        collection.index.insert(position: position, tweet: tweet)
        return .applied
    }

    /// The entries of a collection in page order (highest position first).
    func orderedEntries(_ id: String) -> [MockEntry]? {
        collections[id]?.index.descending.map { MockEntry(tweetID: String($0.tweet), sortIndex: String($0.position)) }
    }

    /// An entries page (api.md "Entries page").
    func page(_ id: String, maxPosition: UInt64?, minPosition: UInt64?, count: Int) -> EntryIndex.Page? {
        collections[id]?.index.page(maxPosition: maxPosition, minPosition: minPosition, count: count, isVisible: isVisible)
    }

    private mutating func insert(into collection: inout Collection, tweet: UInt64, position: UInt64) {
        addCounter += 1
        collection.entries[tweet] = Entry(position: position, added: addCounter)
        collection.index.insert(position: position, tweet: tweet)
        collection.addedOrder.append((tweet, addCounter))
        while collection.entries.count > capacity { evictOldest(&collection) }
    }

    private func evictOldest(_ collection: inout Collection) {
        while collection.addedHead < collection.addedOrder.count {
            let (tweet, added) = collection.addedOrder[collection.addedHead]
            collection.addedHead += 1
            if let entry = collection.entries[tweet], entry.added == added {
                collection.entries[tweet] = nil
                collection.index.remove(position: entry.position)
                break
            }
        }
        if collection.addedHead > 1024, collection.addedHead * 2 > collection.addedOrder.count {
            collection.addedOrder.removeFirst(collection.addedHead)
            collection.addedHead = 0
        }
    }

    /// A position above every position handed out so far.
    private mutating func freshPosition() -> UInt64 {
        curationCounter += 1
        return (Self.positionBase + curationCounter) * Self.positionStep
    }

    /// A free position just above or below `anchor` (renumbering the collection when the gap is
    /// used up).
    private mutating func placement(in collection: inout Collection, relativeTo anchor: UInt64, above: Bool) -> UInt64 {
        var anchor = anchor
        for _ in 0..<2 {
            if above {
                guard let upper = collection.index.nextAbove(anchor) else { return freshPosition() }
                if upper.position - anchor >= 2 { return anchor + (upper.position - anchor) / 2 }
            } else {
                let lower = collection.index.nextBelow(anchor)?.position ?? 0
                if anchor - lower >= 2 { return lower + (anchor - lower) / 2 }
            }
            anchor = renumber(&collection, tracking: anchor)
        }
        preconditionFailure("no room after renumbering")
    }

    /// Gives every entry a fresh, well-spaced position in the same order; returns the new
    /// position of the entry that was at `tracking`.
    private mutating func renumber(_ collection: inout Collection, tracking: UInt64) -> UInt64 {
        var tracked = tracking
        var index = EntryIndex()
        for slot in collection.index.slots where slot.tweet != 0 {
            let position = freshPosition()
            if slot.position == tracking { tracked = position }
            collection.entries[slot.tweet]?.position = position
            index.insert(position: position, tweet: slot.tweet)
        }
        collection.index = index
        return tracked
    }

    // MARK: Seeding and reading

    /// Adds (or replaces, by id) collections. Validates everything before changing anything.
    mutating func seed(_ seeds: [MockCollection], defaultUserID: String) throws(MockError) -> [String] {
        for seed in seeds {
            if let id = seed.id, !Identifier.isCollection(id) { throw MockError("collection id \(id) is not custom-<digits>") }
            if let userID = seed.userID, Identifier.tweet(userID) == nil { throw MockError("user id \(userID) is not a decimal id") }
            var seen = Set<UInt64>()
            for entry in seed.entries {
                guard let tweet = Identifier.tweet(entry.tweetID) else { throw MockError("tweet id \(entry.tweetID) is not valid") }
                guard seen.insert(tweet).inserted else { throw MockError("tweet \(entry.tweetID) is twice in one collection") }
                if let sortIndex = entry.sortIndex, Identifier.position(sortIndex) == nil {
                    throw MockError("sort_index \(sortIndex) is not a non-negative integer")
                }
            }
            if seed.timelineOrder == .curationReverseChron {
                let positions = seed.entries.compactMap { $0.sortIndex.flatMap(Identifier.position) }
                if Set(positions).count != positions.count { throw MockError("two entries share a sort_index") }
            }
        }
        var ids: [String] = []
        for seed in seeds {
            if let id = seed.id { collections[id] = nil }
            let id = create(name: seed.name, description: seed.description, url: seed.url, order: seed.timelineOrder,
                            userID: seed.userID ?? defaultUserID, id: seed.id)
            var collection = collections.removeValue(forKey: id)!
            if seed.timelineOrder == .curationReverseChron {
                // Fresh positions must land above every given one.
                for given in seed.entries.compactMap({ $0.sortIndex.flatMap(Identifier.position) }) {
                    let counter = given / Self.positionStep
                    if counter > Self.positionBase { curationCounter = max(curationCounter, counter - Self.positionBase) }
                }
            }
            for entry in seed.entries {
                let tweet = Identifier.tweet(entry.tweetID)!
                let position: UInt64
                switch seed.timelineOrder {
                case .curationReverseChron:
                    position = entry.sortIndex.flatMap(Identifier.position) ?? freshPosition()
                case .tweetReverseChron: position = tweet
                case .tweetChron: position = UInt64.max - tweet
                }
                insert(into: &collection, tweet: tweet, position: position)
            }
            collections[id] = collection
            ids.append(id)
        }
        return ids
    }

    /// The whole state, collections oldest-created first, entries oldest-added first.
    var snapshot: MockSnapshot {
        MockSnapshot(
            collections: collections.values.sorted { $0.number < $1.number }.map { collection in
                MockCollection(
                    id: collection.id, name: collection.name, description: collection.description, url: collection.url,
                    timelineOrder: collection.order, userID: collection.userID,
                    entries: collection.entries.sorted { $0.value.added < $1.value.added }
                        .map { MockEntry(tweetID: String($0.key), sortIndex: String($0.value.position)) })
            },
            deletedTweets: deleted.sorted().map { String($0) },
            protectedTweets: protected.sorted().map { String($0) })
    }
}
