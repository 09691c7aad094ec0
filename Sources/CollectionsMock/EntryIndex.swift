/// The entries of one collection ordered by position (`sort_index`), with position paging.
///
/// Slots are kept in ascending position; a removal leaves a tombstone (tweet 0, never a valid
/// tweet id) that is compacted away once tombstones outnumber live slots, so removals are
/// O(log n) amortized and appends at the top (the common `curation_reverse_chron` add) are O(1).
struct EntryIndex: Sendable {
    struct Slot: Sendable, Hashable {
        var position: UInt64
        /// The tweet id, or 0 for a tombstone.
        var tweet: UInt64
    }

    private(set) var slots: [Slot] = []
    private var tombstones = 0

    /// How many entries are present.
    var count: Int { slots.count - tombstones }

    /// The live slots, highest position first (the order of an entries page).
    var descending: [Slot] { slots.reversed().filter { $0.tweet != 0 } }

    /// Adds `tweet` at `position`, which no live slot may have.
    mutating func insert(position: UInt64, tweet: UInt64) {
        precondition(tweet != 0, "tweet 0 marks a tombstone")
        if slots.last.map({ $0.position < position }) ?? true {
            slots.append(Slot(position: position, tweet: tweet))
            return
        }
        let index = Self.firstIndex(in: slots, above: position)
        if index > 0, slots[index - 1].position == position {
            precondition(slots[index - 1].tweet == 0, "two entries at one position")
            slots[index - 1].tweet = tweet
            tombstones -= 1
        } else {
            slots.insert(Slot(position: position, tweet: tweet), at: index)
        }
    }

    /// Removes the entry at `position`, if any.
    mutating func remove(position: UInt64) {
        let index = Self.firstIndex(in: slots, above: position) - 1
        guard index >= 0, slots[index].position == position, slots[index].tweet != 0 else { return }
        slots[index].tweet = 0
        tombstones += 1
        if tombstones > 32, tombstones * 2 > slots.count {
            slots.removeAll { $0.tweet == 0 }
            tombstones = 0
        }
    }

    /// The live slot with the smallest position above `position`, if any.
    func nextAbove(_ position: UInt64) -> Slot? {
        var index = Self.firstIndex(in: slots, above: position)
        while index < slots.count {
            if slots[index].tweet != 0 { return slots[index] }
            index += 1
        }
        return nil
    }

    /// The live slot with the largest position below `position`, if any.
    func nextBelow(_ position: UInt64) -> Slot? {
        var index = Self.firstIndex(in: slots, above: position) - 1
        while index >= 0 {
            if slots[index].tweet != 0, slots[index].position < position { return slots[index] }
            index -= 1
        }
        return nil
    }

    /// The index of the first slot whose position is greater than `position` (binary search).
    static func firstIndex(in slots: [Slot], above position: UInt64) -> Int {
        var low = 0
        var high = slots.count
        while low < high {
            let middle = (low + high) / 2
            if slots[middle].position <= position { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// One page of entries: highest position first.
    struct Page: Sendable, Hashable {
        var entries: [Slot]
        /// Whether more visible entries lie below the page (and above `min_position`, if given).
        var wasTruncated: Bool
    }

    /// The page api.md describes: at most `count` visible entries, highest position first,
    /// with positions `<= maxPosition` (inclusive) and `> minPosition` (exclusive), starting from
    /// the highest such position. Invisible entries (deleted or protected tweets) are skipped as
    /// if absent.
    func page(maxPosition: UInt64?, minPosition: UInt64?, count: Int, isVisible: (UInt64) -> Bool) -> Page {
        Self.page(slots: slots, maxPosition: maxPosition, minPosition: minPosition, count: count, isVisible: isVisible)
    }

    /// ``page(maxPosition:minPosition:count:isVisible:)`` over any ascending slots.
    static func page(slots: [Slot], maxPosition: UInt64?, minPosition: UInt64?, count: Int,
                     isVisible: (UInt64) -> Bool) -> Page {
        var index = (maxPosition.map { firstIndex(in: slots, above: $0) } ?? slots.count) - 1
        var entries: [Slot] = []
        entries.reserveCapacity(min(count, 256))
        while index >= 0 {
            let slot = slots[index]
            index -= 1
            if let minPosition, slot.position <= minPosition { break }
            guard slot.tweet != 0, isVisible(slot.tweet) else { continue }
            if entries.count == count { return Page(entries: entries, wasTruncated: true) }
            entries.append(slot)
        }
        return Page(entries: entries, wasTruncated: false)
    }
}
