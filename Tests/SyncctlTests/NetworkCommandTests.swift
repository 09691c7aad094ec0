import CollectionsMock
import Foundation
import Testing
import TestSupport

/// `pull`, `flush` and `watch` as real processes against the in-process mock: every exit code of
/// the contract from a real situation, the JSON documents, configuration and credentials.
@Suite("syncctl against the mock: exit codes, JSON, configuration, credentials")
struct NetworkCommandTests {
    let folder = TemporaryFolder()
    var db: String { folder.path("sync.sqlite") }

    func environment(_ server: MockCollectionsServer, credentials: Bool = true) -> [String: String] {
        Syncctl.environment(server, db: db, credentials: credentials)
    }

    func run(_ arguments: [String], _ env: [String: String]) async throws -> Run {
        try await Syncctl.run(arguments, environment: env, folder: folder)
    }

    static let flushKeys: Set<String> = ["sent", "applied", "already_applied", "failed", "pending", "requests", "next_attempt_at"]

    @Test("pull and flush: 0 with the contract's documents; ids as strings, counts as integers")
    func happyPath() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1", "2", "3"])
            let env = environment(server)
            let pull = try await run(["pull", id, "--json"], env)
            #expect(pull.status == 0, "\(pull)")
            #expect(keys(pull.json) == ["collection_id", "entries", "remote_writes", "conflicts"])
            #expect(pull.json?["collection_id"] as? String == id && pull.json?["entries"] as? Int == 3)
            #expect(try await run(["remove", id, "1", "2"], env).status == 0)
            let flush = try await run(["flush", "--json"], env)
            #expect(flush.status == 0, "\(flush)")
            #expect(keys(flush.json).isSuperset(of: Self.flushKeys))
            #expect(flush.json?["applied"] as? Int == 2 && flush.json?["pending"] as? Int == 0)
            #expect(flush.json?["next_attempt_at"] is NSNull)
            #expect(server.tweetIDs(of: id) == ["3"])
        }
    }

    @Test("65: only dead letters remain; 64: an unknown collection from a base URL that answered before")
    func deadLettersAndUnknownCollection() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1"])
            try server.markDeleted(["9"])
            let env = environment(server)
            #expect(try await run(["add", id, "9"], env).status == 0)
            let flush = try await run(["flush", "--json"], env)
            #expect(flush.status == 65, "\(flush)")
            #expect(flush.json?["failed"] as? Int == 1)
            #expect((flush.json?["error"] as? [String: Any])?["exit_code"] as? Int == 65)
            let unknown = try await run(["pull", "custom-424242", "--json"], env)
            #expect(unknown.status == 64, "\(unknown)")
        }
    }

    @Test("69: the API cannot be reached; ops kept")
    func unreachable() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1"])
            let env = environment(server)
            #expect(try await run(["remove", id, "1"], env).status == 0)
            await server.beginOutage()
            let flush = try await run(["flush", "--json"], env)
            #expect(flush.status == 69, "\(flush)")
            #expect(flush.json?["pending"] as? Int == 1)
            #expect(try await run(["pull", id], env).status == 69)
            try await server.endOutage()
        }
    }

    @Test("75: rate limited, and a deadline reached with ops pending (69 after a 5xx)")
    func tryLater() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1", "2"])
            let env = environment(server)
            #expect(try await run(["pull", id], env).status == 0)
            #expect(try await run(["remove", id, "1"], env).status == 0)
            server.rateLimit(until: server.now + 600)
            let limited = try await run(["flush", "--json"], env)
            #expect(limited.status == 75, "\(limited)")
            server.rateLimit(until: nil)
            try FileManager.default.removeItem(atPath: db)
            #expect(try await run(["remove", id, "2"], env).status == 0)
            server.failNext(1, status: 503, code: 130)
            let first = try await run(["flush"], env)
            #expect(first.status == 69, "\(first)")
            // A deadline reached with ops pending.
            let deadline = try await run(["flush", "--deadline", "0", "--json"], env)
            #expect(deadline.status == 75, "\(deadline)")
            #expect(deadline.json?["pending"] as? Int == 1)
        }
    }

    @Test("77: credentials rejected; ops kept with attempts unchanged")
    func authRejected() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1"])
            var env = environment(server)
            env["TWITTER_ACCESS_TOKEN_SECRET"] = "wrong"
            #expect(try await run(["remove", id, "1"], env).status == 0)
            let flush = try await run(["flush", "--json"], env)
            #expect(flush.status == 77, "\(flush)")
            let outbox = try await decode(OutboxDocument.self, try run(["outbox", "--json"], env))
            #expect(outbox.ops.map(\.attempts) == [0])
            #expect(try await run(["pull", id], env).status == 77)
        }
    }

    @Test("78: no credentials, a partial set, a too-open credentials file, plain http to a remote host, a wrong base URL")
    func configuration() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1"])
            #expect(try await run(["remove", id, "1"], environment(server)).status == 0)
            // The user-visible state (a pull that starts advances the clock, which is no change).
            func state() throws -> [[String]] {
                try ["ops", "entries", "log", "collections", "flusher_lease"].flatMap { try rows(db, "SELECT * FROM \($0)") }
            }
            let before = try state()

            let none = try await run(["flush", "--json"], environment(server, credentials: false))
            #expect(none.status == 78, "\(none)")
            #expect((none.json?["error"] as? [String: Any])?["exit_code"] as? Int == 78)
            #expect(none.json?["pending"] as? Int == 1, "the flush document, counts 0 and the queue size")

            var partial = environment(server)
            partial["TWITTER_ACCESS_TOKEN"] = ""
            partial["TWITTER_BEARER_TOKEN"] = "bearer"
            let partialRun = try await run(["flush"], partial)
            #expect(partialRun.status == 78 && partialRun.stderr.contains("TWITTER_ACCESS_TOKEN"), "\(partialRun)")

            let file = folder.path("credentials")
            let mock = server.credentials
            try "TWITTER_CONSUMER_KEY=\(mock.consumerKey)\nTWITTER_CONSUMER_SECRET=\(mock.consumerSecret)\nTWITTER_ACCESS_TOKEN=\(mock.accessToken)\nTWITTER_ACCESS_TOKEN_SECRET=\(mock.accessTokenSecret)\n"
                .write(toFile: file, atomically: true, encoding: .utf8)
            for mode in [0o644, 0o640, 0o604] {
                chmod(file, mode_t(mode))
                let open = try await run(["flush", "--credentials", file], environment(server, credentials: false))
                #expect(open.status == 78 && open.stderr.contains("chmod 600"), "mode \(String(mode, radix: 8)): \(open)")
            }
            let remote = try await run(["flush", "--api-base", "http://api.twitter.com/1.1"], environment(server))
            #expect(remote.status == 78 && remote.stderr.contains("loopback"), "\(remote)")
            let wrongBase = try await run(["pull", id, "--api-base", server.baseURL.replacingOccurrences(of: "/1.1", with: "/9.9")], environment(server))
            #expect(wrongBase.status == 78, "\(wrongBase)")
            #expect(try state() == before, "nothing changed")

            // The 0600 file is used, and it replaces the environment's credentials.
            chmod(file, 0o600)
            var misleading = environment(server)
            misleading["TWITTER_CONSUMER_SECRET"] = "not-this-one"
            let good = try await run(["flush", "--credentials", file], misleading)
            #expect(good.status == 0, "\(good)")
        }
    }

    @Test("the API base: --api-base beats SYNCCTL_API_BASE beats the default")
    func apiBasePrecedence() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1"])
            var env = environment(server)
            env["SYNCCTL_API_BASE"] = "http://127.0.0.1:1/1.1"  // nothing listens there
            #expect(try await run(["pull", id], env).status == 69)
            #expect(try await run(["pull", id, "--api-base", server.baseURL], env).status == 0)
            env["SYNCCTL_API_BASE"] = ""
            // The default is the real API over https: refused here only because no network exists,
            // so just check that the default is what the error names.
            let fallback = try await run(["pull", id, "--deadline", "2"], env)
            #expect(fallback.status == 69 && fallback.stderr.contains("api.twitter.com"), "\(fallback)")
        }
    }

    @Test("no secret appears in any output, error, the database or a running process's argv")
    func noSecrets() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1"])
            let mock = server.credentials
            var outputs: [String] = []
            for env in [environment(server), { var e = environment(server); e["TWITTER_ACCESS_TOKEN_SECRET"] = "wrong-\(mock.accessTokenSecret)"; return e }()] {
                for arguments in [["pull", id], ["remove", id, "1"], ["flush"], ["flush", "--json"], ["status", "--json"], ["log", "--json"], ["outbox", "--json"]] {
                    let result = try await run(arguments, env)
                    outputs += [result.stdout, result.stderr]
                }
            }
            await server.beginOutage()
            let down = try await run(["flush", "--json"], environment(server))
            outputs += [down.stdout, down.stderr]
            try await server.endOutage()
            // argv is what every user of the machine can read (ps, /proc/PID/cmdline): a running
            // watch, given its credentials by file and by environment, must not show them there.
            let file = folder.path("credentials")
            try "TWITTER_CONSUMER_KEY=\(mock.consumerKey)\nTWITTER_CONSUMER_SECRET=\(mock.consumerSecret)\nTWITTER_ACCESS_TOKEN=\(mock.accessToken)\nTWITTER_ACCESS_TOKEN_SECRET=\(mock.accessTokenSecret)\n"
                .write(toFile: file, atomically: true, encoding: .utf8)
            chmod(file, 0o600)
            for (arguments, env) in [(["watch", "--credentials", file], environment(server, credentials: false)), (["watch"], environment(server))] {
                let (process, _, _) = try Syncctl.start(arguments + ["--db", db], environment: env, folder: folder)
                // Until the child has exec'd, /proc shows the parent's command line: poll (bounded).
                var argv = ""
                let limit = ContinuousClock.now + .seconds(20)
                while !argv.contains("watch"), ContinuousClock.now < limit {
                    let raw = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(process.processIdentifier)/cmdline"))) ?? Data()
                    argv = String(decoding: raw.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
                    if !argv.contains("watch") { try await Task.sleep(for: .milliseconds(5)) }
                }
                #expect(argv.contains("watch"), "read the running process's argv")
                outputs.append(argv)
                kill(process.processIdentifier, SIGTERM)
                await process.exited()
            }
            // What keeps secrets out of argv: no option takes one (such flags are refused, 64).
            for flag in ["--consumer-key", "--consumer-secret", "--access-token", "--access-token-secret", "--token", "--password"] {
                let refused = try await run(["flush", flag, "x", "--db", db], environment(server))
                #expect(refused.status == 64, "syncctl flush \(flag) must be refused: \(refused)")
                outputs += [refused.stdout, refused.stderr]
            }
            let database = try Data(contentsOf: URL(fileURLWithPath: db)) + ((try? Data(contentsOf: URL(fileURLWithPath: db + "-wal"))) ?? Data())
            let text = outputs.joined(separator: "\n") + String(decoding: database, as: UTF8.self)
            for secret in [mock.consumerSecret, mock.accessTokenSecret, mock.accessToken, mock.consumerKey] {
                #expect(!text.contains(secret))
            }
        }
    }

    @Test("watch: flushes edits from other processes, ends cleanly on SIGTERM with the lease released")
    func watch() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1", "2"])
            let env = environment(server)
            #expect(try await run(["remove", id, "1"], env).status == 0)
            let (process, out, _) = try Syncctl.start(["watch"], environment: env, folder: folder)
            let clock = ContinuousClock()
            let limit = clock.now + .seconds(30)
            while server.tweetIDs(of: id) != ["2"], clock.now < limit { try await Task.sleep(for: .milliseconds(20)) }
            #expect(server.tweetIDs(of: id) == ["2"])
            // An edit made by another process while it runs.
            #expect(try await run(["remove", id, "2"], env).status == 0)
            while server.tweetIDs(of: id) != [], clock.now < limit { try await Task.sleep(for: .milliseconds(20)) }
            #expect(server.tweetIDs(of: id) == [])
            kill(process.processIdentifier, SIGTERM)
            await process.exited()
            #expect(process.terminationReason == .exit && process.terminationStatus == 0,
                    "\(String(decoding: (try? Data(contentsOf: out)) ?? Data(), as: UTF8.self))")
            #expect(try rows(db, "SELECT count(*) FROM flusher_lease") == [["0"]])
        }
    }
}

