import ArgumentParser
import CollectionsAPI
import CollectionSync
import Foundation
import SyncctlContract

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

    @Argument(help: "The collection id (custom-<digits>, or local-N for one made here: nothing is fetched until it is created).")
    var collection: String

    func run() async throws {
        let collectionID = try parseAll([collection], CollectionID.init(validating:))[0]
        let store = try await options.openStore()
        let timeLimit = deadline.timeLimit
        // The engine reads a 404 by the flush's rule: unknown collection (64) when this base URL
        // has answered before and collections/show confirms it, wrong base URL (78) otherwise.
        let outcome = try await network.withEngine(store: store, logger: options.logger) { engine in
            let progress = ProgressLine.start(engine, pending: 0)
            defer { progress?.finish() }
            return try await Interruption.run(logger: options.logger, onSecondSignal: { name in
                progress?.finish()
                Interruption.tellExit(name)
            }) {
                do {
                    return Result<PullReport, CollectionsAPIError>.success(try await engine.pull(collectionID, timeLimit: timeLimit))
                } catch let error as CollectionsAPIError where error.code == .cancelled {
                    return .failure(error)
                }
            }
        }
        switch outcome.value {
        case .success(let report):
            let failure = outcome.signal.map { Failure(exitCode: Exit.tryLater, message: "interrupted by \($0) after the pull had merged") }
            emit(report.collection, entries: report.entries, remoteWrites: report.remoteWrites, conflicts: report.conflicts, failure)
            if let failure { throw Failure(exitCode: failure.exitCode, message: failure.message, reported: true) }
        case .failure(let error):
            // Interrupted before every page arrived: nothing changed; the usual summary, and 75.
            let entries = (try? await store.entries(of: collectionID).count) ?? 0
            let failure = Failure(exitCode: Exit.tryLater, message: outcome.signal.map { "interrupted by \($0): " + error.message } ?? error.message)
            emit(collectionID, entries: entries, remoteWrites: 0, conflicts: 0, failure)
            throw Failure(exitCode: failure.exitCode, message: failure.message, reported: true)
        }
    }

    /// The pull's summary (with `--json` its document, and the error object when it failed).
    private func emit(_ collection: CollectionID, entries: Int, remoteWrites: Int, conflicts: Int, _ failure: Failure?) {
        var members = Documents.pull(collection, entries: entries, remoteWrites: remoteWrites, conflicts: conflicts)
        if let failure {
            members.append(("error", failure.json))
        }
        options.emit(.object(members), text: "\(collection): \(counted(entries, "entry", "entries")); \(counted(remoteWrites, "remote write", "remote writes")), "
            + counted(conflicts, "conflict", "conflicts"))
        if let failure { tell(failure.message, level: .error) }
    }
}
