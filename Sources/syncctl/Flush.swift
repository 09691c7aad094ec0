import ArgumentParser
import CollectionSync
import CollectionsAPI
import Foundation

struct Flush: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay due ops against the API.",
        discussion: """
            Takes the flusher lease (one flush per database at a time), sends due ops in batches
            through entries/curate, and commits every answer. Exit 0 when nothing is pending, 65
            when only dead letters remain, 69 when the API could not be reached, 75 when ops wait
            (backoff, rate limit, deadline, another flush), 77 when credentials are rejected, 78
            for configuration problems.

            Examples:
              syncctl flush
              syncctl flush --deadline 60 --wait --json
              syncctl flush --batch-size 1 --concurrency 2
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var network: NetworkOptions
    @OptionGroup var deadline: DeadlineOption
    @OptionGroup var batching: BatchOptions

    @Flag(name: .long, help: "Sleep through backoff and rate-limit waits until the queue is empty or the deadline passes.")
    var wait = false

    func run() async throws {
        let timeLimit = deadline.timeLimit
        let store: SyncStore
        do {
            store = try await options.openStore()
        } catch {
            throw report(FlushReport(), nil, Failure(error))
        }
        let result: FlushReport
        do {
            result = try await network.withEngine(store: store, configure: batching.apply) { engine in
                let progress = ProgressLine.start(engine, pending: await store.waiting() ?? 0)
                defer { progress?.finish() }
                return try await engine.flush(FlushOptions(timeLimit: timeLimit, wait: wait))
            }
        } catch {
            // Configuration problems and thrown failures still print the flush document.
            throw report(FlushReport(), await store.waiting(), Failure(error))
        }
        let (code, message) = Flush.exitCode(result)
        if code == Exit.ok {
            _ = report(result, result.pending, nil)
        } else {
            throw report(result, result.pending, Failure(exitCode: code, message: message))
        }
    }

    /// The contract's exit code for a flush report (78, 77, 69, 75, 65 in that order of precedence).
    static func exitCode(_ report: FlushReport) -> (Int32, String) {
        switch report.stopReason {
        case .configuration(let why): return (Exit.config, why)
        case .authentication(let why): return (Exit.auth, why)
        default: break
        }
        if report.pending > 0, let unreachable = report.unreachable { return (Exit.unavailable, "the API could not be reached: \(unreachable)") }
        switch report.stopReason {
        case .leaseHeld(let holder):
            return (Exit.tryLater, "another flush holds the lease (pid \(holder.pid) on \(holder.host), until \(rfc3339(holder.expiresAt)))")
        case .rateLimited(let until) where report.pending > 0:
            return (Exit.tryLater, "rate limited until \(rfc3339(until)); \(report.pending) ops pending")
        case .deadline where report.pending > 0:
            return (Exit.tryLater, "the deadline passed with \(report.pending) ops pending")
        case .cancelled where report.pending > 0:
            return (Exit.tryLater, "interrupted with \(report.pending) ops pending")
        default:
            break
        }
        if report.pending > 0 {
            return (Exit.tryLater, "\(report.pending) ops pending, next attempt \(report.nextAttemptAt.map(rfc3339) ?? "when due")")
        }
        if report.deadLetters > 0 { return (Exit.deadLetters, "\(report.deadLetters) dead-lettered ops in the outbox (syncctl outbox --failed)") }
        return (Exit.ok, "")
    }

    /// Prints the flush document (and the summary on stderr); returns `failure` marked as reported.
    private func report(_ result: FlushReport, _ pending: Int?, _ failure: Failure?) -> Failure {
        var members: [(String, JSON)] = [
            ("sent", .int(result.sent)), ("applied", .int(result.applied)), ("already_applied", .int(result.alreadyApplied)),
            ("failed", .int(result.failed)), ("pending", pending.map { .int($0) } ?? .null), ("requests", .int(result.requests)),
            ("next_attempt_at", jsonTime(result.nextAttemptAt)), ("dead_letters", .int(result.deadLetters)),
        ]
        if let failure {
            members.append(("error", .object([("exit_code", .int(Int64(failure.exitCode))), ("message", .string(failure.message))])))
        }
        let summary = "flush: sent \(result.sent), applied \(result.applied), already applied \(result.alreadyApplied), "
            + "failed \(result.failed), pending \(pending.map(String.init) ?? "?"), requests \(result.requests)"
        if options.json { print(JSON.object(members).text) } else { print(summary) }
        if let failure { printError("syncctl: \(failure.message)") } else if options.json { printError(summary) }
        return Failure(exitCode: failure?.exitCode ?? Exit.ok, message: failure?.message ?? "", reported: true)
    }
}
