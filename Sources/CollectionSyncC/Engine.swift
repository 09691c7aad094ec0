import CCollectionSync
import CollectionSync
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import SyncctlContract

// The sync worker for C: an engine over its own transport, flush and pull as blocking calls, and
// the watch loop in a service group of its own, stopped gracefully.

/// An engine, its transport and its watch, if running.
final class EngineHandle: Sendable {
    let engine: SyncEngine
    let transport: AsyncHTTPClientTransport
    let watch = Mutex<(group: ServiceGroup, task: Task<Void, Never>)?>(nil)

    init(engine: SyncEngine, transport: AsyncHTTPClientTransport) {
        self.engine = engine
        self.transport = transport
    }

    /// Stops the watch, if running, letting the answers on the wire land; returns once stopped.
    func stopWatch() -> Bool {
        guard let running = watch.withLock({ watch in defer { watch = nil }; return watch }) else { return false }
        try? blocking {
            await running.group.triggerGracefulShutdown()
            await running.task.value
        }
        return true
    }
}

let engines = Handles<EngineHandle>()

@_cdecl("cs_engine_create")
public func cs_engine_create(_ store: OpaquePointer?, _ apiBase: UnsafePointer<CChar>?, _ credentials: UnsafePointer<cs_credentials>?,
                             _ options: UnsafePointer<cs_engine_options>?, _ engine: UnsafeMutablePointer<OpaquePointer?>?,
                             _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    engine?.pointee = nil
    return call(error) {
        guard let engine else { throw CallError.usage("engine must not be NULL") }
        let opened = try stores.get(store)
        let environment = ProcessInfo.processInfo.environment
        let base = try apiBase.map { try text($0, "api_base") } ?? APISettings.apiBase(environment: environment).url
        let apiCredentials = try credentials.map(given) ?? APISettings.credentials(environment: environment)
        var configuration = SyncEngine.Configuration()
        configuration.userID = try credentials == nil ? APISettings.userID(environment: environment) : APISettings.userID(from: environment)
        if let options = options?.pointee {
            if options.batch_size != 0 { configuration.batchSize = Int(options.batch_size) }
            if options.concurrency != 0 { configuration.concurrency = Int(options.concurrency) }
        }
        let transport = AsyncHTTPClientTransport()
        do {
            let client = try CollectionsClient(baseURL: base, credentials: apiCredentials, transport: transport)
            let made = try SyncEngine(store: opened, client: client, configuration: configuration)
            engine.pointee = engines.insert(EngineHandle(engine: made, transport: transport))
        } catch {
            try? blocking { try await transport.shutdown() }
            throw error
        }
        return nil
    }
}

/// The credentials of a `cs_credentials`: the four OAuth 1.0a values, or a bearer token alone.
private func given(_ credentials: UnsafePointer<cs_credentials>) throws -> APICredentials {
    let values = credentials.pointee
    if let bearer = values.bearer_token {
        return .bearer(try text(bearer, "bearer_token"))
    }
    let names = ["consumer_key", "consumer_secret", "access_token", "access_token_secret"]
    let fields = [values.consumer_key, values.consumer_secret, values.access_token, values.access_token_secret]
    let missing = zip(names, fields).filter { $0.1 == nil }.map(\.0)
    guard missing.isEmpty else {
        throw Failure(exitCode: Exit.config, message: "incomplete OAuth 1.0a credentials: \(missing.joined(separator: ", ")) missing (the four values go together)")
    }
    let texts = try zip(names, fields).map { try text($0.1, $0.0) }
    return .oauth1(consumerKey: texts[0], consumerSecret: texts[1], accessToken: texts[2], accessTokenSecret: texts[3])
}

@_cdecl("cs_engine_destroy")
public func cs_engine_destroy(_ engine: OpaquePointer?, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(error) {
        guard let handle = engines.remove(engine) else { throw CallError.closed }
        _ = handle.stopWatch()
        try? blocking { try await handle.transport.shutdown() }
        return nil
    }
}

@_cdecl("cs_engine_flush")
public func cs_engine_flush(_ engine: OpaquePointer?, _ deadline: Double, _ wait: Int32,
                            _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                            _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    result?.pointee = nil
    error?.pointee = nil
    var status = Exit.ok
    let code = call(nil, error) {
        let handle = try engines.get(engine)
        let limit = try timeLimit(deadline)
        let report = try blocking { try await handle.engine.flush(FlushOptions(timeLimit: limit, wait: wait != 0)) }
        var members = Documents.flush(report, pending: report.pending)
        let (code, message) = Exit.flush(report)
        if code != Exit.ok {
            members.append(("error", Failure(exitCode: code, message: message).json))
            error?.pointee = strdup(message)
        }
        status = code
        result?.pointee = strdup(JSON.object(members).text)
        return nil
    }
    return code != Exit.ok ? code : status
}

@_cdecl("cs_engine_pull")
public func cs_engine_pull(_ engine: OpaquePointer?, _ collection: UnsafePointer<CChar>?, _ deadline: Double,
                           _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                           _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(result, error) {
        let handle = try engines.get(engine)
        let collection = try CollectionID(validating: text(collection, "collection_id"))
        let limit = try timeLimit(deadline)
        let report = try blocking { try await handle.engine.pull(collection, timeLimit: limit) }
        // report.collection: a bound local id's server id, as syncctl pull shows it.
        return JSON.object(Documents.pull(report.collection, entries: report.entries, remoteWrites: report.remoteWrites,
                                          conflicts: report.conflicts))
    }
}

@_cdecl("cs_engine_watch_start")
public func cs_engine_watch_start(_ engine: OpaquePointer?, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(error) {
        let handle = try engines.get(engine)
        try handle.watch.withLock { watch in
            guard watch == nil else { throw CallError.usage("the watch already runs") }
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(
                services: [.init(service: handle.engine)],
                logger: Logger(label: "collectionsync", factory: { _ in SwiftLogNoOpLogHandler() })))
            watch = (group, Task.detached { try? await group.run() })
        }
        return nil
    }
}

@_cdecl("cs_engine_watch_stop")
public func cs_engine_watch_stop(_ engine: OpaquePointer?, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(error) {
        guard try engines.get(engine).stopWatch() else { throw CallError.usage("the watch does not run") }
        return nil
    }
}

/// A deadline in seconds (0: none) as a time limit.
private func timeLimit(_ seconds: Double) throws -> Duration? {
    guard seconds.isFinite, (0...1_000_000_000).contains(seconds) else {
        throw CallError.usage("deadline_seconds must be 0 (none) to 1e9")
    }
    return seconds == 0 ? nil : .milliseconds(Int64(seconds * 1000))
}
