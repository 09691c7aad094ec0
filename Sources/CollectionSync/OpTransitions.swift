import CollectionsAPI

/// Where an op goes. These are all the changes of an op's state there are; each one is made by
/// ``WriteTransaction/move(_:from:heldBy:to:)``, which is, with
/// ``WriteTransaction/insertOp(_:_:_:hlc:)``, the only code that writes `ops.state` (or
/// inserts or deletes an op). Both keep the per-collection counters that `status` reads exact:
/// a counter moves by exactly the rows a statement changed, by collection.
enum OpTarget: Sendable, Hashable {
    /// Claimed by the flusher `holder`: in flight, one more attempt counted.
    case claimed(by: String)
    /// After a transient failure: pending, not due before `until` (wall ms), with the error.
    case backedOff(until: Int64, error: String)
    /// Not sent, or stopped by something that is not the op's fault (authentication, a wrong
    /// base URL, a rate limit, the deadline): pending, the attempt given back, not due before
    /// `until` when given.
    case released(error: String, until: Int64?)
    /// Refused for good: dead-lettered with `reason`.
    case failed(reason: String)
    /// Put back to pending by the user (`retry`), due now.
    case retried
    /// In flight for a flusher that is gone: pending again (its attempt stays counted).
    case recovered
    /// Out of the outbox: applied, replaced by a newer intent, discarded, or cancelled by a pull.
    case gone

    /// The state the op is in afterwards; nil when it has left the outbox.
    var state: OpState? {
        switch self {
        case .claimed: .inFlight
        case .backedOff, .released, .retried, .recovered: .pending
        case .failed: .failed
        case .gone: nil
        }
    }
}

/// Which ops a ``WriteTransaction/move(_:from:heldBy:to:)`` looks at.
enum OpSelection: Sendable, Hashable {
    case ids([OpID])
    /// Every op of the outbox (in the given states).
    case all
}

extension WriteTransaction {
    /// Queues a new op: pending, due now.
    mutating func insertOp(_ kind: OpKind, _ collection: CollectionID, _ tweet: TweetID, hlc: HLC) throws -> OpID {
        try db.run("""
            INSERT INTO ops (collection_id, tweet_id, kind, state, hlc, created_at)
            VALUES (?, ?, ?, 'pending', ?, ?)
            """, .text(collection.rawValue), .text(tweet.rawValue), .text(kind.rawValue), .integer(hlc.rawValue), .integer(wallMillis))
        counterChanges[collection, default: CounterChange()].pending += 1
        return OpID(db.lastInsertRowID)
    }

    /// Moves the selected ops that are in one of `states` (and, when `holder` is given, were
    /// claimed by it) to `target`, one statement per state; returns how many moved. Ops in
    /// another state, or held by another flusher, are left alone.
    @discardableResult
    mutating func move(_ selection: OpSelection, from states: [OpState], heldBy holder: String? = nil, to target: OpTarget) throws -> Int {
        var filter = ""
        var bindings: [SQLiteValue] = []
        switch selection {
        case .ids(let ids):
            guard !ids.isEmpty else { return 0 }
            filter = ids.count == 1 ? "id = ?1" : "id IN (SELECT value FROM json_each(?1))"
            bindings.append(ids.count == 1 ? .integer(ids[0].rawValue) : .text(Self.jsonArray(ids.map { String($0.rawValue) })))
        case .all:
            filter = "?1 IS NULL"
            bindings.append(.null)
        }
        bindings.append(holder.map(SQLiteValue.text) ?? .null)
        let change: String
        switch target {
        case .claimed(let by):
            change = "UPDATE ops SET state = 'in_flight', attempts = attempts + 1, claimed_by = ?4"
            bindings += [.null, .text(by)]
        case .backedOff(let until, let error):
            change = "UPDATE ops SET state = 'pending', next_attempt_at = ?4, last_error = ?5, claimed_by = NULL"
            bindings += [.null, .integer(until), .text(error)]
        case .released(let error, let until):
            change = """
                UPDATE ops SET state = 'pending', attempts = max(attempts - 1, 0), next_attempt_at = ?4, last_error = ?5, claimed_by = NULL
                """
            bindings += [.null, .int(until), .text(error)]
        case .failed(let reason):
            change = "UPDATE ops SET state = 'failed', next_attempt_at = NULL, last_error = ?4, claimed_by = NULL"
            bindings += [.null, .text(reason)]
        case .retried:
            change = "UPDATE ops SET state = 'pending', next_attempt_at = NULL"
            bindings += [.null]
        case .recovered:
            change = "UPDATE ops SET state = 'pending', claimed_by = NULL"
            bindings += [.null]
        case .gone:
            change = "DELETE FROM ops"
            bindings += [.null]
        }
        // ?1 the selection, ?2 the holder (or NULL: any), ?3 the state it leaves.
        let sql = "\(change) WHERE \(filter) AND state = ?3 AND (?2 IS NULL OR claimed_by = ?2) RETURNING collection_id"
        var moved = 0
        for state in states {
            bindings[2] = .text(state.rawValue)
            // Consecutive rows usually share a collection: a string is made only when it changes.
            var runs: [(CollectionID, Int)] = []
            try db.forEach(sql, bindings) { row in
                if let last = runs.last, row.equals(0, last.0.rawValue) {
                    runs[runs.count - 1].1 += 1
                } else {
                    runs.append((CollectionID(trusted: row.string(0)), 1))
                }
            }
            for (collection, count) in runs {
                moved += count
                counterChanges[collection, default: CounterChange()].add(-count, to: state)
                if let new = target.state { counterChanges[collection, default: CounterChange()].add(count, to: new) }
            }
        }
        return moved
    }

    /// A JSON array of already-encoded JSON values.
    static func jsonArray(_ values: [String]) -> String {
        "[" + values.joined(separator: ",") + "]"
    }
}

extension WriteTransaction.CounterChange {
    mutating func add(_ count: Int, to state: OpState) {
        switch state {
        case .pending: pending += count
        case .inFlight: inFlight += count
        case .failed: failed += count
        }
    }
}
