import CollectionsAPI
import Foundation

/// What a create's attempt starts from (semantics.md, offline collections, 5).
struct CreateAttempt: Sendable {
    var local: CollectionID
    var payload: CreatePayload
    /// The same-named collections listed before the first send; nil: not listed yet.
    var listed: Set<String>?
    /// An earlier send may have created the collection (its outcome is unknown).
    var maybeSent: Bool
    /// A destroy of the collection waits behind the create.
    var destroyWaiting: Bool
    /// Server ids this database knows as other collections (bound to other local ids, pulled, edited).
    var bound: Set<String>
    /// What the other creates of this database with the same metadata, unsettled (their outcome
    /// unknown too), listed before their first send: a collection one of them listed cannot be its.
    var rivals: [Set<String>]
}

extension SyncStore {
    /// Where a create's attempt starts.
    func createAttempt(_ op: Op) async throws -> CreateAttempt {
        try await database.read { db in
            guard let (listed, maybeSent) = try db.queryFirst("SELECT listed, maybe_sent FROM local_collections WHERE local_id = ?",
                                                              .text(op.collection.rawValue), row: { ($0.optionalString(0), $0.int(1) == 1) }) else {
                throw SyncError(code: .databaseCorrupt, message: "the create op \(op.id) names \(op.collection), which has no local id row")
            }
            let payload = try db.queryFirst("SELECT payload FROM ops WHERE id = ?", .integer(op.id.rawValue)) { $0.optionalString(0) } ?? nil
            let destroy = try db.queryFirst("SELECT 1 FROM ops WHERE collection_id = ? AND kind = 'destroy'", .text(op.collection.rawValue)) { $0.int(0) }
            // Ids bound to another local id, or known here as another collection (pulled or edited by id).
            let bound = try db.query("""
                SELECT server_id FROM local_collections WHERE server_id IS NOT NULL
                UNION SELECT id FROM collections WHERE substr(id, 1, 7) = 'custom-'
                """) { $0.string(0) }
            let rivals = try db.query("""
                SELECT o.id, l.listed FROM local_collections l JOIN ops o ON o.collection_id = l.local_id AND o.kind = 'create'
                WHERE l.local_id <> ?1 AND l.server_id IS NULL AND l.maybe_sent = 1 AND o.payload = ?2
                """, .text(op.collection.rawValue), .string(payload)) { (OpID($0.int64(0)), $0.optionalString(1)) }
            return CreateAttempt(
                local: op.collection, payload: try JSONPayload.decode(CreatePayload.self, payload, op: op.id.rawValue),
                listed: try listed.map { Set(try JSONPayload.decode([String].self, $0, op: op.id.rawValue)) },
                maybeSent: maybeSent, destroyWaiting: destroy != nil, bound: Set(bound),
                rivals: try rivals.map { Set(try JSONPayload.decode([String].self, $0.1 ?? "[]", op: $0.0.rawValue)) })
        }
    }

    /// Committed before a create is sent: the same-named collections listed first (the first
    /// time), and that the create may reach the server from now on.
    func recordCreateSend(_ local: CollectionID, listed: [String]?) async throws {
        try await write { tx in
            if let listed {
                try tx.db.run("UPDATE local_collections SET listed = ? WHERE local_id = ? AND listed IS NULL",
                              .text(JSONPayload.encode(listed.sorted())), .text(local.rawValue))
            }
            try tx.db.run("UPDATE local_collections SET maybe_sent = 1 WHERE local_id = ?", .text(local.rawValue))
        }
    }

    /// A create was answered with a 4xx: it made nothing.
    func recordCreateNotMade(_ local: CollectionID) async throws {
        try await write { tx in
            try tx.db.run("UPDATE local_collections SET maybe_sent = 0 WHERE local_id = ?", .text(local.rawValue))
        }
    }

    /// What an update sends: the whole metadata as the local view has it.
    func metadataToSend(_ collection: CollectionID) async throws -> CollectionMetadata {
        try await database.read { db in
            guard let metadata = try db.queryFirst("SELECT name, description, url FROM collections WHERE id = ? AND name IS NOT NULL",
                                                   .text(collection.rawValue), row: {
                CollectionMetadata(name: $0.string(0), description: $0.optionalString(1) ?? "", url: $0.optionalString(2) ?? "")
            }) else {
                throw SyncError(code: .databaseCorrupt, message: "an update of \(collection) waits, but its metadata is not known")
            }
            return metadata
        }
    }
}

extension SyncEngine {
    /// The user a create lists the collections of: the configured one, else the OAuth 1.0a
    /// access token's numeric prefix.
    var userID: String? { configuration.userID ?? client.accessTokenUserID }

    /// Sends one collection op and returns its answer; API failures throw
    /// `CollectionsAPIError` (classified by the round), database failures ``SyncError``.
    func send(collectionOp op: Op, timeout: Duration?) async throws -> CollectionAnswer {
        switch op.kind {
        case .create:
            return try await create(op, timeout: timeout)
        case .update:
            let values = try await store.metadataToSend(op.collection)
            let info = try await client.update(op.collection, name: values.name, description: values.description, url: values.url, timeout: timeout)
            return .updated(Self.metadata(info.timeline) ?? values)
        default:
            guard try await client.destroy(op.collection, timeout: timeout) else {
                throw CollectionsAPIError(code: .malformedResponse, message: "\(Endpoint.destroy.rawValue): the answer says the collection was not destroyed")
            }
            return .destroyed
        }
    }

