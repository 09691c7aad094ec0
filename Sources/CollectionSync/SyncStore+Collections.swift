import CollectionsAPI
import Foundation

/// The order of a collection's timeline, chosen when it is created.
public enum CollectionOrder: String, Sendable, Hashable, CaseIterable {
    case curationReverseChron = "curation_reverse_chron"
    case tweetChron = "tweet_chron"
    case tweetReverseChron = "tweet_reverse_chron"
}

/// A collection of the local store, with its metadata as the user sees it.
public struct LocalCollection: Sendable, Hashable {
    /// The server id once known (bound), else the local id.
    public let id: CollectionID
    /// The local id of a collection made here (`local-N`); nil for one known from the server.
    public let localID: CollectionID?
    /// "" while the metadata is not known (a collection edited but never pulled).
    public let name: String
    public let description: String
    public let url: String
    public let timelineOrder: String
    /// The earliest waiting (pending or in flight) collection op (`create`, `update` or
    /// `destroy`), if any; a dead-lettered one is in the outbox's failed ops.
    public let pending: OpKind?
    /// The server confirmed that the collection no longer exists (destroyed elsewhere).
    public let gone: Bool
    /// Entries present in the local view.
    public let entries: Int
}

/// What ``SyncStore/destroyCollection(_:)`` did.
public enum CollectionDestruction: Sendable, Hashable {
    /// The destroy is queued; the collection is hidden until it is applied.
    case queued(QueuedOp)
    /// The collection's create was never sent: it was dropped with its ops, and nothing goes to the server.
    case dropped(CollectionID)
}

/// semantics.md "Collections made, changed and destroyed offline", 8: what the API takes.
/// (Package-wide: syncctl checks its arguments before it opens a database.)
package enum CollectionRules {
    package static func validate(name: String) throws {
        let count = name.unicodeScalars.count
        guard (1...25).contains(count) else {
            throw SyncError.invalid("a collection name must be 1 to 25 characters, not \(count)")
        }
    }

    package static func validate(description: String) throws {
        let count = description.unicodeScalars.count
        guard count <= 160 else { throw SyncError.invalid("a collection description must be at most 160 characters, not \(count)") }
    }

    package static func validate(url: String) throws {
        guard !url.isEmpty else { return }
        let problem = "the collection url \(quoted(url)) must be empty or an http or https URL with a host, without white space"
        guard !url.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control }),
              let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty else {
            throw SyncError.invalid(problem)
        }
    }
}

/// What a create sends (semantics.md, 2), kept in its op's payload.
struct CreatePayload: Codable, Sendable, Hashable {
    var name: String
    var description: String
    var url: String
    var timeline_order: String
}

/// An update's intent: the fields the user gave, each with the stamp of its latest edit.
struct UpdatePayload: Codable, Sendable, Hashable {
    struct Field: Codable, Sendable, Hashable {
        var value: String
        var hlc: Int64
    }
    var name: Field?
    var description: Field?
    var url: Field?

    var isEmpty: Bool { name == nil && description == nil && url == nil }
    var fieldNames: [String] { [name.map { _ in "name" }, description.map { _ in "description" }, url.map { _ in "url" }].compactMap { $0 } }

    /// `newer`'s fields over these.
    func merged(with newer: UpdatePayload) -> UpdatePayload {
        UpdatePayload(name: newer.name ?? name, description: newer.description ?? description, url: newer.url ?? url)
    }
}

enum JSONPayload {
    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String?, op: Int64) throws -> T {
        guard let text, let value = try? JSONDecoder().decode(T.self, from: Data(text.utf8)) else {
            throw SyncError(code: .databaseCorrupt, message: "op \(op) has no readable intent")
        }
        return value
    }
}

extension SyncStore {
    // MARK: - Edits of collections

