import CollectionSync
import Foundation
import SyncctlContract
import Synchronization

/// A live progress line on stderr while a flush, pull or watch runs, when stderr is a terminal
/// (and the log is text, and not `-q`): applied, already applied, failed, pending, requests, a
/// countdown while waiting for a rate-limit reset; pages and entries for a pull.
///
/// Events only update counters; the line is drawn by a ticker at most 10 times a second, through
/// ``Console``, which erases it before any other output. On a pipe it shows nothing.
final class ProgressLine: Sendable {
    private struct Counters {
        var applied = 0
        var alreadyApplied = 0
        var failed = 0
        var pending = 0
        var requests = 0
        var waitingUntil: Date?
        var note = ""
        var pull: (collection: CollectionID, pages: Int, entries: Int)?
    }

    /// The fastest redraw: 10 times a second.
    static let interval: Duration = .milliseconds(100)

    private let counters: Mutex<Counters>
    private let tasks: Mutex<[Task<Void, Never>]> = Mutex([])
    private let console: Console

    /// Starts showing `engine`'s events, or returns nil when no line is to be drawn.
    static func start(_ engine: SyncEngine, pending: Int, console: Console = .shared) -> ProgressLine? {
        let settings = LogSettings.current
        guard console.stderrIsTerminal, settings.format == .text, settings.level <= .notice else { return nil }
        return ProgressLine(engine.events(), pending: pending, console: console)
    }

    private init(_ events: AsyncStream<SyncEvent>, pending: Int, console: Console) {
        counters = Mutex(Counters(pending: pending))
        self.console = console
        console.beginProgress()
        let reader = Task { [self] in
            for await event in events {
                counters.withLock { Self.update(&$0, event) }
            }
        }
        let ticker = Task { [self] in
            while !Task.isCancelled {
                console.progress(counters.withLock { Self.text($0) })
                try? await Task.sleep(for: Self.interval)
            }
        }
        tasks.withLock { $0 = [reader, ticker] }
    }

    /// Stops and erases the line: nothing is drawn after this returns.
    func finish() {
        for task in tasks.withLock({ $0 }) { task.cancel() }
        console.endProgress()
    }

    private static func update(_ counters: inout Counters, _ event: SyncEvent) {
        switch event {
        case .requestSent:
            counters.requests += 1
            counters.waitingUntil = nil
        case .applied:
            counters.applied += 1
            counters.pending = max(counters.pending - 1, 0)
        case .reconciled:
            counters.alreadyApplied += 1
            counters.pending = max(counters.pending - 1, 0)
        case .failed:
            counters.failed += 1
            counters.pending = max(counters.pending - 1, 0)
        case .retryScheduled(_, let at, _):
            counters.note = "retrying at \(rfc3339(at))"
        case .waitingForRateLimit(_, let until):
            counters.waitingUntil = until
        case .stopped(let report):
            counters.pending = report.pending
            counters.waitingUntil = nil
        case .pulled(let report):
            counters.note = "pulled \(report.collection): \(counted(report.entries, "entry", "entries"))"
        case .pageFetched(let collection, let pages, let entries):
            counters.pull = (collection, pages, entries)
        case .unreachable:
            counters.note = "the API is unreachable"
        case .authenticationRejected:
            counters.note = "authentication rejected"
        }
    }

    private static func text(_ counters: Counters) -> String {
        if let pull = counters.pull {
            return "pull \(pull.collection): \(counted(pull.pages, "page", "pages")), \(counted(pull.entries, "entry", "entries"))"
        }
        var text = "applied \(counters.applied), already applied \(counters.alreadyApplied), failed \(counters.failed), "
            + "pending \(counters.pending), requests \(counters.requests)"
        if let until = counters.waitingUntil {
            let seconds = max(Int(until.timeIntervalSinceNow.rounded(.up)), 0)
            text += "; rate limited, reset in \(seconds) s"
        } else if !counters.note.isEmpty {
            text += "; \(counters.note)"
        }
        return text
    }
}
