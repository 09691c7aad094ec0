import CCollectionSync
import CollectionSync
import SyncctlContract
import Foundation
import Synchronization

// The C interface (include/collectionsync.h): blocking, thread-safe calls over the Swift API.
// Every function checks its input first, runs the Swift call to its end, and answers with a
// status (the contract's sysexits numbers), a JSON result in syncctl's shapes, or a message.
// No Swift type crosses the boundary: handles are numbers, texts are malloc'd C strings.

// MARK: - Version and memory

@_cdecl("cs_abi_version")
public func cs_abi_version() -> Int32 { 1 }

// Made once and never freed or written: a static string for C.
nonisolated(unsafe) private let versionText: UnsafeMutablePointer<CChar> = strdup(BuildInfo.version)!

@_cdecl("cs_version")
public func cs_version() -> UnsafePointer<CChar> { UnsafePointer(versionText) }

@_cdecl("cs_free")
public func cs_free(_ text: UnsafeMutablePointer<CChar>?) { free(text) }

// MARK: - Stores

@_cdecl("cs_store_open")
public func cs_store_open(_ path: UnsafePointer<CChar>?, _ options: UnsafePointer<cs_store_options>?,
                          _ store: UnsafeMutablePointer<OpaquePointer?>?,
                          _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    store?.pointee = nil
    return call(error) {
        guard let store else { throw CallError.usage("store must not be NULL") }
        let path = try text(path, "path")
        var configuration = SyncStore.Configuration()
        if let options = options?.pointee {
            guard options.busy_timeout_ms >= 0, options.observation_interval_ms >= 0 else {
                throw CallError.usage("store options must not be negative")
            }
            if options.busy_timeout_ms != 0 { configuration.busyTimeout = .milliseconds(options.busy_timeout_ms) }
            if options.observation_interval_ms != 0 {
                configuration.observationInterval = .milliseconds(options.observation_interval_ms)
            }
        }
        let opened = try blocking { [configuration] in try await SyncStore.open(at: path, configuration: configuration) }
        store.pointee = stores.insert(opened)
        return nil
    }
}

@_cdecl("cs_store_close")
public func cs_store_close(_ store: OpaquePointer?, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(error) {
        guard stores.remove(store) != nil else { throw CallError.closed }
        return nil
    }
}

@_cdecl("cs_store_remove")
public func cs_store_remove(_ store: OpaquePointer?, _ collection: UnsafePointer<CChar>?,
                            _ tweets: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int,
                            _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                            _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    edit(.remove, store, collection, tweets, count, result, error)
}

@_cdecl("cs_store_add")
public func cs_store_add(_ store: OpaquePointer?, _ collection: UnsafePointer<CChar>?,
                         _ tweets: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int,
                         _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                         _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    edit(.add, store, collection, tweets, count, result, error)
}

private func edit(_ kind: OpKind, _ store: OpaquePointer?, _ collection: UnsafePointer<CChar>?,
                  _ tweets: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int,
                  _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                  _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(result, error) {
        let opened = try stores.get(store)
        let collection = try CollectionID(validating: text(collection, "collection_id"))
        guard count >= 0, count == 0 || tweets != nil else { throw CallError.usage("tweet_ids must not be NULL") }
        let ids = try (0..<count).map { index in
            try TweetID(validating: text(tweets![index], "tweet_ids[\(index)]"))
        }
        let queued = try blocking {
            kind == .remove ? try await opened.remove(ids, from: collection) : try await opened.add(ids, to: collection)
        }
        return Documents.queued(queued)
    }
}

@_cdecl("cs_store_entries")
public func cs_store_entries(_ store: OpaquePointer?, _ collection: UnsafePointer<CChar>?,
                             _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                             _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(result, error) {
        let opened = try stores.get(store)
        let collection = try CollectionID(validating: text(collection, "collection_id"))
        return try blocking {
            let entries = try await opened.entries(of: collection)
            // A bound local id's document shows its server id, as syncctl entries does.
            return Documents.entries(try await opened.resolve(collection), entries)
        }
    }
}

@_cdecl("cs_store_status")
public func cs_store_status(_ store: OpaquePointer?, _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                            _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(result, error) {
        let opened = try stores.get(store)
        return try blocking { try await opened.status() }.json
    }
}

@_cdecl("cs_store_outbox")
public func cs_store_outbox(_ store: OpaquePointer?, _ filter: UnsafePointer<CChar>?,
                            _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                            _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(result, error) {
        let opened = try stores.get(store)
        let which: OutboxFilter
        switch try text(filter, "filter") {
        case "waiting": which = .waiting
        case "failed": which = .failed
        case "all": which = .all
        case let other: throw CallError.usage("filter is waiting, failed or all, not \"\(other.prefix(40))\"")
        }
        return Documents.outbox(try blocking { try await opened.outbox(which) })
    }
}

@_cdecl("cs_store_log")
public func cs_store_log(_ store: OpaquePointer?, _ conflictsOnly: Int32, _ limit: Int32,
                         _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                         _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(result, error) {
        let opened = try stores.get(store)
        guard limit >= 1 else { throw CallError.usage("limit must be 1 or more, not \(limit)") }
        return Documents.log(try blocking { try await opened.log(conflictsOnly: conflictsOnly != 0, limit: Int(limit)) })
    }
}

