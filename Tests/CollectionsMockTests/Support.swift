import AsyncHTTPClient
import CollectionsAPI
import CollectionsMock
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// How a test request carries its credentials.
enum AuthMode: Sendable {
    /// OAuth 1.0a in the `Authorization` header (the usual way).
    case header
    /// The `oauth_*` parameters in the query string.
    case query
    /// The `oauth_*` parameters in the form body.
    case form
    /// `Authorization: Bearer TOKEN`.
    case bearer(String)
    /// This exact `Authorization` header.
    case raw(String)
    /// No credentials at all.
    case none
}

/// An answer as a real client saw it.
struct Reply: Sendable {
    let status: Int
    let headers: HTTPHeaders
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body parsed as JSON (`JSONSerialization`, as any client might).
    var json: JSONNode { JSONNode(try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])) }

    func header(_ name: String) -> String? { headers.first(name: name) }

    /// `errors[0].code` of an error answer.
    var errorCode: Int? { json["errors"][0]["code"].int }

    /// The reasons of a change envelope by (op, tweet id).
    var changeErrors: [String: String] {
        var result: [String: String] = [:]
        for error in json["response"]["errors"].array {
            result["\(error["change"]["op"].string ?? "?") \(error["change"]["tweet_id"].string ?? "?")"] = error["reason"].string
        }
        return result
    }
}

/// A read-only walk through a `JSONSerialization` value.
struct JSONNode: @unchecked Sendable {
    let value: Any?

    init(_ value: Any?) { self.value = value }

    subscript(key: String) -> JSONNode { JSONNode((value as? [String: Any])?[key]) }
    subscript(index: Int) -> JSONNode {
        guard let array = value as? [Any], array.indices.contains(index) else { return JSONNode(nil) }
        return JSONNode(array[index])
    }

    var string: String? { value as? String }
    var int: Int? { (value as? NSNumber).map { $0.intValue } }
    var double: Double? { (value as? NSNumber).map { $0.doubleValue } }
    var bool: Bool? { value as? Bool }
    var array: [JSONNode] { (value as? [Any])?.map(JSONNode.init) ?? [] }
    var keys: Set<String> { Set((value as? [String: Any])?.keys ?? [:].keys) }
    var exists: Bool { value != nil && !(value is NSNull) }
    var isNull: Bool { value is NSNull }
}

/// A running mock and a real HTTP client (AsyncHTTPClient) that signs like the engine does.
struct Harness: Sendable {
    let server: MockCollectionsServer
    let client: HTTPClient
    var credentials: MockCredentials

    var port: Int { server.port }
    var origin: String { "http://127.0.0.1:\(server.port)" }

