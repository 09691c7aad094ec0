/// A collection id: the server's, `custom-` followed by 1 to 20 digits, kept whole as a string;
/// or a local id, `local-N`, which a sync store gives a collection made with no network until the
/// server names it (only a store resolves it: the API is never sent one).
public struct CollectionID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The id exactly as the API (or the store, for a local id) writes it.
    public let rawValue: String

    /// Validates `rawValue` against `^custom-[0-9]{1,20}$` or `^local-[1-9][0-9]{0,17}$`; throws
    /// ``CollectionsAPIError/Code/invalidArgument`` naming the value otherwise.
    public init(validating rawValue: String) throws {
        guard Self.isServerID(rawValue) || Self.localNumber(rawValue) != nil else {
            throw CollectionsAPIError(code: .invalidArgument,
                                      message: "invalid collection id \(quoted(rawValue)): expected custom- followed by 1 to 20 digits, or a local id local-N")
        }
        self.rawValue = rawValue
    }

    /// The local id `local-number`.
    public init?(localNumber number: Int64) {
        guard number > 0 else { return nil }
        rawValue = "local-\(number)"
    }

    /// Whether this is a local id (`local-N`), which only a sync store knows.
    public var isLocal: Bool { rawValue.utf8.starts(with: "local-".utf8) }

    /// N of a local id `local-N`.
    public var localNumber: Int64? { Self.localNumber(rawValue) }

    static func isServerID(_ text: String) -> Bool {
        let digits = text.utf8.dropFirst(7)
        return text.utf8.starts(with: "custom-".utf8) && (1...20).contains(digits.count)
            && digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
    }

    static func localNumber(_ text: String) -> Int64? {
        let digits = text.utf8.dropFirst(6)
        guard text.utf8.starts(with: "local-".utf8), (1...18).contains(digits.count), digits.first != UInt8(ascii: "0"),
              digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(String(decoding: digits, as: UTF8.self))
    }

    /// Trusted construction from storage that only ever holds validated ids.
    package init(trusted rawValue: String) { self.rawValue = rawValue }

    public var description: String { rawValue }
    public static func < (a: CollectionID, b: CollectionID) -> Bool { a.rawValue < b.rawValue }
}

/// A tweet id: a 64-bit unsigned snowflake in canonical decimal (no sign, no leading zero, not 0).
public struct TweetID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The canonical decimal string, as stored and sent.
    public let rawValue: String

    /// The numeric value.
    public var value: UInt64 { UInt64(rawValue)! }

    /// Validates `rawValue` as canonical decimal below 2^64; throws
    /// ``CollectionsAPIError/Code/invalidArgument`` naming the value otherwise.
    public init(validating rawValue: String) throws {
        guard TweetID.isCanonical(rawValue) else {
            throw CollectionsAPIError(
                code: .invalidArgument,
                message: "invalid tweet id \(quoted(rawValue)): expected a decimal number from 1 to 18446744073709551615 with no sign, spaces or leading zeros")
        }
        self.rawValue = rawValue
    }

    /// A tweet id from its numeric value (never 0).
    public init?(_ value: UInt64) {
        guard value > 0 else { return nil }
        rawValue = String(value)
    }

    /// Trusted construction from storage that only ever holds validated ids.
    package init(trusted rawValue: String) { self.rawValue = rawValue }

    static func isCanonical(_ text: String) -> Bool {
        let utf8 = text.utf8
        guard let first = utf8.first, first >= UInt8(ascii: "1"), first <= UInt8(ascii: "9"), utf8.count <= 20,
              utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return false }
        return UInt64(text) != nil
    }

    public var description: String { rawValue }
    public static func < (a: TweetID, b: TweetID) -> Bool {
        a.rawValue.utf8.count != b.rawValue.utf8.count ? a.rawValue.utf8.count < b.rawValue.utf8.count : a.rawValue < b.rawValue
    }
}

/// `value` in quotes for an error message: control characters escaped, long values shortened.
package func quoted(_ value: String) -> String {
    var shown = ""
    for scalar in value.unicodeScalars.prefix(64) {
        shown += scalar.properties.generalCategory == .control || scalar == "\"" || scalar == "\\"
            ? scalar.escaped(asASCII: true) : String(scalar)
    }
    if value.unicodeScalars.count > 64 { shown += "…" }
    return "\"\(shown)\""
}
