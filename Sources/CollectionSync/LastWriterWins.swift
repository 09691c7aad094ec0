/// The pull merge's decision for one key, as a pure function of what is known about it.
///
/// See semantics.md, "Pull and last-writer-wins".
enum LastWriterWins {
    /// What the store knows about a key when a pull's page set arrives.
    struct Key: Hashable {
        /// Whether the server's collection holds the tweet now.
        var server: Bool
        /// What the server was last known to have and when that was learned.
        var base: Base?
        /// The key's newest op when it is pending or failed (the user's latest intent).
        var waiting: Waiting?
        /// Whether an op for the key is in flight.
        var inFlight = false

        struct Base: Hashable {
            var present: Bool
            var learned: HLC
        }

        struct Waiting: Hashable {
            var kind: OpKind
            var hlc: HLC
        }
    }

    /// What to do with the key.
    struct Decision: Hashable {
        /// Set the base to the server's value, learned at the pull's start.
        var takeBase = false
        /// A remote write happened; the earliest moment it can have happened.
        var remoteWrite: HLC?
        /// The remote write (or, on a first pull, the server's value) disagreed with the waiting op.
        var conflict: LogEvent.Winner?
        /// Remote won: the waiting op is cancelled.
        var cancelWaiting = false

        static let nothing = Decision()
    }

    /// Decides one key.
    /// - Parameters:
    ///   - previousPull: the start of the collection's last complete pull, nil on the first pull.
    ///   - pullStart: the start of this pull.
    static func decide(_ key: Key, previousPull: HLC?, pullStart: HLC) -> Decision {
        // The answer to an in-flight op will set a base newer than this pull saw; but on a first
        // pull the server's value is still loaded, so that a failed answer reverts the view to it.
        if key.inFlight { return key.base == nil && previousPull == nil ? Decision(takeBase: true) : .nothing }
        let base: Key.Base
        if let known = key.base {
            // A base learned after the pull started (a flush answer) is newer than the pull.
            if known.learned > pullStart { return .nothing }
            base = known
        } else if let previousPull {
            // Not seen by the previous complete pull, and not touched since: absent as of then.
            base = Key.Base(present: false, learned: previousPull)
        } else {
            // First pull of the collection: load the base; a disagreeing waiting op wins.
            var decision = Decision(takeBase: true)
            if let waiting = key.waiting, waiting.kind.present != key.server { decision.conflict = .local }
            return decision
        }
        guard base.present != key.server else { return .nothing }

        let stamp = max(previousPull ?? .zero, base.learned)
        var decision = Decision(takeBase: true, remoteWrite: stamp)
        if let waiting = key.waiting, waiting.kind.present != key.server {
            // An op made after the remote write's earliest moment is newer or concurrent: local wins.
            if waiting.hlc > stamp {
                decision.conflict = .local
            } else {
                decision.conflict = .remote
                decision.cancelWaiting = true
            }
        }
        return decision
    }
}

extension LastWriterWins {
    /// The same rule for one field of a collection's metadata (semantics.md, offline collections,
    /// 10): `server` is its value now, `base` what the server was last known to have and when,
    /// `waiting` the user's waiting intent for it. The value "present" of an entry is here a string.
    static func decide(field server: String, base: (value: String, learned: HLC)?, waiting: (value: String, hlc: HLC)?,
                       previousPull: HLC?, pullStart: HLC) -> Decision {
        let base: (value: String, learned: HLC)? = base.flatMap { $0.learned > pullStart ? nil : $0 }
        guard let base else {
            // Never learned from the server (a first pull): load it; a disagreeing intent wins.
            var decision = Decision(takeBase: true)
            if let waiting, waiting.value != server { decision.conflict = .local }
            return decision
        }
        guard base.value != server else { return Decision(takeBase: true) }
        let stamp = max(previousPull ?? .zero, base.learned)
        var decision = Decision(takeBase: true, remoteWrite: stamp)
        if let waiting, waiting.value != server {
            if waiting.hlc > stamp {
                decision.conflict = .local
            } else {
                decision.conflict = .remote
                decision.cancelWaiting = true
            }
        }
        return decision
    }
}
