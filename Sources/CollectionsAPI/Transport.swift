import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// One HTTP request as sync needs it.
public struct HTTPRequestData: Sendable {
    public var method: String
    public var url: String
    /// Header names and values. Values may hold credentials: never log them.
    public var headers: [(String, String)]
    public var body: [UInt8]?

    public init(method: String, url: String, headers: [(String, String)] = [], body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// One HTTP answer: status, headers (names lower-cased) and the whole body.
public struct HTTPResponseData: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)], body: [UInt8]) {
        self.status = status
        self.headers = headers.map { ($0.0.lowercased(), $0.1) }
        self.body = body
    }

    /// The first value of header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.0 == wanted }?.1
    }
}

/// The narrow seam between the API client and the network: send one request, get its whole
/// answer or a ``CollectionsAPIError`` (``CollectionsAPIError/Code/network``, `.timeout`,
/// `.cancelled`, `.malformedResponse` for a body over the cap). Must honour task cancellation
/// and never retry on its own.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequestData, timeout: Duration, maxBodyBytes: Int) async throws -> HTTPResponseData
}

/// The production transport over AsyncHTTPClient: keep-alive connection pooling, no redirects,
/// no automatic retries. One per engine; call ``shutdown()`` (or use ``withTransport(isolation:_:)``) when done.
public final class AsyncHTTPClientTransport: HTTPTransport {
    private let client: HTTPClient
    /// Whether ``shutdown()`` shuts the client down (false: the caller's client).
    private let ownsClient: Bool
    private let isShutDown = Mutex(false)

