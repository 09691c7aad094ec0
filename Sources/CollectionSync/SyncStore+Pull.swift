import CollectionsAPI
import Foundation

/// An entry of the server's collection, as a pull saw it.
@_spi(Worker) public struct RemoteEntry: Sendable, Hashable {
    public let tweet: TweetID
    /// The server's opaque `sort_index` (compared as an integer).
    public let sortIndex: String
    /// The server's opaque `feature_context`, stored as it came.
    public let featureContext: String?

    public init(tweet: TweetID, sortIndex: String, featureContext: String? = nil) {
        self.tweet = tweet
        self.sortIndex = sortIndex
        self.featureContext = featureContext
    }
}

/// A collection's metadata, from its timeline object.
@_spi(Worker) public struct CollectionMetadata: Sendable, Hashable {
    public var name: String
    public var description: String
    public var url: String
    public var userID: String?
    public var collectionURL: String?
    public var timelineOrder: String?

    public init(name: String, description: String = "", url: String = "", userID: String? = nil,
                collectionURL: String? = nil, timelineOrder: String? = nil) {
        self.name = name
        self.description = description
        self.url = url
        self.userID = userID
        self.collectionURL = collectionURL
        self.timelineOrder = timelineOrder
    }
}

/// The moment a pull started: remote writes it finds are stamped against it.
@_spi(Worker) public struct PullStart: Sendable, Hashable {
    public let collection: CollectionID
    public let hlc: HLC
    public let wallMillis: Int64
}

/// What a pull's merge did.
public struct PullReport: Sendable, Hashable {
    public let collection: CollectionID
    /// Entries present in the local view after the merge.
    public let entries: Int
    /// Keys the server changed since their base was learned.
    public let remoteWrites: Int
    /// Remote writes (or first-pull differences) that disagreed with a waiting op.
    public let conflicts: Int
}

extension SyncStore {
    /// Marks the start of a pull of `collection`: call it before the first page is requested.
    @_spi(Worker) public func beginPull(of collection: CollectionID) async throws -> PullStart {
        try await write { tx in PullStart(collection: collection, hlc: tx.tick(), wallMillis: tx.wallMillis) }
    }

    /// Merges the complete set of a collection's entries, fetched after `start`, into the local
    /// copy in one transaction (three-way against each key's base, conflicts by HLC
    /// last-writer-wins), logs every remote write and conflict, and records the pull.
    ///
    /// Call it only when every page has arrived: a pull that fails before changes nothing.
    @discardableResult
    @_spi(Worker) public func mergePull(_ start: PullStart, entries remote: [RemoteEntry], metadata: CollectionMetadata?) async throws -> PullReport {
        try await write(onQueue: true) { tx in try tx.mergePull(start, remote, metadata) }
    }
}

