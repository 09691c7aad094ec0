import CollectionsMock
import Foundation
import Testing
import TestSupport

/// libcollectionsync.so from outside Swift: C programs built with the system compiler from the
/// header alone, run as separate processes.
@Suite("The C interface, from C", .timeLimit(.minutes(1)))
struct CInterfaceTests {
    let folder = TemporaryFolder()
    static let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let include = here.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/CCollectionSync/include").path

    /// The system's C and C++ compilers, else the Swift toolchain's clang (a machine with only the
    /// toolchain has it); python3 for the ctypes example.
    static let cc = firstInPath(["cc", "gcc", "clang"]) ?? "cc"
    static let cxx = firstInPath(["c++", "g++", "clang++"]) ?? "c++"
    static let hasPython = firstInPath(["python3"]) != nil

    static func firstInPath(_ names: [String]) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return names.first { name in
            path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
        }
    }

    /// The folder of the built library (the build folder the tests run from).
    static let library: URL? = {
        var folder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<3 {
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent("libcollectionsync.so").path) { return folder }
            folder = folder.deletingLastPathComponent()
        }
        return nil
    }()

    @Test("store.c: edits, reads, retry, discard, prune, and every kind of bad input, from C")
    func storeFromC() async throws {
        let program = try await compile("store")
        let ran = try await run(program, [folder.path("app.sqlite")])
        #expect(ran.status == 0 && ran.output == "ok\n", "\(ran.output)")
    }

    @Test("sync.c: observation, events, pull, a flush through an outage, the watch, from C, against the mock")
    func syncFromC() async throws {
        let program = try await compile("sync", threads: true)
        // A port where nothing listens: bound, then closed.
        let down = try await withMockServer { $0.baseURL }
        var configuration = MockConfiguration()
        configuration.adminPort = 0   // the admin routes on a port that stays up during an outage
        try await withMockServer(configuration: configuration) { server in
            let id = try server.createCollection(tweetIDs: ["101", "102", "103"])
            let ran = try await run(program, [folder.path("app.sqlite"), id, down, server.adminURL], environment: Self.environment(server))
            #expect(ran.status == 0 && ran.output == "ok\n", "\(ran.output)")
            #expect(Set(server.tweetIDs(of: id) ?? []) == ["101", "104"])
        }
    }

    @Test("collections.c: collections made, changed and destroyed offline, bad input, then created, bound and destroyed against the mock")
    func collectionsFromC() async throws {
        let program = try await compile("collections", threads: true)
        try await withMockServer { server in
            let ran = try await run(program, [folder.path("offline.sqlite"), folder.path("app.sqlite")], environment: Self.environment(server))
            #expect(ran.status == 0 && ran.output == "ok\n", "\(ran.output)")
            // On the server: the renamed collection with its three entries; "Scratch" destroyed; nothing of the offline store.
            let collections = server.snapshot().collections
            #expect(collections.map(\.name) == ["Trip photos"], "\(collections)")
            let trip = try #require(collections.first)
            #expect(trip.description == "Photos of the trip" && trip.url == "https://example.com/trip" && trip.timelineOrder == .tweetChron)
            #expect(Set(trip.entries.map(\.tweetID)) == ["201", "202", "203"])
        }
    }

    @Test("example.c, the README's: edit offline, read the view, flush with syncctl's environment")
    func exampleInC() async throws {
        let program = try await compile("example")
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["101", "102"])
            let ran = try await run(program, [folder.path("app.sqlite"), id], environment: Self.environment(server))
            #expect(ran.status == 0, "\(ran.output)")
            #expect(ran.output.hasPrefix(#"{"collection_id":"\#(id)","entries":[]}"#), "\(ran.output)")
            #expect(ran.output.contains(#""applied":1,"already_applied":0"#), "\(ran.output)")
            #expect(server.tweetIDs(of: id) == ["101"])
        }
    }

    @Test("the README shows example.c and example.py as they are")
    func readmeExamples() throws {
        let readme = try String(contentsOf: Self.here.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("README.md"), encoding: .utf8)
        for file in ["example.c", "example.py"] {
            let text = try String(contentsOf: Self.here.appendingPathComponent(file), encoding: .utf8)
            #expect(readme.contains(text), "README.md does not show \(file) as it is")
        }
    }

    /// syncctl's environment for the mock: its base URL and test user's credentials.
    static func environment(_ server: MockCollectionsServer) -> [String: String] {
        let credentials = server.credentials
        return ["SYNCCTL_API_BASE": server.baseURL, "TWITTER_CONSUMER_KEY": credentials.consumerKey,
                "TWITTER_CONSUMER_SECRET": credentials.consumerSecret, "TWITTER_ACCESS_TOKEN": credentials.accessToken,
                "TWITTER_ACCESS_TOKEN_SECRET": credentials.accessTokenSecret]
    }

    @Test("example.py: the same from Python's standard library (ctypes)", .enabled(if: hasPython, "python3 is not installed"))
    func fromPython() async throws {
        let library = try #require(Self.library, "libcollectionsync.so is built by `swift build` (the product collectionsync)")
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["101", "102", "103"])
            let ran = try await run("/usr/bin/env", ["python3", Self.here.appendingPathComponent("example.py").path,
                                                     folder.path("app.sqlite"), id],
                                    environment: Self.environment(server).merging(["LD_LIBRARY_PATH": library.path]) { $1 })
            #expect(ran.status == 0, "\(ran.output)")
            #expect(ran.output == "queued ['102']\nview ['103', '101']\nflush 1 applied\n", "\(ran.output)")
            #expect(Set(server.tweetIDs(of: id) ?? []) == ["101", "103"])
        }
    }

    @Test("threads.c: four writers, a reader, an opener and an observer on one store at once")
    func threadsFromC() async throws {
        let program = try await compile("threads", threads: true)
        let ran = try await run(program, [folder.path("app.sqlite")])
        #expect(ran.status == 0 && ran.output == "ok\n", "\(ran.output)")
    }

    @Test("the header is C99 and C++ with every warning as an error")
    func header() async throws {
        let cxx = try await run("/usr/bin/env", [Self.cxx, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only",
                                                 "-I", Self.include, Self.here.appendingPathComponent("header.cpp").path])
        #expect(cxx.status == 0, "\(cxx.output)")
    }

    /// Builds Tests/CInterfaceTests/NAME.c with the system's C compiler against the header and
    /// the built library, every warning an error; returns the program's path.
    private func compile(_ name: String, threads: Bool = false) async throws -> String {
        let library = try #require(Self.library, "libcollectionsync.so is built by `swift build` (the product collectionsync)")
        let program = folder.path(name)
        let compiled = try await run("/usr/bin/env", [Self.cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
            + (threads ? ["-pthread", "-D_POSIX_C_SOURCE=200809L"] : [])
            + ["-I", Self.include, Self.here.appendingPathComponent("\(name).c").path,
               "-L", library.path, "-lcollectionsync", "-Wl,-rpath," + library.path, "-o", program])
        #expect(compiled.status == 0, "\(compiled.output)")
        return program
    }

    /// Runs a program to its end in the test's folder; its status and its output (stdout, stderr).
    private func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws
        -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": folder.path("home")].merging(environment) { $1 }
        process.currentDirectoryURL = folder.url
        let output = folder.url.appendingPathComponent("output-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            process.terminationHandler = { _ in continuation.resume() }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
        try handle.close()
        return (process.terminationStatus, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
    }
}
