import CollectionsAPI
import Foundation
import ServiceLifecycle

extension SyncEngine {
    /// Pulls a collection: pages through all its entries and, only when every page has arrived,
    /// merges them (last-writer-wins) in one transaction. A failed pull changes nothing.
    ///
    /// Its answers are read by the flush's rules: a clock-skew answer is
    /// retried once with the server's clock, and a 404 means a missing collection only when this
    /// base URL has answered before and `collections/show` confirms it.
    ///
    /// A graceful shutdown of the service group it runs in lets the page on the wire arrive and
    /// starts no other: a pull that has not fetched every page then throws
    /// `CollectionsAPIError` with code `.cancelled` and changes nothing.
    ///
    /// - Parameters:
    ///   - collection: the collection to pull.
    ///   - timeLimit: how long the pull may take, on the engine's clock.
    /// - Throws: `CollectionsAPIError`: code `.notFound` for a collection the API confirms is gone,
    ///   `.configuration` for a base URL that does not serve the API, the answer's own error
    ///   otherwise (the error a flush reports for the same answer: "Errors" in ``SyncEngine``);
    ///   ``SyncError`` for the database.
    @discardableResult
    public func pull(_ collection: CollectionID, timeLimit: Duration? = nil) async throws -> PullReport {
        let collection = try await store.pullTarget(collection)
        if collection.isLocal {
            // Made here and not created on the server yet: there is nothing to fetch.
            return try await store.unpulledReport(collection)
        }
        let stopwatch = Stopwatch(configuration.clock)
        func remaining() -> Duration? { timeLimit.map { $0 - stopwatch.elapsed } }
        client.setClockOffset(try await store.clockOffset(apiBase: apiBase))
        let start = try await store.beginPull(of: collection)
        var skewRetried = false
        var fetched: (entries: [EntriesPage.Entry], timeline: Timeline?)
        while true {
            do {
                fetched = try await pages(of: collection, remaining)
                // The metadata comes from collections/show (semantics.md, offline collections, 10).
                fetched.timeline = try await client.show(collection, timeout: remaining()).timeline ?? fetched.timeline
                observe(.answered)
                break
            } catch let error as CollectionsAPIError {
                observe(.failed(error))
                let context = AnswerPolicy.Context(skewRetried: skewRetried,
                                                   answeredBefore: try await store.hasAnsweredSuccessfully(apiBase: apiBase),
                                                   pastDeadline: remaining().map { $0 <= .zero } ?? false,
                                                   apiBase: apiBase, collection: collection)
                switch AnswerPolicy.failure(error, context) {
                case .correctClock(let serverDate):
                    let offset = AnswerPolicy.clockOffset(serverDate: serverDate, now: store.wallClock.nowMillis())
                    adopt(clockOffset: offset)
                    try await store.recordClockOffset(offset, apiBase: apiBase)
                    skewRetried = true
                case .confirmMissing:
                    throw try await confirmMissing(collection, context, after: error, timeout: remaining())
                case .stop(.configuration(let stop)) where error.code == .notFound:
                    throw stop
                default:
                    throw error
                }
            }
        }
        try await store.recordAPISuccess(apiBase: apiBase)
        let remote = fetched.entries.map { RemoteEntry(tweet: $0.tweet, sortIndex: $0.sortIndex, featureContext: $0.featureContext) }
        let metadata = fetched.timeline.map {
            CollectionMetadata(name: $0.name, description: $0.description, url: $0.url, userID: $0.userID,
                               collectionURL: $0.collectionURL, timelineOrder: $0.timelineOrder)
        }
        let report = try await store.mergePull(start, entries: remote, metadata: metadata)
        emit(.pulled(report))
        // A pull can cancel queued ops (a remote write newer than the edit).
        if let status = try? await store.status() { metrics.queue(status, now: store.wallClock.now()) }
        logger.info("pulled", metadata: ["collection.id": "\(collection)", "pull.entries": "\(report.entries)",
                                         "pull.remote_writes": "\(report.remoteWrites)", "pull.conflicts": "\(report.conflicts)"])
        return report
    }

