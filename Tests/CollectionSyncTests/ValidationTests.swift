@testable import CollectionSync
import Foundation
import Testing

@Suite("Validation: bad input is refused and nothing is written")
struct ValidationTests {
    static let badTweets = [
        "", "0", "00", "01", "-1", "+1", " 1", "1 ", "1.0", "1e5", "0x10", "abc", "１２３",
        "18446744073709551616", "99999999999999999999", "123456789012345678901", "1; DROP TABLE ops",
        "1\u{0}", "1\n2", "٣",
    ]
    static let badCollections = [
        "", "custom-", "custom", "Custom-1", "custom-1a", "custom--1", "custom-+1", " custom-1", "custom-1 ",
        "custom-123456789012345678901", "x-1", "custom-1'; DROP TABLE ops; --", "custom-١",
    ]

    @Test("malformed tweet ids", arguments: badTweets)
    func badTweet(_ text: String) {
        let error = #expect(throws: CollectionsAPIError.self) { try TweetID(validating: text) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("invalid tweet id") == true)
    }

    @Test("malformed collection ids", arguments: badCollections)
    func badCollection(_ text: String) {
        let error = #expect(throws: CollectionsAPIError.self) { try CollectionID(validating: text) }
        #expect(error?.code == .invalidArgument)
    }

    @Test("good ids at the edges are accepted")
    func goodIDs() throws {
        #expect(try TweetID(validating: "1").value == 1)
        #expect(try TweetID(validating: "18446744073709551615").value == .max)
        #expect(try CollectionID(validating: "custom-0").rawValue == "custom-0")
        #expect(try CollectionID(validating: "custom-99999999999999999999").rawValue.count == 27)
        #expect(TweetID(0) == nil)
    }

    @Test("op ids: positive canonical decimals only", arguments: ["", "0", "-3", "03", "1.5", "x", "9223372036854775808", " 4"])
    func badOpID(_ text: String) {
        #expect(throws: SyncError.self) { try OpID(validating: text) }
    }

    @Test("error messages quote the bad value, escaped and shortened")
    func messages() {
        let long = String(repeating: "9", count: 500)
        let error = #expect(throws: CollectionsAPIError.self) { try TweetID(validating: long) }
        #expect((error?.message.count ?? 1000) < 300)
        let control = #expect(throws: CollectionsAPIError.self) { try TweetID(validating: "1\n2") }
        #expect(control?.message.contains("\"1\\n2\"") == true)
    }

    @Test("calls on the store that are refused write nothing")
    func storeCallsRefused() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        let op = try await store.remove([tweet(1)], from: c1)[0]
        let before = try snapshot(store.path)

        let unknown = await #expect(throws: SyncError.self) { try await store.retry([OpID(999)]) }
        #expect(unknown?.code == .opNotFound)
        let notFailed = await #expect(throws: SyncError.self) { try await store.retry([op.id]) }
        #expect(notFailed?.code == .invalidInput)
        // One unknown id among good ones refuses the whole call.
        let mixed = await #expect(throws: SyncError.self) { try await store.discard([op.id, OpID(12345)]) }
        #expect(mixed?.code == .opNotFound)
        await #expect(throws: SyncError.self) { try await store.log(limit: 0) }
        await #expect(throws: SyncError.self) { try await store.log(limit: -1) }
        #expect(try await store.remove([], from: c1).isEmpty)
        #expect(try snapshot(store.path) == before)
    }
}
