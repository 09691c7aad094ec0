@_spi(Worker) @testable import CollectionSync
import CollectionsAPI
import CollectionsMock
import Foundation
import Testing
import TestSupport

/// semantics.md, "Collections made, changed and destroyed offline", against the mock over loopback.
@Suite("Collections made, changed and destroyed offline")
struct OfflineCollectionsTests {
    /// The server's collections with this name.
    static func named(_ name: String, _ server: MockCollectionsServer) -> [MockCollection] {
        server.snapshot().collections.filter { $0.name == name }
    }

    static func requests(_ endpoint: Endpoint, _ server: MockCollectionsServer) -> Int {
        server.journal().filter { $0.endpoint == endpoint }.count
    }

    @Test("create, adds, removes and a rename offline, then one flush: one collection, the final name, exactly the entries; the local id resolves")
    func offlineThenFlush() async throws {
        try await withMockServer { server in
            let harness = try await Harness.start(server)
            let created = try await harness.store.createCollection(name: "Read later", description: "for the train")
            let local = created.collection
            #expect(local.rawValue == "local-1" && created.kind == .create && created.tweet == nil)
            try await harness.store.add(tweetIDs(1...12), to: local)
            try await harness.store.remove(tweetIDs(3...4), from: local)
            try await harness.store.updateCollection(local, name: "Read soon")
            #expect(try await harness.store.entries(of: local).count == 10)
            #expect(try await harness.store.collections().map(\.name) == ["Read soon"])
            #expect(Self.requests(.create, server) == 0, "nothing is sent before a flush")

            let report = try await harness.engine.flush()
            #expect(report.stopReason == .drained && report.pending == 0 && report.failed == 0)
            let made = Self.named("Read soon", server)
            #expect(made.count == 1 && Self.named("Read later", server).isEmpty)
            #expect(made.first?.description == "for the train")
            let server_id = try #require(made.first?.id)
            #expect(harness.serverTweets(server_id) == Set(ids(1...12)).subtracting(["3", "4"]))
            #expect(Self.requests(.create, server) == 1 && Self.requests(.update, server) == 1)

            let bound = try await harness.store.resolve(local)
            #expect(bound.rawValue == server_id)
            #expect(try await harness.store.entries(of: local).count == 10, "the local id acts as the server id")
            let collection = try #require(try await harness.store.collections().first)
            #expect(collection.id == bound && collection.localID == local && collection.pending == nil && collection.name == "Read soon")
            // The log keeps the lines as written, and shows them under the server id.
            let log = try await harness.store.log(limit: 100)
            #expect(log.allSatisfy { $0.collection == bound })
            #expect(log.contains { $0.event == .created } && log.contains { $0.event == .bound } && log.contains { $0.event == .updated })
            #expect(try rows(harness.store.path, "SELECT count(*) FROM log WHERE collection_id = 'local-1'") != [["0"]])
            // Edits through the local id after binding go to the server id.
            try await harness.store.add(tweetIDs(20...20), to: local)
            #expect(try await harness.engine.flush().applied == 1)
            #expect(harness.serverTweets(server_id).contains("20"))
            await harness.shutdown()
        }
    }

    @Test("a lost answer on create (applied, then the connection dropped): the next flush lists and binds; one collection", arguments: [false, true])
    func lostAnswer(on5xx: Bool) async throws {
        try await withMockServer { server in
            let harness = try await Harness.start(server)
            let local = try await harness.store.createCollection(name: "Trip").collection
            try await harness.store.add(tweetIDs(1...3), to: local)
            if on5xx {
                // A 5xx is an unknown outcome too; this one made nothing.
                server.failNext(1, status: 503, code: 130, endpoint: .create)
            } else {
                server.dropAfterApply(next: 1, endpoint: .create)
            }
            let first = try await harness.engine.flush()
            #expect(first.applied == 0 && first.pending == 4)
            #expect(Self.named("Trip", server).count == (on5xx ? 0 : 1))
            #expect(try await harness.store.collections().first?.id == local, "not bound: the outcome is unknown")

            let second = try await harness.engine.flush()
            #expect(second.pending == 0 && second.failed == 0)
            let made = Self.named("Trip", server)
            #expect(made.count == 1, "exactly one collection")
            #expect(Self.requests(.create, server) == (on5xx ? 2 : 1), "after a lost answer the create is not sent again")
            #expect(try await harness.store.resolve(local).rawValue == made.first?.id)
            #expect(harness.serverTweets(made[0].id!) == Set(ids(1...3)))
            #expect(Self.requests(.list, server) >= 2, "listed before the first send and after the unknown outcome")
            await harness.shutdown()
        }
    }

