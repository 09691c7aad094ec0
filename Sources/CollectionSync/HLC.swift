import Foundation

/// A hybrid logical clock timestamp: wall-clock milliseconds in the high bits and a logical
/// counter in the low ``logicalBits`` bits, as one Int64. Comparing raw values compares times.
public struct HLC: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Bits of the logical counter. A burst of more than 2^16 stamps in one millisecond borrows
    /// from the next millisecond, which keeps the clock strictly increasing.
    public static let logicalBits: Int64 = 16
    /// The largest wall time that fits (about the year 6400).
    static let maxMillis: Int64 = Int64.max >> logicalBits

    public let rawValue: Int64

    public init(rawValue: Int64) { self.rawValue = rawValue }

    public init(millis: Int64, logical: Int64 = 0) {
        rawValue = (min(max(millis, 0), HLC.maxMillis) << HLC.logicalBits) | (logical & ((1 << HLC.logicalBits) - 1))
    }

    /// The wall-clock part, in Unix epoch milliseconds.
    public var millis: Int64 { rawValue >> HLC.logicalBits }
    /// The logical counter.
    public var logical: Int64 { rawValue & ((1 << HLC.logicalBits) - 1) }
    /// The wall-clock part as a date.
    public var date: Date { Date(timeIntervalSince1970: Double(millis) / 1000) }

    public var description: String { "\(millis).\(logical)" }
    public static func < (a: HLC, b: HLC) -> Bool { a.rawValue < b.rawValue }
    public static let zero = HLC(rawValue: 0)
}

/// The clock state of one replica: pure, so that its rules are tested with any wall clock.
///
/// Every stamp is strictly greater than every earlier one, whatever the wall clock does (jumps
/// back, stands still, or a burst arrives within one millisecond).
@_spi(Worker) public struct HybridLogicalClock: Sendable, Hashable {
    /// The last stamp issued (or observed).
    public private(set) var last: HLC

    public init(last: HLC = .zero) { self.last = last }

    /// A new local stamp at wall time `wallMillis`.
    public mutating func tick(wallMillis: Int64) -> HLC {
        last = HLC(rawValue: max(HLC(millis: wallMillis).rawValue, HybridLogicalClock.successor(of: last)))
        return last
    }

    /// Takes in a stamp made elsewhere so that later local stamps sort after it; returns the new
    /// local stamp.
    public mutating func observe(_ remote: HLC, wallMillis: Int64) -> HLC {
        last = HLC(rawValue: max(HLC(millis: wallMillis).rawValue, HybridLogicalClock.successor(of: max(last, remote))))
        return last
    }

    private static func successor(of stamp: HLC) -> Int64 {
        stamp.rawValue == .max ? .max : stamp.rawValue + 1
    }
}
