import Crypto
import Foundation

/// The OAuth 1.0a HMAC-SHA1 signature, exactly as api.md (and Twitter's "Creating a signature")
/// describes it. Pure: the nonce and timestamp are inputs.
public enum OAuth1 {
    /// The parameter string: every parameter percent-encoded, sorted by encoded key then value,
    /// joined as `k=v` with `&`.
    public static func parameterString(_ parameters: [(String, String)]) -> String {
        parameters
            .map { (PercentEncoding.encode($0.0), PercentEncoding.encode($0.1)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// `UPPER(method) & pct(base URL) & pct(parameter string)`. `baseURL` has no query string.
    public static func signatureBaseString(method: String, baseURL: String, parameters: [(String, String)]) -> String {
        "\(method.uppercased())&\(PercentEncoding.encode(baseURL))&\(PercentEncoding.encode(parameterString(parameters)))"
    }

    /// base64(HMAC-SHA1(pct(consumer secret) & pct(token secret), base string)).
    public static func signature(baseString: String, consumerSecret: String, tokenSecret: String) -> String {
        let key = SymmetricKey(data: Data("\(PercentEncoding.encode(consumerSecret))&\(PercentEncoding.encode(tokenSecret))".utf8))
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(baseString.utf8), using: key)
        return Data(mac).base64EncodedString()
    }

    /// The seven protocol parameters without the signature.
    public static func protocolParameters(consumerKey: String, token: String, nonce: String, timestamp: Int64) -> [(String, String)] {
        [
            ("oauth_consumer_key", consumerKey),
            ("oauth_nonce", nonce),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", String(timestamp)),
            ("oauth_token", token),
            ("oauth_version", "1.0"),
        ]
    }

    /// The `Authorization` header value: `OAuth ` + `k="pct(v)"` pairs joined by `, `.
    public static func authorizationHeader(_ parameters: [(String, String)]) -> String {
        "OAuth " + parameters
            .map { "\(PercentEncoding.encode($0.0))=\"\(PercentEncoding.encode($0.1))\"" }
            .joined(separator: ", ")
    }

    /// Signs one request: the query and form parameters (never a JSON body) plus the protocol
    /// parameters; returns the `Authorization` header value.
    public static func authorize(
        method: String, baseURL: String, parameters: [(String, String)],
        consumerKey: String, consumerSecret: String, token: String, tokenSecret: String,
        nonce: String, timestamp: Int64
    ) -> String {
        var oauth = protocolParameters(consumerKey: consumerKey, token: token, nonce: nonce, timestamp: timestamp)
        let base = signatureBaseString(method: method, baseURL: baseURL, parameters: parameters + oauth)
        oauth.append(("oauth_signature", signature(baseString: base, consumerSecret: consumerSecret, tokenSecret: tokenSecret)))
        oauth.sort { $0.0 < $1.0 }
        return authorizationHeader(oauth)
    }

    /// A fresh nonce: 32 random bytes, base64-encoded with the non-word characters dropped
    /// (as Twitter's guide does), about 42 characters of `[A-Za-z0-9]`.
    public static func makeNonce<R: RandomNumberGenerator>(using generator: inout R) -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in bytes.indices { bytes[index] = UInt8.random(in: .min ... .max, using: &generator) }
        let word = Data(bytes).base64EncodedData().filter {
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
        }
        return String(decoding: word, as: UTF8.self)
    }

    /// Parses an `Authorization: OAuth k="v", ...` header into decoded pairs; nil if malformed.
    public static func parseAuthorizationHeader(_ header: String) -> [(String, String)]? {
        guard header.hasPrefix("OAuth ") else { return nil }
        var pairs: [(String, String)] = []
        for part in header.dropFirst(6).split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { continue }
            let pieces = trimmed.split(separator: "=", maxSplits: 1)
            guard pieces.count == 2, pieces[1].count >= 2, pieces[1].first == "\"", pieces[1].last == "\"",
                  let key = PercentEncoding.decode(pieces[0]),
                  let value = PercentEncoding.decode(pieces[1].dropFirst().dropLast()) else { return nil }
            pairs.append((key, value))
        }
        return pairs
    }
}