@_cdecl("cs_store_retry")
public func cs_store_retry(_ store: OpaquePointer?, _ ids: UnsafePointer<Int64>?, _ count: Int,
                           _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                           _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(result, error) {
        let opened = try stores.get(store)
        let ops = try opIDs(ids, count)
        if ops.isEmpty {
            return Documents.retried(try blocking { try await opened.retryAllFailed() })
        }
        try blocking { try await opened.retry(ops) }
        return Documents.retried(ops)
    }
}

@_cdecl("cs_store_discard")
public func cs_store_discard(_ store: OpaquePointer?, _ ids: UnsafePointer<Int64>?, _ count: Int,
                             _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                             _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(result, error) {
        let opened = try stores.get(store)
        let ops = try opIDs(ids, count)
        guard !ops.isEmpty else { throw CallError.usage("no op ids given") }
        try blocking { try await opened.discard(ops) }
        return Documents.discarded(ops)
    }
}

@_cdecl("cs_store_prune")
public func cs_store_prune(_ store: OpaquePointer?, _ olderThan: Int64, _ includeConflicts: Int32,
                           _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                           _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(result, error) {
        let opened = try stores.get(store)
        guard (0...1_000_000_000).contains(olderThan) else {
            throw CallError.usage("older_than_seconds must be 0 to 1e9, not \(olderThan)")
        }
        let pruned = try blocking { try await opened.prune(olderThan: .seconds(olderThan), includingConflicts: includeConflicts != 0) }
        return Documents.pruned(pruned)
    }
}

// MARK: - The boundary

/// Handles of one kind: numbers, never reused, that stand for objects kept here. A handle that
/// was closed (or never given) is refused, not followed.
final class Handles<Object: Sendable>: Sendable {
    private let objects = Mutex<[UInt: Object]>([:])

    func insert(_ object: Object) -> OpaquePointer {
        let id = handleIDs.add(1, ordering: .relaxed).newValue
        objects.withLock { $0[id] = object }
        return OpaquePointer(bitPattern: id)!
    }

    func get(_ handle: OpaquePointer?) throws -> Object {
        guard let handle, let object = objects.withLock({ $0[Self.id(handle)] }) else { throw CallError.closed }
        return object
    }

    func remove(_ handle: OpaquePointer?) -> Object? {
        guard let handle else { return nil }
        return objects.withLock { $0.removeValue(forKey: Self.id(handle)) }
    }

    /// The number a handle stands for.
    private static func id(_ handle: OpaquePointer) -> UInt { UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle))) }
}

/// One sequence for every kind of handle: a store's number is never an engine's (a C cast
/// between the two is refused, not followed).
let handleIDs = Atomic<UInt>(0)

let stores = Handles<SyncStore>()

/// Bad input found at the boundary.
enum CallError: Error {
    case usage(String)
    case closed

    var message: String {
        switch self {
        case .usage(let message): message
        case .closed: "not an open handle (closed, or never opened)"
        }
    }
}

/// Runs `body`; writes its JSON to `result` and a failure's message to `error`.
func call(_ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
          _ body: () throws -> JSON?) -> Int32 {
    result?.pointee = nil
    error?.pointee = nil
    do {
        let document = try body()
        if let result, let document { result.pointee = strdup(document.text) }
        return Exit.ok
    } catch let failure as CallError {
        error?.pointee = strdup(failure.message)
        return Exit.usage
    } catch let failure {
        let (code, message) = Exit.reading(failure)
        error?.pointee = strdup(message)
        return code
    }
}

func call(_ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ body: () throws -> JSON?) -> Int32 {
    call(nil, error, body)
}

/// A C string argument as a Swift string: refused when NULL or not UTF-8.
func text(_ pointer: UnsafePointer<CChar>?, _ name: String) throws -> String {
    guard let pointer else { throw CallError.usage("\(name) must not be NULL") }
    guard let value = String(validatingCString: pointer) else { throw CallError.usage("\(name) is not valid UTF-8") }
    return value
}

func opIDs(_ ids: UnsafePointer<Int64>?, _ count: Int) throws -> [OpID] {
    guard count >= 0 else { throw CallError.usage("count must not be negative") }
    guard count == 0 || ids != nil else { throw CallError.usage("op_ids must not be NULL") }
    return try (0..<count).map { index in
        guard ids![index] > 0 else { throw CallError.usage("op id \(ids![index]) is not an op id (1 or more)") }
        return OpID(ids![index])
    }
}

/// Runs an async call of the Swift API to its end on the caller's thread (a C caller's thread is
/// not one of Swift's concurrency pool: blocking it is what the C interface promises). The task
/// starts at once on this thread (`Task.immediate`): a call that never suspends, like an edit
/// whose transaction finds the connection free, runs here from start to end with no thread hop.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let outcome = Outcome<T>()
    let done = DispatchSemaphore(value: 0)
    Task.immediate {
        do { outcome.set(.success(try await body())) } catch { outcome.set(.failure(error)) }
        done.signal()
    }
    done.wait()
    return try outcome.get()
}

private final class Outcome<T: Sendable>: Sendable {
    private let value = Mutex<Result<T, any Error>?>(nil)
    func set(_ result: Result<T, any Error>) { value.withLock { $0 = result } }
    func get() throws -> T { try value.withLock { $0! }.get() }
}
