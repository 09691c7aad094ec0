import CSQLite
@_spi(Worker) @testable import CollectionSync
import CollectionSyncSchema
import Foundation
import Testing

@Suite("Store: files, migrations, clock persistence")
struct StoreTests {
    @Test("a fresh database is created 0600 in new folders, migrated and recorded")
    func freshDatabase() async throws {
        let folder = TemporaryFolder()
        let path = folder.path("a/b/sync.sqlite")
        let store = try await SyncStore.open(at: path)
        try await store.remove([tweet(5)], from: c1)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // The WAL and shared-memory files (there while the store is open) take the main file's mode.
        for suffix in ["-wal", "-shm"] {
            #expect(try FileManager.default.attributesOfItem(atPath: path + suffix)[.posixPermissions] as? Int == 0o600, "\(suffix)")
        }
        withExtendedLifetime(store) {}
        let dump = try snapshot(path)
        #expect(dump.contains("# schema_migrations\n1|0001_init.sql|"))
        #expect(try pragma(path, "user_version") == "\(schemaMigrations.last!.version)")
        #expect(try pragma(path, "journal_mode") == "wal")
    }

    @Test("re-opening a current database changes nothing")
    func reopenIsNoOp() async throws {
        let folder = TemporaryFolder()
        let path = folder.path("sync.sqlite")
        do {
            let store = try await openStore(folder)
            try await store.add([tweet(1), tweet(2)], to: c1)
        }
        let before = try snapshot(path)
        for _ in 0..<3 { _ = try await openStore(folder) }
        #expect(try snapshot(path) == before)
    }

    @Test("a database from a newer schema is refused and left byte for byte untouched")
    func newerSchemaRefused() async throws {
        let folder = TemporaryFolder()
        let path = folder.path("sync.sqlite")
        do {
            let store = try await openStore(folder)
            try await store.remove([tweet(9)], from: c1)
        }
        try execute(path, "PRAGMA journal_mode = DELETE; PRAGMA user_version = 999;")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let error = await #expect(throws: SyncError.self) { try await openStore(folder) }
        #expect(error?.code == .schemaTooNew)
        #expect(error?.message.contains("999") == true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == bytes)
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
    }

