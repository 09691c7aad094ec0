import Foundation
import Synchronization
import Testing
import TestSupport

@testable import CollectionSync

@Suite("DatabaseQueue: writes on the caller's thread or committed together")
struct DatabaseQueueTests {
    private struct Refused: Error {}

    /// What each write's caller was told (a class: closures share it by reference).
    private final class Told: Sendable {
        let outcomes = Mutex<[Int: String]>([:])
        func record(_ key: Int, _ outcome: Result<Void, any Error>) {
            outcomes.withLock { $0[key] = (try? outcome.get()) != nil ? "committed" : "failed" }
        }
        var all: [Int: String] { outcomes.withLock { $0 } }
    }

    /// A queue on a fresh database with a table `t` (`table` creates it); the folder lives as long as it.
    private struct Scratch {
        let folder = TemporaryFolder()
        let path: String
        let queue: DatabaseQueue

        init(busyTimeoutMillis: Int32 = 1000, table: String = "CREATE TABLE t (x INTEGER)") throws {
            path = folder.path("sync.sqlite")
            queue = try DatabaseQueue(path: path, busyTimeoutMillis: busyTimeoutMillis)
            try execute(path, table)
        }
    }

    /// A write for `commitTogether` that inserts `value` into `t` (and throws after it when
    /// `fails`), recording what its caller was told.
    private static func write(_ value: Int, fails: Bool = false, told: Told) -> WaitingWrite {
        WaitingWrite(
            run: { db in
                try db.run("INSERT INTO t (x) VALUES (?)", .integer(Int64(value)))
                if fails { throw Refused() }
            },
            finish: { told.record(value, $0) })
    }

    @Test("writes committed together: one that throws is rolled back alone, every caller hears its own outcome")
    func oneFailureRollsBackAlone() throws {
        let scratch = try Scratch()
        let told = Told()
        let writes = (1...5).map { Self.write($0, fails: $0 == 3, told: told) }
        let rest = scratch.queue.commitTogether(writes[...])
        #expect(rest.isEmpty)
        #expect(told.all == [1: "committed", 2: "committed", 3: "failed", 4: "committed", 5: "committed"])
        #expect(try rows(scratch.path, "SELECT x FROM t ORDER BY x") == [["1"], ["2"], ["4"], ["5"]])
    }

    @Test("a statement error that ends the transaction fails every write in it; the later ones go on")
    func transactionLost() throws {
        let scratch = try Scratch()
        let told = Told()
        // A ROLLBACK inside a body ends the shared transaction, as SQLite does after a full disk.
        let ender = WaitingWrite(
            run: { db in
                try db.execute("ROLLBACK")
                throw Refused()
            },
            finish: { told.record(0, $0) })
        let writes = [Self.write(1, told: told), ender, Self.write(2, told: told)]
        let rest = scratch.queue.commitTogether(writes[...])
        #expect(rest.count == 1)
        #expect(told.all == [1: "failed", 0: "failed"], "the write before the loss was lost with it")
        #expect(scratch.queue.commitTogether(rest).isEmpty)
        #expect(told.all[2] == "committed")
        #expect(try rows(scratch.path, "SELECT x FROM t ORDER BY x") == [["2"]])
    }

    @Test("many concurrent writers: every write commits exactly once and returns its own result")
    func concurrentWriters() async throws {
        let scratch = try Scratch(busyTimeoutMillis: 5000, table: "CREATE TABLE t (x INTEGER PRIMARY KEY)")
        let queue = scratch.queue
        let writers = 8, perWriter = 150
        let returned = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var ids: [Int64] = []
                    for index in 0..<perWriter {
                        let value = Int64(writer * perWriter + index)
                        let id = try await queue.write { db in
                            try db.run("INSERT INTO t (x) VALUES (?)", .integer(value))
                            return db.lastInsertRowID
                        }
                        #expect(id == value, "a write got another write's result")
                        ids.append(id)
                    }
                    return ids
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(returned.sorted() == (0..<Int64(writers * perWriter)).map { $0 })
        #expect(try rows(scratch.path, "SELECT count(*) FROM t") == [["\(writers * perWriter)"]])
    }
}
