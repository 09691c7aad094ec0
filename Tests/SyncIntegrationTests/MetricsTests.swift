import CollectionSync
import CollectionsAPI
import CollectionsMock
import Foundation
import MetricsTestKit
import Testing
import TestSupport

/// The metrics an application sees, through its own factory (never bootstrapped by the library),
/// from a flush and a pull against the mock over loopback.
@Suite("Metrics: ops, requests, queue and rate limits", .timeLimit(.minutes(1)))
struct MetricsTests {
    @Test("a flush and a pull: ops queued, applied and reconciled, requests by endpoint and outcome with their latency, the queue")
    func flushAndPull() async throws {
        let metrics = TestMetrics()
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ids(1...3))
            let collection = try CollectionID(validating: id)
            let (store, engine, transport) = try await open(server, metrics)
            try await store.remove(tweetIDs(1...2) + tweetIDs(7...7), from: collection)   // 7 is not there: reconciled
            try await store.add(tweetIDs(9...9), to: collection)
            #expect(metrics.counterTotal(label: "collectionsync_ops_queued_total", dimensions: [("kind", "remove")]) == 3)
            #expect(metrics.counterTotal(label: "collectionsync_ops_queued_total", dimensions: [("kind", "add")]) == 1)
            try await gauge(metrics, "collectionsync_queue_depth", [("state", "pending")], is: nil)

            let report = try await engine.flush()
            #expect(report.applied == 3 && report.alreadyApplied == 1)
            #expect(metrics.counterTotal(label: "collectionsync_ops_applied_total", dimensions: [("kind", "remove")]) == 2)
            #expect(metrics.counterTotal(label: "collectionsync_ops_applied_total", dimensions: [("kind", "add")]) == 1)
            #expect(metrics.counterTotal(label: "collectionsync_ops_reconciled_total", dimensions: [("kind", "remove")]) == 1)
            #expect(metrics.counterTotal(label: "collectionsync_ops_failed_total") == 0)
            let curate = [("endpoint", Endpoint.curate.rawValue), ("outcome", "success")]
            #expect(metrics.counterTotal(label: "collectionsync_requests_total", dimensions: curate) == 1)
            let latency = try metrics.expectTimer("collectionsync_request_duration_seconds", [("endpoint", Endpoint.curate.rawValue)])
            #expect(latency.values.count == 1 && latency.values[0] > 0)
            try await gauge(metrics, "collectionsync_queue_depth", [("state", "pending")], is: 0)
            try await gauge(metrics, "collectionsync_oldest_pending_age_seconds", [], is: 0)

            try await engine.pull(collection)
            #expect(metrics.counterTotal(label: "collectionsync_requests_total",
                                         dimensions: [("endpoint", Endpoint.entries.rawValue), ("outcome", "success")]) >= 1)
            try await transport.shutdown()
        }
    }

    @Test("failures by outcome, dead letters, the queue left behind, and rate-limited seconds counted once per window")
    func failuresAndRateLimits() async throws {
        let metrics = TestMetrics()
        try await withMockServer { server in
            let id = try server.createCollection(tweetIDs: ids(1...3))
            let collection = try CollectionID(validating: id)
            let (store, engine, transport) = try await open(server, metrics)
            try await store.remove(tweetIDs(1...2), from: collection)
            server.rateLimit(until: server.now + 600)
            let limited = try await engine.flush()
            guard case .rateLimited = limited.stopReason else { Issue.record("\(limited.stopReason)"); return }
            #expect(metrics.counterTotal(label: "collectionsync_requests_total",
                                         dimensions: [("endpoint", Endpoint.curate.rawValue), ("outcome", "rateLimited")]) == 1)
            // (TestMetrics keeps a floating-point counter as a counter of whole units.)
            func seconds() -> Int64 {
                metrics.counterTotal(label: "collectionsync_rate_limited_seconds_total", dimensions: [("endpoint", Endpoint.curate.rawValue)])
            }
            #expect((590...601).contains(seconds()), "about the 600 s window: \(seconds())")
            let first = seconds()
            _ = try await engine.flush()   // the same window again: not counted twice
            #expect(seconds() <= first + 1)
            try await gauge(metrics, "collectionsync_queue_depth", [("state", "pending")], is: 2)
            let age = try metrics.expectGauge("collectionsync_oldest_pending_age_seconds")
            #expect((age.lastValue ?? -1) >= 0)
            try await transport.shutdown()
        }
    }

    private func open(_ server: MockCollectionsServer, _ metrics: TestMetrics) async throws
        -> (SyncStore, SyncEngine, AsyncHTTPClientTransport) {
        let folder = TemporaryFolder()
        var storeConfiguration = SyncStore.Configuration()
        storeConfiguration.metricsFactory = metrics
        let store = try await SyncStore.open(at: folder.path("sync.sqlite"), configuration: storeConfiguration)
        let transport = AsyncHTTPClientTransport()
        var clientConfiguration = CollectionsClient.Configuration()
        clientConfiguration.metricsFactory = metrics
        let client = try CollectionsClient(baseURL: server.baseURL, credentials: server.credentials.apiCredentials,
                                           transport: transport, configuration: clientConfiguration)
        var configuration = SyncEngine.Configuration()
        configuration.metricsFactory = metrics
        configuration.jitter = { 0 }
        return (store, try SyncEngine(store: store, client: client, configuration: configuration), transport)
    }

    /// The gauge's last value (nil: never recorded).
    private func gauge(_ metrics: TestMetrics, _ label: String, _ dimensions: [(String, String)], is expected: Double?,
                       sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let last = (try? metrics.expectGauge(label, dimensions))?.lastValue
        #expect(last == expected, "\(label) \(dimensions)", sourceLocation: sourceLocation)
    }
}