    @Test("a file that is not a database is refused as corrupt and not overwritten")
    func corruptFile() async throws {
        let folder = TemporaryFolder()
        let path = folder.path("sync.sqlite")
        let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 7919) })
        try garbage.write(to: URL(fileURLWithPath: path))
        let error = await #expect(throws: SyncError.self) { try await openStore(folder) }
        #expect(error?.code == .databaseCorrupt)
        #expect(error?.sqliteCode.map { $0 & 0xFF } == SQLITE_NOTADB)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == garbage)
    }

    @Test("a folder that cannot be created is a database error, not a crash")
    func unwritableLocation() async throws {
        let folder = TemporaryFolder()
        let blocker = folder.path("file")
        try Data("x".utf8).write(to: URL(fileURLWithPath: blocker))
        let error = await #expect(throws: SyncError.self) { try await SyncStore.open(at: blocker + "/sub/sync.sqlite") }
        #expect(error?.code == .database)
    }

    @Test("migrations run in order in one transaction; a failing one leaves nothing behind")
    func migrationsAreAtomic() async throws {
        let folder = TemporaryFolder()
        let path = folder.path("sync.sqlite")
        let next = schemaMigrations.count + 1
        let broken = schemaMigrations + [SchemaMigration(version: next, name: String(format: "%04d_broken.sql", next), sql: "CREATE TABLE extra (x); SELECT nonsense FROM nowhere;")]
        let error = #expect(throws: SyncError.self) { try DatabaseQueue(path: path, busyTimeoutMillis: 1000, migrations: broken) }
        #expect(error?.message.contains(String(format: "%04d_broken.sql", next)) == true)
        #expect(try pragma(path, "user_version") == "0")
        #expect(try snapshot(path).isEmpty, "no table of either migration may remain")
        // The good migrations then apply cleanly.
        _ = try DatabaseQueue(path: path, busyTimeoutMillis: 1000)
        #expect(try pragma(path, "user_version") == "\(schemaMigrations.count)")
    }

    @Test("0002 counts what a 0001 database already holds, and the engine keeps counting")
    func countersMigration() async throws {
        let folder = TemporaryFolder()
        let store = try await Self.openMigrated(folder, from: 1, holding: """
            INSERT INTO collections (id, created_at) VALUES ('custom-1', 0), ('custom-2', 0);
            INSERT INTO entries (collection_id, tweet_id, present) VALUES ('custom-1', '1', 1), ('custom-1', '2', 0), ('custom-2', '3', 1);
            INSERT INTO ops (collection_id, tweet_id, kind, state, hlc, created_at) VALUES
                ('custom-1', '2', 'remove', 'pending', 1, 0), ('custom-1', '4', 'remove', 'in_flight', 2, 0),
                ('custom-2', '5', 'add', 'failed', 3, 0), ('custom-2', '6', 'add', 'pending', 4, 0);
            """)
        var status = try await store.status()
        #expect(status.ops == OpCounts(pending: 2, inFlight: 1, failed: 1))
        #expect(status.collections.map(\.entries) == [1, 1])
        #expect(status.collections.map(\.ops) == [OpCounts(pending: 1, inFlight: 1), OpCounts(pending: 1, failed: 1)])
        try await store.remove([tweet(1)], from: c1)
        status = try await store.status()
        #expect(status.collections.map(\.entries) == [0, 1])
        #expect(status.collections[0].ops == OpCounts(pending: 2, inFlight: 1))
    }

    @Test("0003 and 0004 keep the counts a 0002 database holds; the log lines lose only 0003's bookkeeping")
    func counterChangesMigration() async throws {
        let folder = TemporaryFolder()
        let store = try await Self.openMigrated(folder, from: 2, holding: """
            INSERT INTO replica (singleton, replica_id, hlc, created_at) VALUES (1, 'r', 9, 0);
            INSERT INTO collections (id, created_at, ops_pending, entries_present) VALUES ('custom-1', 0, 1, 1);
            INSERT INTO entries (collection_id, tweet_id, present) VALUES ('custom-1', '1', 1), ('custom-1', '2', 0);
            INSERT INTO ops (collection_id, tweet_id, kind, state, hlc, created_at) VALUES ('custom-1', '2', 'remove', 'pending', 8, 0);
            INSERT INTO log (hlc, replica_id, collection_id, tweet_id, event, op_id, detail) VALUES
                (7, 'r', 'custom-1', '1', 'local_write', NULL, 'add'), (8, 'r', 'custom-1', '2', 'local_write', 1, 'remove');
            """)
        var status = try await store.status()
        #expect(status.collections.map(\.entries) == [1])
        #expect(status.collections.map(\.ops) == [OpCounts(pending: 1)])
        #expect(try rows(store.path, "SELECT id, hlc, event, op_id, detail FROM log ORDER BY id")
            == [["1", "7", "local_write", "NULL", "add"], ["2", "8", "local_write", "1", "remove"]])
        try await store.add([tweet(3)], to: c1)
        status = try await store.status()
        #expect(status.collections.map(\.entries) == [2])
        #expect(status.collections.map(\.ops) == [OpCounts(pending: 2)])
    }

    @Test("0004: a database written by the 0003 code opens, migrates, and keeps every op, view, log line and count; the engine goes on with it")
    func migratesFixtureFromSchema3() async throws {
        let folder = TemporaryFolder()
        let path = folder.path("sync.sqlite")
        try FileManager.default.copyItem(atPath: Self.fixture("schema-0003.sqlite"), toPath: path)
        #expect(try pragma(path, "user_version") == "3")
        let logColumns = "id, hlc, replica_id, collection_id, tweet_id, event, op_id, winner, local_hlc, remote_hlc, detail"
        let queries = [
            "SELECT id, collection_id, tweet_id, kind, state, hlc, created_at, attempts, next_attempt_at, last_error, claimed_by FROM ops ORDER BY id",
            "SELECT * FROM entries ORDER BY collection_id, tweet_id",
            "SELECT \(logColumns) FROM log ORDER BY id",
            "SELECT id, name, description, url, user_id, collection_url, timeline_order, created_at, last_pulled_at, last_pull_hlc FROM collections ORDER BY id",
            "SELECT replica_id, hlc, created_at, last_flush_at FROM replica",
            "SELECT * FROM flusher_lease", "SELECT * FROM api_bases", "SELECT * FROM rate_limits ORDER BY endpoint",
        ]
        let before = try queries.map { try rows(path, $0) }
        let sequences = try rows(path, "SELECT name, seq FROM sqlite_sequence ORDER BY name")
        let counts = try rows(path, "SELECT id, ops_pending, ops_in_flight, ops_failed, entries_present FROM collection_counts ORDER BY id")
        // The fixture holds every op state, folded and unfolded log lines, conflicts and a dead flusher's lease.
        #expect(Set(try rows(path, "SELECT state FROM ops").map { $0[0] }) == ["pending", "in_flight", "failed"])
        #expect(Int(try rows(path, "SELECT count(*) FROM log WHERE id > (SELECT counted_log_id FROM replica)")[0][0])! > 0)
        #expect(Int(try rows(path, "SELECT counted_log_id FROM replica")[0][0])! > 0)
        #expect(try rows(path, "SELECT count(*) FROM log WHERE event = 'conflict'") == [["2"]])

        let wall = ManualWallClock(1_800_000_100_000)  // past the dead flusher's lease
        let store = try await openStore(folder, clock: wall)
        #expect(try pragma(path, "user_version") == "\(schemaMigrations.count)")
        #expect(try queries.map { try rows(path, $0) } == before)
        #expect(try pragma(path, "integrity_check") == "ok")
        // AUTOINCREMENT's high-water marks become the store's floors: no id is issued twice.
        #expect(try rows(path, "SELECT 'log', log_id_floor FROM replica UNION ALL SELECT 'ops', op_id_floor FROM replica") == sequences)
        let status = try await store.status()
        #expect(status.collections.map { [$0.id.rawValue, "\($0.ops.pending)", "\($0.ops.inFlight)", "\($0.ops.failed)", "\($0.entries)"] } == counts)
        try await expectCountersMatchRows(store, after: "the migration")

        // The engine goes on: the dead holder's ops come back, new edits, answers of every kind.
        let lease = try acquired(try await store.acquireFlusherLease())
        #expect(try await store.status().ops.inFlight == 0)
        let queued = try await store.remove(tweets(9_000...9_009), from: c1)
        #expect(queued.first?.id == OpID(Int64(sequences[1][1])! + 1))
        let claimed = try await store.claimDueOps(lease: lease, limit: 400)
        #expect(claimed.count > 100)
        try await store.complete(claimed.enumerated().map { index, op in
            OpResult(op: op.id, outcome: index % 3 == 0 ? .applied : index % 3 == 1 ? .alreadyApplied : .failed(reason: "no"))
        }, lease: lease)
        try await expectCountersMatchRows(store, after: "a flush round")
        #expect(try rows(path, "SELECT count(*) FROM log").first.map { Int($0[0])! } ?? 0 > before[2].count)
    }

    @Test("0006 keeps every op of a 0005 database (each kind and state, payloads), and its CHECKs, without IN lists, refuse what 0005's refused")
    func opsChecksMigration() async throws {
        let folder = TemporaryFolder()
        let path = folder.path("sync.sqlite")
        let opColumns = "id, collection_id, tweet_id, kind, state, hlc, created_at, attempts, next_attempt_at, last_error, claimed_by, payload"
        let store = try await Self.openMigrated(folder, from: 5, holding: """
            INSERT INTO replica (singleton, replica_id, hlc, created_at) VALUES (1, 'r', 20, 0);
            INSERT INTO collections (id, created_at, local_id, name) VALUES ('custom-1', 0, NULL, NULL), ('local-1', 0, 'local-1', 'Later');
            INSERT INTO local_collections (local_id, number, created_at) VALUES ('local-1', 1, 0);
            INSERT INTO entries (collection_id, tweet_id, present) VALUES ('custom-1', '2', 0), ('local-1', '3', 1);
            INSERT INTO ops (\(opColumns)) VALUES
                (1, 'custom-1', '2', 'remove', 'pending', 1, 0, 0, NULL, NULL, NULL, NULL),
                (2, 'custom-1', '4', 'add', 'in_flight', 2, 0, 1, NULL, NULL, 'host:1', NULL),
                (3, 'custom-1', '5', 'remove', 'failed', 3, 0, 5, 7, 'no', NULL, NULL),
                (4, 'local-1', NULL, 'create', 'pending', 4, 0, 0, NULL, NULL, NULL, '{"name":"Later"}'),
                (5, 'local-1', '3', 'add', 'pending', 5, 0, 0, NULL, NULL, NULL, NULL),
                (6, 'local-1', NULL, 'update', 'pending', 6, 0, 0, NULL, NULL, NULL, '{"name":{"value":"Soon","hlc":6}}'),
                (7, 'custom-1', NULL, 'destroy', 'failed', 7, 0, 2, NULL, 'gone?', NULL, NULL);
            """)
        #expect(try pragma(path, "user_version") == "\(schemaMigrations.count)")
        #expect(try rows(path, "SELECT \(opColumns) FROM ops ORDER BY id").map { $0[0] + " " + $0[3] + " " + $0[4] + " " + $0[11] } == [
            "1 remove pending NULL", "2 add in_flight NULL", "3 remove failed NULL", #"4 create pending {"name":"Later"}"#,
            "5 add pending NULL", #"6 update pending {"name":{"value":"Soon","hlc":6}}"#, "7 destroy failed NULL",
        ])
        #expect(try rows(path, "SELECT attempts, next_attempt_at, last_error, claimed_by FROM ops WHERE id IN (2, 3)")
            == [["1", "NULL", "NULL", "host:1"], ["5", "7", "no", "NULL"]])
        #expect(try pragma(path, "integrity_check") == "ok")
        #expect(try rows(path, "PRAGMA foreign_key_check").isEmpty)
        // The point of 0006: no IN list in the outbox's CHECKs (SQLite builds a table per insert for one of 3+ items).
        let sql = try rows(path, "SELECT sql FROM sqlite_master WHERE name = 'ops'")[0][0]
        #expect(!sql.uppercased().contains(" IN ("), "\(sql)")
        // ... and they refuse what 0005's refused.
        let refused = [
            "INSERT INTO ops (collection_id, tweet_id, kind, state, hlc, created_at) VALUES ('custom-1', '9', 'move', 'pending', 9, 0)",
            "INSERT INTO ops (collection_id, tweet_id, kind, state, hlc, created_at) VALUES ('custom-1', '9', 'add', 'done', 9, 0)",
            "INSERT INTO ops (collection_id, tweet_id, kind, state, hlc, created_at) VALUES ('custom-1', NULL, 'add', 'pending', 9, 0)",
            "INSERT INTO ops (collection_id, tweet_id, kind, state, hlc, created_at) VALUES ('custom-1', '9', 'update', 'pending', 9, 0)",
            "INSERT INTO ops (collection_id, tweet_id, kind, state, hlc, created_at) VALUES ('custom-1', '9', NULL, 'pending', 9, 0)",
            "UPDATE ops SET state = 'applied' WHERE id = 1",
        ]
        for statement in refused {
            #expect(throws: SnapshotError.self, "\(statement)") { try execute(path, statement) }
        }
        #expect(try rows(path, "SELECT count(*) FROM ops") == [["7"]])
        // Exactly what 0005's refused: every kind, state and tweet (valid or not), on both schemas.
        let schema5 = folder.path("schema5.sqlite"), schema6 = folder.path("schema6.sqlite")
        _ = try DatabaseQueue(path: schema5, busyTimeoutMillis: 1000, migrations: Array(schemaMigrations.prefix(5)))
        _ = try DatabaseQueue(path: schema6, busyTimeoutMillis: 1000, migrations: Array(schemaMigrations.prefix(6)))
        var accepted = 0
        for file in [schema5, schema6] { try execute(file, "INSERT INTO collections (id, created_at) VALUES ('custom-1', 0)") }
        for kind in ["'add'", "'remove'", "'create'", "'update'", "'destroy'", "'move'", "'Add'", "NULL"] {
            for state in ["'pending'", "'in_flight'", "'failed'", "'applied'", "''", "NULL"] {
                for tweet in ["'9'", "NULL"] {
                    let insert = "INSERT INTO ops (collection_id, tweet_id, kind, state, hlc, created_at) VALUES ('custom-1', \(tweet), \(kind), \(state), 1, 0)"
                    let before = (try? execute(schema5, insert)) != nil
                    let after = (try? execute(schema6, insert)) != nil
                    #expect(before == after, "\(insert): 0005 \(before ? "accepted" : "refused") it")
                    if after { accepted += 1 }
                }
            }
        }
        #expect(accepted == 15, "5 kinds x 3 states, each with a tweet or without as its kind wants")
        // The store goes on with them.
        let status = try await store.status()
        #expect(status.ops == OpCounts(pending: 4, inFlight: 1, failed: 2))
        try await store.remove([tweet(6)], from: c1)
        #expect(try await store.status().ops.pending == 5)
    }

    private static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent(name).path
    }


    /// A store opened (and so migrated to the latest schema) on a database that was at schema
    /// `version` and held the rows `sql` inserts.
    private static func openMigrated(_ folder: TemporaryFolder, from version: Int, holding sql: String) async throws -> SyncStore {
        let path = folder.path("sync.sqlite")
        _ = try DatabaseQueue(path: path, busyTimeoutMillis: 1000, migrations: Array(schemaMigrations.prefix(version)))
        try execute(path, sql)
        return try await SyncStore.open(at: path)
    }

    @Test("every Schema/*.sql file is embedded, numbered in order")
    func everyMigrationEmbedded() throws {
        let schema = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Schema")
        let files = try FileManager.default.contentsOfDirectory(atPath: schema.path).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(files == schemaMigrations.map(\.name))
        #expect(schemaMigrations.map(\.version) == Array(1...schemaMigrations.count))
        for migration in schemaMigrations {
            let text = try String(contentsOf: schema.appendingPathComponent(migration.name), encoding: .utf8)
            #expect(text == migration.sql)
        }
    }

    @Test("the HLC never goes back across close and re-open, whatever the wall clock does")
    func clockPersistsAcrossReopen() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock(2_000_000_000_000)
        var last = HLC.zero
        for round in 0..<5 {
            let store = try await openStore(folder, clock: clock)
            for op in try await store.add(tweets(UInt64(round * 10 + 1)...UInt64(round * 10 + 10)), to: c1) {
                #expect(op.hlc > last)
                last = op.hlc
            }
            // Every round the wall clock goes back an hour.
            clock.advance(by: -3_600_000)
        }
        let events = try await openStore(folder, clock: clock).log(limit: 1000)
        #expect(Set(events.map(\.hlc)).count == events.count, "no stamp is issued twice")
    }

    @Test("deleting the log (pruning, or by hand) never lets a stamp be issued twice")
    func clockSurvivesLogDeletion() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock(2_000_000_000_000)
        let store = try await openStore(folder, clock: clock)
        let before = try await store.add(tweets(1...5), to: c1).map(\.hlc).max()!
        // The clock rides on the newest log line; the wall clock then goes back an hour.
        try execute(store.path, "DELETE FROM log")
        clock.advance(by: -3_600_000)
        let after = try await openStore(folder, clock: clock).add([tweet(6)], to: c1)
        #expect(after[0].hlc > before)
    }

    @Test("status counts the ops newer than the counters by id range, never by reading the whole outbox")
    func countsReadByIDRange() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        try await store.remove(tweets(1...10), from: c1)
        for sql in ["SELECT * FROM collection_counts", "SELECT coalesce(sum(ops_in_flight), 0) FROM collection_counts"] {
            let plan = try rows(store.path, "EXPLAIN QUERY PLAN \(sql)").map { $0.last! }
            #expect(plan.contains("SEARCH ops USING INTEGER PRIMARY KEY (rowid>?)"), "\(plan)")
            #expect(!plan.contains { $0.hasPrefix("SCAN ops") }, "\(plan)")
        }
    }

    @Test("op and log ids are never issued twice: not after the newest op is applied or discarded, nor after the log is deleted")
    func idsNeverReused() async throws {
        let folder = TemporaryFolder()
        let store = try await openStore(folder)
        let first = try await store.remove(tweets(1...3), from: c1)
        try await store.discard([first[2].id])                      // the newest op
        let second = try await store.remove(tweets(4...4), from: c1)
        #expect(second[0].id > first[2].id)
        // The queue drained by a flush's answers.
        let lease = try acquired(try await store.acquireFlusherLease())
        let claimed = try await store.claimDueOps(lease: lease, limit: 10)
        try await store.complete(claimed.map { OpResult(op: $0.id, outcome: .applied) }, lease: lease)
        #expect(try await store.outbox(.all).isEmpty)
        let third = try await store.add(tweets(5...5), to: c1)
        #expect(third[0].id > second[0].id)
        // A replaced op (coalescing) is never the newest when it goes.
        let replacing = try await store.remove(tweets(5...5), from: c1)
        #expect(replacing[0].id > third[0].id)
        let newestLine = try await store.log(limit: 1)[0].id
        try execute(store.path, "DELETE FROM log")
        try await store.add(tweets(6...6), to: c1)
        #expect(try await store.log(limit: 10).map(\.id).allSatisfy { $0 > newestLine })
        // Another store on the file issues ids after these too.
        let other = try await openStore(folder)
        #expect(try await other.add(tweets(7...7), to: c1)[0].id > replacing[0].id)
    }

    @Test("after the log was deleted, a commit whose answers were taken over still gives its other lines ids above the floor")
    func logFloorSurvivesAnEmptyAnswer() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock()
        let store = try await openStore(folder, clock: clock)
        try await store.remove(tweets(1...2), from: c1)
        let old = try acquired(try await store.acquireFlusherLease(host: "here", pid: 1, isAlive: { _ in true }))
        let claimed = try await store.claimDueOps(lease: old, limit: 10)
        let newestLine = try await store.log(limit: 1)[0].id
        try execute(store.path, "DELETE FROM log")
        // The first op is not this holder's any more; the second one is dead-lettered.
        try execute(store.path, "UPDATE ops SET claimed_by = 'someone else' WHERE id = \(claimed[0].id.rawValue)")
        #expect(try await store.complete([OpResult(op: claimed[0], outcome: .applied),
                                          OpResult(op: claimed[1], outcome: .failed(reason: "no"))], lease: old) == 1)
        let lines = try await store.log(limit: 10)
        #expect(lines.map(\.event) == [.failed])
        #expect(lines.allSatisfy { $0.id > newestLine }, "\(lines.map(\.id)) after \(newestLine)")
    }

    @Test("two stores on one file share one clock")
    func clockSharedAcrossConnections() async throws {
        let folder = TemporaryFolder()
        let clock = ManualWallClock()
        let a = try await openStore(folder, clock: clock)
        let b = try await openStore(folder, clock: clock)
        var stamps: [HLC] = []
        for i in 0..<20 {
            let store = i.isMultiple(of: 2) ? a : b
            stamps += try await store.add([tweet(UInt64(i + 1))], to: c1).map(\.hlc)
        }
        #expect(stamps == stamps.sorted())
        #expect(Set(stamps).count == stamps.count)
        #expect(a.replicaID == b.replicaID)
    }
}

