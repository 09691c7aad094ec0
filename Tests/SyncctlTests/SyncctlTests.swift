@_spi(Worker) import CollectionSync
import Foundation
import Testing
import TestSupport

@Suite("syncctl: the offline commands of the contract, run as a real binary")
struct SyncctlTests {
    let folder = TemporaryFolder()
    var db: String { folder.path("sync.sqlite") }

    func syncctl(_ arguments: String..., environment: [String: String] = [:]) async throws -> Run {
        try await Syncctl.run(arguments, db: db, environment: environment, folder: folder)
    }

    @Test("remove and add print the queued ops; ids are strings, op ids integers")
    func editJSON() async throws {
        let removed = try await syncctl("remove", "--json", "custom-388061495298244609", "390890231215292416", "18446744073709551615")
        #expect(removed.status == 0, "\(removed)")
        let document = try decode(QueuedDocument.self, removed)
        #expect(document.queued == [
            .init(id: 1, op: "remove", collection_id: "custom-388061495298244609", tweet_id: "390890231215292416"),
            .init(id: 2, op: "remove", collection_id: "custom-388061495298244609", tweet_id: "18446744073709551615"),
        ])
        let added = try await syncctl("add", "custom-1", "7", "--json")
        #expect(try decode(QueuedDocument.self, added).queued.map(\.op) == ["add"])
        // Without --json, text for people.
        let plain = try await syncctl("add", "custom-1", "8")
        #expect(plain.status == 0 && plain.stdout.contains("queued op 4"))
    }

    @Test("status, outbox, entries and log print the contract's keys and types")
    func readJSON() async throws {
        _ = try await syncctl("add", "custom-1", "10", "11", "12")
        _ = try await syncctl("remove", "custom-2", "20")
        // Put one op in flight and dead-letter another, through the library on the same file.
        let store = try await SyncStore.open(at: db)
        guard case .acquired(let lease) = try await store.acquireFlusherLease() else { Issue.record("no lease"); return }
        let claimed = try await store.claimDueOps(lease: lease, limit: 2)
        try await store.complete([OpResult(op: claimed[0].id, outcome: .failed(reason: "not_found"))], lease: lease)

        let status = try await syncctl("status", "--json")
        #expect(status.status == 0, "\(status)")
        #expect(keys(status.json) == StatusDocument.keys)
        let collectionObjects = try #require(status.json?["collections"] as? [Any])
        #expect(collectionObjects.allSatisfy { keys($0) == StatusDocument.collectionKeys })
        let statusDocument = try decode(StatusDocument.self, status)
        #expect((statusDocument.pending, statusDocument.in_flight, statusDocument.failed) == (2, 1, 1))
        #expect(isRFC3339(statusDocument.oldest_pending_at))
        #expect(statusDocument.collections.map(\.id) == ["custom-1", "custom-2"])
        #expect(statusDocument.collections[0].entries == 2, "the failed add reverted to absent")

        let outbox = try await syncctl("outbox", "--json")
        let opObjects = try #require(outbox.json?["ops"] as? [Any])
        #expect(opObjects.count == 3 && opObjects.allSatisfy { keys($0) == OutboxDocument.opKeys })
        let ops = try decode(OutboxDocument.self, outbox).ops
        #expect(ops.map(\.state) == ["in_flight", "pending", "pending"])
        #expect(ops.allSatisfy { isRFC3339($0.created_at) && $0.next_attempt_at == nil })
        let failed = try decode(OutboxDocument.self, try await syncctl("outbox", "--failed", "--json")).ops
        #expect(failed.map(\.tweet_id) == ["10"] && failed[0].last_error == "not_found" && failed[0].attempts == 1)

        let entries = try decode(EntriesDocument.self, try await syncctl("entries", "custom-1", "--json"))
        #expect(entries.collection_id == "custom-1")
        #expect(entries.entries == [.init(tweet_id: "12", sort_index: nil, pending: "add"),
                                    .init(tweet_id: "11", sort_index: nil, pending: "add")])

        let log = try await syncctl("log", "--json", "--limit", "3")
        let eventObjects = try #require(log.json?["events"] as? [Any])
        #expect(eventObjects.allSatisfy { keys($0).isSuperset(of: LogDocument.eventKeys) })
        let events = try decode(LogDocument.self, log).events
        #expect(events.map(\.event) == ["failed", "local_write", "local_write"])
        #expect(events.allSatisfy { isRFC3339($0.at) })
        #expect(events.map(\.id) == events.map(\.id).sorted(by: >), "newest first")
        #expect(try decode(LogDocument.self, try await syncctl("log", "--conflicts", "--json")).events.isEmpty)
    }

    @Test("retry and discard; discarding an op in flight exits 75 and changes nothing")
    func retryAndDiscard() async throws {
        _ = try await syncctl("remove", "custom-1", "1", "2", "3")
        let store = try await SyncStore.open(at: db)
        guard case .acquired(let lease) = try await store.acquireFlusherLease() else { Issue.record("no lease"); return }
        let claimed = try await store.claimDueOps(lease: lease, limit: 2)
        try await store.complete([OpResult(op: claimed[0].id, outcome: .failed(reason: "bad"))], lease: lease)

        let before = try snapshot(db)
        let inFlight = try await syncctl("discard", "--json", "2")
        #expect(inFlight.status == 75, "\(inFlight)")
        #expect(try decode(ErrorDocument.self, inFlight).error.exit_code == 75)
        #expect(try snapshot(db) == before)

        #expect(try await syncctl("retry", "1").status == 0)
        #expect(try await store.op(OpID(1))?.state == .pending)
        let discarded = try await syncctl("discard", "1", "3", "--json")
        #expect(discarded.status == 0, "\(discarded)")
        #expect(try await store.outbox(.all).map(\.id) == [OpID(2)])
        try await store.complete([OpResult(op: OpID(2), outcome: .failed(reason: "bad"))], lease: lease)
        #expect(try await syncctl("retry", "--all").status == 0)
        #expect(try await store.outbox(.failed).isEmpty)
    }

    static let invalidInvocations: [[String]] = [
        ["remove", "custom-1", "0"],
        ["remove", "custom-1", "01"],
        ["remove", "custom-1", "18446744073709551616"],
        ["remove", "custom-1", "99999999999999999999999"],
        ["remove", "custom-1", "12", "-5"],
        ["remove", "custom-1", "1; DROP TABLE ops; --"],
        ["remove", "custom-1", "5", "x", "6"],
        ["remove", "custom-1'; DROP TABLE ops; --", "5"],
        ["remove", "collection-1", "5"],
        ["remove", "custom-", "5"],
        ["remove", "custom-1"],
        ["remove"],
        ["add", "custom-1", " 5"],
        ["add", "custom-1", "5", "--bogus"],
        ["add", "custom-123456789012345678901", "5"],
        ["entries"],
        ["entries", "custom-abc"],
        ["outbox", "--failed", "extra"],
        ["log", "--limit", "0"],
        ["log", "--limit", "-3"],
        ["log", "--limit", "many"],
        ["retry"],
        ["retry", "--all", "3"],
        ["retry", "abc"],
        ["retry", "99"],
        ["discard"],
        ["discard", "0"],
        ["discard", "99"],
        ["frobnicate"],
        ["status", "--verbosity"],
        ["status", "--log-level", "loud"],
        ["status", "--log-format", "xml"],
        ["status", "-q", "-v"],
        ["status", "--log-level", "info", "-vv"],
        ["flush", "--deadline", "1e30"],
        ["flush", "--deadline", "-1"],
        ["flush", "--deadline", "nan"],
        ["flush", "--deadline", "inf"],
        ["flush", "--batch-size", "9223372036854775808"],
        ["log", "--limit", "-9223372036854775808"],
        ["remove", "--db"],
    ]

    @Test("a usage error of flush --json prints the flush document with the error object: counts 0, pending null")
    func flushUsageErrorDocument() async throws {
        for arguments in [["flush", "--deadline", "1e30", "--json"], ["flush", "--json", "--bogus"], ["flush", "--json", "--log-level", "loud"]] {
            let run = try await Syncctl.run(arguments, db: db, folder: folder)
            #expect(run.status == 64, "\(run)")
            let document = try #require(run.json, "\(run)")
            #expect(keys(document).isSuperset(of: ["sent", "applied", "already_applied", "failed", "pending", "requests", "next_attempt_at", "error"]))
            #expect(document["sent"] as? Int == 0 && document["requests"] as? Int == 0 && document["pending"] is NSNull)
            #expect((document["error"] as? [String: Any])?["exit_code"] as? Int == 64)
        }
    }

    @Test("invalid invocations exit 64 with a message and leave the database unchanged", arguments: invalidInvocations)
    func invalidInvocation(_ arguments: [String]) async throws {
        _ = try await syncctl("remove", "custom-1", "1", "2")
        let before = try snapshot(db)
        let run = try await Syncctl.run(arguments, db: db, folder: folder)
        #expect(run.status == 64, "\(run)")
        #expect(!run.stderr.isEmpty)
        #expect(run.stdout.isEmpty)
        #expect(try snapshot(db) == before)
        // With --json the error is one JSON document on stdout.
        let json = try await Syncctl.run(arguments + ["--json"], db: db, folder: folder)
        #expect(json.status == 64)
        if arguments != ["remove", "--db"] {  // there --json is taken as the path
            let document = try decode(ErrorDocument.self, json)
            #expect(document.error.exit_code == 64 && !document.error.message.isEmpty)
        }
        #expect(try snapshot(db) == before)
    }

    @Test("an invalid edit on a database that does not exist yet does not create it")
    func invalidEditCreatesNothing() async throws {
        let run = try await syncctl("remove", "custom-1", "abc")
        #expect(run.status == 64)
        #expect(run.stderr.contains("\"abc\""))
        #expect(!FileManager.default.fileExists(atPath: db))
    }

    @Test("database failures exit 74: newer schema, not a database, unusable path")
    func databaseFailures() async throws {
        _ = try await syncctl("remove", "custom-1", "1")
        try execute(db, "PRAGMA user_version = 42")
        let newer = try await syncctl("status", "--json")
        #expect(newer.status == 74, "\(newer)")
        #expect(try decode(ErrorDocument.self, newer).error.message.contains("newer"))

        let garbage = folder.path("garbage.sqlite")
        try Data(repeating: 0x5A, count: 4096).write(to: URL(fileURLWithPath: garbage))
        let corrupt = try await Syncctl.run(["outbox"], db: garbage, folder: folder)
        #expect(corrupt.status == 74, "\(corrupt)")

        let blocker = folder.path("not-a-folder")
        try Data("x".utf8).write(to: URL(fileURLWithPath: blocker))
        let unusable = try await Syncctl.run(["add", "custom-1", "5"], db: blocker + "/sync.sqlite", folder: folder)
        #expect(unusable.status == 74, "\(unusable)")
    }

    @Test("the database path: --db, then SYNCCTL_DB, then XDG_DATA_HOME, then HOME; empty counts as absent")
    func databasePathPrecedence() async throws {
        let home = folder.path("home")
        let xdg = folder.path("xdg")
        let env = folder.path("env.sqlite")
        let flag = folder.path("flag.sqlite")
        func run(_ extra: [String], _ environment: [String: String]) async throws {
            let result = try await Syncctl.run(["add", "custom-1", "5"] + extra, environment: environment, folder: folder)
            #expect(result.status == 0, "\(result)")
        }
        try await run(["--db", flag], ["SYNCCTL_DB": env, "XDG_DATA_HOME": xdg])
        #expect(FileManager.default.fileExists(atPath: flag) && !FileManager.default.fileExists(atPath: env))
        try await run([], ["SYNCCTL_DB": env, "XDG_DATA_HOME": xdg])
        #expect(FileManager.default.fileExists(atPath: env))
        try await run([], ["SYNCCTL_DB": "", "XDG_DATA_HOME": xdg])
        #expect(FileManager.default.fileExists(atPath: xdg + "/syncctl/sync.sqlite"))
        try await run([], ["SYNCCTL_DB": "", "XDG_DATA_HOME": ""])
        let defaultPath = home + "/.local/share/syncctl/sync.sqlite"
        #expect(FileManager.default.fileExists(atPath: defaultPath))
        let mode = try FileManager.default.attributesOfItem(atPath: defaultPath)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test("--help of every command shows examples; --version prints the version (more in VersionTests)")
    func helpAndVersion() async throws {
        for command in ["remove", "add", "entries", "status", "outbox", "log", "retry", "discard", "pull", "flush", "watch", "mock-server", "demo"] {
            let help = try await syncctl(command, "--help")
            #expect(help.status == 0, "\(command): \(help)")
            #expect(help.stdout.contains("Examples:"), "\(command)")
        }
        let version = try await syncctl("--version")
        #expect(version.status == 0 && version.stdout.hasPrefix("syncctl \(BuildInfo.version)\n"))
    }

    @Test("demo exits 0 and shows the outage, the reconciliation and the conflict; its database is a fresh temporary one unless --db, never $SYNCCTL_DB")
    func demo() async throws {
        let run = try await Syncctl.run(["demo"], db: db, folder: folder)
        #expect(!FileManager.default.fileExists(atPath: db), "SYNCCTL_DB is the user's database: the demo leaves it alone")
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout.contains("network goes down") && run.stdout.contains("could not be reached"))
        #expect(run.stdout.contains("not_found") && run.stdout.contains("already removed"))
        #expect(run.stdout.contains("conflict") && run.stdout.contains("winner=local"))
        #expect(run.stdout.contains("agree: yes"))
        let json = try await Syncctl.run(["demo", "--json", "--db", db], folder: folder)
        #expect(json.status == 0, "\(json)")
        #expect(json.json?["in_sync"] as? Bool == true)
        #expect(keys(json.json).isSuperset(of: ["flush", "conflicts", "status", "offline_collection"]))
        // Chapter 8: a collection made offline, filled, renamed, flushed through a lost create answer.
        let made = json.json?["offline_collection"] as? [String: Any]
        #expect(made?["local_id"] as? String == "local-1" && (made?["id"] as? String)?.hasPrefix("custom-") == true)
        #expect(made?["server_collections"] as? Int == 1 && made?["name"] as? String == "Read soon" && made?["entries"] as? Int == 3)
        #expect(run.stdout.contains("answer is lost") && run.stdout.contains("instead of creating it twice"))
        #expect(FileManager.default.fileExists(atPath: db), "--db keeps it")
        let mock = try await Syncctl.run(["mock-server", "--db", db], folder: folder)
        #expect(mock.status == 64, "mock-server has no database: \(mock)")
    }
}
