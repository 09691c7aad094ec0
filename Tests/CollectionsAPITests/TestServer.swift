import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A minimal HTTP/1.1 server on an ephemeral loopback port whose answers a test scripts: reply,
/// never answer, or close the connection. Requests are recorded.
final class TestServer: Sendable {
    enum Reply: Sendable {
        case respond(status: Int, headers: [(String, String)], body: String)
        /// Accept the request and never answer.
        case hang
        /// Close the connection without an answer.
        case close
    }

    struct Request: Sendable {
        let method: String
        let uri: String
        let headers: [(String, String)]
        let body: String

        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    private let channel: any Channel
    private let recorded = Mutex<[Request]>([])
    private let handler: @Sendable (Request) -> Reply

    var port: Int { channel.localAddress!.port! }
    var baseURL: String { "http://127.0.0.1:\(port)/1.1" }
    var requests: [Request] { recorded.withLock { $0 } }

    init(_ handler: @escaping @Sendable (Request) -> Reply) async throws {
        self.handler = handler
        let box = HandlerBox()
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(server: box))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        box.server.withLock { $0 = self }
    }

    func shutdown() async {
        try? await channel.close()
    }

    fileprivate func handle(_ request: Request) -> Reply {
        recorded.withLock { $0.append(request) }
        return handler(request)
    }

    /// Lets the channel handlers reach the server once it exists.
    fileprivate final class HandlerBox: Sendable {
        let server = Mutex<TestServer?>(nil)
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let server: HandlerBox
        var head: HTTPRequestHead?
        var body = ""

        init(server: HandlerBox) { self.server = server }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = ""
            case .body(var buffer):
                body += buffer.readString(length: buffer.readableBytes) ?? ""
            case .end:
                guard let head, let server = server.server.withLock({ $0 }) else { return }
                let request = Request(method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: body)
                switch server.handle(request) {
                case .hang:
                    break
                case .close:
                    context.close(promise: nil)
                case .respond(let status, let headers, let text):
                    var fields = HTTPHeaders(headers)
                    fields.replaceOrAdd(name: "content-length", value: String(text.utf8.count))
                    let responseHead = HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: status), headers: fields)
                    context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                }
            }
        }
    }
}

/// Runs `body` with a test server, shut down afterwards.
func withTestServer<T>(_ handler: @escaping @Sendable (TestServer.Request) -> TestServer.Reply,
                       _ body: (TestServer) async throws -> T) async throws -> T {
    let server = try await TestServer(handler)
    do {
        let result = try await body(server)
        await server.shutdown()
        return result
    } catch {
        await server.shutdown()
        throw error
    }
}

let jsonHeaders = [("content-type", "application/json; charset=utf-8")]
