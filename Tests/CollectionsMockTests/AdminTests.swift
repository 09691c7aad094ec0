import CollectionsAPI
import CollectionsMock
import Foundation
import Testing

/// The admin routes over HTTP (JSON in, JSON out), and their Swift counterparts.
@Suite struct AdminTests {
    @Test func seedStateAndReset() async throws {
        try await withHarness { h in
            let seeded = try await h.admin("POST", "seed", """
                {"collections":[
                   {"id":"custom-77","name":"Seeded","description":"d","url":"https://x.test","entries":["10","11",{"tweet_id":"12"}]},
                   {"name":"Chron","timeline_order":"tweet_chron","user_id":"42","entries":[{"tweet_id":"5"},"3"]}],
                 "deleted_tweets":["99"],"protected_tweets":["98"]}
                """)
            #expect(seeded.status == 200)
            let ids = seeded.json["collection_ids"].array.compactMap(\.string)
            #expect(ids.count == 2 && ids[0] == "custom-77")

            // The seeded state is what the API serves.
            let page = try await h.get(.entries, [("id", "custom-77")])
            #expect(page.json["response"]["timeline"].array.compactMap { $0["tweet"]["id"].string } == ["12", "11", "10"])
            #expect(try await h.get(.entries, [("id", ids[1])]).json["response"]["timeline"].array.compactMap { $0["tweet"]["id"].string } == ["3", "5"])
            #expect(try await h.post(.add, [("id", "custom-77"), ("tweet_id", "99")]).changeErrors == ["add 99": "not_found"])

            let state = try await h.admin("GET", "state")
            #expect(state.status == 200)
            let first = state.json["collections"][0]
            #expect(first["id"].string == "custom-77" && first["name"].string == "Seeded" && first["description"].string == "d")
            #expect(first["url"].string == "https://x.test" && first["user_id"].string == h.credentials.userID)
            #expect(first["timeline_order"].string == "curation_reverse_chron")
            #expect(first["entries"].array.compactMap { $0["tweet_id"].string } == ["10", "11", "12"], "oldest-added first")
            #expect(first["entries"].array.allSatisfy { $0["sort_index"].string != nil })
            #expect(state.json["collections"][1]["user_id"].string == "42")
            #expect(state.json["deleted_tweets"].array.compactMap(\.string) == ["99"])
            #expect(state.json["protected_tweets"].array.compactMap(\.string) == ["98"])

            // The state round-trips through seed, sort indexes included.
            let before = h.server.snapshot()
            #expect(try await h.admin("POST", "reset").json["reset"].bool == true)
            #expect(h.server.snapshot() == MockSnapshot())
            #expect(try await h.get(.show, [("id", "custom-77")]).status == 404)
            #expect(try await h.admin("POST", "seed", state.text).status == 200)
            #expect(h.server.snapshot() == before)
            // Later adds still land on top of seeded sort indexes.
            #expect(try await h.post(.add, [("id", "custom-77"), ("tweet_id", "13")]).changeErrors.isEmpty)
            #expect(h.server.tweetIDs(of: "custom-77") == ["13", "12", "11", "10"])

            for bad in [#"{"collections":[{"id":"nope"}]}"#, #"{"collections":[{"entries":["1","1"]}]}"#,
                        #"{"collections":[{"entries":["x"]}]}"#, #"{"collection":[]}"#, "[1"] {
                let reply = try await h.admin("POST", "seed", bad)
                #expect(reply.status == 400, "\(bad)")
                #expect(reply.json["error"].string != nil, "\(bad)")
            }
            #expect(h.server.snapshot().collections.count == 2, "refused seeds change nothing")
        }
    }

    @Test func journal() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            let before = h.server.now
            _ = try await h.post(.add, [("id", id), ("tweet_id", "1")])
            _ = try await h.curate(id, [("add", "1")])
            _ = try await h.get(.entries, [("id", id), ("count", "5")], auth: .none)
            _ = try await h.admin("GET", "state")  // admin requests are not journaled

            let journal = h.server.journal()
            #expect(journal.map(\.sequence) == [1, 2, 3])
            #expect(journal.map(\.method) == ["POST", "POST", "GET"])
            #expect(journal.map(\.path) == [Endpoint.add.servedPath, Endpoint.curate.servedPath, Endpoint.entries.servedPath])
            #expect(journal.map(\.status) == [200, 200, 400])
            #expect(journal.map(\.applied) == [true, false, false])
            #expect(journal[0].parameters == ["id": id, "tweet_id": "1"], "oauth_* parameters are left out")
            #expect(journal[1].body?.contains("\"changes\"") == true)
            #expect(journal[2].errorCode == 215 && journal[2].userID == nil)
            #expect(journal.allSatisfy { $0.time >= before - 1 && $0.time <= h.server.now + 1 })