    /// - Parameter connectTimeout: how long establishing one connection may take.
    ///
    /// A refused connection fails at once: AsyncHTTPClient's own retrying of connection
    /// establishment is off, because the sync worker backs off per op and must see an outage as
    /// an outage, not as a request hanging until the connect timeout.
    public convenience init(connectTimeout: Duration = .seconds(10)) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .milliseconds(connectTimeout.wholeMilliseconds))
        configuration.httpVersion = .http1Only
        self.init(configuration: configuration)
    }

    /// A transport with its own client made from `configuration`: a proxy, TLS settings (a
    /// private CA, client certificates), timeouts, tracing. Two settings are the engine's and
    /// replace the configuration's: no redirects (a redirected POST could apply an edit twice, or
    /// carry the signature elsewhere) and no retrying of connection establishment (an outage must
    /// show as one, at once). Response decompression is off unless the configuration turns it on.
    public init(configuration: HTTPClient.Configuration,
                eventLoopGroupProvider: HTTPClient.EventLoopGroupProvider = .singleton) {
        var configuration = configuration
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.redirectConfiguration = .disallow
        client = HTTPClient(eventLoopGroupProvider: eventLoopGroupProvider, configuration: configuration)
        ownsClient = true
    }

    /// A transport over the application's own `client`, which it keeps owning: ``shutdown()``
    /// leaves it running, and the application shuts it down after the engine is done with it.
    /// The client should not follow redirects (`redirectConfiguration = .disallow`) and should
    /// not retry connection establishment, for the reasons given at ``init(configuration:eventLoopGroupProvider:)``.
    public init(client: HTTPClient) {
        self.client = client
        ownsClient = false
    }

    /// Runs `body` with a transport that is shut down afterwards, whether `body` throws or not.
    /// `body` runs in the caller's isolation (from `@MainActor` code too, like AsyncHTTPClient's
    /// `withHTTPClient`).
    public static func withTransport<T>(isolation: isolated (any Actor)? = #isolation,
                                        _ body: (AsyncHTTPClientTransport) async throws -> T) async throws -> T {
        let transport = AsyncHTTPClientTransport()
        do {
            let result = try await body(transport)
            try await transport.shutdown()
            return result
        } catch {
            try? await transport.shutdown()
            throw error
        }
    }

    /// Closes every pooled connection of the transport's own client. The transport is unusable
    /// afterwards. A client given to ``init(client:)`` is left to its owner.
    public func shutdown() async throws {
        guard isShutDown.withLock({ done in defer { done = true }; return !done }), ownsClient else { return }
        try await client.shutdown()
    }

    deinit {
        // AsyncHTTPClient traps when a client is released without a shutdown. A transport dropped
        // on an error path still closes its connections, in the background.
        if ownsClient, !isShutDown.withLock({ $0 }) {
            let client = self.client
            client.shutdown().whenComplete { _ in _ = client }
        }
    }

    public func send(_ request: HTTPRequestData, timeout: Duration, maxBodyBytes: Int) async throws -> HTTPResponseData {
        guard timeout > .zero else {
            throw CollectionsAPIError(code: .timeout, message: "no time left to send \(request.method) \(Self.path(of: request.url))")
        }
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        if let body = request.body { outgoing.body = .bytes(ByteBuffer(bytes: body)) }
        // To the nanosecond, rounded up: a timeout cut short of a caller's deadline (whole
        // milliseconds dropped up to 1 ms) made a request the deadline ended look like a failure.
        let parts = timeout.components
        let seconds = min(parts.seconds, 1_000_000_000)  // about 31 years: no overflow below
        let amount = TimeAmount.nanoseconds(max(seconds * 1_000_000_000 + (parts.attoseconds + 999_999_999) / 1_000_000_000, 1))
        do {
            let response = try await client.execute(outgoing, timeout: amount)
            var body = try await response.body.collect(upTo: maxBodyBytes)
            let bytes = body.readBytes(length: body.readableBytes) ?? []
            return HTTPResponseData(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: bytes)
        } catch let error as CollectionsAPIError {
            throw error
        } catch is CancellationError {
            throw CollectionsAPIError(code: .cancelled, message: "\(request.method) \(Self.path(of: request.url)) was cancelled")
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw CollectionsAPIError(code: .timeout, message: "\(Self.what(request)): no answer within \(Self.seconds(timeout))")
        } catch let error as HTTPClientError where error == .connectTimeout {
            throw CollectionsAPIError(code: .timeout, message: "\(Self.what(request)): no connection within the connect timeout (is the host up, and its port open?)")
        } catch let error as HTTPClientError where error == .cancelled {
            throw CollectionsAPIError(code: .cancelled, message: "\(request.method) \(Self.path(of: request.url)) was cancelled")
        } catch is NIOTooManyBytesError {
            throw CollectionsAPIError(code: .malformedResponse, message: "the answer to \(request.method) \(Self.path(of: request.url)) is larger than \(maxBodyBytes) bytes")
        } catch {
            if Task.isCancelled {
                throw CollectionsAPIError(code: .cancelled, message: "\(request.method) \(Self.path(of: request.url)) was cancelled")
            }
            throw CollectionsAPIError(code: .network, message: "\(Self.what(request)): \(Self.describe(error))")
        }
    }

    /// The request for a message: method, path and host (never the query, which may hold parameters).
    private static func what(_ request: HTTPRequestData) -> String {
        let path = Self.path(of: request.url)
        guard let url = URL(string: path), let host = url.host else { return "\(request.method) \(path)" }
        let port = url.port.map { ":\($0)" } ?? ""
        return "\(request.method) \(url.path) to \(host)\(port)"
    }

    private static func seconds(_ duration: Duration) -> String {
        let millis = duration.wholeMilliseconds
        return millis % 1000 == 0 ? "\(millis / 1000) s" : String(format: "%.1f s", Double(millis) / 1000)
    }

    /// What went wrong with the connection, in words that say what to check: refused (nothing
    /// listens), reset or closed (the server or something between dropped it), DNS, TLS.
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .remoteConnectionClosed: return "the server closed the connection before answering"
            default: return "the HTTP client failed: \(error)"
            }
        }
        if let error = error as? IOError {
            return describe(errno: error.errnoCode)
        }
        let type = String(describing: Swift.type(of: error))
        let text = String(describing: error)
        if text.contains("DNS error") || text.contains("UnknownHost") {
            return "the host name could not be resolved (DNS): check the API base URL and the network"
        }
        if type.contains("SSL") || type.contains("TLS") || text.contains("handshakeFailed") {
            let reason = text.contains("WRONG_VERSION_NUMBER") ? " (the server does not speak TLS on this port: http, not https?)"
                : text.contains("CERTIFICATE") || text.contains("certificate") ? " (its certificate is not trusted, or not for this host)" : ""
            return "the TLS handshake failed\(reason): \(type)"
        }
        if let code = errnoCode(in: text) { return describe(errno: code) }
        return "the connection failed: \(type): \(text)"
    }

    private static func describe(errno code: Int32) -> String {
        switch code {
        case ECONNREFUSED: return "connection refused: nothing listens there (is the server running, and is the API base URL right?)"
        case ECONNRESET: return "the connection was reset by the server (or something between)"
        case EPIPE: return "the server closed the connection while the request was sent"
        case ETIMEDOUT: return "the connection timed out (is the host up, and its port open?)"
        case EHOSTUNREACH, ENETUNREACH: return "no route to the host (is the network up?)"
        default: return "the connection failed: \(String(cString: strerror(code))) (errno \(code))"
        }
    }

    /// The `errno: N` a wrapped system error mentions, if any.
    private static func errnoCode(in text: String) -> Int32? {
        guard let range = text.range(of: "errno: ") else { return nil }
        return Int32(text[range.upperBound...].prefix(while: \.isNumber))
    }

    /// The URL without its query (which may hold parameters), for messages.
    static func path(of url: String) -> String {
        String(url.split(separator: "?", maxSplits: 1).first ?? "")
    }
}

extension Duration {
    var wholeMilliseconds: Int64 {
        let parts = components
        return parts.seconds * 1000 + parts.attoseconds / 1_000_000_000_000_000
    }
}
