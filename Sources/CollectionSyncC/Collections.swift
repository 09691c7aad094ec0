import CCollectionSync
import CollectionSync
import SyncctlContract

// Collections made, changed and destroyed offline, for C: the calls of syncctl create, update,
// destroy and collections, with their documents (semantics.md, "Collections made, changed and
// destroyed offline").

@_cdecl("cs_collection_create")
public func cs_collection_create(_ store: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ description: UnsafePointer<CChar>?,
                                 _ url: UnsafePointer<CChar>?, _ order: UnsafePointer<CChar>?,
                                 _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                                 _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(result, error) {
        let opened = try stores.get(store)
        let name = try text(name, "name")
        let description = try description.map { try text($0, "description") } ?? ""
        let url = try url.map { try text($0, "url") } ?? ""
        let timelineOrder = try order.map { try collectionOrder(text($0, "order")) } ?? .curationReverseChron
        let op = try blocking {
            try await opened.createCollection(name: name, description: description, url: url, order: timelineOrder)
        }
        return Documents.queued([op])
    }
}

@_cdecl("cs_collection_update")
public func cs_collection_update(_ store: OpaquePointer?, _ collection: UnsafePointer<CChar>?, _ name: UnsafePointer<CChar>?,
                                 _ description: UnsafePointer<CChar>?, _ url: UnsafePointer<CChar>?,
                                 _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                                 _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(result, error) {
        let opened = try stores.get(store)
        let collection = try CollectionID(validating: text(collection, "collection_id"))
        let name = try name.map { try text($0, "name") }
        let description = try description.map { try text($0, "description") }
        let url = try url.map { try text($0, "url") }
        guard name != nil || description != nil || url != nil else {
            throw CallError.usage("nothing to update: give name, description or url (NULL leaves a field unchanged)")
        }
        let op = try blocking {
            try await opened.updateCollection(collection, name: name, description: description, url: url)
        }
        return Documents.queued([op])
    }
}

@_cdecl("cs_collection_destroy")
public func cs_collection_destroy(_ store: OpaquePointer?, _ collection: UnsafePointer<CChar>?,
                                  _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                                  _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(result, error) {
        let opened = try stores.get(store)
        let collection = try CollectionID(validating: text(collection, "collection_id"))
        return Documents.destroyed(try blocking { try await opened.destroyCollection(collection) })
    }
}

@_cdecl("cs_collections")
public func cs_collections(_ store: OpaquePointer?, _ result: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                           _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    call(result, error) {
        let opened = try stores.get(store)
        return Documents.collections(try blocking { try await opened.collections() })
    }
}

/// A timeline order by its contract name (syncctl create --order).
private func collectionOrder(_ name: String) throws -> CollectionOrder {
    guard let order = CollectionOrder(rawValue: name) else {
        let names = CollectionOrder.allCases.map(\.rawValue).joined(separator: ", ")
        throw CallError.usage("order is one of \(names), not \"\(name.prefix(40))\"")
    }
    return order
}
