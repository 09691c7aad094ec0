import CollectionSync
import CollectionsAPI
import CollectionsMock
import Foundation
import Testing
import TestSupport

/// The README's snippets as an app writes them: from `@MainActor` code (a UI's model), where a
/// helper that took a plain closure did not compile under Swift 6 ("sending value of
/// non-Sendable type ... risks causing data races"). Compiled on every build, and run.
@MainActor
final class ReadingListModel {
    private(set) var shown: [[String]] = []

    func run(folder: TemporaryFolder) async throws {
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ["20", "21", "22"])
            let collection = try CollectionID(validating: id)
            let store = try await SyncStore.open(at: folder.path("app.sqlite"))
            try await AsyncHTTPClientTransport.withTransport { transport in
                let client = try CollectionsClient(baseURL: server.baseURL, credentials: server.credentials.apiCredentials,
                                                   transport: transport)
                let engine = try SyncEngine(store: store, client: client)
                try await engine.pull(collection)
                var values = store.observeEntries(of: collection).makeAsyncIterator()
                self.shown.append(try await values.next()?.map(\.tweet.rawValue).sorted() ?? [])
                try await store.remove([try TweetID(validating: "21")], from: collection)  // offline, at once
                self.shown.append(try await values.next()?.map(\.tweet.rawValue).sorted() ?? [])
                let report = try await engine.flush(FlushOptions(timeLimit: .seconds(30)))
                #expect(report.applied == 1 && server.tweetIDs(of: id)?.sorted() == ["20", "22"])
            }
        }
    }
}

@Suite("The README's snippets, from main-actor code", .timeLimit(.minutes(1)))
struct SnippetTests {
    @Test("withMockServer, withTransport and observation from a @MainActor model")
    @MainActor
    func mainActorModel() async throws {
        let folder = TemporaryFolder()
        let model = ReadingListModel()
        try await model.run(folder: folder)
        #expect(model.shown == [["20", "21", "22"], ["20", "22"]])
    }
}
