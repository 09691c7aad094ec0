import CollectionsAPI
@testable import CollectionsMock
import Testing

/// Rate-limit windows per endpoint and token, as the `x-rate-limit-*` headers show them.
@Suite struct RateLimitTests {
    @Test func windowsPerEndpointAndToken() async throws {
        var configuration = MockConfiguration()
        configuration.credentials = [.test, .otherTest]
        configuration.rateLimits = MockRateLimits(window: .seconds(60), defaultLimit: 50, limits: [.entries: 3])
        try await withHarness(configuration) { h in
            let id = try h.server.createCollection()
            var resets: Set<String> = []
            for remaining in [2, 1, 0] {
                let reply = try await h.get(.entries, [("id", id)])
                #expect(reply.status == 200)
                #expect(reply.header("x-rate-limit-limit") == "3")
                #expect(reply.header("x-rate-limit-remaining") == String(remaining))
                resets.insert(reply.header("x-rate-limit-reset") ?? "")
            }
            #expect(resets.count == 1, "one window")
            let reset = try #require(Int64(resets.first!))
            #expect(reset > Int64(h.server.now) && reset <= Int64(h.server.now) + 61)

            let limited = try await h.get(.entries, [("id", id)])
            #expect(limited.status == 429 && limited.errorCode == 88)
            #expect(limited.header("x-rate-limit-remaining") == "0")
            #expect(limited.header("x-rate-limit-reset") == String(reset))
            // A 429 does not move the window.
            #expect(try await h.get(.entries, [("id", id)]).header("x-rate-limit-remaining") == "0")

            // Other endpoints and other tokens have their own windows.
            let show = try await h.get(.show, [("id", id)])
            #expect(show.status == 200 && show.header("x-rate-limit-limit") == "50" && show.header("x-rate-limit-remaining") == "49")
            let other = try await h.get(.entries, [("id", id)], credentials: .otherTest)
            #expect(other.status == 200 && other.header("x-rate-limit-remaining") == "2")
            let bearer = try await h.get(.entries, [("id", id)], auth: .bearer(MockCredentials.test.bearerToken!))
            #expect(bearer.status == 200, "a Bearer token is another token")

            // The window ends by the mock's clock.
            h.server.setClockOffset(61)
            let fresh = try await h.get(.entries, [("id", id)])
            #expect(fresh.status == 200 && fresh.header("x-rate-limit-remaining") == "2")
            #expect(Int64(fresh.header("x-rate-limit-reset") ?? "") ?? 0 > reset)
        }
    }

    @Test func unauthenticatedAnswersDoNotSpendTheBudget() async throws {
        var configuration = MockConfiguration()
        configuration.rateLimits = MockRateLimits(defaultLimit: 2)
        try await withHarness(configuration) { h in
            let id = try h.server.createCollection()
            for _ in 0..<3 {
                let reply = try await h.get(.show, [("id", id)], auth: .none)
                #expect(reply.status == 400 && reply.header("x-rate-limit-remaining") == "2")
            }
            #expect(try await h.get(.show, [("id", id)]).header("x-rate-limit-remaining") == "1")
            // An injected failure shows the budget without spending it.
            h.server.failNext(1, status: 503, code: 130)
            #expect(try await h.get(.show, [("id", id)]).header("x-rate-limit-remaining") == "1")
        }
    }

    @Test func limitsSetOverHTTP() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            let set = try await h.admin("POST", "rate_limits", #"{"window_s":30,"default":5,"limits":{"collections/entries/curate":1}}"#)
            #expect(set.status == 200)
            #expect(set.json["window_s"].double == 30)
            #expect(set.json["limits"]["collections/entries/curate"].int == 1)
            #expect(set.json["limits"]["collections/show"].int == 5)
            #expect(h.server.rateLimits == MockRateLimits(window: .seconds(30), defaultLimit: 5, limits: [.curate: 1]))
            #expect(try await h.curate(id, [("add", "1")]).status == 200)
            let limited = try await h.curate(id, [("add", "2")])
            #expect(limited.status == 429 && limited.errorCode == 88)
            #expect(h.server.tweetIDs(of: id) == ["1"])
            #expect(try await h.get(.show, [("id", id)]).header("x-rate-limit-limit") == "5")
            #expect(try await h.admin("POST", "rate_limits", #"{"limits":{"nope":1}}"#).status == 400)
            #expect(try await h.admin("GET", "rate_limits").json["default"].int == 5)
        }
    }

    @Test func limiterAsAValue() {
        var limiter = RateLimiter(limits: MockRateLimits(window: .seconds(10), defaultLimit: 2))
        #expect(limiter.peek(.show, token: "a", now: 100) == .init(limit: 2, remaining: 2, reset: 110))
        #expect(limiter.consume(.show, token: "a", now: 100.5) == (true, .init(limit: 2, remaining: 1, reset: 111)))
        #expect(limiter.consume(.show, token: "a", now: 101).allowed)
        #expect(limiter.consume(.show, token: "a", now: 110).allowed == false)
        #expect(limiter.consume(.show, token: "b", now: 110).allowed)
        #expect(limiter.consume(.list, token: "a", now: 110).allowed)
        #expect(limiter.consume(.show, token: "a", now: 110.5) == (true, .init(limit: 2, remaining: 1, reset: 121)))
    }
}