    /// Makes a collection in the local store at once, with a new local id (`local-N`), and
    /// queues its `create`. Entry ops of the collection wait until the create is applied; the
    /// create's answer binds the local id to the server's id, and the local id stays an alias.
    ///
    /// - Throws: ``SyncError/Code/invalidInput`` (nothing written) for a name that is not 1 to
    ///   25 characters, a description over 160, or a url that is not empty, http or https.
    @discardableResult
    public func createCollection(name: String, description: String = "", url: String = "",
                                 order: CollectionOrder = .curationReverseChron) async throws -> QueuedOp {
        try CollectionRules.validate(name: name)
        try CollectionRules.validate(description: description)
        try CollectionRules.validate(url: url)
        let payload = JSONPayload.encode(CreatePayload(name: name, description: description, url: url, timeline_order: order.rawValue))
        return try await write { tx in
            let number = try tx.db.queryFirst("SELECT coalesce(max(number), 0) + 1 FROM local_collections") { $0.int64(0) } ?? 1
            guard let local = CollectionID(localNumber: number) else { throw SyncError(code: .databaseCorrupt, message: "bad local id number") }
            try tx.db.run("INSERT INTO local_collections (local_id, number, created_at) VALUES (?, ?, ?)",
                          .text(local.rawValue), .integer(number), .integer(tx.wallMillis))
            try tx.db.run("""
                INSERT INTO collections (id, local_id, name, description, url, timeline_order, base_name, base_description, base_url, created_at)
                VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?2, ?3, ?4, ?6)
                """, .text(local.rawValue), .text(name), .text(description), .text(url), .text(order.rawValue), .integer(tx.wallMillis))
            let hlc = tx.tick()
            let id = try tx.insertOp(.create, local, nil, hlc: hlc, payload: payload)
            try tx.log(.created, local, nil, op: id, localHLC: hlc, detail: "\(quoted(name)) made locally as \(local)")
            try tx.log(.localWrite, local, nil, op: id, localHLC: hlc, detail: "create")
            return QueuedOp(id: id, kind: .create, collection: local, tweet: nil, hlc: hlc)
        }
    }

    /// Changes a collection's metadata locally and queues an `update` of the fields given (nil:
    /// unchanged). The API has no partial update: the update sends the whole metadata, but its
    /// intent is only these fields, each stamped with its edit's time (one waiting update per
    /// collection keeps the union of the fields).
    ///
    /// - Throws: ``SyncError/Code/invalidInput`` (nothing written) when no field is given, a field
    ///   breaks the API's limits, the collection is unknown, destroyed or being destroyed, or its
    ///   metadata is not known (never pulled and not made here).
    @discardableResult
    public func updateCollection(_ collection: CollectionID, name: String? = nil, description: String? = nil,
                                 url: String? = nil) async throws -> QueuedOp {
        guard name != nil || description != nil || url != nil else {
            throw SyncError.invalid("an update needs at least one of name, description and url")
        }
        if let name { try CollectionRules.validate(name: name) }
        if let description { try CollectionRules.validate(description: description) }
        if let url { try CollectionRules.validate(url: url) }
        return try await write { tx in
            let target = try tx.db.resolveCollection(collection, editing: true)
            let known = try tx.db.queryFirst("SELECT base_name IS NOT NULL FROM collections WHERE id = ?", .text(target.rawValue)) { $0.int(0) == 1 }
            guard known == true else {
                throw SyncError.invalid("the metadata of \(collection) is not known: pull it first (an update sends every field)")
            }
            let hlc = tx.tick()
            var intent = UpdatePayload()
            if let name { intent.name = .init(value: name, hlc: hlc.rawValue) }
            if let description { intent.description = .init(value: description, hlc: hlc.rawValue) }
            if let url { intent.url = .init(value: url, hlc: hlc.rawValue) }
            // One waiting update per collection: a pending or failed one is replaced by the union.
            let waiting = try tx.db.queryFirst("""
                SELECT id, state, payload FROM ops WHERE collection_id = ? AND tweet_id IS NULL AND kind = 'update'
                  AND state IN ('pending', 'failed') ORDER BY id DESC LIMIT 1
                """, .text(target.rawValue)) { (OpID($0.int64(0)), OpState(rawValue: $0.string(1)) ?? .pending, $0.optionalString(2)) }
            if let (oldID, _, oldPayload) = waiting {
                intent = try JSONPayload.decode(UpdatePayload.self, oldPayload, op: oldID.rawValue).merged(with: intent)
            }
            let id = try tx.insertOp(.update, target, nil, hlc: hlc, payload: JSONPayload.encode(intent))
            if let (oldID, oldState, _) = waiting {
                try tx.move([oldID], of: target, from: [oldState], to: .gone)
                try tx.log(.coalesced, target, nil, op: oldID, detail: "\(oldState.rawValue) update replaced by op \(id) (update)")
            }
            try tx.refreshMetadata(target)
            let fields = [name.map { _ in "name" }, description.map { _ in "description" }, url.map { _ in "url" }].compactMap { $0 }
            try tx.log(.localWrite, target, nil, op: id, localHLC: hlc, detail: "update \(fields.joined(separator: ", "))")
            return QueuedOp(id: id, kind: .update, collection: target, tweet: nil, hlc: hlc)
        }
    }

