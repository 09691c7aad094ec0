import CollectionsAPI
import CollectionsMock
import Testing

/// Every endpoint's success and failure shapes, over loopback HTTP with a real, signing client.
@Suite struct EndpointTests {
    @Test func createShowUpdateDestroy() async throws {
        try await withHarness { h in
            let created = try await h.post(.create, [("name", "Reading list"), ("description", "Good ones"),
                                                     ("url", "https://example.com"), ("timeline_order", "tweet_chron")])
            #expect(created.status == 200)
            let id = try #require(created.json["response"]["timeline_id"].string)
            #expect(id.hasPrefix("custom-") && id.dropFirst(7).allSatisfy(\.isNumber))
            let timeline = created.json["objects"]["timelines"][id]
            #expect(timeline["name"].string == "Reading list")
            #expect(timeline["description"].string == "Good ones")
            #expect(timeline["url"].string == "https://example.com")
            #expect(timeline["user_id"].string == h.credentials.userID)
            #expect(timeline["timeline_order"].string == "tweet_chron")
            #expect(timeline["visibility"].string == "public")
            #expect(timeline["collection_type"].string == "user")
            #expect(timeline["collection_url"].string == "https://twitter.com/\(h.credentials.screenName)/timelines/\(id.dropFirst(7))")
            #expect(created.json["objects"]["users"][h.credentials.userID]["screen_name"].string == h.credentials.screenName)

            let shown = try await h.get(.show, [("id", id)])
            #expect(shown.status == 200)
            #expect(shown.json["response"]["timeline_id"].string == id)
            #expect(shown.json["objects"]["timelines"][id]["name"].string == "Reading list")

            // No partial updates: the omitted description and url become "".
            let updated = try await h.post(.update, [("id", id), ("name", "Renamed")])
            #expect(updated.status == 200)
            #expect(updated.json["objects"]["timelines"][id]["name"].string == "Renamed")
            #expect(updated.json["objects"]["timelines"][id]["description"].string == "")
            #expect(updated.json["objects"]["timelines"][id]["url"].string == "")
            #expect(updated.json["objects"]["timelines"][id]["timeline_order"].string == "tweet_chron")

            let destroyed = try await h.post(.destroy, [("id", id)])
            #expect(destroyed.status == 200)
            #expect(destroyed.json["destroyed"].bool == true)

            for reply in [try await h.get(.show, [("id", id)]), try await h.get(.entries, [("id", id)]),
                          try await h.post(.destroy, [("id", id)]), try await h.post(.update, [("id", id), ("name", "x")]),
                          try await h.post(.add, [("id", id), ("tweet_id", "20")])] {
                #expect(reply.status == 404)
                #expect(reply.errorCode == 34)
            }
        }
    }

    @Test func createDefaultsAndLimits() async throws {
        try await withHarness { h in
            let created = try await h.post(.create, [("name", String(repeating: "é", count: 25))])
            #expect(created.status == 200)
            let id = try #require(created.json["response"]["timeline_id"].string)
            #expect(created.json["objects"]["timelines"][id]["timeline_order"].string == "curation_reverse_chron")
            #expect(created.json["objects"]["timelines"][id]["description"].string == "")
            #expect(created.json["objects"]["timelines"][id]["url"].string == "")

            let cases: [([(String, String)], Int)] = [
                ([], 38),
                ([("name", "")], 38),
                ([("name", String(repeating: "a", count: 26))], 44),
                ([("name", "ok"), ("description", String(repeating: "d", count: 161))], 44),
                ([("name", "ok"), ("timeline_order", "alphabetical")], 44),
            ]
            for (form, code) in cases {
                let reply = try await h.post(.create, form)
                #expect(reply.status == 400, "\(form)")
                #expect(reply.errorCode == code, "\(form)")
                #expect(reply.json["errors"][0]["message"].string?.isEmpty == false)
            }
            let longDescription = try await h.post(.create, [("name", "ok"), ("description", String(repeating: "d", count: 160))])
            #expect(longDescription.status == 200)
            #expect(h.server.snapshot().collections.count == 2)
        }
    }

    @Test func addRemoveAndTheirReasons() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection(tweetIDs: ["100", "101"])
            let added = try await h.post(.add, [("id", id), ("tweet_id", "102")])
            #expect(added.status == 200)
            #expect(added.text == #"{"objects":{},"response":{"errors":[]}}"#)
            #expect(h.server.tweetIDs(of: id) == ["102", "101", "100"])  // new tweets at the top

