import CollectionSync
import Foundation

// The documents of syncctl.md's "JSON shapes", built once for every program that prints them:
// syncctl's `--json` and the C library's results (one schema for every language).

/// An RFC 3339 UTC time with milliseconds, e.g. `2026-11-27T12:43:40.123Z`.
package func rfc3339(_ date: Date) -> String {
    let millis = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    var seconds = time_t(millis >= 0 ? millis / 1000 : (millis - 999) / 1000)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    let fraction = ((millis % 1000) + 1000) % 1000
    return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ",
                  Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                  Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), fraction)
}

package func jsonTime(_ date: Date?) -> JSON { date.map { .string(rfc3339($0)) } ?? .null }

extension QueuedOp {
    package var json: JSON {
        .object([("id", .int(id.rawValue)), ("op", .string(kind.rawValue)),
                 ("collection_id", .string(collection.rawValue)), ("tweet_id", .optional(tweet?.rawValue))])
    }
}

extension Op {
    package var json: JSON {
        .object([
            ("id", .int(id.rawValue)), ("op", .string(kind.rawValue)),
            ("collection_id", .string(collection.rawValue)), ("tweet_id", .optional(tweet?.rawValue)),
            ("state", .string(state.rawValue)), ("attempts", .int(attempts)),
            ("created_at", jsonTime(createdAt)), ("next_attempt_at", jsonTime(nextAttemptAt)),
            ("last_error", .optional(lastError)),
        ])
    }
}

extension LogEvent {
    package var json: JSON {
        .object([
            ("id", .int(id)), ("at", jsonTime(at)), ("event", .string(event.rawValue)),
            ("collection_id", .string(collection.rawValue)), ("tweet_id", .optional(tweet?.rawValue)),
            ("winner", .optional(winner?.rawValue)), ("detail", .string(detail)),
            ("op_id", op.map { .int($0.rawValue) } ?? .null), ("hlc", .string(String(hlc.rawValue))),
            ("replica_id", .string(replicaID)),
            ("local_at", jsonTime(localHLC?.date)), ("remote_at", jsonTime(remoteHLC?.date)),
        ])
    }
}

extension SyncStatus {
    package var json: JSON {
        .object([
            ("pending", .int(ops.pending)), ("in_flight", .int(ops.inFlight)), ("failed", .int(ops.failed)),
            ("oldest_pending_at", jsonTime(oldestPendingAt)), ("next_attempt_at", jsonTime(nextAttemptAt)),
            ("rate_limited_until", jsonTime(rateLimitedUntil)), ("last_flush_at", jsonTime(lastFlushAt)),
            ("collections", .array(collections.map { collection in
                .object([
                    ("id", .string(collection.id.rawValue)), ("entries", .int(collection.entries)),
                    ("pending", .int(collection.ops.pending)), ("in_flight", .int(collection.ops.inFlight)),
                    ("failed", .int(collection.ops.failed)), ("last_pulled_at", jsonTime(collection.lastPulledAt)),
                ])
            })),
        ])
    }
}

