import CollectionSync
import CollectionsMock
import Foundation
import Testing
import TestSupport

/// `syncctl doctor` as a real process against the in-process mock: each exit code from a real
/// situation, the first problem's code winning, and nothing changed anywhere.
@Suite("syncctl doctor against the mock")
struct DoctorTests {
    let folder = TemporaryFolder()
    var db: String { folder.path("sync.sqlite") }

    func environment(_ server: MockCollectionsServer, credentials: Bool = true) -> [String: String] {
        Syncctl.environment(server, db: db, credentials: credentials)
    }

    func run(_ arguments: [String], _ env: [String: String]) async throws -> Run {
        try await Syncctl.run(arguments, environment: env, folder: folder)
    }

    /// Every secret of the mock's test user.
    func secrets(_ server: MockCollectionsServer) -> [String] {
        let mock = server.credentials
        return [mock.consumerKey, mock.consumerSecret, mock.accessToken, mock.accessTokenSecret, mock.bearerToken ?? "bearer"]
    }

    /// The checks of a `--json` run: (check, ok) pairs, ok nil when skipped.
    func checks(_ run: Run) throws -> [(String, Bool?)] {
        let list = try #require(run.json?["checks"] as? [[String: Any]], "\(run)")
        return list.map { ($0["check"] as? String ?? "?", $0["ok"] as? Bool) }
    }

    func problems(_ run: Run) throws -> [String] {
        try checks(run).filter { $0.1 == false }.map(\.0)
    }

    func fileBytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    @Test("all ok: exit 0, one ok line per check; the database byte for byte the same, no write request, no lease, no secret")
    func allOK() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1", "2"])
            let env = environment(server)
            #expect(try await run(["pull", id], env).status == 0)
            #expect(try await run(["remove", id, "1"], env).status == 0)
            let before = try #require(fileBytes(db))
            server.clearJournal()