    /// Every entry of a collection, paging back with `max_position` = the previous page's
    /// `min_position`, de-duplicated by tweet id; stops when `was_truncated` is false or a page
    /// adds nothing new. Returns the entries newest first and the timeline object, if sent.
    private func pages(of collection: CollectionID, _ remaining: () -> Duration?) async throws
        -> (entries: [EntriesPage.Entry], timeline: Timeline?) {
        var seen = Set<TweetID>()
        var entries: [EntriesPage.Entry] = []
        var timeline: Timeline?
        var maxPosition: String?
        var fetched = 0
        while true {
            if Task.isShuttingDownGracefully {
                throw CollectionsAPIError(code: .cancelled, message: "the pull of \(collection) was interrupted after \(plural(fetched, "page")); nothing changed")
            }
            let page = try await client.entries(of: collection, count: 200, maxPosition: maxPosition, timeout: remaining())
            observe(.answered)
            fetched += 1
            timeline = timeline ?? page.timeline
            var added = 0
            for entry in page.entries where seen.insert(entry.tweet).inserted {
                entries.append(entry)
                added += 1
            }
            emit(.pageFetched(collection: collection, pages: fetched, entries: entries.count))
            guard page.position.wasTruncated, added > 0, let next = page.position.minPosition, next != maxPosition else { break }
            maxPosition = next
        }
        return (entries, timeline)
    }

    /// The error a pull throws after a 404 / 34, once `collections/show` has said what it means.
    private func confirmMissing(_ collection: CollectionID, _ context: AnswerPolicy.Context, after error: CollectionsAPIError,
                                timeout: Duration?) async throws -> CollectionsAPIError {
        var shown: CollectionsAPIError?
        do {
            _ = try await client.show(collection, timeout: timeout)
        } catch let show as CollectionsAPIError {
            shown = show
        }
        switch AnswerPolicy.confirmation(shown, context) {
        case .collectionGone:
            // Confirmed destroyed: marked gone, its waiting ops failed (the pull still throws).
            try await store.markGone(collection)
            return CollectionsAPIError(code: .notFound, message: "no collection \(collection) at \(apiBase)",
                                       httpStatus: error.httpStatus, apiErrorCode: error.apiErrorCode)
        case .stop(.configuration(let stop)):
            return stop
        default:
            return shown ?? error
        }
    }

    /// The watch loop: holds the flusher lease and flushes whenever ops are due (new edits from
    /// any process, or backoff and rate-limit waits that ended), checking every
    /// ``Configuration/watchInterval``. Ends when its task is cancelled, releasing the lease.
    /// While another flusher holds the lease it waits.
    ///
    /// It is a swift-service-lifecycle `Service`: a graceful shutdown of its group ends it as
    /// cancellation does, except that the answers on the wire are awaited and committed first.
    public func run() async throws {
        var lease: FlusherLease?
        func stopping() -> Bool { Task.isCancelled || Task.isShuttingDownGracefully }
        func pause(_ duration: Duration) async throws {
            let clock = configuration.clock
            try await cancelWhenGracefulShutdown { try await clock.sleep(for: duration) }
        }
        do {
            while !stopping() {
                if lease == nil, case .acquired(let acquired) = try await store.acquireFlusherLease(ttl: configuration.leaseTTL) {
                    lease = noteLease(acquired)
                }
                guard let held = lease else {
                    try await pause(configuration.watchInterval)
                    continue
                }
                do {
                    // The heartbeat keeps the lease while this holder flushes and sleeps.
                    try await withHeartbeat(held) {
                        while !stopping() {
                            let report = try await drain(lease: held, options: FlushOptions(), stopwatch: Stopwatch(configuration.clock))
                            emit(.stopped(report))
                            var interval = configuration.watchInterval
                            if case .authentication = report.stopReason { interval = max(interval, .seconds(60)) }
                            if case .configuration = report.stopReason { interval = max(interval, .seconds(60)) }  // nothing changes by itself soon
                            try await pause(interval)
                        }
                    }
                } catch let error as SyncError where error.code == .leaseNotHeld {
                    lease = nil
                } catch let error as SyncError where error.isRetryable {
                    // The database was locked past the timeout by another process: try again later.
                    logger.warning("watch: database busy, retrying", metadata: ["error": "\(error)"])
                    try await pause(configuration.watchInterval)
                }
            }
        } catch is CancellationError {
            // Cancelled (or shut down) while sleeping: the end of the loop.
        } catch {
            if let held = lease { try? await store.releaseFlusherLease(held) }
            finishEvents()
            throw error
        }
        // The store does not observe cancellation: the lease is released even now.
        if let held = lease { try await store.releaseFlusherLease(held) }
        finishEvents()
    }
}
