import CollectionsMock
import Foundation
import Testing
import TestSupport

/// What an operator meets: log lines, `watch --json` events, signals, the progress line on a
/// terminal. Real processes against the in-process mock (syncctl.md, "Logs, events and signals").
@Suite("syncctl for operators: logs, events, signals, progress")
struct OperatorTests {
    let folder = TemporaryFolder()
    var db: String { folder.path("sync.sqlite") }

    func environment(_ server: MockCollectionsServer) -> [String: String] { Syncctl.environment(server, db: db) }

    func run(_ arguments: [String], _ env: [String: String]) async throws -> Run {
        try await Syncctl.run(arguments, environment: env, folder: folder)
    }

    func text(_ url: URL) -> String { readText(url) }

    /// Ops as `id state attempts`.
    func outbox() throws -> [[String]] { try rows(db, "SELECT id, state, attempts FROM ops ORDER BY id") }

    // MARK: - Logs

    @Test("every log level, both formats: no secret on stderr; JSON lines parse, one object each with ts, level, message")
    func logLevelsAndSecrets() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1", "2", "3"])
            let mock = server.credentials
            let secrets = [mock.consumerKey, mock.consumerSecret, mock.accessToken, mock.accessTokenSecret]
            var env = environment(server)
            #expect(try await run(["pull", id], env).status == 0)
            for level in ["trace", "debug", "info", "notice", "warning", "error", "critical"] {
                for format in ["text", "json"] {
                    #expect(try await run(["remove", id, "1", "--log-level", level, "--log-format", format], env).status == 0)
                    server.failNext(1, status: 503, code: 130)
                    var outputs = await [try run(["flush", "--wait", "--deadline", "20", "--log-level", level, "--log-format", format], env)]
                    #expect(outputs[0].status == 0, "\(outputs[0])")
                    #expect(try await run(["add", id, "1"], env).status == 0)
                    if level == "trace" {
                        env["TWITTER_ACCESS_TOKEN_SECRET"] = "wrong"
                        outputs.append(try await run(["flush", "--log-level", level, "--log-format", format], env))
                        env["TWITTER_ACCESS_TOKEN_SECRET"] = mock.accessTokenSecret
                        #expect(outputs[1].status == 77)
                    }
                    #expect(try await run(["flush"], env).status == 0)
                    for output in outputs {
                        for secret in secrets { #expect(!output.stderr.contains(secret) && !output.stdout.contains(secret), "\(level) \(format)") }
                        #expect(!output.stderr.contains("oauth_signature") && !output.stderr.contains("Authorization"))
                        guard format == "json" else { continue }
                        for line in output.stderr.split(separator: "\n") {
                            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
                            #expect(isRFC3339(object["ts"]) && object["level"] is String && object["message"] is String, "\(line)")
                        }
                    }
                    // The final error is a log line too, at error level; debug lines show at trace.
                    if format == "json", level == "trace" {
                        #expect(outputs[1].stderr.contains(#""level":"error""#))
                        #expect(outputs[0].stderr.contains(#""message":"sending""#), "debug lines at trace")
                    }
                    if ["error", "critical"].contains(level) {
                        #expect(!outputs[0].stderr.contains("unreachable"), "a warning stays out at \(level)")
                    } else if ["trace", "debug", "info", "notice", "warning"].contains(level) {
                        #expect(outputs[0].stderr.contains("unreachable"), "a warning shows at \(level)")
                    }
                }
            }
        }
    }

    @Test("each change of state is logged once, not once per retry: unreachable, backing off, reachable again")
    func stateChangesOnce() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1", "2"])
            let env = environment(server)
            #expect(try await run(["remove", id, "1", "2"], env).status == 0)
            server.failNext(4, status: 503, code: 130)
            let flush = try await run(["flush", "--wait", "--deadline", "60", "--batch-size", "1", "--concurrency", "1"], env)
            #expect(flush.status == 0, "\(flush)")
            #expect(server.journal().count == 6, "four failures, two successes")
            let lines = flush.stderr.split(separator: "\n")
            #expect(lines.filter { $0.contains("the API is unreachable") }.count == 1, "\(flush.stderr)")
            #expect(lines.filter { $0.contains("back off until") }.count == 1, "\(flush.stderr)")
            #expect(lines.filter { $0.contains("the API is reachable again") }.count == 1, "\(flush.stderr)")
            let unreachable = try #require(lines.first { $0.contains("the API is unreachable") })
            #expect(unreachable.contains("warning") && unreachable.contains("http.status=503"))
            // -q: only the errors.
            #expect(try await run(["add", id, "1"], env).status == 0)
            server.failNext(1, status: 503, code: 130)
            let quiet = try await run(["flush", "-q"], env)
            #expect(quiet.status == 69 && quiet.stderr.split(separator: "\n").count == 1, "\(quiet)")
        }
    }

    @Test("credentials rejected: logged at error once; watch keeps running and says so once, then stops cleanly")
    func authRejectedOnce() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1", "2"])
            var env = environment(server)
            env["TWITTER_ACCESS_TOKEN_SECRET"] = "wrong"
            #expect(try await run(["remove", id, "1"], env).status == 0)
            let (process, out, err) = try Syncctl.start(["watch", "--json"], environment: env, folder: folder)
            try await until("the rejection's event") { text(out).contains("auth_rejected") }
            #expect(process.isRunning, "watch keeps running after a rejection")
            kill(process.processIdentifier, SIGTERM)
            await process.exited()
            #expect(process.terminationStatus == 0)
            let stderr = text(err)
            #expect(stderr.split(separator: "\n").filter { $0.contains("authentication rejected") }.count == 1, "\(stderr)")
            #expect(stderr.contains(" error authentication rejected"))
            let events = text(out).split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(events.compactMap { $0?["event"] as? String } == ["auth_rejected", "stopped"])
            #expect(try outbox() == [["1", "pending", "0"]], "ops kept, attempts not counted")
        }
    }

    // MARK: - watch --json

    @Test("watch --json: one JSON object per line, written when it happens, in the contract's vocabulary, ending with stopped")
    func watchEvents() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1", "2", "3"])
            let env = environment(server)
            #expect(try await run(["pull", id], env).status == 0)
            #expect(try await run(["remove", id, "1"], env).status == 0)
            let (process, out, _) = try Syncctl.start(["watch", "--json"], environment: env, folder: folder)
            // The line reaches the pipe while watch runs: it is flushed at once.
            try await until("the applied event") { text(out).contains(#""event":"applied""#) }
            #expect(process.isRunning)
            var state = server.snapshot()  // another device removes 2 on the server
            state.collections[0].entries.removeAll { $0.tweetID == "2" }
            _ = try server.seed(state)
            #expect(try await run(["remove", id, "2"], env).status == 0)  // already gone on the server: reconciled
            try await until("the reconciled event") { text(out).contains(#""event":"reconciled""#) }
            await server.beginOutage()
            #expect(try await run(["remove", id, "3"], env).status == 0)
            try await until("the unreachable and waiting events") { text(out).contains(#""event":"waiting""#) }
            try await server.endOutage()
            try await until("the op applied after the outage") { server.tweetIDs(of: id) == [] }
            try await until("its event") { text(out).split(separator: "\n").filter { $0.contains(#""event":"applied""#) }.count == 2 }
            kill(process.processIdentifier, SIGINT)
            await process.exited()
            #expect(process.terminationStatus == 0)
            let lines = text(out).split(separator: "\n")
            let events = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], "\($0)") }
            let names = events.compactMap { $0["event"] as? String }
            #expect(events.allSatisfy { isRFC3339($0["at"]) })
            #expect(Set(names).isSubset(of: ["applied", "reconciled", "failed", "waiting", "rate_limited", "unreachable", "auth_rejected", "stopped"]))
            #expect(names.first == "applied" && names.last == "stopped" && names.filter { $0 == "stopped" }.count == 1)
            #expect(names.contains("unreachable") && names.contains("reconciled"))
            let applied = try #require(events.first)
            #expect(applied["collection_id"] as? String == id && applied["tweet_id"] as? String == "1" && applied["op_id"] is Int)
            let stopped = try #require(events.last)
            #expect(stopped["applied"] as? Int == 2 && stopped["reconciled"] as? Int == 1 && stopped["signal"] as? String == "SIGINT")
        }
    }

    @Test("watch prunes the log with prune's defaults when it starts: old events of ops no longer in the outbox go")
    func watchPrunes() async throws {
        try await withMockServer { server in
            let env = environment(server)
            #expect(try await run(["remove", "custom-1", "1"], env).status == 0)
            #expect(try await run(["discard", "1"], env).status == 0)
            // Op 1's two lines, made 40 and 39 days old (stamps keep rising with ids).
            let day: Int64 = 86_400_000
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            try execute(db, "UPDATE log SET hlc = ((\(now) - 40 * \(day) + id) << 16) WHERE op_id = 1")
            #expect(try await run(["remove", "custom-1", "2"], env).status == 0)
            let (process, _, err) = try Syncctl.start(["watch", "-v"], environment: env, folder: folder)
            let db = self.db
            try await until("the prune") { try rows(db, "SELECT count(*) FROM log WHERE op_id = 1") == [["0"]] }
            kill(process.processIdentifier, SIGTERM)
            await process.exited()
            #expect(process.terminationStatus == 0)
            #expect(try rows(db, "SELECT count(*) FROM log WHERE op_id = 2") != [["0"]], "young lines stay")
            #expect(readText(err).contains("pruned the log: 2 events older than 30d"), "\(readText(err))")
        }
    }

    // MARK: - Signals

    @Test("SIGTERM during flush: answers on the wire are committed, the rest go back to pending uncounted, lease released, 75 with the document")
    func flushDrainsOnSignal() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1", "2", "3"])
            let env = environment(server)
            #expect(try await run(["pull", id], env).status == 0)
            #expect(try await run(["remove", id, "1", "2", "3"], env).status == 0)
            server.clearJournal()
            server.setLatency(.seconds(2))
            let (process, out, err) = try Syncctl.start(["flush", "--json", "--batch-size", "1", "--concurrency", "2"], environment: env, folder: folder)
            let pid = process.processIdentifier
            try await until("two requests on the wire") { server.journal().count == 2 } then: { kill(pid, SIGTERM) }
            await process.exited()
            #expect(process.terminationStatus == 75, "\(text(err))")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(text(out).utf8)) as? [String: Any], "\(text(out))")
            #expect(document["applied"] as? Int == 2 && document["pending"] as? Int == 1 && document["sent"] as? Int == 2)
            let error = try #require(document["error"] as? [String: Any])
            #expect(error["exit_code"] as? Int == 75 && (error["message"] as? String)?.contains("SIGTERM") == true)
            #expect(server.journal().count == 2, "no request started after the signal")
            #expect(try outbox() == [["3", "pending", "0"]], "the unsent op is pending, its attempt not counted")
            #expect(try rows(db, "SELECT count(*) FROM flusher_lease") == [["0"]])
        }
    }

    @Test("SIGTERM with an answer that does not come: after 5 s its op goes back to pending uncounted, 75; a second signal exits at once")
    func graceAndSecondSignal() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["1", "2"])
            let env = environment(server)
            #expect(try await run(["remove", id, "1"], env).status == 0)
            server.setBlackhole(true)
            let (process, out, _) = try Syncctl.start(["flush", "--json"], environment: env, folder: folder)
            let pid = process.processIdentifier
            let signalled = Moment()
            try await until("the request on the wire") { server.journal().count == 1 } then: {
                signalled.now()
                kill(pid, SIGTERM)
            }
            await process.exited()
            let waited = ContinuousClock.now - signalled.at!
            #expect(process.terminationStatus == 75)
            #expect(waited >= .seconds(4.5) && waited < .seconds(15), "\(waited)")
            #expect(try outbox() == [["1", "pending", "0"]])
            #expect((try JSONSerialization.jsonObject(with: Data(text(out).utf8)) as? [String: Any])?["pending"] as? Int == 1)

            // Now a second signal: out at once, with the flush document; the op is left in flight.
            let (second, secondOut, secondErr) = try Syncctl.start(["flush", "--json"], environment: env, folder: folder)
            let secondPID = second.processIdentifier
            try await until("the request on the wire") { server.journal().count == 2 } then: { kill(secondPID, SIGTERM) }
            try await until("the first signal's notice") { readText(secondErr).contains("SIGTERM") } then: { kill(secondPID, SIGINT) }
            await second.exited()
            #expect(second.terminationStatus == 75)
            #expect(readText(secondErr).contains("SIGINT again: stopped at once"), "out before the 5 s grace: \(readText(secondErr))")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(text(secondOut).utf8)) as? [String: Any])
            #expect((document["error"] as? [String: Any])?["exit_code"] as? Int == 75)
            server.setBlackhole(false)
            #expect(try await run(["flush"], env).status == 0, "the next flush recovers the op left in flight")
            #expect(server.tweetIDs(of: id) == ["2"])
        }
    }

    @Test("SIGTERM during a pull: the page on the wire arrives, no other is fetched, nothing changes, 75")
    func pullStopsOnSignal() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: (1...450).map(String.init))
            let env = environment(server)
            #expect(try await run(["remove", id, "7"], env).status == 0)
            // What a pull would change (the replica's clock ticks when it starts, as any write does).
            func view() throws -> [[[String]]] {
                try ["SELECT * FROM entries", "SELECT * FROM ops", "SELECT * FROM log", "SELECT * FROM collections"].map { try rows(db, $0) }
            }
            let before = try view()
            server.setLatency(.seconds(1))
            let (process, out, _) = try Syncctl.start(["pull", id, "--json"], environment: env, folder: folder)
            let pid = process.processIdentifier
            try await until("the first page on the wire") { server.journal().count == 1 } then: { kill(pid, SIGTERM) }
            await process.exited()
            #expect(process.terminationStatus == 75)
            #expect(server.journal().count == 1, "no page after the signal")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(text(out).utf8)) as? [String: Any], "\(text(out))")
            #expect(document["collection_id"] as? String == id && (document["error"] as? [String: Any])?["exit_code"] as? Int == 75)
            #expect(try view() == before, "an interrupted pull changes nothing")
        }
    }

    // MARK: - The progress line

    @Test("on a terminal: the progress line is drawn at most 10 times a second, erased before every other line, never glued to the summary; pull shows pages")
    func progressOnTerminal() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: (1...450).map(String.init))
            let env = environment(server)
            #expect(try await run(["add", id] + (1000...1599).map(String.init), env).status == 0)
            server.setLatency(.milliseconds(60))
            let started = ContinuousClock.now
            let flush = try await Terminal.run(["flush", "--batch-size", "20", "--concurrency", "1"], environment: env, folder: folder)
            let elapsed = ContinuousClock.now - started
            #expect(flush.status == 0, "\(flush.output)")
            let erase = "\r\u{1B}[K"
            let draws = flush.output.components(separatedBy: erase).dropFirst().filter { !$0.isEmpty && !$0.hasPrefix("flush:") }
            #expect(draws.count >= 2, "a flush of 30 requests over 2 s draws its line: \(flush.output.debugDescription.prefix(500))")
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            #expect(Double(draws.count) <= seconds * 10 + 2, "at most 10 draws a second: \(draws.count) in \(seconds) s")
            #expect(flush.output.contains(erase + "flush: sent 600"), "the line is erased right before the summary")
            #expect(!flush.output.contains("requests 30flush"), "never glued")
            for draw in draws { #expect(draw.hasPrefix("applied "), "every draw starts on an erased line: \(draw.debugDescription)") }

            let pull = try await Terminal.run(["pull", id], environment: env, folder: folder)
            #expect(pull.status == 0)
            #expect(pull.output.contains("pages"), "\(pull.output.debugDescription)")
            #expect(pull.output.contains(erase + "\(id): 1050 entries"))

            // -q, a pipe and --log-format json draw nothing.
            for extra in [["-q"], ["--log-format", "json"]] {
                let quiet = try await Terminal.run(["pull", id] + extra, environment: env, folder: folder)
                #expect(!quiet.output.contains("page"), "\(extra)")
            }
            let piped = try await run(["pull", id], env)
            #expect(!piped.stderr.contains("\u{1B}"))
        }
    }
}

