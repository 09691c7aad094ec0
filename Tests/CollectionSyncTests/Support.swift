import CollectionSync
import Foundation
import Testing
@_exported import TestSupport
import Synchronization

/// A wall clock the test sets by hand.
final class ManualWallClock: Sendable {
    private let millis: Mutex<Int64>

    init(_ millis: Int64 = 1_800_000_000_000) { self.millis = Mutex(millis) }

    var now: Int64 { millis.withLock { $0 } }
    func set(_ value: Int64) { millis.withLock { $0 = value } }
    func advance(by delta: Int64) { millis.withLock { $0 += delta } }

    var wallClock: WallClock { WallClock { [self] in now } }
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
