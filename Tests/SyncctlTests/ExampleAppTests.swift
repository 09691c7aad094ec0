import CollectionsMock
import Foundation
import Testing
import TestSupport

/// The example app (Sources/reading-list), run as its user runs it: a live view of a collection
/// while syncctl, in other processes, pulls, edits and flushes against the mock.
@Suite("Example app: reading-list", .timeLimit(.minutes(1)))
struct ExampleAppTests {
    let folder = TemporaryFolder()
    var db: String { folder.path("sync.sqlite") }

    @Test("it shows every change syncctl makes, in order, each once, and the server ends with the edit")
    func liveView() async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["101", "102", "103"])
            let env = Syncctl.environment(server, db: db)
            let (app, out, _) = try Syncctl.start([db, id], environment: [:], folder: folder, executable: Syncctl.built("reading-list"))
            defer { if app.isRunning { app.terminate() } }
            @Sendable func lines() -> [String] { readText(out).split(separator: "\n").map(String.init) }
            func shows(_ line: String) async throws {
                try await until("the app to show \(line)") { lines().last == line }
            }
            try await shows("\(id) ·  · 0 waiting · 0 failed")
            for (arguments, line) in [
                (["pull", id], "\(id) · 103 102 101 · 0 waiting · 0 failed"),
                (["remove", id, "102"], "\(id) · 103 101 · 1 waiting · 0 failed"),
                (["add", id, "104"], "\(id) · 104+ 103 101 · 2 waiting · 0 failed"),
                (["flush"], "\(id) · 104 103 101 · 0 waiting · 0 failed"),
            ] {
                let run = try await Syncctl.run(arguments, environment: env, folder: folder)
                #expect(run.status == 0, "\(arguments): \(run)")
                try await shows(line)
            }
            #expect(Set(server.tweetIDs(of: id) ?? []) == ["101", "103", "104"])
            let shown = lines()
            #expect(zip(shown, shown.dropFirst()).allSatisfy { $0 != $1 }, "no value twice in a row: \(shown)")
            app.terminate()
            await app.exited()
        }
    }

    @Test("bad arguments: a usage error, exit 64, no database made")
    func usage() async throws {
        for arguments in [[String](), [db], [db, "not-a-collection"]] {
            let (app, _, err) = try Syncctl.start(arguments, environment: [:], folder: folder, executable: Syncctl.built("reading-list"))
            await app.exited()
            #expect(app.terminationStatus == 64 && readText(err).hasPrefix("reading-list: "), "\(arguments)")
        }
        #expect(!FileManager.default.fileExists(atPath: db))
    }
}