            let text = try await run(["doctor"], env)
            #expect(text.status == 0, "\(text)")
            let lines = text.stdout.split(separator: "\n")
            #expect(lines.count >= 8 && lines.allSatisfy { $0.hasPrefix("ok: ") }, "\(text)")
            #expect(text.stdout.contains("(from SYNCCTL_DB)") && text.stdout.contains("(from SYNCCTL_API_BASE)")
                    && text.stdout.contains("from the environment"), "\(text)")
            #expect(text.stdout.contains("1 pending, 0 in flight, 0 failed"), "\(text)")
            #expect(text.stdout.contains("user id: 1000000001"), "\(text)")

            let json = try await run(["doctor", "--json"], env)
            #expect(json.status == 0, "\(json)")
            #expect(try checks(json).map(\.0) == ["database_path", "api_base", "credentials", "user_id", "database", "flusher_lease",
                                                  "queue", "api_reachable", "credentials_accepted"])
            #expect(try checks(json).allSatisfy { $0.1 == true })
            #expect(json.json?["exit_code"] as? Int == 0 && json.json?["error"] == nil)

            #expect(fileBytes(db) == before, "the database file is unchanged")
            let journal = server.journal()
            #expect(journal.count == 2 && journal.allSatisfy { $0.method == "GET" && $0.endpoint == .list }, "\(journal.map(\.path))")
            #expect(try rows(db, "SELECT count(*) FROM flusher_lease") == [["0"]])
            let output = [text.stdout, text.stderr, json.stdout, json.stderr].joined()
            for secret in secrets(server) { #expect(!output.contains(secret)) }
        }
    }

    @Test("no database yet: reported as created on first use, and not created; a known collection is asked for when no user id is known")
    func noDatabase() async throws {
        try await withMockServer { server in
            var env = environment(server, credentials: false)
            env["TWITTER_BEARER_TOKEN"] = server.credentials.bearerToken
            let doctor = try await run(["doctor"], env)
            #expect(doctor.status == 0, "\(doctor)")
            #expect(doctor.stdout.contains("will be created on first use"), "\(doctor)")
            #expect(!FileManager.default.fileExists(atPath: db))
            #expect(!FileManager.default.fileExists(atPath: folder.path("home/.local/share/syncctl")))
            #expect(server.journal().map(\.endpoint) == [.show], "a bearer token names no user: collections/show instead")
        }
    }

    @Test("78: no credentials, a partial set, a too-open credentials file; the API is still checked without them")
    func configuration() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1"])
            #expect(try await run(["remove", id, "1"], environment(server)).status == 0)
            let before = try #require(fileBytes(db))
            var outputs: [String] = []

            let none = try await run(["doctor", "--json"], environment(server, credentials: false))
            #expect(none.status == 78, "\(none)")
            #expect(try problems(none) == ["credentials"])
            #expect(try checks(none).last! == ("credentials_accepted", nil), "skipped")
            #expect(try checks(none).first { $0.0 == "api_reachable" }?.1 == true, "answered unsigned with the API's auth error")
            let error = try #require(none.json?["error"] as? [String: Any])
            #expect(error["exit_code"] as? Int == 78 && none.json?["exit_code"] as? Int == 78)
            outputs += [none.stdout, none.stderr]

            var partial = environment(server)
            partial["TWITTER_ACCESS_TOKEN"] = ""
            partial["TWITTER_BEARER_TOKEN"] = "a-bearer"
            let partialRun = try await run(["doctor"], partial)
            #expect(partialRun.status == 78, "\(partialRun)")
            #expect(partialRun.stdout.contains("problem: credentials:") && partialRun.stdout.contains("TWITTER_ACCESS_TOKEN"), "\(partialRun)")
            outputs += [partialRun.stdout, partialRun.stderr]

            let file = folder.path("credentials")
            let mock = server.credentials
            try "TWITTER_CONSUMER_KEY=\(mock.consumerKey)\nTWITTER_CONSUMER_SECRET=\(mock.consumerSecret)\nTWITTER_ACCESS_TOKEN=\(mock.accessToken)\nTWITTER_ACCESS_TOKEN_SECRET=\(mock.accessTokenSecret)\n"
                .write(toFile: file, atomically: true, encoding: .utf8)
            chmod(file, 0o644)
            let open = try await run(["doctor", "--credentials", file, "--json"], environment(server, credentials: false))
            #expect(open.status == 78, "\(open)")
            #expect(try problems(open) == ["credentials_file"])
            #expect(open.stdout.contains("chmod 600"), "\(open)")
            outputs += [open.stdout, open.stderr]
            chmod(file, 0o600)
            let good = try await run(["doctor", "--credentials", file], environment(server, credentials: false))
            #expect(good.status == 0 && good.stdout.contains("from the credentials file"), "\(good)")
            outputs += [good.stdout, good.stderr]

            #expect(fileBytes(db) == before)
            #expect(server.journal().allSatisfy { $0.method == "GET" })
            let output = outputs.joined()
            for secret in secrets(server) { #expect(!output.contains(secret)) }
        }
    }

    @Test("74: a file that is not a database, a damaged one, a newer schema; left as they are")
    func database() async throws {
        try await withMockServer { server in
            let env = environment(server)
            try Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: URL(fileURLWithPath: db))
            let garbage = try #require(fileBytes(db))
            let notADatabase = try await run(["doctor", "--json"], env)
            #expect(notADatabase.status == 74, "\(notADatabase)")
            #expect(try problems(notADatabase) == ["database"])
            #expect(fileBytes(db) == garbage)

            // A real database with a page of its ops overwritten.
            try FileManager.default.removeItem(atPath: db)
            #expect(try await run(["remove", "custom-1"] + (1...2_000).map(String.init), env).status == 0)
            // Every page in the file itself: a page left in the WAL would hide the damage.
            try execute(db, "PRAGMA wal_checkpoint(TRUNCATE)")
            let pageSize = Int(try pragma(db, "page_size"))!
            let handle = try #require(FileHandle(forUpdatingAtPath: db))
            try handle.seek(toOffset: UInt64(pageSize * 6))
            try handle.write(contentsOf: Data(repeating: 0x5A, count: pageSize))
            try handle.close()
            let damagedBytes = try #require(fileBytes(db))
            let damaged = try await run(["doctor"], env)
            #expect(damaged.status == 74, "\(damaged)")
            #expect(damaged.stdout.contains("problem: database:"), "\(damaged)")
            #expect(fileBytes(db) == damagedBytes)

            try FileManager.default.removeItem(atPath: db)
            #expect(try await run(["remove", "custom-1", "5"], env).status == 0)
            try execute(db, "PRAGMA user_version = 999")
            let newer = try await run(["doctor"], env)
            #expect(newer.status == 74 && newer.stdout.contains("999"), "\(newer)")
        }
    }

    @Test("69: the API refuses connections (outage); 78: a base URL that does not serve the API")
    func unreachable() async throws {
        try await withMockServer { server in
            let env = environment(server)
            await server.beginOutage()
            let down = try await run(["doctor", "--json"], env)
            #expect(down.status == 69, "\(down)")
            #expect(try problems(down) == ["api_reachable"])
            #expect(try checks(down).last! == ("credentials_accepted", nil))
            try await server.endOutage()
            var wrongBase = env
            wrongBase["SYNCCTL_API_BASE"] = server.baseURL.replacingOccurrences(of: "/1.1", with: "/9.9")
            let wrong = try await run(["doctor"], wrongBase)
            #expect(wrong.status == 78 && wrong.stdout.contains("--api-base"), "\(wrong)")
        }
    }

    @Test("77: wrong credentials; the first problem's code wins when there are several")
    func rejected() async throws {
        try await withMockServer { server in
            var env = environment(server)
            env["TWITTER_ACCESS_TOKEN_SECRET"] = "wrong-\(server.credentials.accessTokenSecret)"
            let wrong = try await run(["doctor", "--json"], env)
            #expect(wrong.status == 77, "\(wrong)")
            #expect(try problems(wrong) == ["credentials_accepted"])
            #expect(!(wrong.stdout + wrong.stderr).contains(server.credentials.accessTokenSecret))
            // A damaged database (74) comes before rejected credentials (77).
            try Data(repeating: 7, count: 4096).write(to: URL(fileURLWithPath: db))
            let both = try await run(["doctor", "--json"], env)
            #expect(both.status == 74, "\(both)")
            #expect(try problems(both) == ["database", "credentials_accepted"])
            #expect(server.journal().allSatisfy { $0.method == "GET" })
        }
    }
}