            let over = try await h.admin("GET", "journal")
            let requests = over.json["requests"].array
            #expect(requests.count == 3)
            #expect(requests[0]["method"].string == "POST" && requests[0]["path"].string == Endpoint.add.servedPath)
            #expect(requests[0]["endpoint"].string == "collections/entries/add")
            #expect(requests[0]["params"]["tweet_id"].string == "1")
            #expect(requests[0]["status"].int == 200 && requests[0]["applied"].bool == true)
            #expect(requests[0]["outcome"].string == "answered" && requests[0]["fault"].isNull)
            #expect(requests[0]["user_id"].string == h.credentials.userID)
            #expect(requests[0]["time"].double != nil)
            #expect(requests[2]["code"].int == 215)
            #expect(try await h.admin("GET", "journal?since=2").json["requests"].array.compactMap { $0["sequence"].int } == [3])

            #expect(try await h.admin("DELETE", "journal").json["cleared"].bool == true)
            #expect(h.server.journal().isEmpty)
            _ = try await h.get(.show, [("id", id)])
            #expect(h.server.journal().map(\.sequence) == [4])
        }
    }

    @Test func journalIsCapped() async throws {
        var configuration = MockConfiguration()
        configuration.journalLimit = 3
        try await withHarness(configuration) { h in
            let id = try h.server.createCollection()
            for _ in 0..<5 { _ = try await h.get(.show, [("id", id)]) }
            #expect(h.server.journal().map(\.sequence) == [3, 4, 5])
        }
    }

    @Test func routesAndErrors() async throws {
        try await withHarness { h in
            let index = try await h.admin("GET", "")
            #expect(index.status == 200)
            #expect(index.json["routes"].array.count >= 10)
            #expect(index.header("content-type") == "application/json")
            #expect(try await h.admin("GET", "nope").status == 404)
            #expect(try await h.admin("PUT", "state").status == 405)
            let notJSON = try await h.admin("POST", "faults", "latency_ms=5")
            #expect(notJSON.status == 400 && notJSON.json["error"].string?.contains("JSON") == true)
            // Admin routes need no credentials and ignore faults and rate limits.
            h.server.failNext(5, status: 500, code: 131)
            #expect(try await h.admin("GET", "state").status == 200)
            #expect(h.server.faults.rules.first?.remaining == 5)
        }
    }

    @Test func swiftOperations() async throws {
        try await withMockServer { server in
            #expect(server.baseURL == "http://127.0.0.1:\(server.port)/1.1")
            #expect(server.adminURL == "http://127.0.0.1:\(server.port)/__mock")
            #expect(server.port > 0)
            #expect(server.credentials == .test)
            let ids = try server.seed([MockCollection(id: "custom-5", tweetIDs: ["1", "2"]), MockCollection(tweetIDs: [])])
            #expect(ids.first == "custom-5" && ids.count == 2)
            #expect(server.entries(of: "custom-5")?.map(\.tweetID) == ["2", "1"])
            #expect(server.entries(of: "custom-6") == nil)
            #expect(throws: MockError.self) { try server.seed([MockCollection(tweetIDs: ["0"])]) }
            #expect(throws: MockError.self) { try server.markDeleted(["-1"]) }
            try server.markDeleted(["3"])
            #expect(server.snapshot().deletedTweets == ["3"])
            server.reset()
            #expect(server.snapshot() == MockSnapshot())
            server.inject(.blackhole, count: nil, endpoint: .curate)
            #expect(server.faults.rules == [MockFaultRule(fault: .blackhole, remaining: nil, endpoint: .curate)])
            server.setBlackhole(false)
            #expect(server.faults.rules.isEmpty)
        }
    }

    /// A server shuts down even with a request that will never be answered: it closes that
    /// connection itself rather than wait out the grace period (an hour here, so only that close
    /// can end the test within its time limit; no wall-clock bound that a loaded machine blurs).
    @Test(.timeLimit(.minutes(1)))
    func shutdownClosesBlackholedConnections() async throws {
        var configuration = MockConfiguration()
        configuration.shutdownGracePeriod = .seconds(3_600)
        try await withHarness(configuration) { h in
            h.server.setBlackhole(true)
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Nor can the client's own timeout end it.
                    await #expect(throws: (any Error).self) {
                        try await h.send("GET", Endpoint.show.servedPath, query: [("id", "custom-1")], timeout: .hours(1))
                    }
                }
                #expect(await eventually { h.server.journal().count == 1 })
                await h.server.shutdown()
                await group.waitForAll()
            }
        }
    }
}