    /// Destroys a collection locally: its waiting entry and update ops are cancelled (each
    /// logged `coalesced`) and a `destroy` is queued, sent once the collection's ops in flight
    /// are answered. Until it is applied the collection is listed with `pending: destroy`; then
    /// not at all. A collection whose create was never sent is dropped with its ops instead:
    /// nothing goes to the server.
    ///
    /// - Throws: ``SyncError/Code/invalidInput`` for an unknown collection, or one destroyed,
    ///   being destroyed or dropped.
    public func destroyCollection(_ collection: CollectionID) async throws -> CollectionDestruction {
        try await write { tx in
            let target = try tx.editableCollection(collection)  // a server id not seen here yet is added
            if target.isLocal {
                let create = try tx.db.queryFirst("""
                    SELECT o.state, l.maybe_sent FROM ops o JOIN local_collections l ON l.local_id = o.collection_id
                    WHERE o.collection_id = ? AND o.kind = 'create'
                    """, .text(target.rawValue)) { (OpState(rawValue: $0.string(0)), $0.int(1) == 1) }
                if let (state, maybeSent) = create, state != .inFlight, !maybeSent {
                    try tx.drop(target, why: "destroyed before its create was sent")
                    return .dropped(target)
                }
            }
            let hlc = tx.tick()
            let id = try tx.insertOp(.destroy, target, nil, hlc: hlc)
            try tx.cancelWaitingOps(of: target, except: [.create, .destroy], because: "cancelled by the destroy of its collection (op \(id))")
            try tx.db.run("UPDATE collections SET destroyed = 'destroying' WHERE id = ?", .text(target.rawValue))
            try tx.log(.localWrite, target, nil, op: id, localHLC: hlc, detail: "destroy")
            return .queued(QueuedOp(id: id, kind: .destroy, collection: target, tweet: nil, hlc: hlc))
        }
    }

    // MARK: - Reading collections

    /// The collections of the local store (not those destroyed or dropped), by id.
    public func collections() async throws -> [LocalCollection] {
        try await database.read { db in try db.localCollections() }
    }

    /// The id `collection` stands for: a bound local id's server id; otherwise itself.
    ///
    /// - Throws: ``SyncError/Code/invalidInput`` for a local id this database never made.
    public func resolve(_ collection: CollectionID) async throws -> CollectionID {
        guard collection.isLocal else { return collection }
        return try await database.read { db in try db.resolveCollection(collection, editing: false) }
    }
}

extension SyncStore {
    /// The collection a pull of `collection` fetches; refuses a destroyed one.
    func pullTarget(_ collection: CollectionID) async throws -> CollectionID {
        try await database.read { db in try db.resolveCollection(collection, editing: true) }
    }

    /// A pull of a collection not on the server yet: nothing fetched, nothing changed.
    func unpulledReport(_ collection: CollectionID) async throws -> PullReport {
        let entries = try await database.read { db in
            try db.queryFirst("SELECT entries_present FROM collections WHERE id = ?", .text(collection.rawValue)) { $0.int(0) } ?? 0
        }
        return PullReport(collection: collection, entries: entries, remoteWrites: 0, conflicts: 0)
    }

    /// The server confirmed that `collection` is gone (semantics.md, offline collections, 10).
    func markGone(_ collection: CollectionID) async throws {
        try await write { tx in try tx.markGone(collection) }
    }
}

extension Connection {
    /// The id to use for `collection`: a bound local id's server id, else itself.
    ///
    /// - Throws: ``SyncError/Code/invalidInput`` for a local id this database never made and,
    ///   when `editing`, for a collection destroyed, being destroyed or dropped.
    func resolveCollection(_ collection: CollectionID, editing: Bool) throws -> CollectionID {
        var target = collection
        if collection.isLocal {
            guard let bound = try queryFirst("SELECT server_id FROM local_collections WHERE local_id = ?", .text(collection.rawValue),
                                             row: { $0.optionalString(0) }) else {
                throw SyncError.invalid("no collection \(collection) in this database (a local id names a collection made here)")
            }
            target = bound.map(CollectionID.init(trusted:)) ?? collection
        }
        if editing, let state = try queryFirst("SELECT destroyed FROM collections WHERE id = ?", .text(target.rawValue),
                                               row: { $0.optionalString(0) }), let state {
            let what = state == "destroying" ? "being destroyed" : state
            throw SyncError.invalid("the collection \(collection) is \(what)")
        }
        return target
    }

