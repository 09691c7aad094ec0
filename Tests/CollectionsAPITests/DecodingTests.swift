@testable import CollectionsAPI
import Foundation
import Testing

@Suite("Decoding and classification of answers")
struct DecodingTests {
    @Test("the hand-written curate body parses to the value JSONEncoder's does, escapes included")
    func curateBodyMatchesEncoder() throws {
        struct Body: Encodable { let id: String; let changes: [EntryChange] }
        let cases: [(String, [EntryChange])] = [
            ("custom-1", [EntryChange(op: .remove, tweetID: "20")]),
            ("custom-9", (1...100).map { EntryChange(op: $0 % 2 == 0 ? .add : .remove, tweetID: String($0 * 1_000_003)) }),
            ("we\"ird\\id\n\u{1}é", [EntryChange(op: .add, tweetID: "a\"b\\c\t")]),
        ]
        for (collection, changes) in cases {
            let ours = try JSONSerialization.jsonObject(with: Data(CollectionsClient.curateBody(collection, changes))) as? NSDictionary
            let theirs = try JSONSerialization.jsonObject(with: JSONEncoder().encode(Body(id: collection, changes: changes))) as? NSDictionary
            #expect(ours != nil && ours == theirs, "\(collection)")
        }
    }

    func answer(_ body: String, status: Int = 200, contentType: String? = "application/json; charset=utf-8",
                headers: [(String, String)] = []) -> HTTPResponseData {
        HTTPResponseData(status: status, headers: (contentType.map { [("Content-Type", $0)] } ?? []) + headers, body: Array(body.utf8))
    }