    @Test("a pre-existing server collection with the same name is never bound to the new one")
    func preExistingSameName() async throws {
        try await withMockServer { server in
            let old = try server.createCollection(name: "Trip", tweetIDs: ["99"])
            let harness = try await Harness.start(server)
            let local = try await harness.store.createCollection(name: "Trip").collection
            try await harness.store.add(tweetIDs(1...1), to: local)
            // The worst case: the new one's answer is lost, so the engine must tell them apart by listing.
            server.dropAfterApply(next: 1, endpoint: .create)
            _ = try await harness.engine.flush()
            _ = try await harness.engine.flush()
            let trips = Self.named("Trip", server)
            #expect(trips.count == 2)
            let bound = try await harness.store.resolve(local)
            #expect(bound.rawValue != old && trips.map(\.id).contains(bound.rawValue))
            #expect(harness.serverTweets(old) == ["99"], "the old one is untouched")
            #expect(harness.serverTweets(bound.rawValue) == ["1"])
            await harness.shutdown()
        }
    }

    @Test("no match after an unknown outcome: the create is sent again, once")
    func noMatchSendsAgain() async throws {
        try await withMockServer { server in
            let harness = try await Harness.start(server)
            let local = try await harness.store.createCollection(name: "Lost").collection
            server.setBlackhole(true, endpoint: .create)  // sent, never answered, nothing made
            let first = try await harness.engine.flush(FlushOptions(timeLimit: .seconds(2)))
            #expect(first.pending == 1)
            server.setBlackhole(false, endpoint: .create)
            server.clearFaults()
            let second = try await harness.engine.flush()
            #expect(second.pending == 0 && Self.named("Lost", server).count == 1)
            #expect(try await harness.store.resolve(local).isLocal == false)
            await harness.shutdown()
        }
    }

    @Test("two databases create the same collection: two collections, each bound once; an ambiguous listing is logged with its candidates")
    func racingCreates() async throws {
        try await withMockServer { server in
            let folder = TemporaryFolder()
            let a = try await Harness.start(server, folder: folder, name: "a.sqlite")
            let b = try await Harness.start(server, folder: folder, name: "b.sqlite")
            let localA = try await a.store.createCollection(name: "Same", description: "d").collection
            let localB = try await b.store.createCollection(name: "Same", description: "d").collection
            _ = try await a.engine.flush()
            _ = try await b.engine.flush()
            let both = Self.named("Same", server)
            #expect(both.count == 2)
            let boundA = try await a.store.resolve(localA), boundB = try await b.store.resolve(localB)
            #expect(boundA != boundB && Set([boundA.rawValue, boundB.rawValue]) == Set(both.compactMap(\.id)))

            // C's create is applied but its answer lost; D's (identical, made after C's) answers. C lists:
            // its own and D's both match and neither was there before: it binds the newest and says so.
            let c = try await Harness.start(server, folder: folder, name: "c.sqlite")
            let d = try await Harness.start(server, folder: folder, name: "d.sqlite")
            let localC = try await c.store.createCollection(name: "Twin").collection
            let localD = try await d.store.createCollection(name: "Twin").collection
            server.dropAfterApply(next: 1, endpoint: .create)
            _ = try await c.engine.flush()
            _ = try await d.engine.flush()
            _ = try await c.engine.flush()
            let twins = Self.named("Twin", server).compactMap(\.id)
            #expect(twins.count == 2, "nothing destroyed on the user's behalf, nothing created twice")
            let boundD = try await d.store.resolve(localD)
            let boundC = try await c.store.resolve(localC)
            #expect(boundD.rawValue == twins[1], "D's answer bound it to the one it made")
            // Both were made after C listed, and the API cannot tell whose is whose: the rule binds the newest.
            #expect(boundC.rawValue == twins[1], "the newest candidate")
            let ambiguous = try await c.store.log(limit: 50).filter { $0.event == .createAmbiguous }
            #expect(ambiguous.count == 1)
            #expect(twins.allSatisfy { ambiguous.first?.detail.contains($0) == true }, "every candidate is named")
            for harness in [a, b, c, d] { await harness.shutdown() }
        }
    }

