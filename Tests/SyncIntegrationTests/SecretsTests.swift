@testable import CollectionSync
import CollectionsAPI
import CollectionsMock
import Foundation
import Logging
import Testing
import TestSupport

@Suite("Secrets: no credential in logs (every level), errors, events, reports or the database")
struct SecretsTests {
    @Test("a working day with every fault, logged at trace: the credentials appear nowhere")
    func sweep() async throws {
        let captured = LogCapture()
        let logger = Logger(label: "secrets") { _ in captured.handler }
        var configuration = MockConfiguration()
        configuration.logger = logger
        configuration.rateLimits = .unlimited
        try await withMockServer(configuration: configuration) { server in
            let mock = server.credentials
            let id = try server.createCollection(tweetIDs: ids(1...20))
            let collection = try CollectionID(validating: id)
            let folder = TemporaryFolder()
            let store = try await SyncStore.open(at: folder.path("sync.sqlite"), logger: logger)
            var texts: [String] = []
            let wrong = APICredentials.oauth1(consumerKey: mock.consumerKey, consumerSecret: "wrong-" + mock.consumerSecret,
                                              accessToken: mock.accessToken, accessTokenSecret: "wrong-" + mock.accessTokenSecret)
            for credentials in [mock.apiCredentials, wrong] {
                try await AsyncHTTPClientTransport.withTransport { transport in
                    let client = try CollectionsClient(baseURL: server.baseURL, credentials: credentials, transport: transport, logger: logger)
                    var engineConfiguration = SyncEngine.Configuration()
                    engineConfiguration.jitter = { 0 }
                    let engine = try SyncEngine(store: store, client: client, configuration: engineConfiguration, logger: logger)
                    let events = engine.events()
                    let seen = LogCapture()
                    let collector = Task { for await event in events { seen.record("\(event)") } }
                    func attempt(_ body: () async throws -> Any) async {
                        do { texts.append("\(try await body())") } catch {
                            texts += ["\(error)", String(reflecting: error), error.localizedDescription]
                        }
                    }
                    try await store.remove(tweetIDs(1...3), from: collection)
                    try await store.add(tweetIDs(30...31), to: collection)
                    await attempt { try await engine.pull(collection) }
                    let faults: [MockFault.Kind] = [.fail(status: 401, code: 89, message: nil), .fail(status: 503, code: 130, message: nil),
                                                    .malformedBody(body: nil), .truncatedBody, .dropAfterApply, .reset, .resetAfterApply]
                    for fault in faults {
                        server.inject(MockFault(fault), count: 1)
                        try await store.remove(tweetIDs(4...5), from: collection)
                        await attempt { try await engine.flush() }
                    }
                    server.setClockOffset(900)
                    await attempt { try await engine.flush() }
                    server.clearFaults()
                    await server.beginOutage()
                    await attempt { try await engine.flush() }
                    try await server.endOutage()
                    await attempt { try await engine.flush(FlushOptions(timeLimit: .seconds(20), wait: true)) }
                    await attempt { try await client.show(try CollectionID(validating: "custom-404")) }
                    texts.append("\(credentials)")
                    texts.append(String(reflecting: credentials))
                    collector.cancel()
                    texts += seen.lines
                }
            }
            texts += try await store.log(limit: 10_000).map { "\($0)" }
            texts += try await store.outbox(.all).map { "\($0)" }
            let database = folder.path("sync.sqlite")
            let files = [database, database + "-wal"].compactMap { try? Data(contentsOf: URL(fileURLWithPath: $0)) }
            let logs = captured.lines
            #expect(logs.count > 20, "the sweep must see real log output, not nothing")
            let haystack = (logs + texts).joined(separator: "\n") + files.map { String(decoding: $0, as: UTF8.self) }.joined()
            // The failure message names which credential leaked, never the text around it.
            let named = [("consumer secret", mock.consumerSecret), ("token secret", mock.accessTokenSecret),
                         ("access token", mock.accessToken), ("consumer key", mock.consumerKey)]
            let leaked = named.filter { haystack.contains($0.1) }.map(\.0)
            #expect(leaked.isEmpty, "leaked: \(leaked)")
        }
    }
}