    @Test("an entries page decodes; ids stay strings; unknown fields are ignored")
    func entriesPage() throws {
        let body = """
        {"objects":{"timelines":{"custom-1":{"name":"Cats","description":"","url":"","user_id":"42","collection_url":"https://twitter.com/x/timelines/1","timeline_order":"curation_reverse_chron","visibility":"public","collection_type":"user","new_field":[1,2]}},
          "tweets":{"504032379045179393":{"id_str":"504032379045179393","text":"hi"}},"users":{}},
         "response":{"timeline_id":"custom-1",
           "timeline":[{"feature_context":"HBgGY3VzdG9t","tweet":{"id":"504032379045179393","sort_index":"371578415352947200"}},
                       {"tweet":{"id":"18446744073709551615","sort_index":"1"},"extra":true}],
           "position":{"max_position":"371578415352947200","min_position":"1","was_truncated":true}}}
        """
        let page = try AnswerClassifier.decode(EntriesPage.self, from: answer(body), path: "collections/entries")
        #expect(page.timelineID == "custom-1")
        #expect(page.timeline?.name == "Cats" && page.timeline?.userID == "42" && page.timeline?.timelineOrder == "curation_reverse_chron")
        #expect(page.entries == [
            .init(tweet: "504032379045179393", sortIndex: "371578415352947200", featureContext: "HBgGY3VzdG9t"),
            .init(tweet: "18446744073709551615", sortIndex: "1"),
        ])
        #expect(page.position == .init(maxPosition: "371578415352947200", minPosition: "1", wasTruncated: true))
    }

    @Test("an entry with a malformed tweet id or sort_index makes the page malformed: nothing of it reaches a store",
          arguments: [("01", "5"), ("abc", "5"), ("-1", "5"), ("18446744073709551616", "5"), ("", "5"), ("7", "-9"), ("7", ""), ("7", "1.5"), ("7", "1e3")])
    func malformedEntry(_ row: (String, String)) {
        let body = #"{"objects":{},"response":{"timeline_id":"custom-1","timeline":[{"tweet":{"id":"6","sort_index":"6"}},{"tweet":{"id":"\#(row.0)","sort_index":"\#(row.1)"}}],"position":{"was_truncated":false}}}"#
        let error = #expect(throws: CollectionsAPIError.self) { try AnswerClassifier.decode(EntriesPage.self, from: answer(body), path: "collections/entries") }
        #expect(error?.code == .malformedResponse, "\(row)")
    }

    @Test("an empty collection's page decodes")
    func emptyPage() throws {
        let body = #"{"objects":{},"response":{"timeline_id":"custom-1","timeline":[],"position":{"was_truncated":false}}}"#
        let page = try AnswerClassifier.decode(EntriesPage.self, from: answer(body), path: "collections/entries")
        #expect(page.entries.isEmpty && !page.position.wasTruncated && page.position.minPosition == nil)
    }

    @Test("show, create, update, list and destroy shapes decode")
    func otherShapes() throws {
        let show = #"{"objects":{"timelines":{"custom-9":{"name":"N","description":"D","url":"U","user_id":"1"}},"users":{"1":{}}},"response":{"timeline_id":"custom-9"}}"#
        let info = try AnswerClassifier.decode(CollectionInfo.self, from: answer(show), path: "collections/show")
        #expect(info.timelineID == "custom-9" && info.timeline?.description == "D" && info.timeline?.url == "U")
        let list = #"{"objects":{"timelines":{"custom-1":{"name":"a"},"custom-2":{"name":"b"}}},"response":{"results":[{"timeline_id":"custom-1"},{"timeline_id":"custom-2"}],"cursors":{"next_cursor":"abc"}}}"#
        let page = try AnswerClassifier.decode(CollectionList.self, from: answer(list), path: "collections/list")
        #expect(page.timelineIDs == ["custom-1", "custom-2"] && page.nextCursor == "abc" && page.timelines["custom-2"]?.name == "b")
        #expect(try AnswerClassifier.decode(DestroyAnswer.self, from: answer(#"{"destroyed":true}"#), path: "collections/destroy").destroyed)
    }

    @Test("change envelope: errors matched by (op, tweet id) whatever their order; unknown reasons kept")
    func changeEnvelope() throws {
        let body = """
        {"objects":{},"response":{"errors":[
          {"change":{"op":"add","tweet_id":"3"},"reason":"duplicate"},
          {"change":{"op":"remove","tweet_id":"1"},"reason":"not_found"},
          {"change":{"op":"remove","tweet_id":"2"},"reason":"brand_new_reason"},
          {"change":{"op":"remove","tweet_id":"99"},"reason":"not_found"}]}}
        """
        let changes = [EntryChange(op: .remove, tweetID: "1"), EntryChange(op: .remove, tweetID: "2"),
                       EntryChange(op: .add, tweetID: "3"), EntryChange(op: .add, tweetID: "4"), EntryChange(op: .remove, tweetID: "3")]
        let envelope = try AnswerClassifier.decode(ChangeResult.Envelope.self, from: answer(body), path: "curate")
        let result = ChangeResult(envelope: envelope, changes: changes)
        #expect(result.outcomes.map(\.outcome) == [.refused(reason: "not_found"), .refused(reason: "brand_new_reason"),
                                                    .refused(reason: "duplicate"), .applied, .applied])
        #expect(result.unmatched.count == 1 && result.unmatched[0].reason == "not_found")
        let success = try AnswerClassifier.decode(ChangeResult.Envelope.self, from: answer(#"{"objects":{},"response":{"errors":[]}}"#), path: "curate")
        #expect(ChangeResult(envelope: success, changes: changes).outcomes.allSatisfy { $0.outcome == .applied })
    }

    static let hostileBodies: [String] = [
        "",
        "{",
        #"{"objects":{},"response":{"timeline_id":"custom-1","timeline":[{"tweet":{"id":"1","sort_index":"2"}}"#,
        "null",
        "[]",
        "true",
        "\"just a string\"",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
        #"{"objects":{},"response":{"timeline_id":12345,"timeline":[],"position":{"was_truncated":false}}}"#,
        #"{"objects":{},"response":{"timeline_id":"custom-1","timeline":[{"tweet":{"id":504032379045179393,"sort_index":"1"}}],"position":{"was_truncated":false}}}"#,
        #"{"objects":{},"response":{"timeline_id":"custom-1","timeline":[],"position":{"was_truncated":"no"}}}"#,
        #"{"objects":{},"response":{"timeline_id":"custom-1","timeline":[],"position":{"was_truncated":1e999}}}"#,
        #"{"objects":{},"response":{"timeline_id":"custom-1","timeline":[{"tweet":null}],"position":{"was_truncated":false}}}"#,
        #"{"objects":{},"response":{"timeline_id":"custom-1","timeline":{"a":1},"position":{"was_truncated":false}}}"#,
        #"{"objects":{},"response":null}"#,
        #"{"objects":{}}"#,
        String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000),
        String(repeating: #"{"a":"#, count: 10_000) + "1" + String(repeating: "}", count: 10_000),
        #"{"objects":{},"response":{"timeline_id":"custom-1","timeline":[],"position":{"was_truncated":false}}} trailing"#,
        "\u{FEFF}\u{0}\u{1}garbage",
        #"{"response":{"timeline_id":"\ud800","timeline":[],"position":{"was_truncated":false}}}"#,
        String(repeating: " ", count: 1_000_000),
    ]

    @Test("hostile bodies give typed errors, never a crash", arguments: hostileBodies.indices)
    func hostile(_ index: Int) {
        let body = Self.hostileBodies[index]
        let error = #expect(throws: CollectionsAPIError.self) {
            try AnswerClassifier.decode(EntriesPage.self, from: answer(body), path: "collections/entries")
        }
        #expect(error?.code == .malformedResponse)
        #expect(error?.isRetryable == true)
        #expect((error?.message.count ?? 0) < 500)
    }

    @Test("a wrong content type or an oversized body is malformed")
    func wrongTypeAndSize() {
        let body = #"{"destroyed":true}"#
        for type in [nil, "text/html", "text/plain; charset=utf-8"] as [String?] {
            let error = #expect(throws: CollectionsAPIError.self) {
                try AnswerClassifier.decode(DestroyAnswer.self, from: answer(body, contentType: type), path: "x")
            }
            #expect(error?.code == .malformedResponse)
        }
        let huge = answer("[" + String(repeating: "1,", count: 9_000_000) + "1]")
        #expect(huge.body.count > AnswerClassifier.maxBodyBytes)
        #expect(throws: CollectionsAPIError.self) { try AnswerClassifier.decode([Int].self, from: huge, path: "x") }
    }

    @Test("every row of api.md's error table is classified as specified", arguments: [
        (400, 215, "authentication"), (400, 86, "permanent"), (401, 32, "authentication"), (401, 135, "clockSkew"),
        (401, 89, "authentication"), (403, 89, "authentication"), (403, 64, "forbidden"), (403, 87, "forbidden"),
        (403, 220, "forbidden"), (403, 226, "forbidden"), (403, 261, "forbidden"), (403, 326, "forbidden"),
        (404, 34, "notFound"), (422, nil, "invalidRequest"), (429, 88, "rateLimited"), (500, 131, "transient"),
        (502, nil, "transient"), (504, nil, "transient"), (503, 130, "transient"), (400, nil, "invalidRequest"),
        (404, nil, "notFound"), (302, nil, "unexpectedStatus"), (418, nil, "unexpectedStatus"),
    ] as [(Int, Int?, String)])
    func errorTable(_ row: (Int, Int?, String)) throws {
        let (status, code, expected) = row
        let body = code.map { #"{"errors":[{"code":\#($0),"message":"whatever"}]}"# } ?? "<html>error</html>"
        let response = answer(body, status: status, contentType: code == nil ? "text/html" : "application/json",
                              headers: [("date", "Sun, 06 Nov 1994 08:49:37 GMT"), ("x-rate-limit-limit", "15"),
                                        ("x-rate-limit-remaining", "0"), ("x-rate-limit-reset", "1318623958")])
        let error = try #require(AnswerClassifier.failure(of: response, path: "collections/entries/curate"))
        #expect(error.code.description == expected)
        #expect(error.httpStatus == status && error.apiErrorCode == code)
        #expect(error.serverDate == Date(timeIntervalSince1970: 784_111_777))
        #expect(error.rateLimitReset == Date(timeIntervalSince1970: 1_318_623_958))
        #expect(AnswerClassifier.failure(of: answer("{}"), path: "x") == nil)
        #expect(AnswerClassifier.failure(of: answer("", status: 204), path: "x") == nil)
    }

    @Test("retryable classes")
    func retryable() {
        let retryable: [CollectionsAPIError.Code] = [.transient, .network, .timeout, .malformedResponse, .unexpectedStatus, .rateLimited, .clockSkew]
        let final: [CollectionsAPIError.Code] = [.authentication, .forbidden, .notFound, .invalidRequest, .permanent, .cancelled, .configuration, .tooManyChanges]
        #expect(retryable.allSatisfy { CollectionsAPIError(code: $0, message: "").isRetryable })
        #expect(final.allSatisfy { !CollectionsAPIError(code: $0, message: "").isRetryable })
    }

    @Test("rate-limit headers parse; missing or bad ones give nil")
    func rateLimitHeaders() {
        let good = answer("{}", headers: [("X-Rate-Limit-Limit", "1000"), ("x-rate-limit-remaining", "998"), ("x-rate-limit-reset", "1700000000")])
        #expect(RateLimit(headers: good) == RateLimit(limit: 1000, remaining: 998, reset: Date(timeIntervalSince1970: 1_700_000_000)))
        #expect(RateLimit(headers: answer("{}", headers: [("x-rate-limit-limit", "1000")])) == nil)
        #expect(RateLimit(headers: answer("{}", headers: [("x-rate-limit-limit", "x"), ("x-rate-limit-remaining", "-1"), ("x-rate-limit-reset", "1")])) == nil)
    }

    @Test("HTTP dates")
    func httpDates() {
        #expect(parseHTTPDate("Thu, 01 Jan 1970 00:00:00 GMT") == Date(timeIntervalSince1970: 0))
        #expect(parseHTTPDate("Fri, 27 Nov 2026 12:43:40 GMT") == Date(timeIntervalSince1970: 1_795_783_420))
        #expect(parseHTTPDate("yesterday") == nil)
        #expect(parseHTTPDate("Fri, 99 Nov 2026 12:43:40 GMT") == nil)
        #expect(parseHTTPDate("Mon, 30 Feb 2026 12:43:40 GMT") == nil)
        #expect(parseHTTPDate("Tue, 29 Feb 2028 00:00:00 GMT") == Date(timeIntervalSince1970: 1_835_395_200))
        // The arithmetic agrees with Foundation's calendar across leap years and centuries.
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let date = Date(timeIntervalSince1970: TimeInterval(Int64.random(in: 0...253_402_300_799, using: &generator)))
            #expect(parseHTTPDate(formatter.string(from: date)) == date, "\(formatter.string(from: date))")
        }
    }
}
