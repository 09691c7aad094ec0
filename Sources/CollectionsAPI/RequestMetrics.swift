import CoreMetrics

/// The client's metrics, through swift-metrics: this library only emits them; the application
/// bootstraps a backend (`MetricsSystem.bootstrap`), before it makes the client.
///
/// | name | type | dimensions |
/// |---|---|---|
/// | `collectionsync_requests_total` | counter | `endpoint` (`collections/entries/curate`, ...), `outcome` (`success`, or the ``CollectionsAPIError/Code``: `transient`, `rateLimited`, `network`, `timeout`, ...) |
/// | `collectionsync_request_duration_seconds` | timer | `endpoint` |
struct RequestMetrics: Sendable {
    static let requests = "collectionsync_requests_total"
    static let duration = "collectionsync_request_duration_seconds"

    let factory: any MetricsFactory

    init(_ factory: (any MetricsFactory)?) {
        self.factory = factory ?? MetricsSystem.factory
    }

    /// One request to `endpoint` ended with `outcome` after `duration`.
    func record(_ endpoint: Endpoint, outcome: String, duration: Duration) {
        Counter(label: Self.requests, dimensions: [("endpoint", endpoint.rawValue), ("outcome", outcome)], factory: factory)
            .increment()
        let (seconds, attoseconds) = duration.components
        Timer(label: Self.duration, dimensions: [("endpoint", endpoint.rawValue)], preferredDisplayUnit: .seconds, factory: factory)
            .recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
