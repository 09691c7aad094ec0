import CollectionSync
import Foundation
import Testing
import TestSupport

@Suite("syncctl remove/add: ids from standard input and files, run as a real binary")
struct BulkEditTests {
    let folder = TemporaryFolder()
    var db: String { folder.path("sync.sqlite") }

    func syncctl(_ arguments: [String], stdin: String? = nil) async throws -> Run {
        try await Syncctl.run(arguments, db: db, stdin: stdin.map { Data($0.utf8) }, folder: folder)
    }

    func file(_ name: String, _ text: String) throws -> String {
        let path = folder.path(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The tweet ids of the waiting ops, oldest first.
    func outbox() throws -> [String] {
        try rows(db, "SELECT tweet_id FROM ops ORDER BY id").map { $0[0] }
    }

    @Test("- reads ids from stdin separated by spaces, tabs, newlines and CRLF; a repeated id counts once")
    func standardInput() async throws {
        let removed = try await syncctl(["remove", "--json", "custom-1", "-"], stdin: "1 2\t3\n4\r\n5\u{0B}6\u{0C}7\n\n  \t 8\r\n3")
        #expect(removed.status == 0, "\(removed)")
        let queued = try decode(QueuedDocument.self, removed).queued
        #expect(queued.map(\.tweet_id) == ["1", "2", "3", "4", "5", "6", "7", "8"])
        #expect(queued.map(\.id) == Array(1...8) && Set(queued.map(\.op)) == ["remove"])
        #expect(Set(queued.map(\.collection_id)) == ["custom-1"])
        // add takes the same sources; the text output is a line per op.
        let added = try await syncctl(["add", "custom-1", "-"], stdin: "9\n10\n")
        #expect(added.status == 0, "\(added)")
        #expect(added.stdout == "queued op 9: add 9 (custom-1)\nqueued op 10: add 10 (custom-1)\n")
    }

    @Test("ids arriving through a pipe in small pieces, split anywhere, are read whole")
    func pipedInPieces() async throws {
        let pipe = Pipe()
        let (process, out, _) = try Syncctl.start(["remove", "--json", "custom-1", "-"], environment: ["SYNCCTL_DB": db],
                                                  stdin: pipe, folder: folder)
        let text = (1...3_000).map { String(1_000_000_000_000_000 + $0) }.joined(separator: "\n")
        // Writes of 7 bytes: most ids straddle two reads.
        let bytes = Array(text.utf8)
        for start in stride(from: 0, to: bytes.count, by: 7) {
            pipe.fileHandleForWriting.write(Data(bytes[start..<min(start + 7, bytes.count)]))
        }
        try pipe.fileHandleForWriting.close()
        await process.exited()
        #expect(process.terminationStatus == 0)
        let run = Run(status: 0, stdout: try String(contentsOf: out, encoding: .utf8), stderr: "")
        #expect(try decode(QueuedDocument.self, run).queued.map(\.tweet_id) == text.split(separator: "\n").map(String.init))
    }

    @Test("--ids-from reads a file, before or after the collection, and as --ids-from=PATH")
    func idsFromFile() async throws {
        let path = try file("ids.txt", "11\r\n12\r\n13\r\n")
        let first = try await syncctl(["remove", "custom-1", "--ids-from", path, "--json"])
        #expect(first.status == 0, "\(first)")
        #expect(try decode(QueuedDocument.self, first).queued.map(\.tweet_id) == ["11", "12", "13"])
        let second = try await syncctl(["add", "--ids-from", path, "custom-2"])
        #expect(second.status == 0, "\(second)")
        let third = try await syncctl(["add", "--ids-from=\(path)", "custom-3"])
        #expect(third.status == 0, "\(third)")
        #expect(try rows(db, "SELECT collection_id, count(*) FROM ops GROUP BY 1 ORDER BY 1")
                == [["custom-1", "3"], ["custom-2", "3"], ["custom-3", "3"]])
        // --ids-from - is standard input.
        let dash = try await syncctl(["remove", "custom-4", "--ids-from", "-"], stdin: "14")
        #expect(dash.status == 0, "\(dash)")
    }

    /// Refused calls, each with what its message must say; none may change the database.
    static let refused: [(arguments: [String], stdin: String?, message: String)] = [
        (["remove", "custom-1", "-"], "", "no tweet ids on standard input"),
        (["remove", "custom-1", "-"], " \n\t\r\n", "no tweet ids on standard input"),
        (["add", "custom-1", "--ids-from", "@empty"], nil, "no tweet ids in"),
        (["remove", "custom-1", "--ids-from", "@missing"], nil, "No such file"),
        (["remove", "custom-1", "--ids-from", "@folder"], nil, "cannot read --ids-from"),
        (["remove", "custom-1", "-"], "5\n6\n7 x 8\n", "line 3, id 4: invalid tweet id \"x\""),
        (["add", "custom-1", "--ids-from", "@bad"], nil, "line 2, id 3: invalid tweet id \"018\""),
        (["remove", "custom-1", "-"], "5 " + String(repeating: "9", count: 100_000), "line 1, id 2: invalid tweet id \"99999"),
        (["remove", "custom-1", "5", "x"], nil, "tweet id 2 of 2: invalid tweet id \"x\""),
        (["remove", "custom-1", "5", "-"], "6", "one way"),
        (["remove", "custom-1", "-", "-"], "6", "one way"),
        (["remove", "custom-1", "-", "--ids-from", "@ids"], "6", "one way"),
        (["remove", "custom-1", "7", "--ids-from", "@ids"], nil, "one way"),
        (["remove", "custom-1", "--ids-from", "@ids", "--ids-from", "@ids"], nil, "one way"),
        (["remove", "custom-1"], nil, "no tweet ids"),
        (["remove", "custom-x", "-"], "5", "invalid collection id"),
        (["remove", "custom-1", "--ids-from"], nil, "--ids-from"),
    ]

    @Test("no ids, an unreadable file, a bad id anywhere or mixed sources: 64, a clear message, nothing queued",
          arguments: 0..<refused.count)
    func refusedCall(_ index: Int) async throws {
        let (arguments, stdin, message) = Self.refused[index]
        let paths = ["@empty": try file("empty.txt", ""), "@missing": folder.path("missing.txt"), "@folder": folder.url.path,
                     "@bad": try file("bad.txt", "5 6\n018\n7\n"), "@ids": try file("ids.txt", "8\n")]
        let resolved = arguments.map { paths[$0] ?? $0 }
        _ = try await syncctl(["add", "custom-1", "1", "2"])
        let before = try snapshot(db)
        let run = try await syncctl(resolved, stdin: stdin)
        #expect(run.status == 64, "\(run)")
        #expect(run.stderr.contains(message), "\(run)")
        #expect(run.stdout.isEmpty)
        #expect(try snapshot(db) == before)
        #expect(try outbox() == ["1", "2"])
        let json = try await syncctl(resolved + ["--json"], stdin: stdin)
        #expect(json.status == 64, "\(json)")
        if arguments.last != "--ids-from" {  // there --json is taken as the path
            #expect(try decode(ErrorDocument.self, json).error.message.contains(message), "\(json)")
        }
        #expect(try snapshot(db) == before)
    }

    @Test("a bad id refuses the call before the database is created")
    func refusedBeforeOpening() async throws {
        let run = try await syncctl(["remove", "custom-1", "-"], stdin: "1\n2\nthree\n")
        #expect(run.status == 64 && run.stderr.contains("line 3"), "\(run)")
        #expect(!FileManager.default.fileExists(atPath: db))
    }

    @Test("100,000 ids from stdin are queued by one call in one transaction, printed as {\"queued\":[...]}")
    func hundredThousand() async throws {
        let count = 100_000
        _ = try await syncctl(["add", "custom-1", "1"])  // a key the call replaces, and a collection it already knows
        let ids = [1] + (2...count).map { 1_400_000_000_000_000_000 + $0 }
        let run = try await syncctl(["remove", "--json", "custom-1", "-"], stdin: ids.map(String.init).joined(separator: "\n") + "\n")
        #expect(run.status == 0, "exit \(run.status): \(run.stderr)")
        let queued = try decode(QueuedDocument.self, run).queued
        #expect(queued.count == count)
        #expect(queued.map(\.tweet_id) == ids.map(String.init))
        #expect(queued.map(\.id) == Array(2...count + 1))
        #expect(queued.allSatisfy { $0.op == "remove" && $0.collection_id == "custom-1" })
        #expect(try rows(db, "SELECT count(*) FROM ops") == [["\(count)"]])  // the add was replaced
        // One transaction: a transaction stamps its ops with the wall time it began at, so a
        // call split into several would show more than one created_at over 100,000 rows.
        #expect(try rows(db, "SELECT count(DISTINCT created_at) FROM ops") == [["1"]])
        #expect(try rows(db, "SELECT count(*) FROM log WHERE event = 'local_write'") == [["\(count + 1)"]])
        #expect(try rows(db, "SELECT count(*) FROM entries WHERE present = 0") == [["\(count)"]])
    }
}
