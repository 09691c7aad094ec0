import CollectionsAPI

/// What a change-envelope answer means for each op of the request, as semantics.md's table says:
/// not in `errors` is applied; remove + `not_found` and add + `duplicate` are already applied;
/// any other reason (or add + `not_found`) is a permanent failure of that one op.
enum AnswerOutcomes {
    static func outcome(for kind: OpKind, _ change: ChangeOutcome) -> OpOutcome {
        switch (kind, change) {
        case (_, .applied): .applied
        case (.remove, .refused("not_found")), (.add, .refused("duplicate")): .alreadyApplied
        case (_, .refused(let reason)): .failed(reason: reason)
        }
    }

    static func change(for op: Op) -> EntryChange {
        EntryChange(op: op.kind == .add ? .add : .remove, tweetID: op.tweet.rawValue)
    }
}