    /// Percent-encodes pairs as a query string or form body.
    static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(PercentEncoding.encode($0.0))=\(PercentEncoding.encode($0.1))" }.joined(separator: "&")
    }

    static func nonce() -> String {
        UUID().uuidString.replacingOccurrences(of: "-", with: "")
    }

    /// The seven `oauth_*` parameters, signature included.
    static func oauthParameters(method: String, baseURL: String, parameters: [(String, String)], credentials: MockCredentials,
                                nonce: String, timestamp: Int64) -> [(String, String)] {
        var oauth = OAuth1.protocolParameters(consumerKey: credentials.consumerKey, token: credentials.accessToken,
                                              nonce: nonce, timestamp: timestamp)
        let base = OAuth1.signatureBaseString(method: method, baseURL: baseURL, parameters: parameters + oauth)
        oauth.append(("oauth_signature", OAuth1.signature(baseString: base, consumerSecret: credentials.consumerSecret,
                                                          tokenSecret: credentials.accessTokenSecret)))
        return oauth
    }

    /// Sends one request. `form` goes as an `application/x-www-form-urlencoded` body, `json` as an
    /// `application/json` one (never signed).
    func send(_ method: String, _ path: String, query: [(String, String)] = [], form: [(String, String)]? = nil,
              json: [UInt8]? = nil, auth: AuthMode = .header, credentials: MockCredentials? = nil,
              nonce: String? = nil, timestamp: Int64? = nil, timeout: TimeAmount = .seconds(10),
              extraHeaders: [(String, String)] = []) async throws -> Reply {
        let credentials = credentials ?? self.credentials
        let baseURL = origin + path
        let nonce = nonce ?? Self.nonce()
        let timestamp = timestamp ?? Int64(server.now.rounded(.down))
        var query = query
        var form = form
        var headers: [(String, String)] = extraHeaders
        let signed = query + (form ?? [])
        switch auth {
        case .header:
            headers.append(("Authorization", OAuth1.authorize(
                method: method, baseURL: baseURL, parameters: signed,
                consumerKey: credentials.consumerKey, consumerSecret: credentials.consumerSecret,
                token: credentials.accessToken, tokenSecret: credentials.accessTokenSecret,
                nonce: nonce, timestamp: timestamp)))
        case .query:
            query += Self.oauthParameters(method: method, baseURL: baseURL, parameters: signed, credentials: credentials,
                                          nonce: nonce, timestamp: timestamp)
        case .form:
            form = (form ?? []) + Self.oauthParameters(method: method, baseURL: baseURL, parameters: signed,
                                                       credentials: credentials, nonce: nonce, timestamp: timestamp)
        case .bearer(let token):
            headers.append(("Authorization", "Bearer \(token)"))
        case .raw(let header):
            headers.append(("Authorization", header))
        case .none:
            break
        }
        return try await raw(method, path + (query.isEmpty ? "" : "?" + Self.encode(query)),
                             body: form.map { Array(Self.encode($0).utf8) } ?? json,
                             contentType: form != nil ? "application/x-www-form-urlencoded" : (json != nil ? "application/json" : nil),
                             headers: headers, timeout: timeout)
    }

    /// Sends bytes as they are.
    func raw(_ method: String, _ pathAndQuery: String, body: [UInt8]? = nil, contentType: String? = nil,
             headers: [(String, String)] = [], timeout: TimeAmount = .seconds(10), port: Int? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port ?? server.port)\(pathAndQuery)")
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await client.execute(request, timeout: timeout)
        var collected = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers,
                     body: collected.readBytes(length: collected.readableBytes) ?? [])
    }

    /// A GET of an endpoint.
    func get(_ endpoint: Endpoint, _ query: [(String, String)] = [], auth: AuthMode = .header,
             credentials: MockCredentials? = nil) async throws -> Reply {
        try await send("GET", endpoint.servedPath, query: query, auth: auth, credentials: credentials)
    }

    /// A POST of an endpoint with a form body.
    func post(_ endpoint: Endpoint, _ form: [(String, String)], auth: AuthMode = .header,
              credentials: MockCredentials? = nil) async throws -> Reply {
        try await send("POST", endpoint.servedPath, form: form, auth: auth, credentials: credentials)
    }

    /// `entries/curate` with these changes.
    func curate(_ id: String, _ changes: [(String, String)], credentials: MockCredentials? = nil) async throws -> Reply {
        let list = changes.map { "{\"op\":\"\($0.0)\",\"tweet_id\":\"\($0.1)\"}" }.joined(separator: ",")
        return try await send("POST", Endpoint.curate.servedPath,
                              json: Array("{\"id\":\"\(id)\",\"changes\":[\(list)]}".utf8), credentials: credentials)
    }

    /// An admin route, JSON in and out.
    func admin(_ method: String, _ route: String, _ json: String? = nil, port: Int? = nil) async throws -> Reply {
        try await raw(method, "/__mock/" + route, body: json.map { Array($0.utf8) },
                      contentType: json == nil ? nil : "application/json", port: port)
    }

    /// Every entry of a collection, paging with `count` the way api.md says: the next
    /// `max_position` is the previous page's `min_position` (inclusive, so the boundary repeats).
    func allPages(_ id: String, count: Int) async throws -> (pages: [[String]], sortIndexes: [String: String]) {
        var pages: [[String]] = []
        var sortIndexes: [String: String] = [:]
        var maxPosition: String?
        while true {
            var query = [("id", id), ("count", String(count))]
            if let maxPosition { query.append(("max_position", maxPosition)) }
            let reply = try await get(.entries, query)
            #expect(reply.status == 200)
            let timeline = reply.json["response"]["timeline"].array
            pages.append(timeline.compactMap { $0["tweet"]["id"].string })
            for entry in timeline {
                sortIndexes[entry["tweet"]["id"].string ?? ""] = entry["tweet"]["sort_index"].string
            }
            let position = reply.json["response"]["position"]
            guard position["was_truncated"].bool == true, let next = position["min_position"].string else { break }
            maxPosition = next
            guard pages.count <= 1000 else { Issue.record("paging does not end"); break }
        }
        return (pages, sortIndexes)
    }
}

/// Runs `body` with a fresh mock (ephemeral port) and a fresh client, shutting both down after.
func withHarness<T>(_ configuration: MockConfiguration = MockConfiguration(),
                    _ body: (Harness) async throws -> T) async throws -> T {
    try await withMockServer(configuration: configuration) { server in
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.redirectConfiguration = .disallow
        clientConfiguration.httpVersion = .http1Only
        clientConfiguration.timeout = .init(connect: .seconds(2))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        let harness = Harness(server: server, client: client, credentials: server.credentials)
        do {
            let result = try await body(harness)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }
}

/// Whether a TCP connect to 127.0.0.1:`port` is refused right now (a plain socket, no retries).
func connectionRefused(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return result != 0 && errno == ECONNREFUSED
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes (only for conditions that
/// depend on time by design: a scheduled recovery, a client's own timeout).
func eventually(timeout: Duration = .seconds(30), _ condition: () async -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}

/// Tweet ids `first`, `first+1`, ... as strings.
func tweets(_ count: Int, from first: UInt64 = 1_000_000_000_000_000) -> [String] {
    (0..<UInt64(count)).map { String(first + $0) }
}
