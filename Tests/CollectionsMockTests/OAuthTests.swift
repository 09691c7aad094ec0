import CollectionsAPI
@testable import CollectionsMock
import Foundation
import Testing

/// Twitter's worked example ("Creating a signature"), api.md's known-answer vector.
enum KnownAnswer {
    static let credentials = MockCredentials(
        consumerKey: "xvz1evFS4wEEPTGEFPHBog", consumerSecret: "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        accessToken: "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
        accessTokenSecret: "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE", userID: "370773112", screenName: "twitterapi")
    static let nonce = "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"
    static let timestamp: Int64 = 1318622958
    static let path = "/1.1/statuses/update.json"
    static let query = "include_entities=true"
    static let body = "status=Hello%20Ladies%20%2B%20Gentlemen%2C%20a%20signed%20OAuth%20request%21"
    static let twitterSignature = "hCtSmYh+iHYCEqBWrE7C7hYmtUk="
    static let xSignature = "Ls93hJiZbQ3akF3HF3x1Bz8/zU4="

    static func header(signature: String, consumerKey: String = credentials.consumerKey, nonce: String = nonce,
                       timestamp: String = String(timestamp), token: String = credentials.accessToken,
                       method: String = "HMAC-SHA1") -> String {
        OAuth1.authorizationHeader([
            ("oauth_consumer_key", consumerKey), ("oauth_nonce", nonce), ("oauth_signature", signature),
            ("oauth_signature_method", method), ("oauth_timestamp", timestamp), ("oauth_token", token),
            ("oauth_version", "1.0"),
        ])
    }

    static func configuration(origin: String) -> MockConfiguration {
        var configuration = MockConfiguration()
        configuration.credentials = [credentials]
        configuration.clock = .fixed(millis: Int64(timestamp) * 1000)
        configuration.signatureOrigin = origin
        return configuration
    }
}