extension WriteTransaction {
    /// Merges the server's metadata per field by last-writer-wins (semantics.md, offline
    /// collections, 10); returns the remote writes and conflicts, each logged with its field.
    mutating func mergeMetadata(_ collection: CollectionID, _ server: CollectionMetadata, _ start: PullStart,
                                previousPull: HLC?) throws -> (remoteWrites: Int, conflicts: Int) {
        // The fields the user cannot edit are the server's.
        try db.run("""
            UPDATE collections SET user_id = coalesce(?2, user_id), collection_url = coalesce(?3, collection_url),
                timeline_order = coalesce(?4, timeline_order) WHERE id = ?1
            """, .text(collection.rawValue), .string(server.userID), .string(server.collectionURL), .string(server.timelineOrder))
        // An update in flight: its answer sets a base newer than this pull saw.
        if try db.queryFirst("SELECT 1 FROM ops WHERE collection_id = ? AND tweet_id IS NULL AND kind = 'update' AND state = 'in_flight'",
                             .text(collection.rawValue), row: { $0.int(0) }) != nil { return (0, 0) }
        let base = try db.queryFirst("""
            SELECT base_name, base_description, base_url, meta_base_hlc FROM collections WHERE id = ?
            """, .text(collection.rawValue)) { row -> (values: [String], learned: HLC)? in
            guard let learned = row.optionalInt64(3) else { return nil }
            return ([row.optionalString(0) ?? "", row.optionalString(1) ?? "", row.optionalString(2) ?? ""], HLC(rawValue: learned))
        } ?? nil
        let waiting = try db.queryFirst("""
            SELECT id, payload FROM ops WHERE collection_id = ? AND tweet_id IS NULL AND kind = 'update' AND state IN ('pending', 'failed')
            ORDER BY id DESC LIMIT 1
            """, .text(collection.rawValue)) { (OpID($0.int64(0)), $0.optionalString(1)) }
        var intent = try waiting.map { try JSONPayload.decode(UpdatePayload.self, $0.1, op: $0.0.rawValue) } ?? UpdatePayload()
        let before = intent
        var remoteWrites = 0
        var conflicts = 0
        let fields: [(name: String, server: String, path: WritableKeyPath<UpdatePayload, UpdatePayload.Field?>)] = [
            ("name", server.name, \.name), ("description", server.description, \.description), ("url", server.url, \.url)]
        for (index, field) in fields.enumerated() {
            let wish = intent[keyPath: field.path]
            let decision = LastWriterWins.decide(
                field: field.server, base: base.map { ($0.values[index], $0.learned) },
                waiting: wish.map { ($0.value, HLC(rawValue: $0.hlc)) }, previousPull: previousPull, pullStart: start.hlc)
            if let stamp = decision.remoteWrite {
                remoteWrites += 1
                try log(.remoteWrite, collection, nil, remoteHLC: stamp,
                        detail: "\(field.name) changed on the server from \(quoted(base?.values[index] ?? "")) to \(quoted(field.server))")
            }
            if let winner = decision.conflict, let wish, let (op, _) = waiting {
                conflicts += 1
                let why = switch (winner, decision.remoteWrite) {
                case (.local, nil): "\(field.name): first pull: the server has \(quoted(field.server)); the local \(quoted(wish.value)) is kept and will be sent"
                case (.local, _?): "\(field.name): the local \(quoted(wish.value)) was set after the server's change could have happened; it is kept"
                case (.remote, _): "\(field.name): the server's \(quoted(field.server)) is newer than the local \(quoted(wish.value)); the local change is cancelled"
                }
                try log(.conflict, collection, nil, op: op, winner: winner, localHLC: HLC(rawValue: wish.hlc), remoteHLC: decision.remoteWrite, detail: why)
            }
            if decision.cancelWaiting { intent[keyPath: field.path] = nil }
        }
        if base == nil || base!.learned <= start.hlc {
            try db.run("UPDATE collections SET base_name = ?2, base_description = ?3, base_url = ?4, meta_base_hlc = ?5 WHERE id = ?1",
                       .text(collection.rawValue), .text(server.name), .text(server.description), .text(server.url), .integer(start.hlc.rawValue))
        }
        if let (op, _) = waiting, intent != before {
            if intent.isEmpty {
                let state = try db.queryFirst("SELECT state FROM ops WHERE id = ?", .integer(op.rawValue)) { OpState(rawValue: $0.string(0)) } ?? nil
                try move([op], of: collection, from: [state ?? .pending], to: .gone)
            } else {
                try db.run("UPDATE ops SET payload = ? WHERE id = ?", .text(JSONPayload.encode(intent)), .integer(op.rawValue))
            }
        }
        try refreshMetadata(collection)
        return (remoteWrites, conflicts)
    }

    private struct LocalKey {
        var present: Bool
        var sortIndex: String?
        var base: LastWriterWins.Key.Base?
    }

