import ArgumentParser
import CollectionsAPI
import CollectionSync
import Foundation
import SyncctlContract

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
        let outcome: Interruption.Outcome<FlushReport>
        do {
            outcome = try await network.withEngine(store: store, configure: batching.apply, logger: options.logger) { engine in
                let progress = ProgressLine.start(engine, pending: await store.waiting() ?? 0)
                defer { progress?.finish() }
                let wait = wait
                return try await Interruption.run(logger: options.logger, onSecondSignal: { [self] name in
                    progress?.finish()
                    _ = report(FlushReport(), nil, Failure(exitCode: Exit.tryLater, message: "\(name) again: stopped at once; ops left in flight are recovered by the next flush"))
                }) {
                    try await engine.flush(FlushOptions(timeLimit: timeLimit, wait: wait))
                }
            }
        } catch {
            // Configuration problems and thrown failures still print the flush document.
            throw report(FlushReport(), await store.waiting(), Failure(error))
        }
        let result = outcome.value
        let (code, message) = Exit.flush(result, interruptedBy: outcome.signal)
        if code == Exit.ok {
            _ = report(result, result.pending, nil)
        } else {
            throw report(result, result.pending, Failure(exitCode: code, message: message))
        }
    }

    /// Prints the flush document (and the summary on stderr); returns `failure` marked as reported.
    private func report(_ result: FlushReport, _ pending: Int?, _ failure: Failure?) -> Failure {
        Flush.report(result, pending, failure, json: options.json)
    }

    /// The flush's summary on stdout (with `--json` its document, with the error object when it
    /// failed), the failure's message on stderr.
    static func report(_ result: FlushReport, _ pending: Int?, _ failure: Failure?, json: Bool) -> Failure {
        var members = Documents.flush(result, pending: pending)
        if let failure {
            members.append(("error", failure.json))
        }
        let summary = "flush: sent \(result.sent), applied \(result.applied), already applied \(result.alreadyApplied), "
            + "failed \(result.failed), pending \(pending.map(String.init) ?? "?"), requests \(result.requests)"
        Console.shared.out(json ? JSON.object(members).text : summary)
        if let failure { tell(failure.message, level: .error) } else if json { tell(summary) }
        return Failure(exitCode: failure?.exitCode ?? Exit.ok, message: failure?.message ?? "", reported: true)
    }
}
