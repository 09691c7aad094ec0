import AsyncHTTPClient
@testable import CollectionsAPI
import Foundation
import Logging
import Synchronization
import Testing
import TestSupport

/// The client over real loopback HTTP against a scripted server.
@Suite("CollectionsClient over loopback HTTP")
struct ClientTests {
    static let secrets = (consumerKey: "test-consumer-key", consumerSecret: "consumer-SECRET-abc",
                          token: "1-test-access-token", tokenSecret: "token-SECRET-xyz", bearer: "bearer-SECRET-123")
    static let credentials = APICredentials.oauth1(consumerKey: secrets.consumerKey, consumerSecret: secrets.consumerSecret,
                                                   accessToken: secrets.token, accessTokenSecret: secrets.tokenSecret)

    static func ok(_ body: String, _ extra: [(String, String)] = []) -> TestServer.Reply {
        .respond(status: 200, headers: jsonHeaders + extra, body: body)
    }
    static let emptyEnvelope = #"{"objects":{},"response":{"errors":[]}}"#

    func client(_ server: TestServer, credentials: APICredentials = credentials, timeout: Duration = .seconds(10),
                logger: Logger? = nil) throws -> (CollectionsClient, AsyncHTTPClientTransport) {
        let transport = AsyncHTTPClientTransport()
        var configuration = CollectionsClient.Configuration()
        configuration.requestTimeout = timeout
        let client = try CollectionsClient(baseURL: server.baseURL, credentials: credentials, transport: transport,
                                           configuration: configuration,
                                           logger: logger ?? Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        return (client, transport)
    }

    /// Recomputes the signature of a received request from its own parameters: what a server does.
    static func verify(_ request: TestServer.Request, port: Int) -> Bool {
        guard let header = request.header("authorization"), let oauth = OAuth1.parseAuthorizationHeader(header) else { return false }
        let parts = request.uri.split(separator: "?", maxSplits: 1)
        var parameters = parts.count > 1 ? PercentEncoding.parseQuery(parts[1]) ?? [] : []
        if request.header("content-type") == "application/x-www-form-urlencoded" {
            parameters += PercentEncoding.parseQuery(Substring(request.body)) ?? []
        }
        parameters += oauth.filter { $0.0 != "oauth_signature" }
        let base = OAuth1.signatureBaseString(method: request.method, baseURL: "http://127.0.0.1:\(port)\(parts[0])", parameters: parameters)
        return oauth.first { $0.0 == "oauth_signature" }?.1
            == OAuth1.signature(baseString: base, consumerSecret: secrets.consumerSecret, tokenSecret: secrets.tokenSecret)
    }

    @Test("every endpoint: method, path, parameters and a signature a server can verify")
    func endpoints() async throws {
        try await withTestServer({ request in
            switch request.uri.split(separator: "?")[0] {
            case "/1.1/collections/entries.json":
                return Self.ok(#"{"objects":{},"response":{"timeline_id":"custom-1","timeline":[],"position":{"was_truncated":false}}}"#)
            case "/1.1/collections/show.json", "/1.1/collections/create.json", "/1.1/collections/update.json":
                return Self.ok(#"{"objects":{"timelines":{"custom-1":{"name":"n"}}},"response":{"timeline_id":"custom-1"}}"#)
            case "/1.1/collections/list.json":
                return Self.ok(#"{"objects":{},"response":{"results":[],"cursors":{}}}"#)
            case "/1.1/collections/destroy.json":
                return Self.ok(#"{"destroyed":true}"#)
            default:
                return Self.ok(Self.emptyEnvelope)
            }
        }) { server in
            let (client, transport) = try client(server)
            defer { Task { try await transport.shutdown() } }
            _ = try await client.entries(of: "custom-1", count: 50, maxPosition: "99")
            _ = try await client.show("custom-1")
            _ = try await client.list(owner: .screenName("a b&c"), count: 10, cursor: "x")
            _ = try await client.create(name: "Ladies + Gentlemen", description: "☃", url: "https://e.x/?a=b", timelineOrder: "tweet_chron")
            _ = try await client.update("custom-1", name: "n", description: "", url: "")
            #expect(try await client.destroy("custom-1"))
            #expect(try await client.add("5", to: "custom-1", relativeTo: "6", above: false).outcomes.map(\.outcome) == [.applied])
            #expect(try await client.remove("5", from: "custom-1").outcomes.map(\.outcome) == [.applied])
            #expect(try await client.move("5", in: "custom-1", relativeTo: "7") == .applied)
            let changes = [EntryChange(op: .remove, tweetID: "1"), EntryChange(op: .add, tweetID: "2")]
            #expect(try await client.curate("custom-1", changes: changes).outcomes.map(\.outcome) == [.applied, .applied])

            let requests = server.requests
            #expect(requests.map { "\($0.method) \($0.uri.split(separator: "?")[0])" } == [
                "GET /1.1/collections/entries.json", "GET /1.1/collections/show.json", "GET /1.1/collections/list.json",
                "POST /1.1/collections/create.json", "POST /1.1/collections/update.json", "POST /1.1/collections/destroy.json",
                "POST /1.1/collections/entries/add.json", "POST /1.1/collections/entries/remove.json",
                "POST /1.1/collections/entries/move.json", "POST /1.1/collections/entries/curate.json",
            ])
            #expect(requests.allSatisfy { Self.verify($0, port: server.port) }, "every signature verifies")
            #expect(requests[0].uri == "/1.1/collections/entries.json?id=custom-1&count=50&max_position=99")
            #expect(requests[2].uri.contains("screen_name=a%20b%26c"))
            #expect(requests[3].body == "name=Ladies%20%2B%20Gentlemen&description=%E2%98%83&url=https%3A%2F%2Fe.x%2F%3Fa%3Db&timeline_order=tweet_chron")
            #expect(requests[4].body == "id=custom-1&name=n&description=&url=", "update always sends the full triple")
            // curate: a JSON body, not signed (the signature covers only the oauth parameters).
            let curate = requests[9]
            #expect(curate.header("content-type") == "application/json")
            let body = try JSONSerialization.jsonObject(with: Data(curate.body.utf8)) as? [String: Any]
            #expect(body?["id"] as? String == "custom-1")
            #expect((body?["changes"] as? [[String: String]]) == [["op": "remove", "tweet_id": "1"], ["op": "add", "tweet_id": "2"]])
            #expect(!(curate.header("authorization") ?? "").contains("oauth_body_hash"))
        }
    }

    @Test("two attempts of the same request carry different nonces (and a Bearer token is sent as is)")
    func freshNonces() async throws {
        try await withTestServer({ _ in Self.ok(Self.emptyEnvelope) }) { server in
            let (client, transport) = try client(server)
            _ = try await client.remove("5", from: "custom-1")
            _ = try await client.remove("5", from: "custom-1")
            let nonces = server.requests.compactMap { request in
                request.header("authorization").flatMap(OAuth1.parseAuthorizationHeader)?.first { $0.0 == "oauth_nonce" }?.1
            }
            #expect(nonces.count == 2 && nonces[0] != nonces[1])
            let (bearer, bearerTransport) = try self.client(server, credentials: .bearer(Self.secrets.bearer))
            _ = try await bearer.remove("6", from: "custom-1")
            #expect(server.requests.last?.header("authorization") == "Bearer \(Self.secrets.bearer)")
            try await transport.shutdown()
            try await bearerTransport.shutdown()
        }
    }

    @Test("the clock offset moves oauth_timestamp")
    func clockOffset() async throws {
        try await withTestServer({ _ in Self.ok(Self.emptyEnvelope) }) { server in
            let (client, transport) = try client(server)
            let serverDate = Date().addingTimeInterval(3_600)
            client.setClockOffset(.seconds(3_600))
            _ = try await client.remove("5", from: "custom-1")
            let stamp = server.requests[0].header("authorization").flatMap(OAuth1.parseAuthorizationHeader)?
                .first { $0.0 == "oauth_timestamp" }.flatMap { Double($0.1) }
            #expect(abs((stamp ?? 0) - serverDate.timeIntervalSince1970) < 5)
            try await transport.shutdown()
        }
    }

    @Test("errors are classified; rate-limit headers are kept per endpoint")
    func errorsAndRateLimits() async throws {
        let reset = Int(Date().timeIntervalSince1970) + 900
        try await withTestServer({ request in
            request.uri.contains("curate")
                ? .respond(status: 429, headers: jsonHeaders + [("x-rate-limit-limit", "15"), ("x-rate-limit-remaining", "0"), ("x-rate-limit-reset", "\(reset)")],
                           body: #"{"errors":[{"code":88,"message":"Rate limit exceeded"}]}"#)
                : .respond(status: 404, headers: jsonHeaders + [("x-rate-limit-limit", "1000"), ("x-rate-limit-remaining", "999"), ("x-rate-limit-reset", "\(reset)")],
                           body: #"{"errors":[{"code":34,"message":"Sorry, that page does not exist."}]}"#)
        }) { server in
            let (client, transport) = try client(server)
            let limited = await #expect(throws: CollectionsAPIError.self) {
                try await client.curate("custom-1", changes: [EntryChange(op: .remove, tweetID: "1")])
            }
            #expect(limited?.code == .rateLimited && limited?.rateLimitReset == Date(timeIntervalSince1970: TimeInterval(reset)))
            let missing = await #expect(throws: CollectionsAPIError.self) { try await client.show("custom-404") }
            #expect(missing?.code == .notFound && missing?.apiErrorCode == 34)
            #expect(client.rateLimit(for: .curate)?.remaining == 0)
            #expect(client.rateLimit(for: .show)?.remaining == 999)
            try await transport.shutdown()
        }
    }

    @Test("more than 100 changes are refused before sending")
    func tooManyChanges() async throws {
        try await withTestServer({ _ in Self.ok(Self.emptyEnvelope) }) { server in
            let (client, transport) = try client(server)
            let changes = (1...101).map { EntryChange(op: .remove, tweetID: String($0)) }
            let error = await #expect(throws: CollectionsAPIError.self) { try await client.curate("custom-1", changes: changes) }
            #expect(error?.code == .tooManyChanges)
            #expect(server.requests.isEmpty)
            _ = try await client.curate("custom-1", changes: Array(changes.prefix(100)))
            #expect(server.requests.count == 1)
            try await transport.shutdown()
        }
    }

    @Test("a hung server: the request timeout and the caller's time limit hold")
    func timeouts() async throws {
        try await withTestServer({ _ in .hang }) { server in
            let (client, transport) = try client(server, timeout: .milliseconds(300))
            let clock = ContinuousClock()
            var start = clock.now
            let error = await #expect(throws: CollectionsAPIError.self) { try await client.remove("5", from: "custom-1") }
            #expect(error?.code == .timeout)
            // Each far below the 30 s default request timeout it would wait for if the limit were
            // ignored, with room for a loaded machine.
            #expect(clock.now - start < .seconds(25))
            start = clock.now
            let deadlineError = await #expect(throws: CollectionsAPIError.self) {
                try await client.remove("5", from: "custom-1", timeout: .milliseconds(100))
            }
            #expect(deadlineError?.code == .timeout)
            #expect(clock.now - start < .seconds(25))
            let past = await #expect(throws: CollectionsAPIError.self) {
                try await client.remove("5", from: "custom-1", timeout: .seconds(-1))
            }
            #expect(past?.code == .timeout)
            #expect(server.requests.count == 2, "a request with no time left is not sent")
            try await transport.shutdown()
        }
    }

    @Test("cancelling the task ends a request to a hung server")
    func cancellation() async throws {
        try await withTestServer({ _ in .hang }) { server in
            let (client, transport) = try client(server)
            let task = Task { try await client.remove("5", from: "custom-1") }
            // Cancel once the request has reached the server.
            while server.requests.isEmpty { await Task.yield() }
            task.cancel()
            let result = await task.result
            #expect(throws: CollectionsAPIError.self) { try result.get() }
            if case .failure(let error as CollectionsAPIError) = result { #expect(error.code == .cancelled) }
            try await transport.shutdown()
        }
    }

    @Test("refused and dropped connections are network errors")
    func networkErrors() async throws {
        let port = try await withTestServer({ _ in .close }) { server in
            let (api, transport) = try self.client(server)
            let dropped = await #expect(throws: CollectionsAPIError.self) { try await api.remove("5", from: "custom-1") }
            #expect(dropped?.code == .network)
            try await transport.shutdown()
            return server.port
        }
        let transport = AsyncHTTPClientTransport()
        let closed = try CollectionsClient(baseURL: "http://127.0.0.1:\(port)/1.1", credentials: Self.credentials, transport: transport)
        let refused = await #expect(throws: CollectionsAPIError.self) { try await closed.show("custom-1") }
        #expect(refused?.code == .network)
        #expect(refused?.isRetryable == true)
        try await transport.shutdown()
    }

    @Test("a transport from the application's configuration uses it, but never follows a redirect")
    func transportFromConfiguration() async throws {
        try await withTestServer({ request in
            request.uri.hasPrefix("/moved")
                ? .respond(status: 200, headers: [("content-type", "application/json")], body: #"{"objects":{},"response":{}}"#)
                : .respond(status: 302, headers: [("location", "/moved/1.1/collections/show.json")], body: "")
        }) { server in
            var configuration = HTTPClient.Configuration()
            configuration.redirectConfiguration = .follow(max: 5, allowCycles: false)
            let transport = AsyncHTTPClientTransport(configuration: configuration)
            let api = try CollectionsClient(baseURL: server.baseURL, credentials: Self.credentials, transport: transport)
            let redirected = await #expect(throws: CollectionsAPIError.self) { try await api.show("custom-1") }
            #expect(redirected?.httpStatus == 302, "the 302 is the answer: not followed")
            #expect(server.requests.count == 1)
            try await transport.shutdown()
        }
        // A proxy that is down makes every request fail though the API is up: the configuration is used.
        let port = try await withTestServer({ _ in .close }) { $0.port }
        try await withTestServer({ _ in .respond(status: 200, headers: [], body: "{}") }) { server in
            var configuration = HTTPClient.Configuration()
            configuration.proxy = .server(host: "127.0.0.1", port: port)
            let transport = AsyncHTTPClientTransport(configuration: configuration)
            let api = try CollectionsClient(baseURL: server.baseURL, credentials: Self.credentials, transport: transport)
            let refused = await #expect(throws: CollectionsAPIError.self) { try await api.show("custom-1") }
            #expect(refused?.code == .network && server.requests.isEmpty)
            try await transport.shutdown()
        }
    }

    @Test("a transport over the application's own HTTPClient leaves it running when shut down")
    func transportOverAClient() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await withTestServer({ _ in Self.ok(Self.emptyEnvelope) }) { server in
                let transport = AsyncHTTPClientTransport(client: client)
                let api = try CollectionsClient(baseURL: server.baseURL, credentials: Self.credentials, transport: transport)
                _ = try await api.remove("5", from: "custom-1")
                try await transport.shutdown()
                let after = try await client.execute(HTTPClientRequest(url: server.baseURL + "/collections/show.json"), timeout: .seconds(10))
                #expect(after.status == .ok, "the application's client still works")
            }
        } catch {
            Issue.record(error)
        }
        try await client.shutdown()
    }

    @Test("https is required unless the host is loopback", arguments: [
        ("https://api.twitter.com/1.1", true), ("https://api.x.com/1.1/", true), ("http://127.0.0.1:8080/1.1", true),
        ("http://127.9.9.9/1.1", true), ("http://localhost:1/1.1", true), ("http://[::1]:9/1.1", true),
        ("http://api.twitter.com/1.1", false), ("http://10.0.0.1/1.1", false), ("http://127.0.0.1.evil.com/1.1", false),
        ("http://128.0.0.1/1.1", false), ("ftp://127.0.0.1/1.1", false), ("api.twitter.com/1.1", false), ("", false),
        ("https://user:pw@api.twitter.com/1.1", false), ("http://0127.0.0.1/1.1", false),
    ])
    func baseURLs(_ row: (String, Bool)) {
        let transport = RecordingTransport()
        let result = Result { try CollectionsClient(baseURL: row.0, credentials: Self.credentials, transport: transport) }
        if row.1 {
            #expect((try? result.get()) != nil, "\(row.0)")
        } else {
            #expect(throws: CollectionsAPIError.self) { try result.get() }
            if case .failure(let error as CollectionsAPIError) = result { #expect(error.code == .configuration) }
        }
    }

    @Test("secrets never appear in errors or log lines, at any level")
    func noSecretsLeak() async throws {
        let lines = LogCapture()
        var logger = Logger(label: "test", factory: { _ in lines.handler })
        logger.logLevel = .trace
        try await withTestServer({ request in
            request.uri.contains("show")
                ? .respond(status: 401, headers: jsonHeaders, body: #"{"errors":[{"code":32,"message":"Could not authenticate you."}]}"#)
                : .close
        }) { server in
            for credentials in [Self.credentials, .bearer(Self.secrets.bearer)] {
                let (client, transport) = try client(server, credentials: credentials, logger: logger)
                var texts: [String] = []
                for call in [{ _ = try await client.show("custom-1") }, { _ = try await client.remove("5", from: "custom-1") }] as [() async throws -> Void] {
                    do { try await call() } catch { texts += [String(describing: error), String(reflecting: error), "\(error)"] }
                }
                texts += lines.lines
                #expect(texts.count > 4)
                let all = texts.joined(separator: "\n")
                for secret in [Self.secrets.consumerSecret, Self.secrets.tokenSecret, Self.secrets.token, Self.secrets.bearer, Self.secrets.consumerKey] {
                    #expect(!all.contains(secret))
                }
                #expect(!all.contains("oauth_signature"))
                try await transport.shutdown()
            }
        }
    }
}

/// Records requests and answers nothing useful: for configuration checks without a network.
struct RecordingTransport: HTTPTransport {
    func send(_ request: HTTPRequestData, timeout: Duration, maxBodyBytes: Int) async throws -> HTTPResponseData {
        HTTPResponseData(status: 500, headers: [], body: [])
    }
}

