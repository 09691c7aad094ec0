import CollectionsAPI
import AsyncHTTPClient
import CollectionsMock
import Foundation
import Synchronization
import Testing

/// Each fault, set from Swift and from the admin route, as a real client sees it.
@Suite struct FaultTests {
    @Test func failNext() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            h.server.failNext(3, status: 503, code: 130)
            for _ in 0..<3 {
                let reply = try await h.curate(id, [("add", "1")])
                #expect(reply.status == 503)
                #expect(reply.errorCode == 130)
                #expect(reply.json["errors"][0]["message"].string == "Over capacity")
                #expect(reply.header("x-rate-limit-remaining") != nil && reply.header("date") != nil)
            }
            #expect(h.server.tweetIDs(of: id) == [], "a failed request changes nothing")
            #expect(try await h.curate(id, [("add", "1")]).status == 200)
            #expect(h.server.journal().map(\.fault) == ["fail", "fail", "fail", nil])

            // Over HTTP, for one endpoint only, and without a code.
            let set = try await h.admin("POST", "faults", #"{"fail_next":{"count":2,"status":502,"code":null,"endpoint":"collections/entries/curate"}}"#)
            #expect(set.status == 200)
            #expect(set.json["rules"][0]["kind"].string == "fail" && set.json["rules"][0]["remaining"].int == 2)
            #expect(try await h.get(.show, [("id", id)]).status == 200, "other endpoints are not affected")
            for _ in 0..<2 {
                let reply = try await h.curate(id, [("add", "2")])
                #expect(reply.status == 502)
                #expect(!reply.json["errors"][0]["code"].exists)
            }
            #expect(try await h.curate(id, [("add", "2")]).status == 200)
            #expect(try await h.admin("GET", "faults").json["rules"].array.isEmpty)
        }
    }

    @Test func rateLimitedUntil() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            let until = h.server.now + 120
            h.server.rateLimit(until: until)
            for endpoint in [Endpoint.show, .entries] {
                let reply = try await h.get(endpoint, [("id", id)])
                #expect(reply.status == 429 && reply.errorCode == 88)
                #expect(reply.header("x-rate-limit-remaining") == "0")
                #expect(reply.header("x-rate-limit-reset") == String(Int64(until.rounded(.up))))
            }
            h.server.setClockOffset(121)
            #expect(try await h.get(.show, [("id", id)]).status == 200, "over once the mock's clock passes it")

            let later = Int64(h.server.now) + 60
            #expect(try await h.admin("POST", "faults", #"{"rate_limit_until":\#(later)}"#).json["rate_limit_until"].int == Int(later))
            let limited = try await h.curate(id, [("add", "1")])
            #expect(limited.status == 429 && limited.header("x-rate-limit-reset") == String(later))
            #expect(h.server.tweetIDs(of: id) == [])
            #expect(try await h.admin("POST", "faults", #"{"rate_limit_until":null}"#).json["rate_limit_until"].isNull)
            #expect(try await h.curate(id, [("add", "1")]).status == 200)
        }
    }

    @Test func latency() async throws {
        // Upper bounds are one whole delay wide, so that a loaded machine does not fail them.
        try await withHarness { h in
            let id = try h.server.createCollection()
            let clock = ContinuousClock()
            let delay = Duration.seconds(1)
            h.server.setLatency(delay)
            let single = try await clock.measure {
                let status = try await h.get(.show, [("id", id)]).status
                #expect(status == 200)
            }
            #expect(single >= delay)
            // Delays do not block the server: eight requests delayed far longer than the test
            // all reach it while none is answered. (No wall-clock bound: a loaded machine
            // cannot blur this.)
            h.server.setLatency(.seconds(600))
            let before = h.server.journal().count
            let answered = Answered()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        _ = try? await h.get(.show, [("id", id)])
                        answered.count.add(1, ordering: .relaxed)
                    }
                }
                while h.server.journal().count < before + 8 { try await Task.sleep(for: .milliseconds(10)) }
                #expect(answered.count.load(ordering: .relaxed) == 0)
                group.cancelAll()
            }
            // Admin answers are never delayed: with a 600 s latency set, an admin request that
            // waited for it could not end within half of it, however loaded the machine.
            let admin = try await clock.measure { _ = try await h.admin("GET", "faults") }
            #expect(admin < .seconds(300))

            #expect(try await h.admin("POST", "faults", #"{"latency_ms":0}"#).json["latency_ms"].double == 0)
            let undelayed = try await clock.measure { _ = try await h.get(.show, [("id", id)]) }
            #expect(undelayed < .seconds(300), "the 600 s latency is cleared")
            _ = try await h.admin("POST", "faults", #"{"latency_ms":150}"#)
            #expect(try await clock.measure { _ = try await h.get(.show, [("id", id)]) } >= .milliseconds(150))
        }
    }

    @Test func blackhole() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            h.server.setBlackhole(true)
            await #expect(throws: HTTPClientError.deadlineExceeded) {
                try await h.send("POST", Endpoint.add.servedPath, form: [("id", id), ("tweet_id", "1")], timeout: .milliseconds(300))
            }
            #expect(h.server.journal().last?.outcome == .blackholed)
            #expect(h.server.journal().last?.status == nil)
            #expect(h.server.tweetIDs(of: id) == [], "a blackholed request is not applied")
            h.server.setBlackhole(false)
            #expect(try await h.get(.show, [("id", id)]).status == 200)

            // Over HTTP: once.
            _ = try await h.admin("POST", "faults", #"{"blackhole":{"count":1}}"#)
            await #expect(throws: HTTPClientError.deadlineExceeded) {
                _ = try await h.send("GET", Endpoint.show.servedPath, query: [("id", id)], timeout: .milliseconds(300))
            }
            #expect(try await h.get(.show, [("id", id)]).status == 200)
            _ = try await h.admin("POST", "faults", #"{"blackhole":true}"#)
            #expect(try await h.admin("GET", "faults").json["rules"][0]["remaining"].isNull)
            _ = try await h.admin("POST", "faults", #"{"blackhole":false}"#)
            #expect(try await h.get(.show, [("id", id)]).status == 200)
        }
    }

    @Test func dropAfterApplyIsALostAnswer() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            h.server.dropAfterApply(next: 1)
            await #expect(throws: (any Error).self) { try await h.curate(id, [("add", "42"), ("remove", "9")]) }
            #expect(h.server.tweetIDs(of: id) == ["42"], "applied although the answer was lost")
            let entry = try #require(h.server.journal().last)
            #expect(entry.outcome == .dropped && entry.applied && entry.status == 200 && entry.fault == "drop_after_apply")
            // The replay is reconciled through the change envelope.
            #expect(try await h.curate(id, [("add", "42"), ("remove", "9")]).changeErrors == ["add 42": "duplicate", "remove 9": "not_found"])

            // Over HTTP, for one endpoint: a read goes through, the write's answer is lost.
            _ = try await h.admin("POST", "faults", #"{"drop_after_apply":{"count":1,"endpoint":"collections/entries/remove"}}"#)
            #expect(try await h.get(.entries, [("id", id)]).status == 200)
            await #expect(throws: (any Error).self) { try await h.post(.remove, [("id", id), ("tweet_id", "42")]) }
            #expect(h.server.tweetIDs(of: id) == [])
            #expect(try await h.post(.remove, [("id", id), ("tweet_id", "42")]).changeErrors == ["remove 42": "not_found"])
        }
    }

    @Test func resetMakesNothingAndTheClientSeesANetworkError() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            h.server.resetConnection(next: 1)
            await #expect(throws: (any Error).self) { try await h.curate(id, [("add", "42")]) }
            #expect(h.server.tweetIDs(of: id) == [], "a reset request is not applied")
            let entry = try #require(h.server.journal().last)
            #expect(entry.outcome == .reset && !entry.applied && entry.status == nil && entry.fault == "reset")
            #expect(try await h.curate(id, [("add", "42")]).changeErrors.isEmpty, "the next request is served")

            // The engine's own client, through AsyncHTTPClient: a create reset by the server is
            // a network error (connection reset), and made nothing.
            try await withCollectionsClient(h.server) { client in
                let before = h.server.snapshot().collections.count
                _ = try await h.admin("POST", "faults", #"{"reset":{"count":1,"endpoint":"collections/create"}}"#)
                #expect(try await client.show(try CollectionID(validating: id)).timelineID == id, "other endpoints are not affected")
                let error = await #expect(throws: CollectionsAPIError.self) { try await client.create(name: "Reset") }
                #expect(error?.code == .network)
                #expect(error?.httpStatus == nil)
                #expect(error?.message.contains("reset") == true, "\(error?.message ?? "")")
                #expect(h.server.snapshot().collections.count == before, "nothing created")
                let reset = try #require(h.server.journal().last)
                #expect(reset.endpoint == .create && reset.outcome == .reset && reset.fault == "reset" && !reset.applied && reset.status == nil)
                #expect(try await h.admin("GET", "faults").json["rules"].array.isEmpty)
                // Sent again, it creates one collection.
                #expect(try await client.create(name: "Reset").timeline?.name == "Reset")
                #expect(h.server.snapshot().collections.filter { $0.name == "Reset" }.count == 1)
            }
        }
    }

    @Test func resetAfterApplyIsALostAnswer() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            h.server.resetConnectionAfterApply(next: 1)
            await #expect(throws: (any Error).self) { try await h.curate(id, [("add", "42")]) }
            #expect(h.server.tweetIDs(of: id) == ["42"], "applied although the connection was reset")
            let entry = try #require(h.server.journal().last)
            #expect(entry.outcome == .reset && entry.applied && entry.status == 200 && entry.fault == "reset_after_apply")

            // Over HTTP, on collections/create, through the engine's client: a network error,
            // and the collection exists.
            try await withCollectionsClient(h.server) { client in
                let set = try await h.admin("POST", "faults", #"{"reset_after_apply":{"count":1,"endpoint":"collections/create"}}"#)
                #expect(set.json["rules"][0]["kind"].string == "reset_after_apply" && set.json["rules"][0]["endpoint"].string == "collections/create")
                let error = await #expect(throws: CollectionsAPIError.self) {
                    try await client.create(name: "Made", description: "then reset", timelineOrder: "tweet_chron")
                }
                #expect(error?.code == .network)
                let made = h.server.snapshot().collections.filter { $0.name == "Made" }
                #expect(made.count == 1 && made.first?.description == "then reset" && made.first?.timelineOrder == .tweetChron)
                let reset = try #require(h.server.journal().last)
                #expect(reset.endpoint == .create && reset.outcome == .reset && reset.applied && reset.status == 200)
                // The client can find what the create made.
                let listed = try await client.list(owner: .userID(h.server.credentials.userID))
                #expect(listed.timelineIDs.contains { listed.timelines[$0]?.name == "Made" })
            }
            // Refused when malformed, like the other kinds.
            #expect(try await h.admin("POST", "faults", #"{"reset":0}"#).status == 400)
            #expect(try await h.admin("POST", "faults", #"{"reset_after_apply":{"endpoint":"collections/nope"}}"#).status == 400)
        }
    }

    @Test func malformedBody() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            h.server.malformedBody(next: 1)
            let reply = try await h.curate(id, [("add", "1")])
            #expect(reply.status == 200)
            #expect((try? JSONSerialization.jsonObject(with: Data(reply.body))) == nil, "not JSON")
            #expect(h.server.tweetIDs(of: id) == ["1"])
            #expect(h.server.journal().last?.outcome == .malformed)

            _ = try await h.admin("POST", "faults", #"{"malformed_next":{"count":2,"body":"{\"objects\":"}}"#)
            for _ in 0..<2 {
                let broken = try await h.get(.show, [("id", id)])
                #expect(broken.status == 200 && broken.text == #"{"objects":"#)
            }
            #expect(try await h.get(.show, [("id", id)]).json["response"]["timeline_id"].string == id)
            // Error answers can be garbled too (status kept).
            _ = try await h.admin("POST", "faults", #"{"malformed_next":1}"#)
            let garbledError = try await h.get(.show, [("id", "custom-5")])
            #expect(garbledError.status == 404 && !garbledError.json.exists)
        }
    }

    @Test func truncatedBody() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection(tweetIDs: tweets(50))
            h.server.truncatedBody(next: 1)
            await #expect(throws: (any Error).self) { try await h.curate(id, [("add", "7")]) }
            #expect(h.server.tweetIDs(of: id)?.first == "7", "applied")
            #expect(h.server.journal().last?.outcome == .truncated)
            _ = try await h.admin("POST", "faults", #"{"truncated_next":{"count":1,"endpoint":"collections/entries"}}"#)
            await #expect(throws: (any Error).self) { try await h.get(.entries, [("id", id), ("count", "200")]) }
            #expect(try await h.get(.entries, [("id", id), ("count", "200")]).json["response"]["timeline"].array.count == 51)
        }
    }

    @Test func clockOffset() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            let realNow = Int64(Date().timeIntervalSince1970)
            h.server.setClockOffset(-600)
            let skewed = try await h.send("GET", Endpoint.show.servedPath, query: [("id", id)], timestamp: realNow)
            #expect(skewed.status == 401 && skewed.errorCode == 135)
            // A client corrects its clock from the Date header and succeeds.
            let date = try #require(skewed.header("date"))
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
            let serverTime = try #require(formatter.date(from: date)).timeIntervalSince1970
            #expect(abs(serverTime - Double(realNow - 600)) <= 30, "the Date header shows the offset (slack for a loaded machine)")
            #expect(try await h.send("GET", Endpoint.show.servedPath, query: [("id", id)], timestamp: Int64(serverTime)).status == 200)

            // Bracket the answer's "now" by real time taken around the call: under load seconds pass.
            let before = Date().timeIntervalSince1970
            let set = try await h.admin("POST", "faults", #"{"clock_offset_s":3600}"#)
            let after = Date().timeIntervalSince1970
            #expect(set.json["clock_offset_s"].double == 3600)
            let skewedNow = set.json["now"].double ?? 0
            #expect(skewedNow >= before + 3600 - 1 && skewedNow <= after + 3600 + 1)
            #expect(try await h.send("GET", Endpoint.show.servedPath, query: [("id", id)], timestamp: realNow).errorCode == 135)
            _ = try await h.admin("DELETE", "faults")
            #expect(try await h.send("GET", Endpoint.show.servedPath, query: [("id", id)], timestamp: realNow).status == 200)
        }
    }

    @Test func deletedAndProtectedTweets() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection(tweetIDs: ["5", "6", "8"])
            let marked = try await h.admin("POST", "tweets", #"{"deleted":["5","7"],"protected":["6"]}"#)
            #expect(marked.json["deleted"].array.compactMap(\.string) == ["5", "7"])
            #expect(marked.json["protected"].array.compactMap(\.string) == ["6"])
            #expect(try await h.post(.add, [("id", id), ("tweet_id", "7")]).changeErrors == ["add 7": "not_found"])
            let page = try await h.get(.entries, [("id", id)])
            #expect(page.json["response"]["timeline"].array.compactMap { $0["tweet"]["id"].string } == ["8"])
            // Still in the collection: removable.
            #expect(try await h.post(.remove, [("id", id), ("tweet_id", "5")]).changeErrors.isEmpty)
            _ = try await h.admin("POST", "tweets", #"{"restored":["6","7"]}"#)
            #expect(try await h.post(.add, [("id", id), ("tweet_id", "7")]).changeErrors.isEmpty)
            #expect(try await h.get(.entries, [("id", id)]).json["response"]["timeline"].array.count == 3)
            #expect(try await h.admin("POST", "tweets", #"{"deleted":["x"]}"#).status == 400)
        }
    }

    @Test func outageRefusesConnectionsAndRecoversOnTheSamePort() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            let port = h.port
            #expect(try await h.get(.show, [("id", id)]).status == 200)  // a pooled keep-alive connection now exists
            #expect(!connectionRefused(port: port))

            await h.server.beginOutage()
            #expect(h.server.isInOutage)
            #expect(connectionRefused(port: port))
            await #expect(throws: (any Error).self) { try await h.send("GET", Endpoint.show.servedPath, query: [("id", id)], timeout: .seconds(1)) }
            #expect(h.server.faults.outage)

            try await h.server.endOutage()
            #expect(h.server.port == port && !h.server.isInOutage)
            #expect(!connectionRefused(port: port))
            #expect(try await h.get(.show, [("id", id)]).status == 200)
            #expect(h.server.tweetIDs(of: id) == [], "state survives an outage")
        }
    }

    @Test func outageOverHTTPForSomeSeconds() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            let clock = ContinuousClock()
            let asked = clock.now
            let reply = try await h.admin("POST", "outage", #"{"seconds":3}"#)
            #expect(reply.status == 200 && reply.json["outage"].bool == true)
            // Refused as soon as the answer arrived; checked only when this (possibly starved) test
            // process got the answer well inside the outage, so a loaded machine cannot fail it.
            if clock.now - asked < .seconds(2) {
                #expect(connectionRefused(port: h.port), "refused as soon as the answer arrived")
            }
            // The recovery is scheduled by time: wait for it (bounded).
            #expect(await eventually { !connectionRefused(port: h.port) })
            #expect(try await h.get(.show, [("id", id)]).status == 200)
            #expect(try await h.admin("POST", "outage", #"{"seconds":-1}"#).status == 400)
        }
    }

    @Test func outageThroughTheAdminPort() async throws {
        var configuration = MockConfiguration()
        configuration.adminPort = 0
        try await withHarness(configuration) { h in
            let adminPort = try #require(h.server.adminPort)
            #expect(adminPort != h.port)
            #expect(h.server.adminURL == "http://127.0.0.1:\(adminPort)/__mock")
            let id = try h.server.createCollection()
            #expect(try await h.admin("POST", "outage", #"{"on":true}"#, port: adminPort).json["outage"].bool == true)
            #expect(connectionRefused(port: h.port))
            #expect(try await h.admin("GET", "faults", port: adminPort).json["outage"].bool == true)
            #expect(try await h.admin("POST", "outage", #"{"on":false}"#, port: adminPort).json["outage"].bool == false)
            #expect(!connectionRefused(port: h.port))
            #expect(try await h.get(.show, [("id", id)]).status == 200)
            // The admin port serves nothing else.
            #expect(try await h.raw("GET", Endpoint.show.servedPath, port: adminPort).status == 404)
        }
    }

    @Test func faultsAreConsumedOldestFirstAndCleared() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            h.server.failNext(1, status: 500, code: 131)
            h.server.failNext(1, status: 503, code: 130)
            h.server.setLatency(.milliseconds(1))
            #expect(try await h.get(.show, [("id", id)]).errorCode == 131)
            #expect(try await h.get(.show, [("id", id)]).errorCode == 130)
            h.server.failNext(5, status: 500, code: 131)
            h.server.setClockOffset(10)
            h.server.clearFaults()
            #expect(h.server.faults == MockFaults())
            #expect(try await h.get(.show, [("id", id)]).status == 200)

            // Bad instructions are refused whole, with a reason.
            for body in [#"{"fail_next":{"count":1}}"#, #"{"nope":1}"#, #"{"latency_ms":-5}"#, "{", #"{"drop_after_apply":0}"#,
                         #"{"fail_next":{"status":500,"endpoint":"collections/nope"}}"#, #"{"latency_ms":5,"blackhole":"yes"}"#] {
                let reply = try await h.admin("POST", "faults", body)
                #expect(reply.status == 400, "\(body)")
                #expect(reply.json["error"].string?.isEmpty == false, "\(body)")
            }
            #expect(h.server.faults == MockFaults(), "nothing applied from a refused document")
        }
    }
}

/// Requests answered so far, shared with the tasks that send them.
private final class Answered: Sendable {
    let count = Atomic<Int>(0)
}

/// The engine's client (`CollectionsClient` over `AsyncHTTPClientTransport`) pointed at `server`.
private func withCollectionsClient(_ server: MockCollectionsServer, _ body: (CollectionsClient) async throws -> Void) async throws {
    let transport = AsyncHTTPClientTransport(connectTimeout: .seconds(2))
    do {
        var configuration = CollectionsClient.Configuration()
        configuration.requestTimeout = .seconds(10)
        let client = try CollectionsClient(baseURL: server.baseURL, credentials: server.credentials.apiCredentials,
                                           transport: transport, configuration: configuration)
        try await body(client)
    } catch {
        try? await transport.shutdown()
        throw error
    }
    try await transport.shutdown()
}
