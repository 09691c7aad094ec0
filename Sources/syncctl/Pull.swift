import ArgumentParser
import CollectionSync
import CollectionsAPI
import Foundation

struct Pull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch a collection's entries and merge them (last-writer-wins) into the local copy.",
        discussion: """
            Pages through the whole collection, then merges in one transaction: a failed pull
            changes nothing. Remote writes and conflicts are written to the log (syncctl log).
            A 404 exits 64 (unknown collection) when this base URL has answered before, 78 (wrong
            base URL) when it never has.

            Examples:
              syncctl pull custom-388061495298244609
              syncctl pull --json --api-base http://127.0.0.1:8080/1.1 custom-1
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var network: NetworkOptions
    @OptionGroup var deadline: DeadlineOption

    @Argument(help: "The collection id (custom-<digits>).")
    var collection: String

    func run() async throws {
        let collectionID = try parseAll([collection], CollectionID.init(validating:))[0]
        let store = try await options.openStore()
        // The engine reads a 404 by the flush's rule: unknown collection (64) when this base URL
        // has answered before and collections/show confirms it, wrong base URL (78) otherwise.
        let report = try await network.withEngine(store: store) { engine in
            try await engine.pull(collectionID, timeLimit: deadline.timeLimit)
        }
        options.emit(.object([("collection_id", .string(collectionID.rawValue)), ("entries", .int(report.entries)),
                              ("remote_writes", .int(report.remoteWrites)), ("conflicts", .int(report.conflicts))]),
                     text: "\(collectionID): \(report.entries) entries; \(report.remoteWrites) remote writes, \(report.conflicts) conflicts")
    }
}

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Keep flushing as ops become due, until interrupted.",
        discussion: """
            Holds the flusher lease and flushes whenever edits arrive (from any process) or
            backoff and rate-limit waits end. SIGINT or SIGTERM ends it cleanly: the lease is
            released and the exit code is 0.

            Examples:
              syncctl watch
              syncctl watch --api-base http://127.0.0.1:8080/1.1
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var network: NetworkOptions
    @OptionGroup var batching: BatchOptions

    func run() async throws {
        let store = try await options.openStore()
        try await network.withEngine(store: store, configure: batching.apply) { engine in
            let progress = ProgressLine.start(engine, pending: await store.waiting() ?? 0)
            let task = Task { try await engine.run() }
            let signals = SignalWatcher(signals: [SIGINT, SIGTERM]) { task.cancel() }
            let result = await task.result
            signals.cancel()
            progress?.finish()
            try result.get()
        }
        options.emit(.object([("stopped", .bool(true))]), text: "")
    }
}

/// Turns the given signals into a callback (their default action is disabled meanwhile).
final class SignalWatcher: @unchecked Sendable {
    // @unchecked: the sources are set once in init and only cancelled afterwards (thread-safe).
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32], _ handler: @escaping @Sendable () -> Void) {
        sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler(handler: handler)
            source.resume()
            return source
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}