    func localCollections() throws -> [LocalCollection] {
        try query("""
            SELECT c.id, c.local_id, coalesce(c.name, ''), coalesce(c.description, ''), coalesce(c.url, ''),
                   coalesce(c.timeline_order, ''), c.gone, c.entries_present,
                   (SELECT o.kind FROM ops o WHERE o.collection_id = c.id AND o.tweet_id IS NULL
                      AND o.state IN ('pending', 'in_flight') ORDER BY o.id LIMIT 1)
            FROM collections c WHERE c.destroyed IS NULL OR c.destroyed = 'destroying'
            ORDER BY c.local_id IS NOT NULL AND c.id LIKE 'local-%', c.id
            """) { row in
            LocalCollection(id: CollectionID(trusted: row.string(0)), localID: row.optionalString(1).map(CollectionID.init(trusted:)),
                            name: row.string(2), description: row.string(3), url: row.string(4), timelineOrder: row.string(5),
                            pending: row.optionalString(8).flatMap(OpKind.init(rawValue:)), gone: row.int(6) == 1, entries: row.int(7))
        }
    }
}

extension WriteTransaction {
    /// Sets a collection's metadata view: each field from the newest pending or in-flight
    /// update that has it, else from the base.
    mutating func refreshMetadata(_ collection: CollectionID) throws {
        let intents = try db.query("""
            SELECT id, payload FROM ops WHERE collection_id = ? AND tweet_id IS NULL AND kind = 'update'
              AND state IN ('pending', 'in_flight') ORDER BY id
            """, .text(collection.rawValue)) { (OpID($0.int64(0)), $0.optionalString(1)) }
        var intent = UpdatePayload()
        for (id, payload) in intents { intent = intent.merged(with: try JSONPayload.decode(UpdatePayload.self, payload, op: id.rawValue)) }
        try db.run("""
            UPDATE collections SET name = coalesce(?2, base_name), description = coalesce(?3, base_description), url = coalesce(?4, base_url)
            WHERE id = ?1
            """, .text(collection.rawValue), .string(intent.name?.value), .string(intent.description?.value), .string(intent.url?.value))
    }

    /// Cancels the pending and failed ops of `collection` except those of `kinds`, each logged
    /// `coalesced`; each key's view reverts.
    mutating func cancelWaitingOps(of collection: CollectionID, except kinds: Set<OpKind>, because why: String) throws {
        let waiting = try db.query("""
            SELECT \(Op.columns) FROM ops WHERE collection_id = ? AND state IN ('pending', 'failed') ORDER BY id
            """, .text(collection.rawValue), row: Op.init(row:)).filter { !kinds.contains($0.kind) }
        for op in waiting {
            try move([op.id], of: collection, from: [op.state], to: .gone)
            try log(.coalesced, collection, op.tweet, op: op.id, localHLC: op.hlc, detail: "\(op.state.rawValue) \(op.kind.rawValue) \(why)")
            if let tweet = op.tweet { try refreshView(collection, tweet) }
        }
        if waiting.contains(where: { $0.kind == .update }) { try refreshMetadata(collection) }
    }

    /// Drops a collection made here whose create never reached the server: its ops and
    /// entries go, the collection is marked dropped, and nothing is sent.
    mutating func drop(_ local: CollectionID, why: String) throws {
        let ops = try db.query("SELECT \(Op.columns) FROM ops WHERE collection_id = ? ORDER BY id", .text(local.rawValue), row: Op.init(row:))
        for op in ops {
            try move([op.id], of: local, from: [op.state], to: .gone)
            try log(.coalesced, local, op.tweet, op: op.id, localHLC: op.hlc, detail: "\(op.state.rawValue) \(op.kind.rawValue) dropped with its collection")
        }
        let present = try presentEntries(local)
        counterChanges[local, default: CounterChange()].present -= present
        try db.run("DELETE FROM entries WHERE collection_id = ?", .text(local.rawValue))
        try db.run("UPDATE collections SET destroyed = 'dropped' WHERE id = ?", .text(local.rawValue))
        try log(.destroyed, local, nil, detail: "dropped: \(why); nothing was sent")
    }

