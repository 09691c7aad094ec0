import CollectionSync
import Foundation
import Testing
import TestSupport

/// An app observing its database while `syncctl`, another process, edits it.
@Suite("Observation across processes", .timeLimit(.minutes(1)))
struct ObservationProcessTests {
    let folder = TemporaryFolder()
    var db: String { folder.path("sync.sqlite") }

    @Test("every change syncctl commits reaches the observer, in order, none repeated")
    func syncctlEdits() async throws {
        #expect(try await Syncctl.run(["add", "custom-1", "1", "2"], db: db, folder: folder).status == 0)
        let store = try await SyncStore.open(at: db)
        let collection = try CollectionID(validating: "custom-1")
        var values = store.observeEntries(of: collection).makeAsyncIterator()
        var status = store.observeStatus().makeAsyncIterator()
        func view() async throws -> Set<String>? { try await values.next().map { Set($0.map(\.tweet.rawValue)) } }
        #expect(try await view() == ["1", "2"])
        #expect(try await status.next()?.ops.pending == 2)
        for (arguments, expected) in [(["remove", "custom-1", "1"], Set(["2"])), (["add", "custom-1", "3", "4"], ["2", "3", "4"]),
                                      (["remove", "custom-1", "2"], ["3", "4"])] {
            #expect(try await Syncctl.run(arguments, db: db, folder: folder).status == 0)
            #expect(try await view() == expected, "after syncctl \(arguments)")
        }
        // Asked again, the status observer gives the newest value (the ones between are not queued up).
        let newest = try await store.status()
        #expect(try await status.next() == newest && newest.ops.pending != 2)
    }
}
