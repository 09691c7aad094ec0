@testable import CollectionsMock
import Testing

/// Position paging: the pure function, then a 1,000-entry collection over HTTP.
@Suite struct PagingTests {
    /// Positions 10, 20, ..., 100 holding tweets 1...10; tweet 4 (position 40) is a tombstone.
    static let slots: [EntryIndex.Slot] = (1...10).map { EntryIndex.Slot(position: UInt64($0 * 10), tweet: $0 == 4 ? 0 : UInt64($0)) }

    static func page(max: UInt64? = nil, min: UInt64? = nil, count: Int, hidden: Set<UInt64> = []) -> ([UInt64], Bool) {
        let page = EntryIndex.page(slots: slots, maxPosition: max, minPosition: min, count: count, isVisible: { !hidden.contains($0) })
        return (page.entries.map(\.tweet), page.wasTruncated)
    }

    @Test func pageRules() {
        #expect(Self.page(count: 3) == ([10, 9, 8], true))
        #expect(Self.page(max: 80, count: 3) == ([8, 7, 6], true), "max_position is inclusive")
        #expect(Self.page(max: 79, count: 3) == ([7, 6, 5], true))
        #expect(Self.page(max: 50, count: 3) == ([5, 3, 2], true), "tombstones are skipped")
        #expect(Self.page(max: 30, count: 3) == ([3, 2, 1], false), "nothing left below")
        #expect(Self.page(max: 5, count: 3) == ([], false))
        #expect(Self.page(min: 70, count: 5) == ([10, 9, 8], false), "min_position is exclusive")
        #expect(Self.page(min: 70, count: 2) == ([10, 9], true))
        #expect(Self.page(max: 90, min: 60, count: 10) == ([9, 8, 7], false))
        #expect(Self.page(count: 200) == ([10, 9, 8, 7, 6, 5, 3, 2, 1], false))
        #expect(Self.page(count: 2, hidden: [10, 9]) == ([8, 7], true), "hidden tweets do not count")
        #expect(Self.page(max: 20, count: 1, hidden: [1]) == ([2], false), "hidden tweets do not make a page truncated")
    }

    @Test func indexInsertRemoveCompact() {
        var index = EntryIndex()
        for position in stride(from: UInt64(2), through: 400, by: 2) { index.insert(position: position, tweet: position) }
        index.insert(position: 3, tweet: 3)
        #expect(index.count == 201)
        for position in stride(from: UInt64(2), through: 300, by: 2) { index.remove(position: position) }
        index.remove(position: 999)
        #expect(index.count == 51)
        #expect(index.slots.count < 201, "tombstones were compacted")
        #expect(index.descending.first?.tweet == 400 && index.descending.last?.tweet == 3)
        #expect(index.nextAbove(3)?.position == 302)
        #expect(index.nextBelow(302)?.position == 3)
        index.insert(position: 4, tweet: 4)
        #expect(index.descending.suffix(2).map(\.tweet) == [4, 3])
    }

    /// Every entry of a 1,000-entry collection exactly once (after de-duplicating the documented
    /// boundary repeat), whatever the page size.
    @Test(arguments: [200, 37, 7])
    func pagingReachesEveryEntryOnce(count: Int) async throws {
        try await withHarness { h in
            let all = tweets(1000, from: 1_450_000_000_000_000_000)
            let id = try h.server.createCollection(tweetIDs: all)
            let (pages, sortIndexes) = try await h.allPages(id, count: count)
            let flat = pages.flatMap { $0 }
            #expect(Set(flat) == Set(all))
            #expect(flat.uniqued() == all.reversed(), "newest curated first, in one descending sweep")
            // The only repeats are page boundaries: the first entry of a page is the last of the previous one.
            for (previous, page) in zip(pages, pages.dropFirst()) {
                #expect(page.first == previous.last)
                #expect(Set(page.dropFirst()).isDisjoint(with: previous))
            }
            #expect(flat.count == all.count + pages.count - 1)
            let expectedPages = Int((Double(999) / Double(count - 1)).rounded(.up))
            #expect(pages.count == expectedPages)
            let indexes = flat.uniqued().compactMap { sortIndexes[$0].flatMap(UInt64.init) }
            #expect(indexes.count == 1000 && indexes == indexes.sorted(by: >))
        }
    }

    @Test func minPositionFetchesOnlyNewerEntries() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection(tweetIDs: tweets(10, from: 100))
            let first = try await h.get(.entries, [("id", id), ("count", "3")])
            let top = try #require(first.json["response"]["position"]["max_position"].string)
            #expect(first.json["response"]["position"]["min_position"].string != nil)
            #expect(try await h.curate(id, [("add", "500"), ("add", "501")]).changeErrors.isEmpty)
            let newer = try await h.get(.entries, [("id", id), ("min_position", top)])
            #expect(newer.json["response"]["timeline"].array.compactMap { $0["tweet"]["id"].string } == ["501", "500"])
            #expect(newer.json["response"]["position"]["was_truncated"].bool == false)
            let gap = try await h.get(.entries, [("id", id), ("min_position", "0"), ("count", "1")])
            #expect(gap.json["response"]["timeline"].array.compactMap { $0["tweet"]["id"].string } == ["501"])
            #expect(gap.json["response"]["position"]["was_truncated"].bool == true)
        }
    }

    /// Removes during a paged read do not shift pages (paging is by position, not offset).
    @Test func removalsDuringPagingDoNotShiftPages() async throws {
        try await withHarness { h in
            let all = tweets(50, from: 10)
            let id = try h.server.createCollection(tweetIDs: all)
            let first = try await h.get(.entries, [("id", id), ("count", "10")])
            let boundary = try #require(first.json["response"]["position"]["min_position"].string)
            // Remove five entries from the first page.
            var removals: [(String, String)] = []
            for tweet in all.suffix(5) { removals.append(("remove", tweet)) }
            let removed = try await h.curate(id, removals)
            #expect(removed.changeErrors.isEmpty)
            let second = try await h.get(.entries, [("id", id), ("count", "10"), ("max_position", boundary)])
            let ids = second.json["response"]["timeline"].array.compactMap { $0["tweet"]["id"].string }
            let expected: [String] = Array(all.reversed())
            #expect(ids == Array(expected[9..<19]))
        }
    }
}