    /// Binds a local id to the server's id: the collection's rows (its entries and waiting ops)
    /// move to the server id, and the local id stays an alias that resolves to it.
    mutating func bind(_ local: CollectionID, to server: CollectionID, metadata: CollectionMetadata, createOp: OpID) throws {
        // A row the server id already has (never expected: the id is new) must not be lost.
        if try db.queryFirst("SELECT 1 FROM collections WHERE id = ?", .text(server.rawValue), row: { $0.int(0) }) != nil {
            throw SyncError(code: .databaseCorrupt, message: "\(server) answered the create of \(local), but this database already has a collection \(server)")
        }
        try db.run("""
            INSERT INTO collections (id, name, description, url, user_id, collection_url, timeline_order, created_at, last_pulled_at,
                                     last_pull_hlc, ops_pending, ops_in_flight, ops_failed, entries_present, local_id,
                                     base_name, base_description, base_url, meta_base_hlc, destroyed, gone)
            SELECT ?2, name, description, url, user_id, collection_url, timeline_order, created_at, last_pulled_at,
                   last_pull_hlc, ops_pending, ops_in_flight, ops_failed, entries_present, local_id,
                   base_name, base_description, base_url, meta_base_hlc, destroyed, gone
            FROM collections WHERE id = ?1
            """, .text(local.rawValue), .text(server.rawValue))
        try db.run("UPDATE entries SET collection_id = ?2 WHERE collection_id = ?1", .text(local.rawValue), .text(server.rawValue))
        try db.run("UPDATE ops SET collection_id = ?2 WHERE collection_id = ?1", .text(local.rawValue), .text(server.rawValue))
        try db.run("DELETE FROM collections WHERE id = ?", .text(local.rawValue))
        if let change = counterChanges.removeValue(forKey: local) {
            counterChanges[server, default: CounterChange()].add(change)
        }
        try db.run("UPDATE local_collections SET server_id = ?2, bound_at = ?3, maybe_sent = 0 WHERE local_id = ?1",
                   .text(local.rawValue), .text(server.rawValue), .integer(wallMillis))
        let hlc = tick()
        try takeMetadataBase(server, metadata, learned: hlc)
        try log(.bound, server, nil, op: createOp, detail: "\(local) is \(server)")
    }

    /// The server's metadata becomes the collection's base (learned at `learned`) and the view
    /// follows it where no update waits.
    mutating func takeMetadataBase(_ collection: CollectionID, _ metadata: CollectionMetadata, learned: HLC) throws {
        try db.run("""
            UPDATE collections SET base_name = ?2, base_description = ?3, base_url = ?4, meta_base_hlc = ?5,
                user_id = coalesce(?6, user_id), collection_url = coalesce(?7, collection_url), timeline_order = coalesce(?8, timeline_order)
            WHERE id = ?1
            """, .text(collection.rawValue), .text(metadata.name), .text(metadata.description), .text(metadata.url),
            .integer(learned.rawValue), .string(metadata.userID), .string(metadata.collectionURL), .string(metadata.timelineOrder))
        try refreshMetadata(collection)
    }

    /// The server confirmed that the collection no longer exists: it is marked gone and its
    /// waiting ops (pending or failed) fail with "collection not found".
    mutating func markGone(_ collection: CollectionID) throws {
        try db.run("UPDATE collections SET gone = 1 WHERE id = ?", .text(collection.rawValue))
        let waiting = try db.query("SELECT \(Op.columns) FROM ops WHERE collection_id = ? AND state = 'pending' ORDER BY id",
                                   .text(collection.rawValue), row: Op.init(row:))
        for op in waiting {
            try move([op.id], of: collection, from: [.pending], to: .failed(reason: "collection not found"))
            try log(.failed, collection, op.tweet, op: op.id, localHLC: op.hlc, detail: "\(op.kind.rawValue): collection not found")
            if let tweet = op.tweet { try refreshView(collection, tweet) }
        }
        if waiting.contains(where: { $0.kind == .update }) { try refreshMetadata(collection) }
    }
}

extension WriteTransaction.CounterChange {
    mutating func add(_ other: Self) {
        pending += other.pending
        inFlight += other.inFlight
        failed += other.failed
        present += other.present
    }
}
