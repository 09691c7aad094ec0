@testable import CollectionsAPI
import Foundation
import PropertyBased
import Testing
import TestSupport

/// The id validators against random text: they accept exactly the canonical forms and refuse
/// everything else with ``CollectionsAPIError/Code/invalidArgument``, never crashing.
@Suite("Fuzzing: tweet and collection id validators")
struct IdentifierFuzzTests {
    static let alphabet = Array("0123456789custom-+ é\u{0}\u{FF10}x1")
    static let text = pick(alphabet).array(of: 0...26).map { String($0) }

    @Test("tweet ids: canonical decimal 1...2^64-1 accepted, all else refused")
    func tweetIDs() async throws {
        await propertyCheck(count: fuzzExecutions, input: Self.text) { text in
            let canonical = UInt64(text).map { $0 > 0 && String($0) == text } ?? false
            do {
                let id = try TweetID(validating: text)
                #expect(canonical && id.rawValue == text && String(id.value) == text, "accepted \(text.debugDescription)")
            } catch let error as CollectionsAPIError {
                #expect(!canonical && error.code == .invalidArgument, "refused \(text.debugDescription)")
            } catch {
                Issue.record("untyped error for \(text.debugDescription): \(error)")
            }
        }
        #expect(throws: CollectionsAPIError.self) { try TweetID(validating: "18446744073709551616") }
        #expect(try TweetID(validating: "18446744073709551615").value == .max)
    }

    @Test("collection ids: custom- and 1 to 20 ASCII digits accepted, all else refused")
    func collectionIDs() async {
        // Half the inputs carry the prefix (else few would be valid), half are bare text.
        let input = zip(Gen.bool(), Self.text).map { prefixed, text in prefixed ? "custom-" + text : text }
        await propertyCheck(count: fuzzExecutions, input: input) { text in
            let digits = text.dropFirst(7)
            let valid = text.hasPrefix("custom-") && (1...20).contains(digits.utf8.count)
                && digits.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }
            do {
                _ = try CollectionID(validating: text)
                #expect(valid, "accepted \(text.debugDescription)")
            } catch let error as CollectionsAPIError {
                #expect(!valid && error.code == .invalidArgument, "refused \(text.debugDescription)")
            } catch {
                Issue.record("untyped error for \(text.debugDescription): \(error)")
            }
        }
    }
}
