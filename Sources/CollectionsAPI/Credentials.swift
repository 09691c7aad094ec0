/// How requests are authenticated: OAuth 1.0a user context, or an OAuth 2.0 user token (Bearer).
///
/// Its description, debug description and mirror never show a secret or token.
public struct APICredentials: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    enum Kind: Sendable, Hashable {
        case oauth1(consumerKey: String, consumerSecret: String, token: String, tokenSecret: String)
        case bearer(String)
    }

    let kind: Kind

    /// OAuth 1.0a user context: every request is signed with HMAC-SHA1.
    public static func oauth1(consumerKey: String, consumerSecret: String, accessToken: String, accessTokenSecret: String) -> APICredentials {
        APICredentials(kind: .oauth1(consumerKey: consumerKey, consumerSecret: consumerSecret, token: accessToken, tokenSecret: accessTokenSecret))
    }

    /// An OAuth 2.0 user-context access token, sent as `Authorization: Bearer TOKEN`.
    public static func bearer(_ token: String) -> APICredentials {
        APICredentials(kind: .bearer(token))
    }

    public var description: String {
        switch kind {
        case .oauth1: "OAuth 1.0a credentials (redacted)"
        case .bearer: "Bearer token (redacted)"
        }
    }

    /// The numeric prefix of an OAuth 1.0a access token (`12345-...`), which is its user's id;
    /// nil for a Bearer token or a token without one. Not a secret.
    public var accessTokenUserID: String? {
        guard case .oauth1(_, _, let token, _) = kind, let dash = token.firstIndex(of: "-") else { return nil }
        let prefix = token[..<dash]
        guard !prefix.isEmpty, prefix.utf8.count <= 20, prefix.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return String(prefix)
    }

    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["kind": description]) }
}
