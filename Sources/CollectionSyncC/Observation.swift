import CCollectionSync
import CollectionSync
import Dispatch
import Foundation
import SyncctlContract

// Observation and events for C: each registration delivers its documents on a serial queue of its
// own (a library thread, never the caller's and never Swift's concurrency pool, which a slow C
// callback would starve), in order, one at a time.

/// A C callback and its context, moved to the registration's queue.
struct Callback: @unchecked Sendable {
    let function: cs_document_callback
    let context: UnsafeMutableRawPointer?

    func callAsFunction(_ document: String) {
        document.withCString { function(context, $0) }
    }
}

/// A registered callback: the task that produces its documents and the queue that delivers them.
final class Registration: Sendable {
    private let task: Task<Void, Never>
    private let queue: DispatchQueue
    private static let key = DispatchSpecificKey<ObjectIdentifier>()
    private let token = Token()
    private final class Token: Sendable {}

    /// Delivers each document `documents` yields to `callback`.
    init(_ callback: Callback, _ documents: @escaping @Sendable (_ deliver: @escaping @Sendable (String) -> Void) async -> Void) {
        let queue = DispatchQueue(label: "collection-sync callback")
        queue.setSpecific(key: Self.key, value: ObjectIdentifier(token))
        self.queue = queue
        task = Task.detached {
            await documents { document in queue.async { callback(document) } }
        }
    }

    /// Whether this is called from the registration's own callback.
    var isOwnCallback: Bool { DispatchQueue.getSpecific(key: Self.key) == ObjectIdentifier(token) }

    /// Stops producing, then waits for the last callback to finish.
    func cancel() {
        task.cancel()
        let task = task
        try? blocking { await task.value }
        queue.sync {}
    }
}

let observations = Handles<Registration>()

private func register(_ callback: cs_document_callback?, _ context: UnsafeMutableRawPointer?,
                      _ observation: UnsafeMutablePointer<OpaquePointer?>?,
                      _ documents: @escaping @Sendable (_ deliver: @escaping @Sendable (String) -> Void) async -> Void) throws {
    guard let observation else { throw CallError.usage("observation must not be NULL") }
    guard let callback else { throw CallError.usage("callback must not be NULL") }
    observation.pointee = observations.insert(Registration(Callback(function: callback, context: context), documents))
}

@_cdecl("cs_observe_entries")
public func cs_observe_entries(_ store: OpaquePointer?, _ collection: UnsafePointer<CChar>?, _ callback: cs_document_callback?,
                               _ context: UnsafeMutableRawPointer?, _ observation: UnsafeMutablePointer<OpaquePointer?>?,
                               _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    observation?.pointee = nil
    return call(error) {
        let opened = try stores.get(store)
        let collection = try CollectionID(validating: text(collection, "collection_id"))
        // Refused as cs_store_entries refuses it (64): a local id this database never made, a destroyed collection.
        _ = try blocking { try await opened.entries(of: collection) }
        try register(callback, context, observation) { deliver in
            do {
                // The id too: a local id's documents show its server id once bound, as syncctl entries does.
                for try await view in opened.observe({ store in
                    let entries = try await store.entries(of: collection)
                    return EntriesView(collection: try await store.resolve(collection), entries: entries)
                }) {
                    deliver(Documents.entries(view.collection, view.entries).text)
                }
            } catch {
                // The store failed (a read error), or the collection was destroyed: the
                // observation ends; nothing else to tell C.
            }
        }
        return nil
    }
}

/// A collection's view and the id its documents show.
private struct EntriesView: Sendable, Equatable {
    let collection: CollectionID
    let entries: [Entry]
}

@_cdecl("cs_observe_collections")
public func cs_observe_collections(_ store: OpaquePointer?, _ callback: cs_document_callback?, _ context: UnsafeMutableRawPointer?,
                                   _ observation: UnsafeMutablePointer<OpaquePointer?>?,
                                   _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    observation?.pointee = nil
    return call(error) {
        let opened = try stores.get(store)
        try register(callback, context, observation) { deliver in
            do {
                for try await collections in opened.observeCollections() { deliver(Documents.collections(collections).text) }
            } catch {
                // As above: the observation ends.
            }
        }
        return nil
    }
}

@_cdecl("cs_observe_status")
public func cs_observe_status(_ store: OpaquePointer?, _ callback: cs_document_callback?, _ context: UnsafeMutableRawPointer?,
                              _ observation: UnsafeMutablePointer<OpaquePointer?>?,
                              _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    observation?.pointee = nil
    return call(error) {
        let opened = try stores.get(store)
        try register(callback, context, observation) { deliver in
            do {
                for try await status in opened.observeStatus() { deliver(status.json.text) }
            } catch {
                // As above: the observation ends.
            }
        }
        return nil
    }
}

@_cdecl("cs_engine_events")
public func cs_engine_events(_ engine: OpaquePointer?, _ callback: cs_document_callback?, _ context: UnsafeMutableRawPointer?,
                             _ observation: UnsafeMutablePointer<OpaquePointer?>?,
                             _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    observation?.pointee = nil
    return call(error) {
        let events = try engines.get(engine).engine.events()
        try register(callback, context, observation) { deliver in
            for await event in events {
                guard let members = Documents.event(event) else { continue }
                deliver(JSON.object([("at", .string(rfc3339(Date())))] + members).text)
            }
        }
        return nil
    }
}

@_cdecl("cs_observation_cancel")
public func cs_observation_cancel(_ observation: OpaquePointer?, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(error) {
        let registration = try observations.get(observation)
        guard !registration.isOwnCallback else {
            throw CallError.usage("an observation cannot be cancelled from its own callback (it would wait for itself)")
        }
        guard observations.remove(observation) != nil else { throw CallError.closed }
        registration.cancel()
        return nil
    }
}
