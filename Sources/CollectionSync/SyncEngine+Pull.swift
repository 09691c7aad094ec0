import CollectionsAPI
import Foundation

extension SyncEngine {
    /// Pulls a collection: pages through all its entries and, only when every page has arrived,
    /// merges them (last-writer-wins) in one transaction. A failed pull changes nothing.
    ///
    /// - Throws: ``CollectionsAPIError`` for the API's failures (a 404 with code 34 is an unknown
    ///   collection when ``SyncStore/hasAnsweredSuccessfully(apiBase:)``, otherwise probably a
    ///   wrong base URL), ``SyncError`` for the database's.
    @discardableResult
    public func pull(_ collection: CollectionID, deadline: ContinuousClock.Instant? = nil) async throws -> PullReport {
        client.clockOffset = try await store.clockOffset(apiBase: apiBase)
        let start = try await store.beginPull(of: collection)
        let fetched: (entries: [EntriesPage.Entry], timeline: Timeline?)
        do {
            fetched = try await client.allEntries(of: collection.rawValue, deadline: deadline)
        } catch let error as CollectionsAPIError where error.code == .clockSkew && error.serverDate != nil {
            let offset = client.clockOffset(serverDate: error.serverDate!)
            client.clockOffset = offset
            try await store.recordClockOffset(offset, apiBase: apiBase)
            fetched = try await client.allEntries(of: collection.rawValue, deadline: deadline)
        }
        try await store.recordAPISuccess(apiBase: apiBase)
        let remote = try fetched.entries.map { entry in
            guard let tweet = try? TweetID(validating: entry.tweetID),
                  !entry.sortIndex.isEmpty, entry.sortIndex.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                throw CollectionsAPIError(code: .malformedResponse,
                                          message: "collections/entries: an entry has a malformed tweet id or sort_index")
            }
            return RemoteEntry(tweet: tweet, sortIndex: entry.sortIndex, featureContext: entry.featureContext)
        }
        let metadata = fetched.timeline.map {
            CollectionMetadata(name: $0.name, description: $0.description, url: $0.url, userID: $0.userID,
                               collectionURL: $0.collectionURL, timelineOrder: $0.timelineOrder)
        }
        let report = try await store.mergePull(start, entries: remote, metadata: metadata)
        emit(.pulled(report))
        logger.info("pulled", metadata: ["collection.id": "\(collection)", "pull.entries": "\(report.entries)",
                                         "pull.remote_writes": "\(report.remoteWrites)", "pull.conflicts": "\(report.conflicts)"])
        return report
    }

    /// The watch loop: holds the flusher lease and flushes whenever ops are due (new edits from
    /// any process, or backoff and rate-limit waits that ended), checking every
    /// ``Configuration/watchInterval``. Ends when its task is cancelled, releasing the lease.
    /// While another flusher holds the lease it waits.
    public func run() async throws {
        var lease: FlusherLease?
        defer {
            if let held = lease {
                // Release even though the task is cancelled: the store does not observe cancellation.
                let store = self.store
                Task { try? await store.releaseFlusherLease(held) }
            }
        }
        while !Task.isCancelled {
            do {
                if lease == nil, case .acquired(let acquired) = try await store.acquireFlusherLease(ttl: configuration.leaseTTL) {
                    lease = acquired
                }
                var pause = configuration.watchInterval
                if let held = lease {
                    let report = try await drain(lease: held, options: FlushOptions())
                    emit(.stopped(report))
                    switch report.stopReason {
                    case .authentication, .configuration:
                        // Nothing will change by itself soon: do not hammer the API.
                        pause = max(pause, .seconds(60))
                    default:
                        break
                    }
                }
                try await configuration.sleepClock.sleep(for: pause)
            } catch let error as SyncError where error.code == .leaseNotHeld {
                lease = nil
            } catch let error as SyncError where error.isRetryable {
                // The database was locked past the timeout by another process: try again later.
                logger.warning("watch: database busy, retrying", metadata: ["error": "\(error)"])
                do { try await configuration.sleepClock.sleep(for: configuration.watchInterval) } catch { break }
            } catch is CancellationError {
                break
            }
        }
        if let held = lease {
            lease = nil
            try await store.releaseFlusherLease(held)
        }
    }
}