    mutating func mergePull(_ start: PullStart, _ remote: [RemoteEntry], _ metadata: CollectionMetadata?) throws -> PullReport {
        let collection = start.collection
        try ensureCollection(collection)
        let previousPull = try db.queryFirst("SELECT last_pull_hlc FROM collections WHERE id = ?",
                                             .text(collection.rawValue)) { $0.optionalInt64(0).map(HLC.init(rawValue:)) } ?? nil
        // A pull that started before the last merged one holds an older snapshot: it changes nothing.
        if let previousPull, previousPull > start.hlc {
            let entries = try presentEntries(collection)
            return PullReport(collection: collection, entries: entries, remoteWrites: 0, conflicts: 0)
        }

        var local: [String: LocalKey] = [:]
        for (tweet, key) in try db.query(
            "SELECT tweet_id, present, sort_index, base_present, base_hlc FROM entries WHERE collection_id = ?",
            .text(collection.rawValue), row: { row in
                (row.string(0), LocalKey(
                    present: row.int(1) == 1, sortIndex: row.optionalString(2),
                    base: row.isNull(3) ? nil : .init(present: row.int(3) == 1, learned: HLC(rawValue: row.optionalInt64(4) ?? 0))))
            }) {
            local[tweet] = key
        }
        // Per key: the newest op, and whether any op is in flight.
        var newestOp: [String: (id: OpID, state: OpState, kind: OpKind, hlc: HLC)] = [:]
        var inFlight = Set<String>()
        for op in try db.query("SELECT \(Op.columns) FROM ops WHERE collection_id = ? AND tweet_id IS NOT NULL ORDER BY id",
                               .text(collection.rawValue), row: Op.init(row:)) {
            guard let tweet = op.tweet else { continue }
            newestOp[tweet.rawValue] = (op.id, op.state, op.kind, op.hlc)
            if op.state == .inFlight { inFlight.insert(tweet.rawValue) }
        }

        var server: [String: RemoteEntry] = [:]
        for entry in remote { server[entry.tweet.rawValue] = entry }

        var remoteWrites = 0
        var conflicts = 0
        let takeBaseAsView = try db.statement("""
            INSERT INTO entries (collection_id, tweet_id, present, sort_index, feature_context, base_present, base_hlc)
            VALUES (?1, ?2, ?5, ?3, ?4, ?5, ?6)
            ON CONFLICT (collection_id, tweet_id) DO UPDATE SET
                present = ?5, sort_index = coalesce(?3, sort_index), feature_context = coalesce(?4, feature_context),
                base_present = ?5, base_hlc = ?6
            """)
        for tweetID in Set(local.keys).union(server.keys) {
            let tweet = TweetID(trusted: tweetID)
            let remoteEntry = server[tweetID]
            let known = local[tweetID]
            let op = newestOp[tweetID]
            let waiting = op.flatMap { $0.state == .inFlight ? nil : LastWriterWins.Key.Waiting(kind: $0.kind, hlc: $0.hlc) }
            let decision = LastWriterWins.decide(
                .init(server: remoteEntry != nil, base: known?.base, waiting: waiting, inFlight: inFlight.contains(tweetID)),
                previousPull: previousPull, pullStart: start.hlc)

            if let stamp = decision.remoteWrite {
                remoteWrites += 1
                try log(.remoteWrite, collection, tweet, remoteHLC: stamp,
                        detail: remoteEntry != nil ? "added on the server" : "removed on the server")
            }
            if let winner = decision.conflict, let op, let waiting {
                conflicts += 1
                let serverSays = remoteEntry != nil ? "present" : "absent"
                let why: String
                switch (winner, decision.remoteWrite) {
                case (.local, nil): why = "first pull: the server has it \(serverSays); the local \(waiting.kind.rawValue) is kept and will be sent"
                case (.local, _?): why = "the local \(waiting.kind.rawValue) was made after the remote write could have happened; it is kept"
                case (.remote, _): why = "the remote write is newer than the local \(waiting.kind.rawValue); the op is cancelled and the tweet is \(serverSays)"
                }
                try log(.conflict, collection, tweet, op: op.id, winner: winner, localHLC: waiting.hlc,
                        remoteHLC: decision.remoteWrite, detail: why)
            }
            if decision.cancelWaiting {
                // Every waiting op of the key: an older failed one must not outlive the newer one.
                let waiting = try db.query("""
                    SELECT id FROM ops WHERE collection_id = ? AND tweet_id = ? AND state != 'in_flight'
                    """, .text(collection.rawValue), .text(tweetID)) { OpID($0.int64(0)) }
                try move(waiting, of: collection, from: [.pending, .failed], to: .gone)
            }

            if decision.takeBase, op == nil {
                // No op of the key anywhere: its view is the new base, set in the same statement
                // (the common case, and all of a first pull: one statement per entry).
                try takeBaseAsView.run([.text(collection.rawValue), .text(tweetID), .string(remoteEntry?.sortIndex),
                    .string(remoteEntry?.featureContext), .integer(remoteEntry != nil ? 1 : 0), .integer(start.hlc.rawValue)])
                countView(collection, from: known?.present ?? false, to: remoteEntry != nil)
            } else if decision.takeBase || (remoteEntry != nil && remoteEntry?.sortIndex != known?.sortIndex) {
                let baseHLC = decision.takeBase ? start.hlc : known?.base?.learned
                let basePresent = decision.takeBase ? remoteEntry != nil : known?.base?.present
                try db.run("""
                    INSERT INTO entries (collection_id, tweet_id, present, sort_index, feature_context, base_present, base_hlc)
                    VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6)
                    ON CONFLICT (collection_id, tweet_id) DO UPDATE SET
                        sort_index = coalesce(?3, sort_index), feature_context = coalesce(?4, feature_context),
                        base_present = ?5, base_hlc = ?6
                    """, .text(collection.rawValue), .text(tweetID), .string(remoteEntry?.sortIndex),
                    .string(remoteEntry?.featureContext), .int(basePresent.map { $0 ? 1 : 0 }), .int(baseHLC?.rawValue))
                try refreshView(collection, tweet)
            }
            // A key absent everywhere with nothing waiting is implied by this pull: drop its row.
            if remoteEntry == nil, !inFlight.contains(tweetID) {
                try db.run("""
                    DELETE FROM entries WHERE collection_id = ?1 AND tweet_id = ?2 AND present = 0
                      AND coalesce(base_present, 0) = 0 AND coalesce(base_hlc, 0) <= ?3
                      AND NOT EXISTS (SELECT 1 FROM ops WHERE collection_id = ?1 AND tweet_id = ?2)
                    """, .text(collection.rawValue), .text(tweetID), .integer(start.hlc.rawValue))
            }
        }

        try db.run("UPDATE collections SET last_pulled_at = ?, last_pull_hlc = ? WHERE id = ?",
                   .integer(start.wallMillis), .integer(start.hlc.rawValue), .text(collection.rawValue))
        if let metadata {
            let (writes, disagreements) = try mergeMetadata(collection, metadata, start, previousPull: previousPull)
            remoteWrites += writes
            conflicts += disagreements
        }
        let entries = try presentEntries(collection)
        return PullReport(collection: collection, entries: entries, remoteWrites: remoteWrites, conflicts: conflicts)
    }
}
