@testable import CollectionsMock
import Testing

/// The state rules as a value type, without a server.
@Suite struct StoreTests {
    static func store(capacity: Int = 5000, tweets: [UInt64] = []) -> (MockStore, String) {
        var store = MockStore(capacity: capacity)
        let id = store.create(name: "c", description: "", url: "", order: .curationReverseChron, userID: "1")
        for tweet in tweets { _ = store.add(id, tweet: tweet) }
        return (store, id)
    }

    static func order(_ store: MockStore, _ id: String) -> [String] {
        store.orderedEntries(id)?.map(\.tweetID) ?? []
    }

    @Test func identifiers() {
        #expect(Identifier.tweet("1") == 1)
        #expect(Identifier.tweet("18446744073709551615") == UInt64.max)
        for bad in ["0", "01", "18446744073709551616", "", "-1", "+1", "1 ", "１", "123456789012345678901"] {
            #expect(Identifier.tweet(bad) == nil, "\(bad)")
        }
        #expect(Identifier.isCollection("custom-388061495298244609"))
        for bad in ["custom-", "custom-x", "Custom-1", "custom-123456789012345678901", "1"] {
            #expect(!Identifier.isCollection(bad), "\(bad)")
        }
    }

    @Test func manyMovesIntoOneGapRenumber() {
        var (store, id) = Self.store(tweets: [1, 2, 3])  // 3 2 1
        // Alternate moves squeeze one gap until it must be renumbered; the order stays right.
        for round in 0..<60 {
            let (tweet, anchor): (UInt64, UInt64) = round.isMultiple(of: 2) ? (1, 3) : (3, 1)
            #expect(store.move(id, tweet: tweet, relativeTo: anchor, above: false) == .applied)
        }
        #expect(Self.order(store, id) == ["1", "3", "2"])
        for _ in 0..<40 {
            #expect(store.add(id, tweet: 9, relativeTo: 2, above: true) == .applied)
            #expect(store.remove(id, tweet: 9) == .applied)
        }
        #expect(store.add(id, tweet: 10, relativeTo: 2, above: false) == .applied)
        #expect(Self.order(store, id).suffix(2) == ["2", "10"])
        let positions = store.orderedEntries(id)!.compactMap { $0.sortIndex.flatMap(UInt64.init) }
        #expect(positions == positions.sorted(by: >) && Set(positions).count == positions.count)
        #expect(store.add(id, tweet: 11) == .applied)
        #expect(Self.order(store, id).first == "11", "a plain add still lands on top")
    }

    @Test func capacityCountsAddsNotMoves() {
        var (store, id) = Self.store(capacity: 3, tweets: [1, 2, 3])
        #expect(store.move(id, tweet: 1, relativeTo: 3, above: true) == .applied)
        #expect(store.add(id, tweet: 4) == .applied)
        #expect(Set(Self.order(store, id)) == ["2", "3", "4"])
        for tweet in UInt64(5)...2000 { _ = store.add(id, tweet: tweet) }
        #expect(Self.order(store, id) == ["2000", "1999", "1998"])
        #expect(store.collection(id)?.addedOrder.count ?? 0 < 2000, "the added-order log is compacted")
    }

    @Test func seedingValidatesFirstAndKeepsSortIndexes() throws {
        var store = MockStore(capacity: 10)
        #expect(throws: MockError.self) {
            try store.seed([MockCollection(tweetIDs: ["1"]), MockCollection(tweetIDs: ["1", "x"])], defaultUserID: "1")
        }
        #expect(store.collections.isEmpty, "nothing seeded when one collection is bad")
        let ids = try store.seed([MockCollection(id: "custom-1", entries: [MockEntry(tweetID: "5", sortIndex: "999999999999999"),
                                                                         MockEntry(tweetID: "6")])], defaultUserID: "7")
        #expect(ids == ["custom-1"])
        #expect(store.collection("custom-1")?.userID == "7")
        #expect(store.orderedEntries("custom-1") == [MockEntry(tweetID: "6", sortIndex: store.orderedEntries("custom-1")![0].sortIndex),
                                                     MockEntry(tweetID: "5", sortIndex: "999999999999999")])
        // A generated id never collides with a seeded one.
        _ = try store.seed([MockCollection(id: "custom-1000000000000000002")], defaultUserID: "7")
        let created = store.create(name: "n", description: "", url: "", order: .tweetChron, userID: "7")
        let again = store.create(name: "n", description: "", url: "", order: .tweetChron, userID: "7")
        #expect(Set([created, again, "custom-1000000000000000002"]).count == 3)
    }
}