    @Test("destroy: a never-sent collection is dropped and nothing is sent; a bound one takes one destroy; waiting entry ops are cancelled and logged")
    func destroy() async throws {
        try await withMockServer { server in
            let harness = try await Harness.start(server)
            let unsent = try await harness.store.createCollection(name: "Never").collection
            try await harness.store.add(tweetIDs(1...3), to: unsent)
            #expect(try await harness.store.destroyCollection(unsent) == .dropped(unsent))
            #expect(try await harness.store.outbox(.all).isEmpty)
            #expect(try await harness.store.collections().isEmpty)
            await #expect(throws: SyncError.self) { try await harness.store.add(tweetIDs(4...4), to: unsent) }
            let nothing = try await harness.engine.flush()
            #expect(nothing.requests == 0 && server.journal().isEmpty, "nothing goes to the server")

            let kept = try await harness.store.createCollection(name: "Kept").collection
            try await harness.store.add(tweetIDs(1...2), to: kept)
            _ = try await harness.engine.flush()
            let id = try await harness.store.resolve(kept)
            try await harness.store.add(tweetIDs(5...6), to: kept)
            try await harness.store.updateCollection(kept, description: "soon gone")
            guard case .queued(let op) = try await harness.store.destroyCollection(kept) else {
                Issue.record("a bound collection is destroyed through the server")
                return
            }
            #expect(op.collection == id && op.kind == .destroy)
            #expect(try await harness.store.outbox().map(\.kind) == [.destroy], "the waiting add and update are cancelled")
            let cancelled = try await harness.store.log(limit: 50).filter { $0.event == .coalesced && $0.collection == id }
            #expect(cancelled.count == 3 && cancelled.allSatisfy { $0.detail.contains("destroy") })
            #expect(try await harness.store.collections().map(\.pending) == [.destroy])
            await #expect(throws: SyncError.self) { try await harness.store.destroyCollection(kept) }
            await #expect(throws: SyncError.self) { try await harness.store.entries(of: kept) }
            await #expect(throws: SyncError.self) { try await harness.engine.pull(id) }

            let report = try await harness.engine.flush()
            #expect(report.applied == 1 && report.pending == 0)
            #expect(Self.requests(.destroy, server) == 1 && Self.named("Kept", server).isEmpty)
            #expect(try await harness.store.collections().isEmpty)
            #expect(try await harness.store.log(limit: 5).first?.event == .destroyed)
            await harness.shutdown()
        }
    }

    @Test("rename conflicts: a local rename after the remote one wins; a remote rename after the local one wins; both logged")
    func renameConflicts() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(name: "Original", tweetIDs: ["1"])
            let collection = try CollectionID(validating: id)
            let harness = try await Harness.start(server)
            try await harness.engine.pull(collection)
            #expect(try await harness.store.collections().first?.name == "Original")

            // Remote first, then local: the local rename is the newer write.
            _ = try await harness.engine.client.update(collection, name: "Remote 1", description: "", url: "")
            try await harness.store.updateCollection(collection, name: "Local 1")
            let first = try await harness.engine.pull(collection)
            #expect(first.remoteWrites == 1 && first.conflicts == 1)
            let localWins = try #require(try await harness.store.log(conflictsOnly: true, limit: 1).first)
            #expect(localWins.winner == .local && localWins.tweet == nil && localWins.detail.hasPrefix("name"))
            #expect(try await harness.store.collections().first?.name == "Local 1")
            _ = try await harness.engine.flush()
            #expect(Self.named("Local 1", server).count == 1)