    /// A create, exactly once (semantics.md, offline collections, 5): list before the first
    /// send; after an unknown outcome, list and bind to the one collection the create made
    /// instead of sending again.
    private func create(_ op: Op, timeout: Duration?) async throws -> CollectionAnswer {
        guard let userID else {
            throw CollectionsAPIError(code: .configuration, message: "no user id to list collections with: set TWITTER_USER_ID")
        }
        let attempt = try await store.createAttempt(op)
        let payload = attempt.payload
        // Never sent, and destroyed since: nothing to make.
        if attempt.destroyWaiting, !attempt.maybeSent { return .dropped }
        var listing: [(id: String, timeline: Timeline?)] = []
        if attempt.listed == nil || attempt.maybeSent {
            listing = try await listAll(userID: userID, timeout: timeout)
        }
        if attempt.maybeSent {
            let recorded = attempt.listed ?? []
            // A listing whose page left out a collection's timeline object: ask for it, so that a
            // new collection is never missed (and the create never sent twice) for want of it.
            for (index, item) in listing.enumerated() where item.timeline == nil && !recorded.contains(item.id) && !attempt.bound.contains(item.id) {
                guard let id = try? CollectionID(validating: item.id), !id.isLocal else { continue }
                do {
                    listing[index].timeline = try await client.show(id, timeout: timeout).timeline
                } catch let error as CollectionsAPIError where error.code == .notFound {
                    continue  // destroyed since the listing: not a candidate
                }
            }
            let candidates = listing.filter { item in
                guard let timeline = item.timeline, !recorded.contains(item.id), !attempt.bound.contains(item.id),
                      let id = try? CollectionID(validating: item.id), !id.isLocal else { return false }
                return timeline.name == payload.name && timeline.description == payload.description && timeline.url == payload.url
                    && (timeline.timelineOrder ?? CollectionOrder.curationReverseChron.rawValue) == payload.timeline_order
            }
            var ids = candidates.map { CollectionID(trusted: $0.id) }.sorted(by: Self.isOlder)
            // Several: those that no unsettled twin of this database can have made (it listed them
            // before its first send) are this create's, if any are left.
            let ours = ids.filter { id in attempt.rivals.allSatisfy { $0.contains(id.rawValue) } }
            if ids.count > 1, !ours.isEmpty, !attempt.rivals.isEmpty { ids = ours }
            if let newest = ids.last, let timeline = candidates.first(where: { $0.id == newest.rawValue })?.timeline {
                logger.notice("a create's outcome was unknown; listing found the collection it made", metadata: [
                    "collection.local_id": "\(attempt.local)", "collection.id": "\(newest)", "candidates": "\(ids.count)"])
                return .matched(newest, Self.metadata(timeline)!, candidates: ids)
            }
            if attempt.destroyWaiting { return .dropped }
        }
        let sameName = attempt.listed == nil ? listing.filter { $0.timeline == nil || $0.timeline?.name == payload.name }.map(\.id) : nil
        try await store.recordCreateSend(attempt.local, listed: sameName)
        do {
            let info = try await client.create(name: payload.name, description: payload.description, url: payload.url,
                                               timelineOrder: payload.timeline_order, timeout: timeout)
            guard let server = try? CollectionID(validating: info.timelineID), !server.isLocal else {
                throw CollectionsAPIError(code: .malformedResponse, message: "\(Endpoint.create.rawValue): the answer's timeline_id is not a collection id")
            }
            let sent = CollectionMetadata(name: payload.name, description: payload.description, url: payload.url, timelineOrder: payload.timeline_order)
            return .created(server, Self.metadata(info.timeline) ?? sent)
        } catch let error as CollectionsAPIError where (400..<500).contains(error.httpStatus ?? 0) {
            // Any 4xx (429, 401 and 403 included) means not created.
            try await store.recordCreateNotMade(attempt.local)
            throw error
        }
    }

    /// Every page of the user's `collections/list`: `count` 200, following `next_cursor` until
    /// it is absent, empty, `0` or `-1` (or repeats).
    private func listAll(userID: String, timeout: Duration?) async throws -> [(id: String, timeline: Timeline?)] {
        var all: [(id: String, timeline: Timeline?)] = []
        var cursor: String?
        var seen = Set<String>()
        while true {
            let page = try await client.list(owner: .userID(userID), count: 200, cursor: cursor, timeout: timeout)
            for id in page.timelineIDs { all.append((id, page.timelines[id])) }
            guard let next = page.nextCursor, !["", "0", "-1"].contains(next), seen.insert(next).inserted else { return all }
            cursor = next
        }
    }

    static func metadata(_ timeline: Timeline?) -> CollectionMetadata? {
        timeline.map {
            CollectionMetadata(name: $0.name, description: $0.description, url: $0.url, userID: $0.userID,
                               collectionURL: $0.collectionURL, timelineOrder: $0.timelineOrder)
        }
    }

    /// Ids in creation order: the numeric part, compared as a number.
    static func isOlder(_ a: CollectionID, _ b: CollectionID) -> Bool {
        let x = a.rawValue.dropFirst(7), y = b.rawValue.dropFirst(7)
        return x.count != y.count ? x.count < y.count : x < y
    }
}
