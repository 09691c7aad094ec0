import CollectionsAPI

/// Where an op goes. These are all the changes of an op's state there are; each one is made by
/// ``WriteTransaction/move(_:of:from:heldBy:to:)``, which is, with
/// ``WriteTransaction/insertOp(_:_:_:hlc:)``, the only code that writes `ops.state` (or
/// inserts or deletes an op). Both keep the per-collection counts that `status` reads exact
/// (0004): the ops newer than `replica.counted_op_id` are counted from their rows, so inserting
/// or moving one changes no counter; moving an older one moves its collection's counters by
/// exactly the rows the statement changed.
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

extension WriteTransaction {
    /// Queues a new op: pending, due now, and counted from its row until the next fold. Its id
    /// is one past the newest op's and the floor that deleting the newest op leaves (0004):
    /// never one that was issued before.
    mutating func insertOp(_ kind: OpKind, _ collection: CollectionID, _ tweet: TweetID?, hlc: HLC, payload: String? = nil) throws -> OpID {
        // NULL: SQLite's id, the newest op's plus one; after the newest op left, the floor's.
        try db.run("""
            INSERT INTO ops (id, collection_id, tweet_id, kind, state, hlc, created_at, payload)
            VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)
            """, .int(opIDGap ? opIDs.last + 1 : nil), .text(collection.rawValue), .string(tweet?.rawValue), .text(kind.rawValue),
            .integer(hlc.rawValue), .integer(wallMillis), .string(payload))
        opIDGap = false
        opIDs.last = db.lastInsertRowID
        return OpID(opIDs.last)
    }

    /// Folds the ops newer than the counters into them when there are many, so that `status`
    /// counts at most about ``foldEvery`` rows (called by ``finish()``).
    mutating func foldOpCounts() throws {
        let (last, counted) = opIDs
        guard last - counted >= Self.foldEvery else { return }
        try db.run("""
            UPDATE collections SET ops_pending = ops_pending + n.pending, ops_in_flight = ops_in_flight + n.in_flight,
                ops_failed = ops_failed + n.failed
            FROM (SELECT collection_id, sum(state = 'pending') AS pending, sum(state = 'in_flight') AS in_flight,
                         sum(state = 'failed') AS failed
                  FROM ops NOT INDEXED WHERE id > ?1 GROUP BY collection_id) n  -- by id range, not ops_by_key
            WHERE collections.id = n.collection_id
            """, .integer(counted))
        try db.run("UPDATE replica SET counted_op_id = ? WHERE singleton = 1", .integer(last))
        opIDs.counted = last
    }

    /// New ops that make a transaction fold them into the counters.
    static let foldEvery: Int64 = 1024

    /// Moves the ops of `collection` with these ids that are in one of `states` (and, when
    /// `holder` is given, were claimed by it) to `target`, one statement per state; returns how
    /// many moved. Ops in another state or collection, or held by another flusher, are left
    /// alone. The counters move by the number of rows each statement changed: nothing is read
    /// back (on a flush's hot path, returning the moved rows cost a sixth of its time). Ops
    /// newer than the counters (counted from their rows) go in a statement of their own.
    @discardableResult
    mutating func move(_ ids: [OpID], of collection: CollectionID, from states: [OpState], heldBy holder: String? = nil,
                       to target: OpTarget) throws -> Int {
        let counted = opIDs.counted
        var moved = 0
        // Usually all of them are counted (older than the fold) or none: one statement.
        let parts: [([OpID], Bool)] = ids.allSatisfy { $0.rawValue <= counted } ? [(ids, true)]
            : ids.allSatisfy { $0.rawValue > counted } ? [(ids, false)]
            : [(ids.filter { $0.rawValue <= counted }, true), (ids.filter { $0.rawValue > counted }, false)]
        for (part, isCounted) in parts where !part.isEmpty {
            // ?1 the ids, ?2 the holder (or NULL: any), ?3 the state the ops leave, then the
            // target's values, then the collection.
            var bindings: [SQLiteValue] = [.text(Self.jsonArray(part)), holder.map(SQLiteValue.text) ?? .null]
            let change = Self.change(to: target, &bindings)
            bindings.append(.text(collection.rawValue))
            // `+collection_id`: the ops are found by id; the collection only filters them (by its
            // index, the planner would walk every op of the collection).
            let sql = "\(change) WHERE id IN (SELECT value FROM json_each(?1)) AND +collection_id = ?\(bindings.count) AND state = ?3 AND (?2 IS NULL OR claimed_by = ?2)"
            for state in states {
                bindings[2] = .text(state.rawValue)
                try db.statement(sql).run(bindings)
                let changed = db.changes
                moved += changed
                if isCounted, changed > 0 { counterChanges[collection, default: CounterChange()].move(changed, from: state, to: target.state) }
            }
        }
        if target == .gone, moved > 0 { try keepOpIDFloor(deleting: ids) }
        return moved
    }

    /// The statement's first part for `target`, its parameters appended to `bindings` from ?3
    /// (?3 is the state the ops leave, bound by the caller).
    private static func change(to target: OpTarget, _ bindings: inout [SQLiteValue]) -> String {
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
        return change
    }

    /// When the newest op leaves the outbox, its id becomes the floor of the ids to come, so
    /// that it is never issued again (0004). An edit never deletes the newest op (it inserts first).
    private mutating func keepOpIDFloor(deleting ids: [OpID]) throws {
        guard let newestGone = ids.max()?.rawValue, newestGone >= opIDs.last else { return }
        try db.run("UPDATE replica SET op_id_floor = max(op_id_floor, ?) WHERE singleton = 1", .integer(newestGone))
        opIDs.last = newestGone
        opIDGap = true
    }

    /// A JSON array of already-encoded JSON values.
    static func jsonArray(_ values: [String]) -> String {
        "[" + values.joined(separator: ",") + "]"
    }

    /// A JSON array of op ids, written byte by byte (a flush writes one per claim and per
    /// answer: a string per id cost more than the statement that reads them).
    static func jsonArray(_ ids: [OpID]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(2 + ids.count * 21)
        bytes.append(UInt8(ascii: "["))
        var digits = [UInt8](repeating: 0, count: 20)
        for (index, id) in ids.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            var value = id.rawValue.magnitude
            if id.rawValue < 0 { bytes.append(UInt8(ascii: "-")) }
            var count = 0
            repeat {
                digits[count] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
                count += 1
            } while value > 0
            for offset in stride(from: count - 1, through: 0, by: -1) { bytes.append(digits[offset]) }
        }
        bytes.append(UInt8(ascii: "]"))
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension WriteTransaction.CounterChange {
    /// `count` ops went from `old` to `new` (nil: out of the outbox).
    mutating func move(_ count: Int, from old: OpState, to new: OpState?) {
        add(-count, to: old)
        if let new { add(count, to: new) }
    }

    private mutating func add(_ count: Int, to state: OpState) {
        switch state {
        case .pending: pending += count
        case .inFlight: inFlight += count
        case .failed: failed += count
        case .applied: break  // out of the outbox: never counted
        }
    }
}
