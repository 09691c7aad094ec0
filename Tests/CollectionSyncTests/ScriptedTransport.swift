import CollectionsAPI
import Foundation
import Synchronization

/// An in-memory transport for unit tests of the worker: each request is answered by a script.
/// (The integration tests use the real mock server over loopback.)
final class ScriptedTransport: HTTPTransport {
    struct Sent: Sendable {
        let method: String
        let path: String
        /// The query's parameters, decoded.
        let query: [(String, String)]
        let changes: [EntryChange]
        let authorization: String
    }

    typealias Script = @Sendable (Sent) async throws -> HTTPResponseData
    private let script: Mutex<Script>
    private let log = Mutex<[Sent]>([])

    init(_ script: @escaping Script) { self.script = Mutex(script) }

    var sent: [Sent] { log.withLock { $0 } }
    func answer(with script: @escaping Script) { self.script.withLock { $0 = script } }

    func send(_ request: HTTPRequestData, timeout: Duration, maxBodyBytes: Int) async throws -> HTTPResponseData {
        let url = URLComponents(string: request.url)!
        var changes: [EntryChange] = []
        if let body = request.body {
            struct Curate: Decodable { let changes: [EntryChange] }
            if let curate = try? JSONDecoder().decode(Curate.self, from: Data(body)) {
                changes = curate.changes
            } else if let form = PercentEncoding.parseQuery(Substring(String(decoding: body, as: UTF8.self))),
                      let tweet = form.first(where: { $0.0 == "tweet_id" })?.1 {
                changes = [EntryChange(op: url.path.hasSuffix("add.json") ? .add : .remove, tweetID: tweet)]
            }
        }
        let query = url.percentEncodedQuery.flatMap { PercentEncoding.parseQuery(Substring($0)) } ?? []
        let sent = Sent(method: request.method, path: url.path, query: query, changes: changes,
                        authorization: request.headers.first { $0.0 == "authorization" }?.1 ?? "")
        log.withLock { $0.append(sent) }
        let script = self.script.withLock { $0 }
        return try await script(sent)
    }

    static func json(_ status: Int, _ body: String, _ headers: [(String, String)] = []) -> HTTPResponseData {
        HTTPResponseData(status: status, headers: [("content-type", "application/json")] + headers, body: Array(body.utf8))
    }

    /// A change envelope refusing the given changes.
    static func envelope(_ refused: [(EntryChange, String)] = []) -> HTTPResponseData {
        let errors = refused.map { #"{"change":{"op":"\#($0.0.op.rawValue)","tweet_id":"\#($0.0.tweetID)"},"reason":"\#($0.1)"}"# }
        return json(200, #"{"objects":{},"response":{"errors":[\#(errors.joined(separator: ","))]}}"#)
    }

    static func apiError(_ status: Int, _ code: Int, _ headers: [(String, String)] = []) -> HTTPResponseData {
        json(status, #"{"errors":[{"code":\#(code),"message":"x"}]}"#, headers)
    }
}
