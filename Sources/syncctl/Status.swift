import ArgumentParser
import CollectionSync
import SyncctlContract

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the queue and sync state.",
        discussion: """
            Counts of pending, in-flight and failed ops per collection, the oldest pending op,
            the next attempt, any rate-limit wait, and the last pull and flush.

            Examples:
              syncctl status
              syncctl status --json | jq .pending
            """)

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let status = try await options.openStore().status()
        options.emit(status.json, text: status.text)
    }
}

extension SyncStatus {
    var text: String {
        var lines = ["pending \(ops.pending), in flight \(ops.inFlight), failed \(ops.failed)"]
        if let oldestPendingAt { lines.append("oldest pending op: \(rfc3339(oldestPendingAt))") }
        if let nextAttemptAt { lines.append("next attempt: \(rfc3339(nextAttemptAt))") }
        if let rateLimitedUntil { lines.append("rate limited until: \(rfc3339(rateLimitedUntil))") }
        lines.append("last flush: \(lastFlushAt.map(rfc3339) ?? "never")")
        for collection in collections {
            lines.append("  \(collection.id): \(counted(collection.entries, "entry", "entries")); pending \(collection.ops.pending), "
                + "in flight \(collection.ops.inFlight), failed \(collection.ops.failed); "
                + "last pull: \(collection.lastPulledAt.map(rfc3339) ?? "never")")
        }
        return lines.joined(separator: "\n")
    }
}

extension SyncStore {
    /// Ops pending or in flight, or nil when the store cannot say.
    func waiting() async -> Int? {
        guard let ops = try? await status().ops else { return nil }
        return ops.pending + ops.inFlight
    }
}