            let duplicate = try await h.post(.add, [("id", id), ("tweet_id", "101")])
            #expect(duplicate.status == 200)
            #expect(duplicate.json["response"]["errors"][0]["change"]["op"].string == "add")
            #expect(duplicate.json["response"]["errors"][0]["change"]["tweet_id"].string == "101")
            #expect(duplicate.json["response"]["errors"][0]["reason"].string == "duplicate")

            let removed = try await h.post(.remove, [("id", id), ("tweet_id", "100")])
            #expect(removed.status == 200 && removed.changeErrors.isEmpty)
            let absent = try await h.post(.remove, [("id", id), ("tweet_id", "100")])
            #expect(absent.status == 200)
            #expect(absent.changeErrors == ["remove 100": "not_found"])
            #expect(h.server.tweetIDs(of: id) == ["102", "101"])

            try h.server.markDeleted(["103"])
            try h.server.markProtected(["104"])
            #expect(try await h.post(.add, [("id", id), ("tweet_id", "103")]).changeErrors == ["add 103": "not_found"])
            #expect(try await h.post(.add, [("id", id), ("tweet_id", "104")]).changeErrors == ["add 104": "not_found"])

            // Bad parameters.
            for (endpoint, form, code) in [
                (Endpoint.add, [("id", id)], 38), (.add, [("id", id), ("tweet_id", "abc")], 44),
                (.add, [("id", id), ("tweet_id", "0123")], 44), (.add, [("id", id), ("tweet_id", "18446744073709551616")], 44),
                (.add, [("id", id), ("tweet_id", "5"), ("above", "maybe")], 44), (.remove, [("tweet_id", "5")], 38),
                (.add, [("id", id), ("tweet_id", "5"), ("relative_to", "x")], 44),
            ] as [(Endpoint, [(String, String)], Int)] {
                let reply = try await h.post(endpoint, form)
                #expect(reply.status == 400, "\(endpoint) \(form)")
                #expect(reply.errorCode == code, "\(endpoint) \(form)")
            }
            let unknown = try await h.post(.add, [("id", "custom-999"), ("tweet_id", "5")])
            #expect(unknown.status == 404 && unknown.errorCode == 34)
            let malformedID = try await h.post(.remove, [("id", "nope"), ("tweet_id", "5")])
            #expect(malformedID.status == 404 && malformedID.errorCode == 34)
            #expect(h.server.tweetIDs(of: id) == ["102", "101"])
        }
    }

    @Test func sortIndexIncreasesWithCurationTime() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            for tweet in ["900", "5", "700", "18446744073709551615"] {
                #expect(try await h.post(.add, [("id", id), ("tweet_id", tweet)]).changeErrors.isEmpty)
            }
            let page = try await h.get(.entries, [("id", id)])
            let entries = page.json["response"]["timeline"].array
            #expect(entries.map { $0["tweet"]["id"].string } == ["18446744073709551615", "700", "5", "900"])
            let indexes = entries.compactMap { $0["tweet"]["sort_index"].string.flatMap(UInt64.init) }
            #expect(indexes.count == 4)
            #expect(indexes == indexes.sorted(by: >))
            #expect(Set(indexes).count == 4)
            #expect(entries.allSatisfy { $0["feature_context"].string?.isEmpty == false })
        }
    }

    @Test func moveAndRelativeAdd() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection(tweetIDs: ["1", "2", "3", "4"])  // page order 4 3 2 1
            #expect(try await h.post(.move, [("id", id), ("tweet_id", "1"), ("relative_to", "4")]).changeErrors.isEmpty)
            #expect(h.server.tweetIDs(of: id) == ["1", "4", "3", "2"])
            #expect(try await h.post(.move, [("id", id), ("tweet_id", "1"), ("relative_to", "3"), ("above", "false")]).changeErrors.isEmpty)
            #expect(h.server.tweetIDs(of: id) == ["4", "3", "1", "2"])
            #expect(try await h.post(.move, [("id", id), ("tweet_id", "4"), ("relative_to", "2"), ("above", "false")]).changeErrors.isEmpty)
            #expect(h.server.tweetIDs(of: id) == ["3", "1", "2", "4"])
            #expect(try await h.post(.move, [("id", id), ("tweet_id", "9"), ("relative_to", "2")]).changeErrors == ["move 9": "not_found"])
            #expect(try await h.post(.move, [("id", id), ("tweet_id", "2"), ("relative_to", "9")]).changeErrors == ["move 2": "not_found"])
            let missing = try await h.post(.move, [("id", id), ("tweet_id", "2")])
            #expect(missing.status == 400 && missing.errorCode == 38)

            #expect(try await h.post(.add, [("id", id), ("tweet_id", "5"), ("relative_to", "1"), ("above", "false")]).changeErrors.isEmpty)
            #expect(h.server.tweetIDs(of: id) == ["3", "1", "5", "2", "4"])
            #expect(try await h.post(.add, [("id", id), ("tweet_id", "6"), ("relative_to", "77")]).changeErrors == ["add 6": "not_found"])

            // The page order and sort_index agree after moves.
            let indexes = try await h.get(.entries, [("id", id)]).json["response"]["timeline"].array
                .compactMap { $0["tweet"]["sort_index"].string.flatMap(UInt64.init) }
            #expect(indexes == indexes.sorted(by: >) && indexes.count == 5)

            // Only curation_reverse_chron collections can be reordered.
            let chron = try h.server.createCollection(tweetIDs: ["1", "2"], timelineOrder: .tweetChron)
            let refused = try await h.post(.move, [("id", chron), ("tweet_id", "1"), ("relative_to", "2")])
            #expect(refused.status == 400 && refused.errorCode == 44)
        }
    }

    @Test func tweetOrders() async throws {
        try await withHarness { h in
            let chron = try h.server.createCollection(timelineOrder: .tweetChron)
            let reverse = try h.server.createCollection(timelineOrder: .tweetReverseChron)
            for tweet in ["30", "10", "20"] {
                #expect(try await h.post(.add, [("id", chron), ("tweet_id", tweet)]).changeErrors.isEmpty)
                #expect(try await h.post(.add, [("id", reverse), ("tweet_id", tweet)]).changeErrors.isEmpty)
            }
            func ids(_ reply: Reply) -> [String] { reply.json["response"]["timeline"].array.compactMap { $0["tweet"]["id"].string } }
            #expect(ids(try await h.get(.entries, [("id", chron)])) == ["10", "20", "30"])
            #expect(ids(try await h.get(.entries, [("id", reverse)])) == ["30", "20", "10"])
            // Paging works the same way in every order.
            #expect(try await h.allPages(chron, count: 2).pages.flatMap { $0 }.uniqued() == ["10", "20", "30"])
            #expect(try await h.allPages(reverse, count: 2).pages.flatMap { $0 }.uniqued() == ["30", "20", "10"])
        }
    }

    @Test func curate() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection(tweetIDs: ["1", "2", "3"])
            try h.server.markDeleted(["66"])
            let reply = try await h.curate(id, [("add", "4"), ("add", "2"), ("remove", "3"), ("remove", "9"), ("add", "66"), ("add", "5")])
            #expect(reply.status == 200)
            #expect(reply.changeErrors == ["add 2": "duplicate", "remove 9": "not_found", "add 66": "not_found"])
            let order = reply.json["response"]["errors"].array.map { "\($0["change"]["op"].string ?? "") \($0["change"]["tweet_id"].string ?? "")" }
            #expect(order != ["add 2", "remove 9", "add 66"], "errors are not listed in the request's order")
            #expect(h.server.tweetIDs(of: id) == ["5", "4", "2", "1"])

            // Numbers as tweet ids are accepted too; an empty list is fine.
            let numeric = try await h.send("POST", Endpoint.curate.servedPath,
                                           json: Array(#"{"id":"\#(id)","changes":[{"op":"remove","tweet_id":18446744073709551615}]}"#.utf8))
            #expect(numeric.changeErrors == ["remove 18446744073709551615": "not_found"])
            #expect(try await h.curate(id, []).text == #"{"objects":{},"response":{"errors":[]}}"#)

            // 100 changes are fine, 101 are not.
            let hundred = try await h.curate(id, tweets(100).map { ("add", $0) })
            #expect(hundred.status == 200 && hundred.changeErrors.isEmpty)
            let tooMany = try await h.curate(id, tweets(101, from: 7_000).map { ("add", $0) })
            #expect(tooMany.status == 400 && tooMany.errorCode == 44)
            #expect(h.server.tweetIDs(of: id)?.count == 104)

            // A bad value is a 400; a body that is not the documented JSON is a 422 without a code.
            #expect(try await h.curate(id, [("add", "12x")]).errorCode == 44)
            #expect(try await h.curate(id, [("frob", "12")]).errorCode == 44)
            for body in ["{\"id\":", "[]", "{}", #"{"id":5,"changes":[]}"#, #"{"id":"\#(id)","changes":{}}"#,
                         #"{"id":"\#(id)","changes":[{"op":"add"}]}"#, #"{"id":"\#(id)","changes":[{"op":"add","tweet_id":true}]}"#, ""] {
                let bad = try await h.send("POST", Endpoint.curate.servedPath, json: Array(body.utf8))
                #expect(bad.status == 422, "\(body)")
                #expect(bad.json["errors"][0]["message"].string != nil, "\(body)")
                #expect(!bad.json["errors"][0]["code"].exists, "\(body)")
            }
            #expect(try await h.curate("custom-404", [("add", "1")]).errorCode == 34)
            #expect(h.server.tweetIDs(of: id)?.count == 104)
        }
    }

    @Test func capacityEvictsTheOldestAdded() async throws {
        var configuration = MockConfiguration()
        configuration.capacity = 5
        try await withHarness(configuration) { h in
            let id = try h.server.createCollection(tweetIDs: ["1", "2", "3", "4", "5"])
            // Moving 1 to the top does not make it newer-added.
            #expect(try await h.post(.move, [("id", id), ("tweet_id", "1"), ("relative_to", "5")]).changeErrors.isEmpty)
            #expect(try await h.curate(id, [("add", "6")]).changeErrors.isEmpty)
            #expect(h.server.tweetIDs(of: id) == ["6", "5", "4", "3", "2"])
            // A removed and re-added tweet counts from its new add.
            #expect(try await h.curate(id, [("remove", "2"), ("add", "2"), ("add", "7")]).changeErrors.isEmpty)
            #expect(Set(h.server.tweetIDs(of: id) ?? []) == ["4", "5", "6", "2", "7"])
            #expect(try await h.post(.add, [("id", id), ("tweet_id", "8")]).changeErrors.isEmpty)
            #expect(Set(h.server.tweetIDs(of: id) ?? []) == ["5", "6", "2", "7", "8"])
        }
    }

    @Test func listByUserTweetAndCursor() async throws {
        try await withHarness { h in
            let first = try h.server.createCollection(name: "first", tweetIDs: ["1"])
            let second = try h.server.createCollection(name: "second", tweetIDs: ["2"])
            let third = try h.server.createCollection(name: "third", tweetIDs: ["1", "2"])
            _ = try h.server.createCollection(name: "someone else's", tweetIDs: ["1"], userID: "42")

            let all = try await h.get(.list, [("user_id", h.credentials.userID)])
            #expect(all.status == 200)
            #expect(all.json["response"]["results"].array.compactMap { $0["timeline_id"].string } == [third, second, first])
            #expect(all.json["objects"]["timelines"].keys == [first, second, third])
            #expect(all.json["objects"]["timelines"][first]["name"].string == "first")
            #expect(!all.json["response"]["cursors"]["next_cursor"].exists)

            let byName = try await h.get(.list, [("screen_name", h.credentials.screenName), ("tweet_id", "1")])
            #expect(byName.json["response"]["results"].array.compactMap { $0["timeline_id"].string } == [third, first])

            let page1 = try await h.get(.list, [("user_id", h.credentials.userID), ("count", "2")])
            #expect(page1.json["response"]["results"].array.compactMap { $0["timeline_id"].string } == [third, second])
            let cursor = try #require(page1.json["response"]["cursors"]["next_cursor"].string)
            let page2 = try await h.get(.list, [("user_id", h.credentials.userID), ("count", "2"), ("cursor", cursor)])
            #expect(page2.json["response"]["results"].array.compactMap { $0["timeline_id"].string } == [first])

            #expect(try await h.get(.list, [("user_id", "77")]).json["response"]["results"].array.isEmpty)
            let missing = try await h.get(.list, [])
            #expect(missing.status == 400 && missing.errorCode == 38)
            #expect(try await h.get(.list, [("user_id", "1"), ("count", "0")]).errorCode == 44)
            #expect(try await h.get(.list, [("user_id", "1"), ("cursor", "abc")]).errorCode == 44)
        }
    }

    @Test func entriesParameters() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection(tweetIDs: tweets(30))
            let defaultPage = try await h.get(.entries, [("id", id)])
            #expect(defaultPage.json["response"]["timeline"].array.count == 20)
            #expect(defaultPage.json["response"]["timeline_id"].string == id)
            #expect(defaultPage.json["response"]["position"]["was_truncated"].bool == true)
            #expect(defaultPage.json["objects"]["timelines"][id]["name"].string == "Mock collection")
            let firstTweet = try #require(defaultPage.json["response"]["timeline"][0]["tweet"]["id"].string)
            #expect(defaultPage.json["objects"]["tweets"][firstTweet]["id_str"].string == firstTweet)
            for query in [[("count", "0")], [("count", "201")], [("count", "x")], [("max_position", "-1")], [("min_position", "1.5")]] {
                let reply = try await h.get(.entries, [("id", id)] + query)
                #expect(reply.status == 400 && reply.errorCode == 44, "\(query)")
            }
            #expect(try await h.get(.entries, [("count", "5")]).errorCode == 38)
            #expect(try await h.get(.entries, [("id", id), ("count", "200")]).json["response"]["timeline"].array.count == 30)

            // Deleted and protected tweets are not shown; an empty page has no positions.
            let hidden = try h.server.createCollection(tweetIDs: ["5", "6", "7"])
            try h.server.markDeleted(["6"])
            try h.server.markProtected(["7"])
            let visible = try await h.get(.entries, [("id", hidden)])
            #expect(visible.json["response"]["timeline"].array.compactMap { $0["tweet"]["id"].string } == ["5"])
            #expect(!visible.json["objects"]["tweets"]["6"].exists)
            try h.server.restoreTweets(["6", "7"])
            #expect(try await h.get(.entries, [("id", hidden)]).json["response"]["timeline"].array.count == 3)
            let empty = try await h.get(.entries, [("id", try h.server.createCollection())])
            #expect(empty.json["response"]["timeline"].array.isEmpty)
            #expect(empty.json["response"]["position"]["was_truncated"].bool == false)
            #expect(!empty.json["response"]["position"]["max_position"].exists)
        }
    }

    @Test func wrongMethodsAndUnknownPaths() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            for endpoint in Endpoint.allCases {
                let wrong = endpoint.method == "GET" ? "POST" : "GET"
                let reply = try await h.send(wrong, endpoint.servedPath, query: [("id", id)])
                #expect(reply.status == 400, "\(endpoint)")
                #expect(reply.errorCode == 86, "\(endpoint)")
            }
            for path in ["/1.1/collections/nope.json", "/1.1/collections/entries", "/1.1/statuses/update.json", "/2/collections/show.json", "/"] {
                let reply = try await h.send("GET", path)
                #expect(reply.status == 404, "\(path)")
                #expect(reply.errorCode == 34, "\(path)")
                #expect(reply.json["errors"][0]["message"].string == "Sorry, that page does not exist.")
            }
        }
    }

    @Test func everyAnswerHasDateAndRateLimitHeaders() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            let replies = [
                try await h.get(.show, [("id", id)]),
                try await h.get(.show, [("id", "custom-1")]),
                try await h.get(.show, [("id", id)], auth: .none),
                try await h.send("GET", "/1.1/unknown.json"),
                try await h.curate(id, [("add", "x")]),
            ]
            for reply in replies {
                #expect(reply.header("date")?.hasSuffix(" GMT") == true)
                #expect(reply.header("content-type")?.hasPrefix("application/json") == true)
                #expect(Int(reply.header("x-rate-limit-limit") ?? "") == 1000)
                #expect(Int(reply.header("x-rate-limit-remaining") ?? "") != nil)
                let reset = try #require(Int64(reply.header("x-rate-limit-reset") ?? ""))
                #expect(reset > Int64(h.server.now) && reset <= Int64(h.server.now) + 901)
            }
        }
    }

    @Test func onlyTheOwnerWrites() async throws {
        var configuration = MockConfiguration()
        configuration.credentials = [.test, .otherTest]
        try await withHarness(configuration) { h in
            let id = try h.server.createCollection(tweetIDs: ["1"])
            let other = MockCredentials.otherTest
            #expect(try await h.get(.entries, [("id", id)], credentials: other).status == 200)
            for reply in [try await h.post(.add, [("id", id), ("tweet_id", "2")], credentials: other),
                          try await h.curate(id, [("remove", "1")], credentials: other),
                          try await h.post(.destroy, [("id", id)], credentials: other)] {
                #expect(reply.status == 403 && reply.errorCode == 220)
            }
            #expect(h.server.tweetIDs(of: id) == ["1"])
            let created = try await h.post(.create, [("name", "mine")], credentials: other)
            let theirs = try #require(created.json["response"]["timeline_id"].string)
            #expect(created.json["objects"]["timelines"][theirs]["user_id"].string == other.userID)
        }
    }
}

extension Array where Element: Hashable {
    /// The elements in order, each once.
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
