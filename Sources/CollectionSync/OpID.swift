import CollectionsAPI

/// The id of an op in the outbox. Ids are never reused.
public struct OpID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: Int64

    public init(_ rawValue: Int64) { self.rawValue = rawValue }

    /// Parses a positive decimal op id as a user types it; throws ``SyncError/Code/invalidInput``.
    public init(validating text: String) throws {
        guard let first = text.utf8.first, first != UInt8(ascii: "0"),
              text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let value = Int64(text), value > 0
        else {
            throw SyncError.invalid("invalid op id \(quoted(text)): expected a positive decimal number")
        }
        rawValue = value
    }

    public var description: String { String(rawValue) }
    public static func < (a: OpID, b: OpID) -> Bool { a.rawValue < b.rawValue }
}
