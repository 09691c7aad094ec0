@testable import CollectionsAPI
import Foundation
import PropertyBased
import Testing
import TestSupport

/// Fuzzing of everything that reads a server's answer: random bytes, mutated real answers and
/// the committed corpus (`Corpus/`) go through every decoder. Nothing may crash or hang, and the
/// only error is the typed ``CollectionsAPIError`` with code `malformedResponse`.
///
/// `FUZZ_EXECUTIONS` sets the inputs per property (default 2,000; the README's run used 100,000).
@Suite("Fuzzing: answer decoders and the OAuth header parser")
struct FuzzTests {

    /// Real answers, as the mock writes them, to mutate.
    static let seeds: [String] = [
        #"{"objects":{"timelines":{"custom-1":{"name":"n","user_id":"2","collection_url":"u","description":"","url":"","visibility":"public","timeline_order":"curation_reverse_chron","collection_type":"user"}}},"response":{"position":{"max_position":"9","min_position":"1","was_truncated":true},"timeline":[{"tweet":{"id":"20","sort_index":"9"}},{"tweet":{"id":"21","sort_index":"1"},"feature_context":"HBgGY3VzdG9t"}]}}"#,
        #"{"objects":{},"response":{"errors":[{"change":{"op":"remove","tweet_id":"20"},"reason":"not_found"},{"change":{"op":"add","tweet_id":"21"},"reason":"duplicate"}]}}"#,
        #"{"objects":{"timelines":{"custom-1":{"name":"n","user_id":"2","collection_url":"u","description":"d","url":"","visibility":"public","timeline_order":"tweet_chron","collection_type":"user"}}},"response":{"timeline_id":"custom-1"}}"#,
        #"{"objects":{"timelines":{}},"response":{"results":[{"timeline_id":"custom-1"}],"cursors":{"next_cursor":"abc"}}}"#,
        #"{"destroyed":true}"#,
        #"{"errors":[{"code":34,"message":"Sorry, that page does not exist."}]}"#,
    ]

    /// Decodes `body` as every answer type; fails the test on anything but the typed error.
    static func decodeAll(_ body: [UInt8], status: Int = 200, contentType: String = "application/json; charset=utf-8") {
        let response = HTTPResponseData(status: status, headers: [("content-type", contentType)], body: body)
        func attempt<T: Decodable>(_ type: T.Type) {
            do {
                _ = try AnswerClassifier.decode(type, from: response, path: "fuzz")
            } catch let error as CollectionsAPIError {
                #expect(error.code == .malformedResponse, "\(type): \(error)")
            } catch {
                Issue.record("\(type) threw an untyped error: \(error)")
            }
        }
        attempt(EntriesPage.self)
        attempt(ChangeResult.Envelope.self)
        attempt(CollectionInfo.self)
        attempt(CollectionList.self)
        attempt(DestroyAnswer.self)
        // The error path reads any status and body too.
        _ = AnswerClassifier.failure(of: HTTPResponseData(status: status == 200 ? 400 : status, headers: response.headers, body: body), path: "fuzz")
        _ = AnswerClassifier.apiErrorCode(response)
    }

    static let bytes = Gen<UInt8>.value().array(of: 0...600)
    /// Bytes drawn mostly from JSON's own alphabet, so that inputs get past the first character.
    static let jsonish = pick(Array(#"{}[]":,0123456789-+.eE truefalsnul\"#.utf8) + [0, 0xC3, 0xA9, 0xFF, 10]).array(of: 0...400)

    @Test("random bytes: typed errors only")
    func randomBytes() async {
        await propertyCheck(count: fuzzExecutions, input: Self.bytes) { body in Self.decodeAll(body) }
    }

    @Test("random JSON-alphabet text: typed errors only")
    func jsonAlphabet() async {
        await propertyCheck(count: fuzzExecutions, input: Self.jsonish) { body in Self.decodeAll(body) }
    }

    @Test("real answers with bytes flipped, cut, inserted or deleted: typed errors only")
    func mutatedAnswers() async {
        await propertyCheck(count: fuzzExecutions, input: Gen.int(in: 0..<Self.seeds.count), Gen.int(in: 0...3),
                            Gen.int(in: 0...10_000), Gen<UInt8>.value(), Gen.int(in: 1...8)) { seed, kind, position, byte, times in
            var body = Array(Self.seeds[seed].utf8)
            for step in 0..<times {
                let at = (position + step * 7_919) % max(body.count, 1)
                switch kind {
                case 0 where !body.isEmpty: body[at] = byte
                case 1: body = Array(body.prefix(at))
                case 2: body.insert(byte, at: min(at, body.count))
                case 3 where !body.isEmpty: body.remove(at: at)
                default: break
                }
            }
            Self.decodeAll(body)
        }
    }

    @Test("the committed corpus: typed errors only, whatever the status or content type")
    func corpus() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted()
        #expect(files.count >= 10, "the corpus is committed beside this file")
        for file in files {
            let body = Array(try Data(contentsOf: folder.appendingPathComponent(file)))
            for (status, type) in [(200, "application/json"), (404, "application/json"), (503, "text/html"), (200, "")] {
                Self.decodeAll(body, status: status, contentType: type)
            }
        }
    }

    @Test("hostile nesting is refused before any decoder recurses")
    func deepNesting() {
        for opener in ["[", "{\"a\":"] {
            let deep = Array(String(repeating: opener, count: 200_000).utf8)
            #expect(!AnswerClassifier.depthIsAcceptable(deep))
            Self.decodeAll(deep)
        }
    }

    @Test("the Authorization header parser: nil or pairs for any text, never a crash")
    func authorizationHeader() async {
        let alphabet = Array(#"OAuth oauth_=",%2G0aZ\é "#)
        let text = pick(alphabet).array(of: 0...120).map { "OAuth " + String($0) }
        await propertyCheck(count: fuzzExecutions, input: text) { header in
            if let pairs = OAuth1.parseAuthorizationHeader(header) {
                // Whatever it accepts re-encodes to a header it parses the same way.
                let again = "OAuth " + pairs.map { "\(PercentEncoding.encode($0.0))=\"\(PercentEncoding.encode($0.1))\"" }.joined(separator: ", ")
                let reparsed = OAuth1.parseAuthorizationHeader(again)
                #expect(reparsed.map { $0.map(\.0) } == pairs.map(\.0) && reparsed.map { $0.map(\.1) } == pairs.map(\.1), "\(header)")
            }
        }
    }
}

