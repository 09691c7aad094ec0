/// A Twitter collection id, `custom-` followed by 1 to 20 digits, kept whole as a string.
public struct CollectionID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The id exactly as the API writes it.
    public let rawValue: String

    /// Validates `rawValue` against `^custom-[0-9]{1,20}$`; throws ``SyncError/Code/invalidInput``
    /// naming the value otherwise.
    public init(validating rawValue: String) throws {
        let digits = rawValue.utf8.dropFirst(7)
        guard rawValue.utf8.starts(with: "custom-".utf8),
              (1...20).contains(digits.count),
              digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else {
            throw SyncError.invalid("invalid collection id \(quoted(rawValue)): expected custom- followed by 1 to 20 digits")
        }
        self.rawValue = rawValue
    }

    /// Trusted construction from the database, which only ever holds validated ids.
    init(trusted rawValue: String) { self.rawValue = rawValue }

    public var description: String { rawValue }
    public static func < (a: CollectionID, b: CollectionID) -> Bool { a.rawValue < b.rawValue }
}

/// A tweet id: a 64-bit unsigned snowflake in canonical decimal (no sign, no leading zero, not 0).
public struct TweetID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The canonical decimal string, as stored and sent.
    public let rawValue: String

    /// The numeric value.
    public var value: UInt64 { UInt64(rawValue)! }

    /// Validates `rawValue` as canonical decimal below 2^64; throws ``SyncError/Code/invalidInput``
    /// naming the value otherwise.
    public init(validating rawValue: String) throws {
        let utf8 = rawValue.utf8
        guard let first = utf8.first, first >= UInt8(ascii: "1"), first <= UInt8(ascii: "9"),
              utf8.count <= 20,
              utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              UInt64(rawValue) != nil
        else {
            throw SyncError.invalid("invalid tweet id \(quoted(rawValue)): expected a decimal number from 1 to 18446744073709551615 with no sign, spaces or leading zeros")
        }
        self.rawValue = rawValue
    }

    /// A tweet id from its numeric value (never 0).
    public init?(_ value: UInt64) {
        guard value > 0 else { return nil }
        rawValue = String(value)
    }

    init(trusted rawValue: String) { self.rawValue = rawValue }

    public var description: String { rawValue }
    public static func < (a: TweetID, b: TweetID) -> Bool {
        a.rawValue.utf8.count != b.rawValue.utf8.count ? a.rawValue.utf8.count < b.rawValue.utf8.count : a.rawValue < b.rawValue
    }
}

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

/// `value` in quotes for an error message: control characters escaped, long values shortened.
func quoted(_ value: String) -> String {
    var shown = ""
    for scalar in value.unicodeScalars.prefix(64) {
        shown += scalar.properties.generalCategory == .control || scalar == "\"" || scalar == "\\"
            ? scalar.escaped(asASCII: true) : String(scalar)
    }
    if value.unicodeScalars.count > 64 { shown += "…" }
    return "\"\(shown)\""
}