@Suite struct OAuthTests {
    /// The verifier as a pure function.
    @Test func verifierAcceptsTheKnownAnswer() throws {
        let book = CredentialBook([KnownAnswer.credentials])
        for (origin, signature) in [("https://api.twitter.com", KnownAnswer.twitterSignature), ("https://api.x.com", KnownAnswer.xSignature)] {
            let request = SignedRequest(
                method: "POST", baseURL: origin + KnownAnswer.path,
                parameters: [("include_entities", "true"), ("status", "Hello Ladies + Gentlemen, a signed OAuth request!")],
                authorization: KnownAnswer.header(signature: signature))
            var nonces = NonceCache()
            let evaluation = OAuthVerifier.evaluate(request, credentials: book)
            guard case .oauth(let claim) = evaluation else { Issue.record("not evaluated: \(evaluation)"); continue }
            #expect(claim.signatureValid)
            let first = OAuthVerifier.complete(evaluation, now: Double(KnownAnswer.timestamp), tolerance: 300, nonces: &nonces)
            #expect((try? first.get())?.userID == "370773112")
            let replay = OAuthVerifier.complete(evaluation, now: Double(KnownAnswer.timestamp), tolerance: 300, nonces: &nonces)
            #expect(replay == .failure(.badSignature))
            let late = OAuthVerifier.complete(evaluation, now: Double(KnownAnswer.timestamp + 301), tolerance: 300, nonces: &nonces)
            #expect(late == .failure(.timestamp))
        }
        #expect(OAuthVerifier.baseURL(origin: nil, host: "LocalHost:80", fallbackHost: "x", path: "/1.1/a.json") == "http://localhost/1.1/a.json")
        #expect(OAuthVerifier.baseURL(origin: nil, host: nil, fallbackHost: "127.0.0.1:9", path: "/p") == "http://127.0.0.1:9/p")
        #expect(OAuthVerifier.constantTimeEqual("abc", "abc") && !OAuthVerifier.constantTimeEqual("abc", "abd")
            && !OAuthVerifier.constantTimeEqual("abc", "abcd"))
    }

    /// Over HTTP: the known-answer request passes authentication (and then meets 404/34, since the
    /// mock has no statuses/update); a one-character change anywhere fails it; so does a replay.
    @Test(arguments: [("https://api.twitter.com", KnownAnswer.twitterSignature), ("https://api.x.com", KnownAnswer.xSignature)])
    func knownAnswerOverHTTP(origin: String, signature: String) async throws {
        try await withHarness(KnownAnswer.configuration(origin: origin)) { h in
            func send(method: String = "POST", path: String = KnownAnswer.path, query: String = KnownAnswer.query,
                      body: String = KnownAnswer.body, header: String) async throws -> Reply {
                try await h.raw(method, path + "?" + query, body: Array(body.utf8), contentType: "application/x-www-form-urlencoded",
                                headers: [("Authorization", header)])
            }
            func flip(_ text: String, at offset: Int) -> String {
                var characters = Array(text)
                characters[offset] = characters[offset] == "a" ? "b" : "a"
                return String(characters)
            }
            let header = KnownAnswer.header(signature: signature)
            // One character changed in each part of the request, each rejected.
            let variants: [(String, Reply, Int)] = [
                ("signature", try await send(header: KnownAnswer.header(signature: flip(signature, at: 3))), 32),
                ("nonce", try await send(header: KnownAnswer.header(signature: signature, nonce: flip(KnownAnswer.nonce, at: 0))), 32),
                ("timestamp", try await send(header: KnownAnswer.header(signature: signature, timestamp: "1318622959")), 32),
                ("consumer key", try await send(header: KnownAnswer.header(signature: signature, consumerKey: flip(KnownAnswer.credentials.consumerKey, at: 5))), 32),
                ("token", try await send(header: KnownAnswer.header(signature: signature, token: flip(KnownAnswer.credentials.accessToken, at: 12))), 89),
                ("body value", try await send(body: KnownAnswer.body.replacingOccurrences(of: "Ladies", with: "Ladiez"), header: header), 32),
                ("body name", try await send(body: KnownAnswer.body.replacingOccurrences(of: "status=", with: "statue="), header: header), 32),
                ("query value", try await send(query: "include_entities=truf", header: header), 32),
                ("query name", try await send(query: "include_entitiez=true", header: header), 32),
                ("path", try await send(path: "/1.1/statuses/updatf.json", header: header), 32),
                ("method", try await send(method: "PUT", header: header), 32),
                ("signature method", try await send(header: KnownAnswer.header(signature: signature, method: "HMAC-SHA2")), 32),
            ]
            for (part, reply, code) in variants {
                #expect(reply.status == 401, "\(part)")
                #expect(reply.errorCode == code, "\(part)")
            }
            let accepted = try await send(header: header)
            #expect(accepted.status == 404, "authenticated, then an unknown path")
            #expect(accepted.errorCode == 34)
            #expect(h.server.journal().last?.userID == "370773112")
            #expect(accepted.header("date") == "Fri, 14 Oct 2011 20:09:18 GMT")

            let replayed = try await send(header: header)
            #expect(replayed.status == 401 && replayed.errorCode == 32, "a nonce is accepted once")
        }
    }

    @Test func signatureFromHeaderQueryOrFormBody() async throws {
        try await withHarness { h in
            let id = try h.server.createCollection()
            for mode in [AuthMode.header, .query, .form] {
                let reply = try await h.send("POST", Endpoint.add.servedPath, form: [("id", id), ("tweet_id", "1")], auth: mode)
                #expect(reply.status == 200, "\(mode)")
                #expect(try await h.send("POST", Endpoint.remove.servedPath, query: [("id", id), ("tweet_id", "1")], auth: mode).status == 200, "\(mode)")
                #expect(try await h.send("GET", Endpoint.show.servedPath, query: [("id", id)], auth: mode).status == 200, "\(mode)")
            }
            // Query and form parameters are both signed; a JSON body is not.
            let mixed = try await h.send("POST", Endpoint.add.servedPath, query: [("id", id)], form: [("tweet_id", "2")], auth: .form)
            #expect(mixed.status == 200 && mixed.changeErrors.isEmpty)
            #expect(try await h.curate(id, [("add", "3")]).status == 200)
            // Spaces, '+' and non-ASCII survive encoding.
            let fancy = try await h.post(.create, [("name", "a b+c é/☃"), ("description", "x=y&z")])
            #expect(fancy.status == 200)
            #expect(fancy.json["objects"]["timelines"][fancy.json["response"]["timeline_id"].string ?? ""]["name"].string == "a b+c é/☃")
            #expect(h.server.journal().allSatisfy { $0.userID == h.credentials.userID })
        }
    }

    @Test func nonceReuseAndSkewedTimestamps() async throws {
        var configuration = MockConfiguration()
        configuration.clock = .fixed(millis: 1_700_000_000_500)  // exact boundaries
        try await withHarness(configuration) { h in
            let id = try h.server.createCollection()
            let now: Int64 = 1_700_000_000
            #expect(try await h.send("GET", Endpoint.show.servedPath, query: [("id", id)], nonce: "same-nonce").status == 200)
            let reused = try await h.send("GET", Endpoint.show.servedPath, query: [("id", id)], nonce: "same-nonce")
            #expect(reused.status == 401 && reused.errorCode == 32)
            let reusedElsewhere = try await h.send("POST", Endpoint.add.servedPath, form: [("id", id), ("tweet_id", "1")], nonce: "same-nonce")
            #expect(reusedElsewhere.status == 401 && reusedElsewhere.errorCode == 32)
            #expect(h.server.tweetIDs(of: id) == [])

            for skew: Int64 in [-400, -301, 301, 3600] {
                let reply = try await h.send("GET", Endpoint.show.servedPath, query: [("id", id)], timestamp: now + skew)
                #expect(reply.status == 401 && reply.errorCode == 135, "\(skew)")
            }
            for skew: Int64 in [-300, 300] {
                #expect(try await h.send("GET", Endpoint.show.servedPath, query: [("id", id)], timestamp: now + skew).status == 200, "\(skew)")
            }
            // A request rejected for its timestamp did not burn its nonce.
            let skewed = try await h.send("GET", Endpoint.show.servedPath, query: [("id", id)], nonce: "n2", timestamp: now - 1000)
            #expect(skewed.errorCode == 135)
            #expect(try await h.send("GET", Endpoint.show.servedPath, query: [("id", id)], nonce: "n2").status == 200)
        }
    }

    @Test func missingUnknownAndBearerCredentials() async throws {
        var configuration = MockConfiguration()
        configuration.credentials = [.test, .otherTest]
        try await withHarness(configuration) { h in
            let id = try h.server.createCollection()
            let show = Endpoint.show.servedPath
            let cases: [(String, Reply, Int, Int)] = [
                ("no auth", try await h.send("GET", show, query: [("id", id)], auth: .none), 400, 215),
                ("basic", try await h.send("GET", show, query: [("id", id)], auth: .raw("Basic dXNlcjpwYXNz")), 400, 215),
                ("garbled", try await h.send("GET", show, query: [("id", id)], auth: .raw("OAuth oauth_consumer_key=unquoted")), 400, 215),
                ("empty bearer", try await h.send("GET", show, query: [("id", id)], auth: .raw("Bearer ")), 400, 215),
                ("no nonce", try await h.send("GET", show, query: [("id", id)], auth: .raw(
                    #"OAuth oauth_consumer_key="k", oauth_signature="s", oauth_signature_method="HMAC-SHA1", oauth_timestamp="1", oauth_token="t""#)), 400, 215),
                ("unknown bearer", try await h.send("GET", show, query: [("id", id)], auth: .bearer("nope")), 401, 89),
                ("unknown token", try await h.send("GET", show, query: [("id", id)], credentials: MockCredentials(
                    consumerKey: MockCredentials.test.consumerKey, consumerSecret: MockCredentials.test.consumerSecret,
                    accessToken: "revoked", accessTokenSecret: "x", userID: "1", screenName: "x")), 401, 89),
                ("unknown consumer", try await h.send("GET", show, query: [("id", id)], credentials: MockCredentials(
                    consumerKey: "other-app", consumerSecret: "x", accessToken: MockCredentials.test.accessToken,
                    accessTokenSecret: MockCredentials.test.accessTokenSecret, userID: "1", screenName: "x")), 401, 32),
                ("wrong secret", try await h.send("GET", show, query: [("id", id)], credentials: MockCredentials(
                    consumerKey: MockCredentials.test.consumerKey, consumerSecret: "guess", accessToken: MockCredentials.test.accessToken,
                    accessTokenSecret: MockCredentials.test.accessTokenSecret, userID: "1", screenName: "x")), 401, 32),
            ]
            for (name, reply, status, code) in cases {
                #expect(reply.status == status, "\(name)")
                #expect(reply.errorCode == code, "\(name)")
            }
            let bearer = try await h.send("POST", Endpoint.add.servedPath, form: [("id", id), ("tweet_id", "7")],
                                          auth: .bearer(MockCredentials.test.bearerToken!))
            #expect(bearer.status == 200 && bearer.changeErrors.isEmpty)
            let otherBearer = try await h.get(.show, [("id", id)], auth: .bearer(MockCredentials.otherTest.bearerToken!))
            #expect(otherBearer.status == 200)
            #expect(h.server.journal().last?.userID == MockCredentials.otherTest.userID)
        }
    }

    @Test func configuredCredentialsReplaceTheTestOnes() async throws {
        let custom = MockCredentials(consumerKey: "ck", consumerSecret: "cs", accessToken: "77-at", accessTokenSecret: "ats",
                                     bearerToken: nil, userID: "77", screenName: "custom")
        var configuration = MockConfiguration()
        configuration.credentials = [custom]
        try await withHarness(configuration) { h in
            #expect(h.server.credentials == custom)
            let created = try await h.post(.create, [("name", "x")])
            #expect(created.status == 200)
            #expect(created.json["objects"]["users"]["77"]["screen_name"].string == "custom")
            let old = try await h.post(.create, [("name", "x")], credentials: .test)
            #expect(old.status == 401)
            #expect(try await h.get(.list, [("user_id", "1")], auth: .bearer(MockCredentials.test.bearerToken!)).errorCode == 89)
        }
    }
}

extension Result where Success == MockCredentials, Failure == APIFailure {
    static func == (a: Self, b: Self) -> Bool {
        switch (a, b) {
        case let (.success(x), .success(y)): x == y
        case let (.failure(x), .failure(y)): x == y
        default: false
        }
    }
}