/// When something happened on another thread (set there once, read after joining it).
final class Moment: @unchecked Sendable {
    private(set) var at: ContinuousClock.Instant?
    func now() { at = .now }
}

func readText(_ url: URL) -> String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }

/// Runs syncctl with stdout and stderr on a pseudo-terminal, as a person at a terminal sees it.
enum Terminal {
    struct Result {
        var status: Int32
        /// Everything written to the terminal, in order (the terminal turns "\n" into "\r\n").
        var output: String
    }

    static func run(_ arguments: [String], environment: [String: String], folder: TemporaryFolder) async throws -> Result {
        try await onThread { try runBlocking(arguments, environment: environment, folder: folder) }
    }

    private static func runBlocking(_ arguments: [String], environment: [String: String], folder: TemporaryFolder) throws -> Result {
        // glibc's pseudo-terminal calls are not in Swift's Glibc module (they need _XOPEN_SOURCE).
        func function<T>(_ name: String, as type: T.Type) throws -> T {
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { throw POSIXError(.ENOSYS) }
            return unsafeBitCast(symbol, to: type)
        }
        let openpt = try function("posix_openpt", as: (@convention(c) (Int32) -> Int32).self)
        let grantpt = try function("grantpt", as: (@convention(c) (Int32) -> Int32).self)
        let unlockpt = try function("unlockpt", as: (@convention(c) (Int32) -> Int32).self)
        let ptsname = try function("ptsname", as: (@convention(c) (Int32) -> UnsafeMutablePointer<CChar>?).self)
        let master = openpt(O_RDWR | O_NOCTTY)
        guard master >= 0, grantpt(master) == 0, unlockpt(master) == 0, let name = ptsname(master) else {
            throw POSIXError(.ENOTTY)
        }
        let slave = open(String(cString: name), O_RDWR | O_NOCTTY)
        guard slave >= 0 else { throw POSIXError(.ENOTTY) }
        var settings = termios()
        tcgetattr(slave, &settings)
        settings.c_oflag &= ~tcflag_t(OPOST)  // raw output: bytes as written
        tcsetattr(slave, TCSANOW, &settings)

        let process = Process()
        process.executableURL = Syncctl.binary
        process.arguments = arguments
        var env = ["PATH": "/usr/bin:/bin", "HOME": folder.path("home"), "LANG": "C.UTF-8", "TERM": "xterm"]
        env.merge(environment) { $1 }
        process.environment = env
        let terminal = FileHandle(fileDescriptor: slave, closeOnDealloc: false)
        process.standardOutput = terminal
        process.standardError = terminal
        process.standardInput = FileHandle.nullDevice
        try process.run()
        close(slave)
        var output = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(master, &buffer, buffer.count)
            if count <= 0 { break }  // EIO once the child has exited and the terminal is closed
            output += buffer[0..<count]
        }
        close(master)
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self))
    }
}
