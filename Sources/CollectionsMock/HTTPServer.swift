import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Asks a connection to close as soon as it is not in the middle of an answer.
struct MockQuiesceEvent: Sendable {}

/// One connection: gathers a request, hands it to the service, and carries out the answer
/// (at once, after a latency, never, cut short, or not at all: closed or reset). HTTP/1.1 keep-alive; one flush
/// (one `writev`) per answer.
final class MockHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving
        /// An answer is scheduled (latency).
        case waiting
        /// The request will never be answered.
        case blackholed
    }

    private let core: ServerCore
    private let adminOnly: Bool
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var tooLarge = false
    private var state = State.idle
    private var quiescing = false
    private var removed = false
    private var localAuthority = ""

    init(core: ServerCore, adminOnly: Bool) {
        self.core = core
        self.adminOnly = adminOnly
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if let address = context.channel.localAddress, let ip = address.ipAddress, let port = address.port {
            localAuthority = ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = nil
            tooLarge = false
            state = .receiving
        case .body(var chunk):
            guard !tooLarge else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > core.configuration.maxBodyBytes {
                tooLarge = true
                body = nil
            } else if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let response: OutgoingResponse
            if tooLarge {
                response = core.service.tooLarge()
            } else {
                let request = IncomingRequest(
                    method: head.method.rawValue, uri: head.uri, host: head.headers.first(name: "host"),
                    localAuthority: localAuthority, authorization: head.headers.first(name: "authorization"),
                    contentType: head.headers.first(name: "content-type"),
                    body: body.map { Array($0.readableBytesView) } ?? [], adminOnly: adminOnly)
                body = nil
                response = core.service.handle(request)
            }
            let keepAlive = head.isKeepAlive
            let version = head.version
            if let action = response.action {
                // Carried out before answering, so that a client holding the answer sees its effect.
                state = .waiting
                let endsConnection = !adminOnly && action != .endOutage
                core.perform(action, sparing: ObjectIdentifier(context.channel)).hop(to: context.eventLoop).assumeIsolated().whenComplete { [self] result in
                    guard !removed, context.channel.isActive else { return }
                    var answer = response
                    if case .failure(let error) = result {
                        answer = core.service.adminAnswer(500, ["error": "\(error)"])
                    }
                    answer.action = nil
                    send(answer, keepAlive: keepAlive && !endsConnection, version: version, context: context)
                }
            } else if response.delivery == .blackhole {
                state = .blackholed
                if quiescing { context.close(promise: nil) }
            } else if response.delay > 0 {
                state = .waiting
                let delay = TimeAmount.nanoseconds(Int64(response.delay * 1e9))
                context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
                    guard !removed, context.channel.isActive else { return }
                    send(response, keepAlive: keepAlive, version: version, context: context)
                }
            } else {
                send(response, keepAlive: keepAlive, version: version, context: context)
            }
        }
    }

    private func send(_ response: OutgoingResponse, keepAlive: Bool, version: HTTPVersion, context: ChannelHandlerContext) {
        state = .idle
        if response.delivery == .drop {
            context.close(promise: nil)
            return
        }
        if response.delivery == .reset {
            reset(context: context)
            return
        }
        let truncate = response.delivery == .truncate
        let close = !keepAlive || quiescing || truncate
        var headers = HTTPHeaders(response.headers)
        headers.add(name: "content-length", value: String(response.body.count))
        if close {
            headers.add(name: "connection", value: "close")
        } else if version.major == 1 && version.minor == 0 {
            headers.add(name: "connection", value: "keep-alive")
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: response.status), headers: headers))), promise: nil)
        let length = truncate ? response.body.count / 2 : response.body.count
        var buffer = context.channel.allocator.buffer(capacity: length)
        buffer.writeBytes(response.body[..<length])
        if truncate {
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer)))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            return
        }
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if close {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    /// Closes the connection with a TCP RST instead of a FIN: `SO_LINGER` on with a zero timeout
    /// makes the kernel discard what is unsent and reset the connection at `close`. The client
    /// reads `ECONNRESET`.
    private func reset(context: ChannelHandlerContext) {
        guard let socket = context.channel as? any SocketOptionProvider else {
            context.close(promise: nil)
            return
        }
        socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is MockQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        quiescing = true
        switch state {
        case .idle, .blackholed: context.close(promise: nil)
        case .receiving, .waiting: break  // closes after its answer
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        core.logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}

/// The listeners and connections of one mock server, around its ``MockService``.
final class ServerCore: Sendable {
    let service: MockService
    let configuration: MockConfiguration
    let group: any EventLoopGroup
    let logger: Logger
    private let listeners: Mutex<Listeners>

    private struct Connection {
        let channel: any Channel
        let admin: Bool
    }

    private struct Listeners {
        var api: (any Channel)?
        var admin: (any Channel)?
        var port = 0
        var adminPort: Int?
        var connections: [ObjectIdentifier: Connection] = [:]
        var recovery: Scheduled<Void>?
        var outage = false
        var rebinding = false
        var shuttingDown = false
        /// During an outage: a socket bound to the API port but not listening. Connections are
        /// still refused, and no other socket on this machine (another test's server on port 0,
        /// a client's ephemeral port) can take the port before the recovery rebinds it.
        var placeholder: PortPlaceholder?
    }

    private init(configuration: MockConfiguration, group: any EventLoopGroup) {
        self.configuration = configuration
        self.group = group
        service = MockService(configuration: configuration)
        logger = configuration.logger
        listeners = Mutex(Listeners())
    }

    var port: Int { listeners.withLock { $0.port } }
    var adminPort: Int? { listeners.withLock { $0.adminPort } }
    var isInOutage: Bool { listeners.withLock { $0.outage } }

    /// Binds the API listener (and the admin listener, if configured).
    static func start(configuration: MockConfiguration) async throws -> ServerCore {
        let core = ServerCore(configuration: configuration, group: MultiThreadedEventLoopGroup.singleton)
        let api = try await core.bootstrap(admin: false).bind(host: configuration.host, port: configuration.port).get()
        let port = api.localAddress?.port ?? configuration.port
        core.listeners.withLock {
            $0.api = api
            $0.port = port
        }
        if let adminPort = configuration.adminPort {
            do {
                let admin = try await core.bootstrap(admin: true).bind(host: configuration.host, port: adminPort).get()
                let bound = admin.localAddress?.port ?? adminPort
                core.listeners.withLock {
                    $0.admin = admin
                    $0.adminPort = bound
                }
            } catch {
                try? await api.close()
                throw error
            }
        }
        core.logger.info("mock Collections API listening", metadata: ["host": "\(configuration.host)", "port": "\(port)"])
        return core
    }

    private func bootstrap(admin: Bool) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)  // see PortPlaceholder
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { [self] channel in
                guard register(channel, admin: admin) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MockHTTPHandler(core: self, adminOnly: admin))
                }
            }
    }

    /// Tracks a new connection; false when it must be refused (outage or shutdown).
    private func register(_ channel: any Channel, admin: Bool) -> Bool {
        let key = ObjectIdentifier(channel)
        let accepted = listeners.withLock { listeners in
            guard !listeners.shuttingDown, admin || !listeners.outage else { return false }
            listeners.connections[key] = Connection(channel: channel, admin: admin)
            return true
        }
        if accepted {
            channel.closeFuture.whenComplete { [self] _ in
                _ = listeners.withLock { $0.connections.removeValue(forKey: key) }
            }
        }
        return accepted
    }

    /// Carries out what an admin answer asked for (before it is written); `sparing` is the
    /// connection that asked, left open to carry the answer.
    func perform(_ action: OutgoingResponse.Action, sparing: ObjectIdentifier) -> EventLoopFuture<Void> {
        switch action {
        case .beginOutage(let seconds): beginOutage(seconds: seconds, sparing: sparing)
        case .endOutage: endOutage()
        }
    }

    /// Stops accepting on the API port and closes its connections (connection refused from now
    /// on); with `seconds`, listens again on the same port after that long.
    func beginOutage(seconds: Double?, sparing: ObjectIdentifier? = nil) -> EventLoopFuture<Void> {
        let loop = group.next()
        // Hold the port before the listener closes (both sockets set SO_REUSEPORT): it is never
        // free during the outage, so the recovery always gets it back.
        let placeholder = PortPlaceholder(host: configuration.host, port: port)
        let (server, connections) = listeners.withLock { listeners -> ((any Channel)?, [any Channel]) in
            guard !listeners.shuttingDown else { placeholder?.release(); return (nil, []) }
            if listeners.placeholder == nil, !listeners.rebinding { listeners.placeholder = placeholder } else { placeholder?.release() }
            listeners.recovery?.cancel()
            listeners.recovery = nil
            listeners.outage = true
            let server = listeners.api
            listeners.api = nil
            if let seconds {
                listeners.recovery = loop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) { [self] in
                    endOutage().whenFailure { [logger] error in
                        logger.error("could not listen again after an outage", metadata: ["error": "\(error)"])
                    }
                }
            }
            return (server, listeners.connections.filter { !$0.value.admin && $0.key != sparing }.map(\.value.channel))
        }
        service.state.withLock { $0.faults.outage = true }
        logger.info("outage: connections refused", metadata: ["seconds": "\(seconds.map { "\($0)" } ?? "until ended")"])
        let closes = ([server].compactMap { $0 } + connections).map { channel in
            channel.close().recover { _ in }
        }
        return EventLoopFuture.andAllComplete(closes, on: loop)
    }

    /// Listens again on the API port (same host and port). Succeeds at once if there is no outage.
    func endOutage() -> EventLoopFuture<Void> {
        let loop = group.next()
        let (port, bind) = listeners.withLock { listeners -> (Int, Bool) in
            listeners.recovery?.cancel()
            listeners.recovery = nil
            guard listeners.outage, !listeners.shuttingDown, !listeners.rebinding else { return (0, false) }
            listeners.rebinding = true
            return (listeners.port, true)
        }
        guard bind else { return loop.makeSucceededVoidFuture() }
        let placeholder = listeners.withLock { listeners in
            defer { listeners.placeholder = nil }
            return listeners.placeholder
        }
        // Listening on the socket that held the port leaves no moment in which another socket
        // (a client's ephemeral port, on a busy machine) could take it; NIO owns it from here.
        let listening = placeholder.map { bootstrap(admin: false).withBoundSocket($0.descriptor) }
            ?? bootstrap(admin: false).bind(host: configuration.host, port: port)
        return listening.flatMapErrorThrowing { [self] error in
            listeners.withLock { $0.rebinding = false }
            throw error
        }.flatMap { [self] channel in
            let keep = listeners.withLock { listeners -> Bool in
                listeners.rebinding = false
                guard !listeners.shuttingDown else { return false }
                listeners.api = channel
                listeners.outage = false
                return true
            }
            guard keep else { return channel.close().recover { _ in } }
            service.state.withLock { $0.faults.outage = false }
            logger.info("outage over: listening again", metadata: ["port": "\(port)"])
            return channel.eventLoop.makeSucceededVoidFuture()
        }
    }

    /// Stops listening, lets answers in progress finish (up to the grace period), closes every
    /// connection.
    func shutdown() async {
        let (servers, connections) = listeners.withLock { listeners -> ([any Channel], [any Channel]) in
            listeners.shuttingDown = true
            listeners.recovery?.cancel()
            listeners.recovery = nil
            listeners.placeholder?.release()
            listeners.placeholder = nil
            let servers = [listeners.api, listeners.admin].compactMap { $0 }
            listeners.api = nil
            listeners.admin = nil
            return (servers, listeners.connections.values.map(\.channel))
        }
        for server in servers { try? await server.close() }
        for channel in connections {
            channel.eventLoop.execute {
                channel.pipeline.fireUserInboundEventTriggered(MockQuiesceEvent())
            }
        }
        let loop = group.next()
        let grace = configuration.shutdownGracePeriod.components
        let force = loop.scheduleTask(in: .nanoseconds(grace.seconds * 1_000_000_000 + grace.attoseconds / 1_000_000_000)) {
            for channel in connections { channel.close(promise: nil) }
        }
        for channel in connections { try? await channel.closeFuture.get() }
        force.cancel()
        logger.info("mock Collections API stopped")
    }
}

extension MockService {
    /// The answer to a body over ``MockConfiguration/maxBodyBytes``.
    func tooLarge() -> OutgoingResponse {
        let failure = APIFailure(status: 413, code: nil, message: "Request body too large.")
        let date = state.withLock { state in state.httpDate(now(state)) }
        return OutgoingResponse(status: 413, headers: [("content-type", "application/json;charset=utf-8"), ("date", date)],
                                body: failure.body.bytes)
    }
}

/// A TCP socket bound to a port without listening: connections to the port are refused, and the
/// port stays reserved for the listener that comes back after an outage.
struct PortPlaceholder: Sendable {
    let descriptor: Int32

    /// nil when the port cannot be held (then the outage simply leaves it free).
    init?(host: String, port: Int) {
        guard let address = try? SocketAddress(ipAddress: host, port: port) else { return nil }
        let family: Int32 = switch address { case .v6: AF_INET6; default: AF_INET }
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        // The API listener sets SO_REUSEPORT too: this socket can take the port while it still listens.
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = address.withSockAddr { pointer, size in bind(descriptor, pointer, socklen_t(size)) }
        guard bound == 0 else {
            close(descriptor)
            return nil
        }
        self.descriptor = descriptor
    }

    func release() {
        close(descriptor)
    }
}
