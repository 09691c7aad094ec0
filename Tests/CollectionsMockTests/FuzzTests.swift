@testable import CollectionsMock
import Foundation
import PropertyBased
import Testing
import TestSupport

/// Fuzzing of what the mock reads from clients: the OAuth credentials of a request and JSON
/// bodies. No crash, no hang; random credentials never authenticate.
@Suite("Fuzzing: the mock's OAuth verifier and JSON parser")
struct MockFuzzTests {
    static let book = CredentialBook([.test])

    @Test("random Authorization headers and oauth_ parameters never authenticate, never crash")
    func oauth() async {
        let known = MockCredentials.test
        let pieces = [known.consumerKey, known.accessToken, "oauth_consumer_key", "oauth_token", "oauth_signature",
                      "oauth_signature_method", "HMAC-SHA1", "oauth_nonce", "oauth_timestamp", "oauth_version", "1.0",
                      "=", "\"", ",", " ", "%", "%2", "%ZZ", "OAuth ", "Bearer ", "realm", "é", "\u{0}", "123"]
        let header = pick(pieces).array(of: 0...30).map { $0.joined() }
        let parameters = Gen.int(in: 0..<pieces.count * pieces.count).map { (pieces[$0 / pieces.count], pieces[$0 % pieces.count]) }
            .array(of: 0...8)
        await propertyCheck(count: fuzzExecutions, input: header, parameters, Gen.int(in: 0...1)) { header, parameters, useHeader in
            let request = SignedRequest(method: "POST", baseURL: "http://127.0.0.1/1.1/collections/entries/curate.json",
                                        parameters: parameters, authorization: useHeader == 1 ? header : nil)
            switch OAuthVerifier.evaluate(request, credentials: Self.book) {
            case .bearer:
                Issue.record("a random header authenticated as a Bearer token: \(header)")
            case .oauth(let claim):
                #expect(!claim.signatureValid, "a random request carried a valid signature: \(header) \(parameters)")
            case .rejected:
                break
            }
        }
    }

    @Test("random bytes into the JSON parser: a value or a ParseError, never a crash")
    func json() async {
        let alphabet = Array(#"{}[]":,0123456789-+.eE truefalsnul\u"#.utf8) + [0, 0xC3, 0xA9, 0xFF, 0x80, 10]
        await propertyCheck(count: fuzzExecutions, input: pick(alphabet).array(of: 0...300)) { bytes in
            do {
                let value = try JSONValue.parse(bytes)
                // What it accepts, it writes back as JSON that parses to the same value.
                var out: [UInt8] = []
                value.write(to: &out)
                #expect(try JSONValue.parse(out) == value)
            } catch {
                // ParseError is the only error the parser throws (typed throws).
            }
        }
        for deep in ["[", "{\"a\":"] {
            #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Array(String(repeating: deep, count: 100_000).utf8)) }
        }
    }
}

