import CollectionsMock
import Foundation
import Testing
import TestSupport

/// What one run of the built `syncctl` binary did.
struct Run: CustomStringConvertible {
    let status: Int32
    let stdout: String
    let stderr: String

    /// stdout parsed as one JSON object (fails the caller's `#require` when it is not).
    var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any]
    }

    var description: String { "exit \(status)\nstdout: \(stdout.prefix(2_000))\nstderr: \(stderr.prefix(2_000))" }
}

/// Runs the `syncctl` built next to this test bundle, in a clean environment.
enum Syncctl {
    static let binary = built("syncctl")

    /// An executable of this package, built beside the tests.
    static func built(_ name: String) -> URL {
        let tests = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var folder = tests.deletingLastPathComponent()
        // On Linux the runner is `<build>/debug/<package>PackageTests.xctest`; the binary is beside it.
        for _ in 0..<3 where !FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent(name).path) {
            folder = folder.deletingLastPathComponent()
        }
        return folder.appendingPathComponent(name)
    }

    /// A started child process, its output going to files in `folder`; its standard input is
    /// `stdin` (a `FileHandle` or a `Pipe`), else empty; `onExit` is called when it ends (set
    /// before it starts, so that no exit is missed).
    static func start(_ arguments: [String], environment: [String: String], stdin: Any? = nil, folder: TemporaryFolder,
                      executable: URL = binary, onExit: (@Sendable (Process) -> Void)? = nil) throws -> (Process, URL, URL) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = ["PATH": "/usr/bin:/bin", "HOME": folder.path("home"), "LANG": "C.UTF-8"]
        env.merge(environment) { $1 }
        process.environment = env
        let id = UUID().uuidString
        let out = folder.url.appendingPathComponent("out-\(id)")
        let err = folder.url.appendingPathComponent("err-\(id)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = stdin ?? FileHandle.nullDevice
        process.terminationHandler = onExit
        try process.run()
        return (process, out, err)
    }

    /// The environment of a syncctl run against `server` on the database `db`: its base URL
    /// and, unless `credentials` is false, its test user's OAuth 1.0a credentials.
    static func environment(_ server: MockCollectionsServer, db: String, credentials: Bool = true) -> [String: String] {
        var env = ["SYNCCTL_DB": db, "SYNCCTL_API_BASE": server.baseURL]
        if credentials {
            let mock = server.credentials
            env["TWITTER_CONSUMER_KEY"] = mock.consumerKey
            env["TWITTER_CONSUMER_SECRET"] = mock.consumerSecret
            env["TWITTER_ACCESS_TOKEN"] = mock.accessToken
            env["TWITTER_ACCESS_TOKEN_SECRET"] = mock.accessTokenSecret
        }
        return env
    }

    /// Runs to completion; `stdin` is written to a file that becomes the child's standard input.
    ///
    /// It awaits the exit instead of blocking a thread: the test runner's pool has one thread per
    /// core, and tests that block them all starve the others (their timers, their deadlines and
    /// the in-process servers' clients) while processes run.
    static func run(_ arguments: [String], db: String? = nil, environment: [String: String] = [:], stdin: Data? = nil,
                    folder: TemporaryFolder) async throws -> Run {
        var env = environment
        if let db { env["SYNCCTL_DB"] = db }
        let input = stdin.map { _ in folder.url.appendingPathComponent("in-\(UUID().uuidString)") }
        if let input, let stdin { try stdin.write(to: input) }
        defer { if let input { try? FileManager.default.removeItem(at: input) } }
        let exited = AsyncStream<Int32>.makeStream(of: Int32.self, bufferingPolicy: .bufferingNewest(1))
        let (_, out, err) = try start(arguments, environment: env, stdin: try input.map { try FileHandle(forReadingFrom: $0) },
                                      folder: folder) { process in
            exited.continuation.yield(process.terminationStatus)
            exited.continuation.finish()
        }
        var status: Int32 = -1
        for await code in exited.stream { status = code }
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        return Run(status: status,
                   stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                   stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }
}

extension Process {
    /// Waits for the process's exit on a thread of its own, not on the test pool's.
    func exited() async {
        let process = self
        _ = try? await onThread { process.waitUntilExit() }
    }
}

/// Waits (bounded) until `condition` holds, polling every few milliseconds on a thread of its
/// own: the concurrency pool's few threads are often blocked by other tests' processes, and a
/// poll scheduled there could wake seconds late and miss a moment a test needs (a request on the
/// wire before its answer).
///
/// `then` runs on that thread as soon as the condition holds (a signal must reach a process
/// while the moment lasts, not when the test's task gets a thread again).
func until(_ what: String, seconds: Int = 30, _ condition: @escaping @Sendable () throws -> Bool,
           then action: @escaping @Sendable () -> Void = {}) async throws {
    let met = try await onThread {
        let limit = ContinuousClock.now + .seconds(seconds)
        while try !condition() {
            guard ContinuousClock.now < limit else { return false }
            usleep(2_000)
        }
        action()
        return true
    }
    if !met { Issue.record("timed out waiting for \(what)") }
}

/// Runs `body` on a thread of its own, off the concurrency pool (for blocking waits).
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Whether `value` is an RFC 3339 UTC time string.
func isRFC3339(_ value: Any?) -> Bool {
    guard let text = value as? String else { return false }
    return text.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/) != nil
}

/// Decodes `run`'s stdout as `T`, whose property types are the contract's (ids as strings, counts
/// as integers): a wrong type fails the decode.
func decode<T: Decodable>(_ type: T.Type, _ run: Run) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(run.stdout.utf8))
}

/// The keys of a JSON object, so that keys whose value is null are seen to be present.
func keys(_ object: Any?) -> Set<String> {
    Set((object as? [String: Any])?.keys.map { $0 } ?? [])
}
