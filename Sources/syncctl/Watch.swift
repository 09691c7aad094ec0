import ArgumentParser
import CollectionsAPI
import CollectionSync
import Foundation
import Logging
import ServiceLifecycle
import SyncctlContract
import Synchronization

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep flushing as ops become due, until interrupted.",
        discussion: """
            Holds the flusher lease and flushes whenever edits arrive (from any process) or
            backoff and rate-limit waits end. It prunes the log like syncctl prune (events older
            than 30 days, conflicts kept) when it starts and once a day. Each change of state is logged once on stderr
            (unreachable, reachable again, rate limited until, backing off until, dead letters,
            credentials rejected at error level); after a rejection it keeps running, since the
            credentials may be restored. SIGINT or SIGTERM ends it cleanly: answers on the wire
            are committed, the lease is released and the exit code is 0 (a second signal exits
            at once with 75).

            With --json, stdout carries one JSON object per line for each event, written when it
            happens: {"at":T,"event":"applied|reconciled|failed|waiting|rate_limited|unreachable|
            auth_rejected|stopped",...}; the last line is the "stopped" event.

            Examples:
              syncctl watch
              syncctl watch --json --api-base http://127.0.0.1:8080/1.1 | jq -c 'select(.event=="failed")'
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var network: NetworkOptions
    @OptionGroup var batching: BatchOptions

    func run() async throws {
        let store = try await options.openStore()
        let lines = options.json ? EventLines() : nil
        let outcome = try await network.withEngine(store: store, configure: batching.apply, logger: options.logger) { engine in
            let progress = ProgressLine.start(engine, pending: await store.waiting() ?? 0)
            defer { progress?.finish() }
            let writer = lines.map { lines in Task { await lines.write(engine.events()) } }
            let logger = options.logger
            let outcome = try await Interruption.run(logger: logger, onSecondSignal: { name in
                progress?.finish()
                Interruption.tellExit(name)
                lines?.stopped(signal: name)
            }) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await engine.run() }
                    group.addTask { await Watch.pruneDaily(store, logger: logger) }
                    try await group.next()  // the watch loop ended (the pruner ends only with it)
                    group.cancelAll()
                }
            }
            // The engine's event streams end when run() returns: every event is written by now.
            await writer?.value
            return outcome
        }
        lines?.stopped(signal: outcome.signal)
        if !options.json { tell("stopped" + (outcome.signal.map { " (\($0))" } ?? ""), level: .info) }
    }
}

extension Watch {
    /// How old the log's events get before `watch` prunes them: `syncctl prune`'s default.
    /// (The same as `Prune.defaultAge`, "30d": a test holds them together.)
    static let pruneAge: Duration = .seconds(30 * 86_400)
    static let pruneInterval: Duration = .seconds(86_400)

    /// Prunes the LWW log with `syncctl prune`'s defaults (30 days, conflicts kept) when the
    /// watch starts and once a day after, until the watch stops.
    static func pruneDaily(_ store: SyncStore, logger: Logger) async {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                let pruned = try await store.prune(olderThan: pruneAge)
                logger.info("pruned the log: \(counted(pruned, "event", "events")) older than \(Prune.defaultAge)", metadata: ["log.deleted": "\(pruned)"])
            } catch {
                logger.warning("could not prune the log (trying again in a day): \(Failure(error).message)")
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: pruneInterval) }
            } catch {
                return
            }
        }
    }
}

/// `watch --json`: one JSON object per line on stdout for each engine event (syncctl.md).
final class EventLines: Sendable {
    private struct Totals {
        var applied = 0
        var reconciled = 0
        var failed = 0
        var stopped = false
    }

    private let totals = Mutex(Totals())

    /// Writes a line for each event until the stream ends.
    func write(_ events: AsyncStream<SyncEvent>) async {
        for await event in events {
            guard let members = line(for: event) else { continue }
            Console.shared.out(JSON.object([("at", .string(rfc3339(Date())))] + members).text)
        }
    }

    /// The last line: `stopped`, with the totals (written once).
    func stopped(signal: String?) {
        let totals = totals.withLock { totals -> Totals? in
            guard !totals.stopped else { return nil }
            totals.stopped = true
            return totals
        }
        guard let totals else { return }
        Console.shared.out(JSON.object([
            ("at", .string(rfc3339(Date()))), ("event", .string("stopped")), ("applied", .int(totals.applied)),
            ("reconciled", .int(totals.reconciled)), ("failed", .int(totals.failed)), ("signal", .optional(signal)),
        ]).text)
    }

    private func line(for event: SyncEvent) -> [(String, JSON)]? {
        switch event {
        case .applied: totals.withLock { $0.applied += 1 }
        case .reconciled: totals.withLock { $0.reconciled += 1 }
        case .failed: totals.withLock { $0.failed += 1 }
        default: break
        }
        return Documents.event(event)
    }
}
