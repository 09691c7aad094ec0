@testable import CollectionsAPI
import Foundation
import Testing

@Suite("OAuth 1.0a signer")
struct OAuthTests {
    // Twitter's worked example ("Creating a signature").
    static let consumerKey = "xvz1evFS4wEEPTGEFPHBog"
    static let consumerSecret = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw"
    static let token = "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"
    static let tokenSecret = "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"
    static let nonce = "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"
    static let timestamp: Int64 = 1_318_622_958
    static let parameters = [("include_entities", "true"), ("status", "Hello Ladies + Gentlemen, a signed OAuth request!")]

    func vectorSignature(host: String) -> String {
        let oauth = OAuth1.protocolParameters(consumerKey: Self.consumerKey, token: Self.token, nonce: Self.nonce, timestamp: Self.timestamp)
        let base = OAuth1.signatureBaseString(method: "post", baseURL: "https://\(host)/1.1/statuses/update.json", parameters: Self.parameters + oauth)
        return OAuth1.signature(baseString: base, consumerSecret: Self.consumerSecret, tokenSecret: Self.tokenSecret)
    }

    @Test("Twitter's known-answer vector")
    func knownAnswer() {
        #expect(vectorSignature(host: "api.twitter.com") == "hCtSmYh+iHYCEqBWrE7C7hYmtUk=")
        #expect(vectorSignature(host: "api.x.com") == "Ls93hJiZbQ3akF3HF3x1Bz8/zU4=")
    }

    @Test("the documented parameter string and base string")
    func baseString() {
        let oauth = OAuth1.protocolParameters(consumerKey: Self.consumerKey, token: Self.token, nonce: Self.nonce, timestamp: Self.timestamp)
        #expect(OAuth1.parameterString(Self.parameters + oauth) == "include_entities=true&oauth_consumer_key=xvz1evFS4wEEPTGEFPHBog&oauth_nonce=kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg&oauth_signature_method=HMAC-SHA1&oauth_timestamp=1318622958&oauth_token=370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb&oauth_version=1.0&status=Hello%20Ladies%20%2B%20Gentlemen%2C%20a%20signed%20OAuth%20request%21")
        #expect(OAuth1.signatureBaseString(method: "POST", baseURL: "https://api.twitter.com/1.1/statuses/update.json", parameters: Self.parameters + oauth)
            .hasPrefix("POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue%26oauth_consumer_key%3D"))
    }

    @Test("the header carries the vector's signature, percent-encoded, sorted")
    func header() {
        let header = OAuth1.authorize(
            method: "POST", baseURL: "https://api.twitter.com/1.1/statuses/update.json", parameters: Self.parameters,
            consumerKey: Self.consumerKey, consumerSecret: Self.consumerSecret, token: Self.token, tokenSecret: Self.tokenSecret,
            nonce: Self.nonce, timestamp: Self.timestamp)
        #expect(header.hasPrefix("OAuth oauth_consumer_key=\"xvz1evFS4wEEPTGEFPHBog\", oauth_nonce=\"kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg\""))
        #expect(header.contains("oauth_signature=\"hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D\""))
        let parsed = OAuth1.parseAuthorizationHeader(header)
        #expect(parsed?.first { $0.0 == "oauth_signature" }?.1 == "hCtSmYh+iHYCEqBWrE7C7hYmtUk=")
        #expect(parsed?.count == 7)
    }

    @Test("percent-encoding examples from Twitter's guide", arguments: [
        ("Ladies + Gentlemen", "Ladies%20%2B%20Gentlemen"),
        ("An encoded string!", "An%20encoded%20string%21"),
        ("Dogs, Cats & Mice", "Dogs%2C%20Cats%20%26%20Mice"),
        ("☃", "%E2%98%83"),
        ("-._~AZaz09", "-._~AZaz09"),
        ("a/b?c=d", "a%2Fb%3Fc%3Dd"),
    ])
    func percentEncoding(_ pair: (String, String)) {
        #expect(PercentEncoding.encode(pair.0) == pair.1)
        #expect(PercentEncoding.decode(Substring(pair.1)) == pair.0)
    }

    @Test("malformed escapes and headers are refused, not trusted")
    func malformed() {
        #expect(PercentEncoding.decode("%4") == nil)
        #expect(PercentEncoding.decode("%ZZ") == nil)
        #expect(PercentEncoding.decode("%FF") == nil, "not UTF-8")
        #expect(OAuth1.parseAuthorizationHeader("Basic abc") == nil)
        #expect(OAuth1.parseAuthorizationHeader("OAuth oauth_nonce=unquoted") == nil)
        #expect(OAuth1.parseAuthorizationHeader("OAuth oauth_nonce=\"%zz\"") == nil)
    }

    @Test("nonces: word characters, about 42 of them, fresh each time")
    func nonces() {
        var generator = SystemRandomNumberGenerator()
        let nonces = (0..<1_000).map { _ in OAuth1.makeNonce(using: &generator) }
        #expect(Set(nonces).count == nonces.count)
        #expect(nonces.allSatisfy { $0.count >= 30 && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } })
    }

    @Test("credentials never show their secrets")
    func credentialsRedacted() {
        let credentials = APICredentials.oauth1(consumerKey: Self.consumerKey, consumerSecret: Self.consumerSecret,
                                                accessToken: Self.token, accessTokenSecret: Self.tokenSecret)
        let bearer = APICredentials.bearer("bearer-secret-token")
        var dumped = ""
        dump(credentials, to: &dumped)
        dump(bearer, to: &dumped)
        for text in [credentials.description, credentials.debugDescription, "\(credentials)", String(reflecting: credentials),
                     bearer.description, String(reflecting: bearer), dumped] {
            for secret in [Self.consumerSecret, Self.token, Self.tokenSecret, Self.consumerKey, "bearer-secret-token"] {
                #expect(!text.contains(secret))
            }
        }
    }
}
