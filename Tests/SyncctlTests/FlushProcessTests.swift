import CollectionSync
import CollectionsMock
import Foundation
import Testing
import TestSupport

/// `syncctl flush` as a real process against the mock: crashes and concurrent flushers.
@Suite("flush processes: SIGKILL at random moments, one flusher at a time")
struct FlushProcessTests {
    /// 20 trials by default; SYNCCTL_SOAK=1 runs 200.
    static let trials = ProcessInfo.processInfo.environment["SYNCCTL_SOAK"] == "1" ? 200 : 20

    @Test("SIGKILL during flush, then a clean flush: server state exact, nothing lost, failed or stuck in flight")
    func killDuringFlush() async throws {
        try await withMockServer { server in
            server.setLatency(.milliseconds(15))
            let folder = TemporaryFolder()
            var generator = SystemRandomNumberGenerator()
            var killedMidway = 0
            for trial in 0..<Self.trials {
                let id = try server.createCollection(tweetIDs: (1...40).map(String.init))
                let db = folder.path("trial-\(trial).sqlite")
                let env = Syncctl.environment(server, db: db)
                // 20 removes and 20 adds, with an add and a remove coalesced on the way.
                #expect(try await Syncctl.run(["remove", id] + (1...20).map(String.init), environment: env, folder: folder).status == 0)
                #expect(try await Syncctl.run(["add", id] + (101...120).map(String.init), environment: env, folder: folder).status == 0)
                let intended = Set((21...40).map(String.init) + (101...120).map(String.init))

                let (process, _, _) = try Syncctl.start(["flush", "--batch-size", "4", "--concurrency", "2"], environment: env, folder: folder)
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...400, using: &generator)))  // the fault's moment
                kill(process.processIdentifier, SIGKILL)
                await process.exited()
                if process.terminationReason == .uncaughtSignal, Set(server.tweetIDs(of: id) ?? []) != intended { killedMidway += 1 }

                let clean = try await Syncctl.run(["flush", "--json"], environment: env, folder: folder)
                #expect(clean.status == 0, "trial \(trial): \(clean)")
                #expect(Set(server.tweetIDs(of: id) ?? []) == intended, "trial \(trial)")
                let status = try decode(StatusDocument.self, try await Syncctl.run(["status", "--json"], environment: env, folder: folder))
                #expect(status.pending == 0 && status.in_flight == 0 && status.failed == 0, "trial \(trial)")
            }
            print("flush kill trials: \(Self.trials), killed before the server had everything: \(killedMidway)")
        }
    }

    @Test("two flushers on one database: the second reports the lease held (75) and sends nothing")
    func oneFlusherAtATime() async throws {
        try await withMockServer { server in
            // Slow answers keep the first flusher busy (30 x 2 s) however long the second takes to
            // start on a loaded machine; once the second has been refused, answers speed up.
            server.setLatency(.seconds(2))
            let folder = TemporaryFolder()
            let id = try server.createCollection(tweetIDs: (1...30).map(String.init))
            let db = folder.path("sync.sqlite")
            let env = Syncctl.environment(server, db: db)
            #expect(try await Syncctl.run(["remove", id] + (1...30).map(String.init), environment: env, folder: folder).status == 0)
            let (first, _, _) = try Syncctl.start(["flush", "--batch-size", "1", "--concurrency", "1"], environment: env, folder: folder)
            // Wait (bounded) until the first flusher is sending: it then holds the lease.
            let clock = ContinuousClock()
            let limit = clock.now + .seconds(30)
            while server.journal().isEmpty, clock.now < limit {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(!server.journal().isEmpty, "the first flusher never sent a request")
            let second = try await Syncctl.run(["flush", "--json"], environment: env, folder: folder)
            #expect(second.status == 75, "\(second)")
            #expect(second.stderr.contains("lease"))
            server.setLatency(.zero)
            await first.exited()
            #expect(first.terminationStatus == 0)
            #expect(server.tweetIDs(of: id)?.isEmpty == true)
        }
    }
}
