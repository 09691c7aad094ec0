import CollectionsAPI
import Foundation

/// What an op asks the server to do: with a key (`add`, `remove`), or with a collection
/// (`create`, `update`, `destroy`: these ops have no tweet).
public enum OpKind: String, Sendable, Hashable, CaseIterable {
    case add
    case remove
    /// Make a collection made locally (`collections/create`).
    case create
    /// Change a collection's name, description or url (`collections/update`).
    case update
    /// Destroy a collection (`collections/destroy`).
    case destroy

    /// The membership this intent leads to.
    var present: Bool { self == .add }

    /// Whether the op is about a collection itself, not one of its entries.
    public var isCollectionOp: Bool { self == .create || self == .update || self == .destroy }
}

/// Where an op is in its life. Applied ops leave the outbox.
public enum OpState: String, Sendable, Hashable, CaseIterable {
    /// Waiting to be sent (possibly not before ``Op/nextAttemptAt``).
    case pending
    /// Claimed by a flusher and possibly sent; its answer is not in yet.
    case inFlight = "in_flight"
    /// Dead-lettered: the server refused it. Kept until retried or discarded.
    case failed
    /// The server has its intent (it applied the op, or already had that intent): the op has left
    /// the outbox. Only an event carries an op in this state (``SyncEvent/applied(_:)``,
    /// ``SyncEvent/reconciled(_:)``); the outbox never lists one.
    case applied
}

/// An op as the edit API returns it: what was queued.
public struct QueuedOp: Sendable, Hashable {
    public let id: OpID
    public let kind: OpKind
    /// The collection (its local id while its create is not applied).
    public let collection: CollectionID
    /// The tweet of an `add` or `remove`; nil for a collection op.
    public let tweet: TweetID?
    /// When the user made the edit.
    public let hlc: HLC
}

/// An op in the outbox with its state.
public struct Op: Sendable, Hashable {
    public let id: OpID
    public let kind: OpKind
    /// The collection: its server id, or its local id while its create is not applied.
    public let collection: CollectionID
    /// The tweet of an `add` or `remove`; nil for a collection op.
    public let tweet: TweetID?
    public let state: OpState
    /// When the user made the edit; the LWW merge compares it with remote writes.
    public let hlc: HLC
    public let createdAt: Date
    /// Attempts counted so far (auth and configuration stops are not counted).
    public let attempts: Int
    /// Not sent before this time; nil means due now.
    public let nextAttemptAt: Date?
    /// Why the last attempt did not apply it, if it did not.
    public let lastError: String?
}

/// An entry of a collection's local view.
public struct Entry: Sendable, Hashable {
    public let tweet: TweetID
    /// The server's opaque `sort_index`, nil for an entry added locally and not yet pulled.
    public let sortIndex: String?
    /// `.add` when the entry is present because of an add not yet applied on the server.
    public let pending: OpKind?
}

/// A line of the last-writer-wins log.
public struct LogEvent: Sendable, Hashable {
    /// What happened. An open set: unknown names read from a newer database are kept as they are.
    public struct Kind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The user edited a key (an op was queued).
        public static let localWrite = Kind(rawValue: "local_write")
        /// A waiting op was replaced by a newer intent on the same key.
        public static let coalesced = Kind(rawValue: "coalesced")
        /// The server applied an op.
        public static let applied = Kind(rawValue: "applied")
        /// A remove answered `not_found`: the tweet was already absent.
        public static let alreadyRemoved = Kind(rawValue: "already_removed")
        /// An add answered `duplicate`: the tweet was already present.
        public static let alreadyPresent = Kind(rawValue: "already_present")
        /// The server refused an op for good; it is dead-lettered.
        public static let failed = Kind(rawValue: "failed")
        /// A dead-lettered op was put back to pending.
        public static let retried = Kind(rawValue: "retried")
        /// An op was dropped by the user; the local view went back to the base.
        public static let discarded = Kind(rawValue: "discarded")
        /// A collection was made locally (its local id) and its create queued.
        public static let created = Kind(rawValue: "created")
        /// A create was answered (or matched by listing): the local id is bound to the server id.
        public static let bound = Kind(rawValue: "bound")
        /// The server confirmed an update of a collection's metadata.
        public static let updated = Kind(rawValue: "updated")
        /// The server confirmed (or a 404 showed) that a collection is destroyed.
        public static let destroyed = Kind(rawValue: "destroyed")
        /// After a create's unknown outcome, several listed collections matched it: the newest was
        /// bound; ``LogEvent/detail`` names every candidate.
        public static let createAmbiguous = Kind(rawValue: "create_ambiguous")
        /// A pull saw a change made on the server since the base was learned.
        public static let remoteWrite = Kind(rawValue: "remote_write")
        /// A remote write and a waiting op disagreed; ``LogEvent/winner`` says who won.
        public static let conflict = Kind(rawValue: "conflict")
    }

    /// Who won a conflict.
    public enum Winner: String, Sendable, Hashable {
        case local
        case remote
    }

    public let id: Int64
    /// When it was logged; with ``replicaID`` a total order across replicas.
    public let hlc: HLC
    public let replicaID: String
    public let event: Kind
    public let collection: CollectionID
    public let tweet: TweetID?
    public let op: OpID?
    public let winner: Winner?
    /// The local op's time, for events about an op.
    public let localHLC: HLC?
    /// The remote write's time: the earliest moment it can have happened.
    public let remoteHLC: HLC?
    public let detail: String

    /// The wall-clock time of ``hlc``.
    public var at: Date { hlc.date }
}

/// Counts of ops by state.
public struct OpCounts: Sendable, Hashable {
    public var pending = 0
    public var inFlight = 0
    public var failed = 0
    public init(pending: Int = 0, inFlight: Int = 0, failed: Int = 0) {
        self.pending = pending
        self.inFlight = inFlight
        self.failed = failed
    }
}

/// The queue and sync state of one collection.
public struct CollectionStatus: Sendable, Hashable {
    public let id: CollectionID
    /// Entries present in the local view.
    public let entries: Int
    public let ops: OpCounts
    /// When the last complete pull started.
    public let lastPulledAt: Date?
}

/// The queue and sync state of the whole database.
public struct SyncStatus: Sendable, Hashable {
    public let ops: OpCounts
    /// Creation time of the oldest pending op.
    public let oldestPendingAt: Date?
    /// The earliest time a pending op that is not due now becomes due.
    public let nextAttemptAt: Date?
    /// Nothing is sent to some endpoint before this time.
    public let rateLimitedUntil: Date?
    public let lastFlushAt: Date?
    public let collections: [CollectionStatus]
}

/// Which ops ``SyncStore/outbox(_:)`` lists.
public enum OutboxFilter: Sendable, Hashable {
    /// Pending and in-flight ops.
    case waiting
    /// Dead-lettered ops.
    case failed
    /// Every op.
    case all
}
