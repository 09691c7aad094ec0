import Foundation
import Testing
import TestSupport

@Suite("syncctl prune as a real binary")
struct PruneCommandTests {
    let folder = TemporaryFolder()
    var db: String { folder.path("sync.sqlite") }

    func syncctl(_ arguments: String...) async throws -> Run {
        try await Syncctl.run(arguments, db: db, folder: folder)
    }

    /// The ops' ids of the log's lines, in id order ("-" for a line with no op).
    func loggedOps() async throws -> [String] {
        try rows(db, "SELECT coalesce(op_id, '-') FROM log ORDER BY id").map { $0[0] }
    }

    @Test("prints pruned N (--json: {\"pruned\":N}); keeps the lines of ops in the outbox, and conflicts unless --conflicts")
    func prunes() async throws {
        #expect(try await syncctl("remove", "custom-1", "1", "2", "3").status == 0)
        #expect(try await syncctl("discard", "1").status == 0)
        // A conflict line from long ago, as a pull writes them (its op gone).
        try execute(db, """
            INSERT INTO log (hlc, replica_id, collection_id, tweet_id, event, op_id, winner, detail)
            SELECT hlc + 1, replica_id, 'custom-1', '1', 'conflict', 1, 'local', 'kept by default' FROM log ORDER BY id DESC LIMIT 1
            """)
        await #expect(try loggedOps() == ["1", "2", "3", "1", "1"])
        // Everything logged so far is older than "0s" by the time the next process runs.
        let young = try await syncctl("prune")
        #expect(young.status == 0 && young.stdout == "pruned 0\n", "\(young)")
        let text = try await syncctl("prune", "--older-than", "0s")
        #expect(text.status == 0 && text.stdout == "pruned 2\n", "\(text)")
        await #expect(try loggedOps() == ["2", "3", "1"], "op 1's local_write and discarded went; the conflict stayed")
        let json = try await syncctl("prune", "--older-than", "0s", "--conflicts", "--json")
        #expect(json.status == 0, "\(json)")
        #expect(json.stdout == "{\"pruned\":1}\n")
        await #expect(try loggedOps() == ["2", "3"])
    }

    static let badDurations = ["-1d", "30", "d", "1.5h", "30D", "30 d", " 30d", "abc", "+5m", "1e3s", "", "5w", "٣d",
                               "99999999999999999999d", "106752000000d", "0x10s"]

    @Test("a bad duration exits 64 with a clear message (the error document with --json), and nothing is deleted")
    func badDurations() async throws {
        #expect(try await syncctl("remove", "custom-1", "1").status == 0)
        #expect(try await syncctl("discard", "1").status == 0)
        let before = try snapshot(db)
        for duration in Self.badDurations {
            let refused = try await syncctl("prune", "--older-than=\(duration)", "--json")
            #expect(refused.status == 64, "\(duration): \(refused)")
            #expect(refused.stderr.contains("--older-than"), "\(duration): \(refused)")
            #expect((refused.json?["error"] as? [String: Any])?["exit_code"] as? Int == 64, "\(duration): \(refused)")
        }
        #expect(try snapshot(db) == before)
    }

    @Test("a bad duration creates no database")
    func noDatabaseCreated() async throws {
        let refused = try await syncctl("prune", "--older-than", "ten")
        #expect(refused.status == 64 && refused.stderr.contains("unit"), "\(refused)")
        let negative = try await syncctl("prune", "--older-than", "-3d")
        #expect(negative.status == 64 && negative.stderr.contains("negative"), "\(negative)")
        #expect(!FileManager.default.fileExists(atPath: db))
    }
}
