import CollectionSync
import Foundation
import Synchronization

/// A live progress line on stderr while a flush, pull or watch runs, when stderr is a terminal:
/// applied, reconciled, failed, pending, requests, and a countdown while waiting for a rate-limit
/// reset. On a pipe it shows nothing (the command's summary is all that is written).
final class ProgressLine: Sendable {
    private struct Counters {
        var applied = 0
        var reconciled = 0
        var failed = 0
        var pending = 0
        var requests = 0
        var waitingUntil: Date?
        var note = ""
    }

    private let counters: Mutex<Counters>
    private let tasks: Mutex<[Task<Void, Never>]> = Mutex([])

    /// Starts showing `engine`'s events, or returns nil when stderr is not a terminal.
    static func start(_ engine: SyncEngine, pending: Int) -> ProgressLine? {
        guard isatty(STDERR_FILENO) == 1 else { return nil }
        return ProgressLine(engine.events(), pending: pending)
    }

    private init(_ events: AsyncStream<SyncEvent>, pending: Int) {
        counters = Mutex(Counters(pending: pending))
        let reader = Task { [self] in
            for await event in events {
                counters.withLock { update(&$0, event) }
                render()
            }
        }
        // The countdown needs a tick even when no event arrives.
        let ticker = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if counters.withLock({ $0.waitingUntil != nil }) { render() }
            }
        }
        tasks.withLock { $0 = [reader, ticker] }
    }

    /// Stops and clears the line.
    func finish() {
        for task in tasks.withLock({ $0 }) { task.cancel() }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }

    private func update(_ counters: inout Counters, _ event: SyncEvent) {
        switch event {
        case .requestSent:
            counters.requests += 1
            counters.waitingUntil = nil
        case .applied:
            counters.applied += 1
            counters.pending = max(counters.pending - 1, 0)
        case .reconciled:
            counters.reconciled += 1
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
            counters.note = "pulled \(report.collection): \(report.entries) entries"
        }
    }

    private func render() {
        let line = counters.withLock { counters -> String in
            var text = "applied \(counters.applied), reconciled \(counters.reconciled), failed \(counters.failed), "
                + "pending \(counters.pending), requests \(counters.requests)"
            if let until = counters.waitingUntil {
                let seconds = max(Int(until.timeIntervalSinceNow.rounded(.up)), 0)
                text += "; rate limited, reset in \(seconds) s"
            } else if !counters.note.isEmpty {
                text += "; \(counters.note)"
            }
            return text
        }
        FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
    }
}
