import ArgumentParser
import Foundation
import Logging
import PropertyBased
@testable import syncctl
import Testing
import TestSupport

/// Every command's option parsing against random arguments: a command, or a usage error (64) with
/// a message; never a trap, whatever the numbers (a `--deadline 1e30` once trapped converting to
/// milliseconds). Parsing includes validation, and what the commands derive from the values (the
/// deadline's time limit, the log settings) is computed too.
@Suite("Fuzzing: option parsing of every command")
struct OptionFuzzTests {
    static let commands = ["remove", "add", "entries", "status", "outbox", "log", "retry", "discard", "pull", "flush",
                           "watch", "mock-server", "demo"]
    static let options = ["--deadline", "--batch-size", "--concurrency", "--limit", "--port", "--admin-port", "--host",
                          "--db", "--api-base", "--credentials", "--log-level", "--log-format", "--json", "--wait",
                          "--failed", "--all", "--conflicts", "-v", "-vv", "-q", "--quiet", "--verbose", "--help"]
    static let values = ["0", "1", "-1", "100", "101", "65535", "65536", "1e30", "-1e30", "1e-300", "nan", "inf", "-inf",
                         "9223372036854775807", "9223372036854775808", "-9223372036854775808", "18446744073709551616",
                         "", " ", "x", "1.5", "0x10", "custom-1", "20", "-", "--", "trace", "json", "é", "\u{0}", "1_000"]

    @Test("a command or a usage error, never a trap")
    func parse() async {
        let word = pick(Self.options + Self.values)
        let arguments = zip(pick(Self.commands), word.array(of: 0...8)).map { [$0] + $1 }
        // argument-parser takes about 30 ms a parse here: a twentieth of the decoders' count by default.
        await propertyCheck(count: max(fuzzExecutions / 20, 50), input: arguments) { arguments in
            Self.check(arguments)
        }
    }

    @Test("every numeric option at its extremes: 64 with a message naming the option")
    func extremes() {
        let cases: [[String]] = [
            ["flush", "--deadline", "1e30"], ["flush", "--deadline", "-0.5"], ["flush", "--deadline", "nan"],
            ["pull", "custom-1", "--deadline", "inf"], ["flush", "--batch-size", "0"], ["flush", "--batch-size", "101"],
            ["watch", "--concurrency", "65"], ["flush", "--concurrency", "-9223372036854775808"],
            ["log", "--limit", "0"], ["mock-server", "--port", "65536"], ["mock-server", "--admin-port", "-1"],
        ]
        for arguments in cases {
            #expect(throws: (any Error).self, "\(arguments)") { _ = try SyncCtl.parseAsRoot(arguments) }
            do {
                _ = try SyncCtl.parseAsRoot(arguments)
            } catch {
                #expect(SyncCtl.exitCode(for: error).rawValue == 64 || SyncCtl.exitCode(for: error).rawValue == 1, "\(arguments)")
                let option = arguments.first { $0.hasPrefix("--") } ?? ""
                #expect(SyncCtl.message(for: error).contains(option), "\(arguments): \(SyncCtl.message(for: error))")
            }
        }
        // At the edge of what is accepted, the time limit is computed without a trap.
        let longest = try? SyncCtl.parseAsRoot(["flush", "--deadline", "1000000000"]) as? Flush
        #expect(longest?.deadline.timeLimit.map { $0 > .seconds(999_999_000) } == true)
    }

    @Test("watch's daily prune uses prune's default age")
    func watchPrunesLikePrune() throws {
        #expect(try PruneAge.parse(Prune.defaultAge) == Watch.pruneAge)
    }

    static func check(_ arguments: [String]) {
        _ = try? LogSettings.resolve(arguments, environment: [:])
        let (parsed, _) = BulkArguments.split(arguments)
        guard let command = try? SyncCtl.parseAsRoot(parsed) else { return }
        if let flush = command as? Flush { _ = flush.deadline.timeLimit }
        if let pull = command as? Pull { _ = pull.deadline.timeLimit }
    }
}
