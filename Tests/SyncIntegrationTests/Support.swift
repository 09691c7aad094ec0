@testable import CollectionSync
import CollectionsAPI
import CollectionsMock
import Foundation
import TestSupport

/// A store, a client and an engine pointed at a mock server, torn down together.
struct Harness {
    let folder: TemporaryFolder
    let store: SyncStore
    let engine: SyncEngine
    let transport: AsyncHTTPClientTransport
    let server: MockCollectionsServer

    static func start(_ server: MockCollectionsServer, folder: TemporaryFolder = TemporaryFolder(), name: String = "sync.sqlite",
                      credentials: APICredentials? = nil, requestTimeout: Duration? = nil,
                      configure: (inout SyncEngine.Configuration) -> Void = { _ in }) async throws -> Harness {
        let store = try await SyncStore.open(at: folder.path(name))
        let transport = AsyncHTTPClientTransport()
        var clientConfiguration = CollectionsClient.Configuration()
        if let requestTimeout { clientConfiguration.requestTimeout = requestTimeout }
        let client = try CollectionsClient(
            baseURL: server.baseURL,
            credentials: credentials ?? server.credentials.apiCredentials,
            transport: transport, configuration: clientConfiguration)
        var configuration = SyncEngine.Configuration()
        configuration.jitter = { 0 }  // retries are due at once: tests drive them without sleeping
        configure(&configuration)
        let engine = try SyncEngine(store: store, client: client, configuration: configuration)
        return Harness(folder: folder, store: store, engine: engine, transport: transport, server: server)
    }

    func shutdown() async {
        try? await transport.shutdown()
    }

    /// The server's tweets of a collection, as a set.
    func serverTweets(_ collection: String) -> Set<String> {
        Set(server.tweetIDs(of: collection) ?? [])
    }
}

func ids(_ range: ClosedRange<Int>) -> [String] { range.map(String.init) }
func tweetIDs(_ range: ClosedRange<Int>) -> [TweetID] { range.map { TweetID(UInt64($0))! } }
