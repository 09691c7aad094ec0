import CollectionSync
import Foundation

/// An RFC 3339 UTC time with milliseconds, e.g. `2026-11-27T12:43:40.123Z`.
func rfc3339(_ date: Date) -> String {
    let millis = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    var seconds = time_t(millis >= 0 ? millis / 1000 : (millis - 999) / 1000)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    let fraction = ((millis % 1000) + 1000) % 1000
    return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ",
                  Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                  Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), fraction)
}

func jsonTime(_ date: Date?) -> JSON { date.map { .string(rfc3339($0)) } ?? .null }

extension QueuedOp {
    var json: JSON {
        .object([("id", .int(id.rawValue)), ("op", .string(kind.rawValue)),
                 ("collection_id", .string(collection.rawValue)), ("tweet_id", .string(tweet.rawValue))])
    }
}

extension Op {
    var json: JSON {
        .object([
            ("id", .int(id.rawValue)), ("op", .string(kind.rawValue)),
            ("collection_id", .string(collection.rawValue)), ("tweet_id", .string(tweet.rawValue)),
            ("state", .string(state.rawValue)), ("attempts", .int(attempts)),
            ("created_at", jsonTime(createdAt)), ("next_attempt_at", jsonTime(nextAttemptAt)),
            ("last_error", .optional(lastError)),
        ])
    }
}

extension LogEvent {
    var json: JSON {
        .object([
            ("id", .int(id)), ("at", jsonTime(at)), ("event", .string(event.rawValue)),
            ("collection_id", .string(collection.rawValue)), ("tweet_id", .optional(tweet?.rawValue)),
            ("winner", .optional(winner?.rawValue)), ("detail", .string(detail)),
            ("op_id", op.map { .int($0.rawValue) } ?? .null), ("hlc", .string(String(hlc.rawValue))),
            ("replica_id", .string(replicaID)),
            ("local_at", jsonTime(localHLC?.date)), ("remote_at", jsonTime(remoteHLC?.date)),
        ])
    }

    /// One line for people.
    var line: String {
        var text = "\(id)  \(rfc3339(at))  \(event.rawValue.padding(toLength: 15, withPad: " ", startingAt: 0)) \(collection)"
        if let tweet { text += " \(tweet)" }
        if let winner { text += "  winner=\(winner.rawValue)" }
        if let localHLC { text += "  local=\(rfc3339(localHLC.date))" }
        if let remoteHLC { text += "  remote=\(rfc3339(remoteHLC.date))" }
        if !detail.isEmpty { text += "  \(detail)" }
        return text
    }
}

extension SyncStatus {
    var json: JSON {
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

/// "1 op", "2 ops".
func ops(_ count: Int) -> String { counted(count, "op", "ops") }

/// A count and its noun in the right number: "1 entry", "0 entries".
func counted(_ count: Int, _ one: String, _ many: String) -> String { "\(count) \(count == 1 ? one : many)" }