@Suite("syncctl mock-server as a process")
struct MockServerProcessTests {
    @Test("prints the contract's JSON line as soon as it listens, serves signed requests, exits 0 on SIGTERM")
    func mockServer() async throws {
        let folder = TemporaryFolder()
        let (process, out, _) = try Syncctl.start(["mock-server", "--json"], environment: [:], folder: folder)
        let clock = ContinuousClock()
        let limit = clock.now + .seconds(30)
        var line = ""
        while clock.now < limit {
            line = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
            if line.contains("\n") { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let document = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(keys(document).isSuperset(of: ["api_base", "consumer_key", "consumer_secret", "access_token", "access_token_secret", "bearer_token"]))
        let base = try #require(document["api_base"] as? String)
        #expect(base.hasPrefix("http://127.0.0.1:") && base.hasSuffix("/1.1"))
        let env = ["SYNCCTL_DB": folder.path("sync.sqlite"), "SYNCCTL_API_BASE": base,
                   "TWITTER_CONSUMER_KEY": document["consumer_key"] as? String ?? "",
                   "TWITTER_CONSUMER_SECRET": document["consumer_secret"] as? String ?? "",
                   "TWITTER_ACCESS_TOKEN": document["access_token"] as? String ?? "",
                   "TWITTER_ACCESS_TOKEN_SECRET": document["access_token_secret"] as? String ?? ""]
        // Signed and accepted (a rejected signature would exit 77); the collection is unknown and
        // this base URL has never answered before: 78.
        let pull = try await Syncctl.run(["pull", "custom-1"], environment: env, folder: folder)
        #expect(pull.status == 78, "\(pull)")
        var wrong = env
        wrong["TWITTER_ACCESS_TOKEN_SECRET"] = "nope"
        #expect(try await Syncctl.run(["pull", "custom-1"], environment: wrong, folder: folder).status == 77)
        kill(process.processIdentifier, SIGTERM)
        await process.exited()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
    }
}
