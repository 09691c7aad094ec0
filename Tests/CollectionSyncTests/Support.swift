@_spi(Worker) import CollectionSync
import Foundation
import Testing
@_exported import TestSupport
import Synchronization

/// Virtual time for a test: the store's wall clock and the engine's clock in one, moved by hand.
///
/// A sleep with no tolerance (the flush's own waits: backoff, rate limits, the watch interval)
/// returns at once and moves time to its end, as if the wait had passed. A sleep with a
/// tolerance (the lease's heartbeat, which runs beside the flush) waits until time passes its
/// end, moved by the test or by such a sleep, so that it never moves time by itself.
final class ManualWallClock: Sendable {

    private struct Sleeper {
        let until: Int64
        let wake: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var millis: Int64
        var sleepers: [UInt64: Sleeper] = [:]
        var nextSleeper: UInt64 = 0
    }

    private let state: Mutex<State>

    init(_ millis: Int64 = 1_800_000_000_000) { state = Mutex(State(millis: millis)) }

    var now: Int64 { state.withLock { $0.millis } }
    func set(_ value: Int64) { move { $0 = value } }
    func advance(by delta: Int64) { move { $0 += delta } }

    var wallClock: WallClock { WallClock { [self] in now } }

    /// The same time as the engine's clock (``SyncEngine/Configuration/clock``).
    var clock: VirtualClock { VirtualClock(time: self) }

    struct VirtualClock: Clock {
        struct Instant: InstantProtocol {
            var millis: Int64
            func advanced(by duration: Duration) -> Instant { Instant(millis: millis + duration.testMillis) }
            func duration(to other: Instant) -> Duration { .milliseconds(other.millis - millis) }
            static func < (a: Instant, b: Instant) -> Bool { a.millis < b.millis }
        }

        let time: ManualWallClock
        var now: Instant { Instant(millis: time.now) }
        var minimumResolution: Duration { .milliseconds(1) }
        func sleep(until deadline: Instant, tolerance: Duration?) async throws {
            try await time.sleep(until: deadline.millis, tolerance: tolerance)
        }
    }

    fileprivate func sleep(until deadline: Int64, tolerance: Duration?) async throws {
        try Task.checkCancellation()
        guard tolerance != nil else {
            move { $0 = max($0, deadline) }
            return
        }
        let id = state.withLock { state -> UInt64 in
            state.nextSleeper += 1
            return state.nextSleeper
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let due = state.withLock { state -> Bool in
                    if state.millis >= deadline || Task.isCancelled { return true }
                    state.sleepers[id] = Sleeper(until: deadline, wake: continuation)
                    return false
                }
                if due { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.sleepers.removeValue(forKey: id) }?.wake.resume(throwing: CancellationError())
        }
        try Task.checkCancellation()
    }

    /// Moves time and wakes the sleepers it passed.
    private func move(_ change: (inout Int64) -> Void) {
        let woken = state.withLock { state -> [Sleeper] in
            change(&state.millis)
            let due = state.sleepers.filter { $0.value.until <= state.millis }
            for id in due.keys { state.sleepers.removeValue(forKey: id) }
            return Array(due.values)
        }
        for sleeper in woken { sleeper.wake.resume() }
    }
}

extension Duration {
    var testMillis: Int64 {
        let parts = components
        return parts.seconds * 1000 + parts.attoseconds / 1_000_000_000_000_000
    }
}

/// Opens a store in `folder` with a manual clock.
func openStore(_ folder: TemporaryFolder, clock: ManualWallClock = ManualWallClock(), name: String = "sync.sqlite") async throws -> SyncStore {
    var configuration = SyncStore.Configuration()
    configuration.wallClock = clock.wallClock
    return try await SyncStore.open(at: folder.path(name), configuration: configuration)
}

func tweet(_ value: UInt64) -> TweetID { TweetID(value)! }
func tweets(_ values: ClosedRange<UInt64>) -> [TweetID] { values.map(tweet) }
let c1 = try! CollectionID(validating: "custom-1")
let c2 = try! CollectionID(validating: "custom-2")


/// The lease of an acquisition that must have succeeded (an issue and a throw otherwise).
func acquired(_ result: LeaseAcquisition, sourceLocation: SourceLocation = #_sourceLocation) throws -> FlusherLease {
    guard case .acquired(let lease) = result else {
        Issue.record("expected the lease, got \(result)", sourceLocation: sourceLocation)
        throw SyncError(code: .leaseNotHeld, message: "no lease")
    }
    return lease
}

/// What `status` reports per collection equals a count of the rows themselves.
func expectCountersMatchRows(_ store: SyncStore, after step: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let status = try await store.status()
    let counted = try rows(store.path, """
        SELECT c.id,
               (SELECT count(*) FROM ops o WHERE o.collection_id = c.id AND o.state = 'pending'),
               (SELECT count(*) FROM ops o WHERE o.collection_id = c.id AND o.state = 'in_flight'),
               (SELECT count(*) FROM ops o WHERE o.collection_id = c.id AND o.state = 'failed'),
               (SELECT count(*) FROM entries e WHERE e.collection_id = c.id AND e.present = 1)
        FROM collections c ORDER BY c.id
        """)
    let reported = status.collections.map { [$0.id.rawValue, "\($0.ops.pending)", "\($0.ops.inFlight)", "\($0.ops.failed)", "\($0.entries)"] }
    #expect(reported == counted, "after \(step)", sourceLocation: sourceLocation)
}