            // Local first, a pull that sees nothing new, then remote: the remote rename is newer.
            try await harness.store.updateCollection(collection, name: "Local 2")
            try await harness.engine.pull(collection)
            _ = try await harness.engine.client.update(collection, name: "Remote 2", description: "", url: "")
            let second = try await harness.engine.pull(collection)
            #expect(second.remoteWrites == 1 && second.conflicts == 1)
            let remoteWins = try #require(try await harness.store.log(conflictsOnly: true, limit: 1).first)
            #expect(remoteWins.winner == .remote && remoteWins.detail.hasPrefix("name"))
            #expect(try await harness.store.collections().first?.name == "Remote 2")
            #expect(try await harness.store.outbox().isEmpty, "the losing update is cancelled")
            let requests = Self.requests(.update, server)
            _ = try await harness.engine.flush()
            #expect(Self.requests(.update, server) == requests && Self.named("Remote 2", server).count == 1)
            await harness.shutdown()
        }
    }

    @Test("an update sends the whole metadata, but only its fields are its intent: a field changed on the server takes the server's value")
    func updateIntentIsItsFields() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(name: "Notes", tweetIDs: [])
            let collection = try CollectionID(validating: id)
            let harness = try await Harness.start(server)
            try await harness.engine.pull(collection)
            try await harness.store.updateCollection(collection, name: "Notes 2")
            _ = try await harness.engine.client.update(collection, name: "Notes", description: "set elsewhere", url: "https://example.com")
            let pulled = try await harness.engine.pull(collection)
            #expect(pulled.remoteWrites == 2 && pulled.conflicts == 0)
            _ = try await harness.engine.flush()
            let now = try #require(server.snapshot().collections.first { $0.id == id })
            #expect(now.name == "Notes 2" && now.description == "set elsewhere" && now.url == "https://example.com")
            await harness.shutdown()
        }
    }

    @Test("a collection destroyed on the server: a pull marks it gone and fails its waiting ops; so does a flush")
    func goneRemotely() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(name: "Doomed", tweetIDs: ["1"])
            let other = try server.createCollection(name: "Other", tweetIDs: [])
            let collection = try CollectionID(validating: id)
            let harness = try await Harness.start(server)
            try await harness.engine.pull(collection)
            try await harness.engine.pull(try CollectionID(validating: other))
            try await harness.store.add(tweetIDs(2...3), to: collection)
            _ = try await harness.engine.client.destroy(collection)
            let error = await #expect(throws: CollectionsAPIError.self) { try await harness.engine.pull(collection) }
            #expect(error?.code == .notFound)
            let listed = try #require(try await harness.store.collections().first { $0.id == collection })
            #expect(listed.gone)
            #expect(try await harness.store.outbox(.failed).map(\.lastError) == ["collection not found", "collection not found"])
            await harness.shutdown()
        }
    }

    @Test("with no user id (a Bearer token alone) a create is not sent: the flush sends the rest and stops with a configuration error")
    func noUserID() async throws {
        try await withMockServer { server in
            let existing = try server.createCollection(name: "There", tweetIDs: ["1"])
            let harness = try await Harness.start(server, credentials: .bearer(server.credentials.bearerToken!))
            let local = try await harness.store.createCollection(name: "Here").collection
            try await harness.store.add(tweetIDs(5...5), to: local)
            try await harness.store.remove(tweetIDs(1...1), from: try CollectionID(validating: existing))
            let report = try await harness.engine.flush()
            guard case .configuration(let error) = report.stopReason else {
                Issue.record("expected a configuration stop, got \(report.stopReason)")
                return
            }
            #expect(error.message.contains("TWITTER_USER_ID"))
            #expect(report.applied == 1 && harness.serverTweets(existing).isEmpty)
            #expect(Self.requests(.create, server) == 0 && Self.requests(.list, server) == 0)
            #expect(try await harness.store.outbox().map(\.kind) == [.create, .add])
            await harness.shutdown()
        }
    }

    @Test("a create refused for good fails with the ops waiting for it; retry of the create retries them")
    func createRefused() async throws {
        try await withMockServer { server in
            let harness = try await Harness.start(server)
            let local = try await harness.store.createCollection(name: "Refused").collection
            try await harness.store.add(tweetIDs(1...2), to: local)
            server.failNext(1, status: 400, code: 44, endpoint: .create)
            let report = try await harness.engine.flush()
            #expect(report.failed == 1 && report.pending == 0)
            let failed = try await harness.store.outbox(.failed)
            #expect(failed.map(\.kind) == [.create, .add, .add])
            #expect(failed.dropFirst().allSatisfy { $0.lastError?.hasPrefix("create failed: ") == true })
            try await harness.store.retry([failed[0].id])
            #expect(try await harness.store.outbox().count == 3)
            let again = try await harness.engine.flush()
            #expect(again.pending == 0 && again.failed == 0 && Self.named("Refused", server).count == 1)
            #expect(Self.requests(.create, server) == 2, "a 400 made nothing: no listing match, sent again")
            await harness.shutdown()
        }
    }

    @Test("destroy while the create's outcome is unknown: listing settles it; a match is bound then destroyed, no match is dropped unsent", arguments: [true, false])
    func destroyAfterUnknownCreate(applied: Bool) async throws {
        try await withMockServer { server in
            let harness = try await Harness.start(server)
            let local = try await harness.store.createCollection(name: "Maybe").collection
            try await harness.store.add(tweetIDs(1...1), to: local)
            if applied {
                server.dropAfterApply(next: 1, endpoint: .create)
            } else {
                server.failNext(1, status: 502, code: nil, endpoint: .create)
            }
            _ = try await harness.engine.flush()
            // It may be on the server: the destroy is queued, not a drop; discard of the create is refused.
            let creates = try await harness.store.outbox().filter { $0.kind == .create }
            await #expect(throws: SyncError.self) { try await harness.store.discard(creates.map(\.id)) }
            guard case .queued = try await harness.store.destroyCollection(local) else {
                Issue.record("a create that may have reached the server is not simply dropped")
                return
            }
            let report = try await harness.engine.flush()
            #expect(report.pending == 0 && report.failed == 0)
            #expect(Self.named("Maybe", server).isEmpty, "what the create made is destroyed; nothing else is made")
            #expect(Self.requests(.create, server) == 1, "never sent again")
            #expect(Self.requests(.destroy, server) == (applied ? 1 : 0))
            #expect(try await harness.store.collections().isEmpty)
            #expect(try await harness.store.outbox(.all).isEmpty)
            await harness.shutdown()
        }
    }

    @Test("discard: of a never-sent create drops the collection; of an update reverts its fields; of a destroy un-hides the collection")
    func discard() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(name: "Base", tweetIDs: ["1"])
            let collection = try CollectionID(validating: id)
            let harness = try await Harness.start(server)
            try await harness.engine.pull(collection)
            let update = try await harness.store.updateCollection(collection, name: "Changed", url: "https://example.com/x")
            #expect(try await harness.store.collections().first?.url == "https://example.com/x")
            try await harness.store.discard([update.id])
            let reverted = try #require(try await harness.store.collections().first)
            #expect(reverted.name == "Base" && reverted.url == "" && reverted.pending == nil)

            guard case .queued(let destroy) = try await harness.store.destroyCollection(collection) else { return }
            try await harness.store.discard([destroy.id])
            #expect(try await harness.store.collections().map(\.id) == [collection])
            try await harness.store.add(tweetIDs(2...2), to: collection)  // usable again

            let made = try await harness.store.createCollection(name: "Draft").collection
            try await harness.store.add(tweetIDs(3...3), to: made)
            let create = try #require(try await harness.store.outbox().first { $0.kind == .create })
            try await harness.store.discard([create.id])
            #expect(try await harness.store.collections().map(\.id) == [collection])
            #expect(try await harness.store.outbox().map(\.kind) == [.add])
            // The coalescing of updates keeps the union of fields, each with its own edit's time.
            try await harness.store.updateCollection(collection, name: "One")
            try await harness.store.updateCollection(collection, description: "Two")
            let waiting = try await harness.store.outbox().filter { $0.kind == .update }
            #expect(waiting.count == 1)
            _ = try await harness.engine.flush()
            let now = try #require(server.snapshot().collections.first { $0.id == id })
            #expect(now.name == "One" && now.description == "Two")
            await harness.shutdown()
        }
    }

    @Test("a pull of a collection not created yet sends nothing and succeeds; limits are checked before anything is written")
    func pullUnboundAndLimits() async throws {
        try await withMockServer { server in
            let harness = try await Harness.start(server)
            let local = try await harness.store.createCollection(name: "New").collection
            try await harness.store.add(tweetIDs(1...2), to: local)
            let report = try await harness.engine.pull(local)
            #expect(report.collection == local && report.entries == 2 && server.journal().isEmpty)
            let before = try await harness.store.outbox(.all)
            for bad in ["", String(repeating: "x", count: 26)] {
                await #expect(throws: SyncError.self) { try await harness.store.createCollection(name: bad) }
            }
            _ = try await harness.store.createCollection(name: String(repeating: "🙂", count: 25))  // code points, not bytes
            await #expect(throws: SyncError.self) { try await harness.store.createCollection(name: "x", description: String(repeating: "d", count: 161)) }
            for url in ["ftp://example.com", "http://", "https://exa mple.com", "example.com"] {
                await #expect(throws: SyncError.self) { try await harness.store.createCollection(name: "x", url: url) }
                await #expect(throws: SyncError.self) { try await harness.store.updateCollection(local, url: url) }
            }
            await #expect(throws: SyncError.self) { try await harness.store.updateCollection(local) }
            await #expect(throws: SyncError.self) { try await harness.store.updateCollection(try CollectionID(validating: "local-99"), name: "x") }
            await #expect(throws: SyncError.self) { try await harness.store.add(tweetIDs(1...1), to: try CollectionID(validating: "local-99")) }
            await #expect(throws: SyncError.self) {
                try await harness.store.updateCollection(try CollectionID(validating: "custom-5"), name: "never pulled")
            }
            #expect(try await harness.store.outbox(.all).count == before.count + 1, "only the good create was queued")
            await harness.shutdown()
        }
    }
}