/// The contract's documents, one per command.
package enum Documents {
    /// `remove` / `add`: `{"queued":[...]}`.
    package static func queued(_ ops: [QueuedOp]) -> JSON { .object([("queued", .array(ops.map(\.json)))]) }

    /// `entries`: the entries present in the local view.
    package static func entries(_ collection: CollectionID, _ entries: [Entry]) -> JSON {
        .object([
            ("collection_id", .string(collection.rawValue)),
            ("entries", .array(entries.map { entry in
                .object([("tweet_id", .string(entry.tweet.rawValue)), ("sort_index", .optional(entry.sortIndex)),
                         ("pending", .optional(entry.pending?.rawValue))])
            })),
        ])
    }

    /// `destroy`: the queued destroy, or `{"queued":[],"dropped":"local-N"}` for a collection
    /// whose create was never sent.
    package static func destroyed(_ result: CollectionDestruction) -> JSON {
        switch result {
        case .queued(let op): queued([op])
        case .dropped(let local): .object([("queued", .array([])), ("dropped", .string(local.rawValue))])
        }
    }

    /// `collections`: the local store's collections with their metadata.
    package static func collections(_ collections: [LocalCollection]) -> JSON {
        .object([("collections", .array(collections.map { collection in
            .object([
                ("id", .string(collection.id.rawValue)), ("local_id", .optional(collection.localID?.rawValue)),
                ("name", .string(collection.name)), ("description", .string(collection.description)), ("url", .string(collection.url)),
                ("timeline_order", .string(collection.timelineOrder)), ("pending", .optional(collection.pending?.rawValue)),
                ("gone", .bool(collection.gone)), ("entries", .int(collection.entries)),
            ])
        }))])
    }

    package static func outbox(_ ops: [Op]) -> JSON { .object([("ops", .array(ops.map(\.json)))]) }

    package static func log(_ events: [LogEvent]) -> JSON { .object([("events", .array(events.map(\.json)))]) }

    package static func retried(_ ids: [OpID]) -> JSON { .object([("retried", .array(ids.map { .int($0.rawValue) }))]) }

    package static func discarded(_ ids: [OpID]) -> JSON { .object([("discarded", .array(ids.map { .int($0.rawValue) }))]) }

    package static func pruned(_ count: Int) -> JSON { .object([("pruned", .int(count))]) }

    /// `flush`'s members (`pending`: nil when it could not be read); the caller may append `error`.
    package static func flush(_ report: FlushReport, pending: Int?) -> [(String, JSON)] {
        [
            ("sent", .int(report.sent)), ("applied", .int(report.applied)), ("already_applied", .int(report.alreadyApplied)),
            ("failed", .int(report.failed)), ("pending", pending.map { .int($0) } ?? .null), ("requests", .int(report.requests)),
            ("next_attempt_at", jsonTime(report.nextAttemptAt)), ("dead_letters", .int(report.deadLetters)),
        ]
    }

    /// `pull`'s members; the caller may append `error`.
    package static func pull(_ collection: CollectionID, entries: Int, remoteWrites: Int, conflicts: Int) -> [(String, JSON)] {
        [("collection_id", .string(collection.rawValue)), ("entries", .int(entries)),
         ("remote_writes", .int(remoteWrites)), ("conflicts", .int(conflicts))]
    }

    /// An event of `watch --json` (and of the C library's event callback) without its `at`, or
    /// nil for an event that is not one of the contract's (progress, the end of each flush).
    package static func event(_ event: SyncEvent) -> [(String, JSON)]? {
        switch event {
        case .applied(let op):
            return [("event", .string("applied"))] + members(of: op)
        case .reconciled(let op):
            return [("event", .string("reconciled"))] + members(of: op)
        case .failed(let op, let reason):
            return [("event", .string("failed"))] + members(of: op) + [("reason", .string(reason))]
        case .retryScheduled(let ops, let at, let error):
            return [("event", .string("waiting")), ("ops", .int(ops)), ("until", .string(rfc3339(at))), ("error", .string(error))]
        case .waitingForRateLimit(let endpoint, let until):
            return [("event", .string("rate_limited")), ("endpoint", .string(endpoint.rawValue)), ("until", .string(rfc3339(until)))]
        case .unreachable(let reason):
            return [("event", .string("unreachable")), ("reason", .string(reason))]
        case .authenticationRejected(let reason):
            return [("event", .string("auth_rejected")), ("reason", .string(reason))]
        case .requestSent, .stopped, .pulled, .pageFetched:
            return nil
        }
    }

    private static func members(of op: Op) -> [(String, JSON)] {
        [("op_id", .int(op.id.rawValue)), ("op", .string(op.kind.rawValue)),
         ("collection_id", .string(op.collection.rawValue)), ("tweet_id", .optional(op.tweet?.rawValue))]
    }
}

/// "1 op", "2 ops".
package func ops(_ count: Int) -> String { counted(count, "op", "ops") }

/// A count and its noun in the right number: "1 entry", "0 entries".
package func counted(_ count: Int, _ one: String, _ many: String) -> String { "\(count) \(count == 1 ? one : many)" }
