import ArgumentParser
import CSQLite
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

// Issue 16 asks how observers should see other processes' commits without busy polling:
// `PRAGMA data_version` on a cheap timer, or inotify on the database or WAL files, or both;
// "measure and choose". This measures the two mechanisms alone, through the C API, against the
// same writer as B8's other process (observe-writer).

/// Another process's commits seen by `PRAGMA data_version` on a timer, or by an inotify watch on
/// the WAL (`IN_MODIFY`) confirmed by `data_version`, both on a thread of their own through the
/// C API: the two mechanisms alone, without the store's observation around them.
struct DetectChanges: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect-changes",
        abstract: "Issue 16: detection latency of another process's commits and idle CPU, data_version poll vs inotify on the WAL.",
        discussion: """
            A second syncbench process (observe-writer) commits COMMITS times, one at a time, each after \
            a random wait of 0..INTERVAL ms, stamped right before the commit; each adds or removes one \
            tweet. This process looks for commits on a thread of its own: poll reads PRAGMA \
            data_version every INTERVAL ms; inotify reads it when a watch on the WAL file reports \
            IN_MODIFY, again 1 ms and 6 ms after (the WAL's frames are written before the wal-index \
            says they are committed: the event comes before the commit can be seen), and every \
            FALLBACK ms besides. When data_version changed, it reads whether the tweet is there; a \
            commit counts as seen at the first look that finds it as the commit left it (a change of \
            data_version that shows no new state counts as spurious). Then the writer exits and this \
            process's CPU is measured over IDLE seconds.
            """)

    @Option var method: ChangeDetection.Method
    @Option var commits = 200
    @Option var intervalMs = 50
    @Option(help: "inotify: also look every FALLBACK ms, in case an event's looks came before its commit could be seen.")
    var fallbackMs = 1000
    @Option var idleSeconds: Double = 10
    @Option var db: String

    func run() async throws {
        let writer = try await WriterProcess.start(db: db, jitterMs: intervalMs)  // creates the database
        let (detections, detected) = AsyncStream.makeStream(of: Delivery.self)
        let detector = try ChangeDetection(method: method, db: db, intervalMs: intervalMs, fallbackMs: fallbackMs) {
            detected.yield($0)
        }
        detector.start()
        var seen = detections.makeAsyncIterator()
        var delivered = 0, spurious = 0
        try await Task.sleep(for: .milliseconds(200))
        let latencies = try await measureCommits(commits, "detect-changes --method \(method.rawValue)") { i in
            try writer.send(i % 2 == 0 ? "add" : "remove")
            return nil
        } deliver: {
            guard let stamp = await writer.stamp() else { throw RawError("observe-writer said no stamp") }
            let expected = delivered % 2 == 0
            delivered += 1
            while true {
                guard var detection = await seen.next() else { throw RawError("the detector ended") }
                if detection.present == expected {
                    detection.stamp = stamp.start
                    return detection
                }
                spurious += 1
            }
        }
        try await writer.finish()
        try await Task.sleep(for: .milliseconds(200))
        let before = Usage.now(), wakesBefore = detector.wakes.value
        try await Task.sleep(for: .seconds(idleSeconds))
        let after = Usage.now(), wakesAfter = detector.wakes.value
        detector.stop()
        var figures = latencyFigures(latencies)
        for (key, value) in after.since(before) { figures["idle_" + key] = value }
        figures["method"] = method.rawValue
        figures["commits"] = commits
        figures["interval_ms"] = intervalMs
        figures["wakes"] = detector.wakes.value
        figures["idle_wakes_per_s"] = Double(wakesAfter - wakesBefore) / (Double(after.nanos - before.nanos) / 1e9)
        figures["spurious_changes"] = spurious
        if method == .inotify {
            figures["fallback_ms"] = fallbackMs
            figures["changes_seen_at_event"] = detector.atEvent.value
            figures["changes_seen_on_a_later_look"] = detector.onFollowUp.value
            figures["changes_seen_by_fallback"] = detector.byFallback.value
        }
        try report(figures)
    }
}

/// The detection thread of `detect-changes`: reports when data_version changed, and whether the
/// observed tweet was there then.
final class ChangeDetection: @unchecked Sendable {
    // @unchecked: the connection and its statements are used on the detection thread only, after init.
    enum Method: String, ExpressibleByArgument { case poll, inotify }

    let method: Method
    let intervalMs: Int32
    let fallbackMs: Int32
    let walPath: String
    /// Looks at data_version.
    let wakes = Counter()
    /// inotify: changes seen by the look right at an event, by the looks 1 and 6 ms after it, by
    /// the fallback timer.
    let atEvent = Counter(), onFollowUp = Counter(), byFallback = Counter()
    private let connection: OpaquePointer
    private let version: OpaquePointer
    private let present: OpaquePointer
    private let stopPipe: (read: Int32, write: Int32)
    private let stopped = DispatchSemaphore(value: 0)
    private let changed: @Sendable (Delivery) -> Void

    init(method: Method, db: String, intervalMs: Int, fallbackMs: Int, changed: @escaping @Sendable (Delivery) -> Void) throws {
        self.method = method
        self.intervalMs = Int32(intervalMs)
        self.fallbackMs = Int32(fallbackMs)
        self.walPath = db + "-wal"
        self.changed = changed
        var handle: OpaquePointer?
        guard sqlite3_open_v2(db, &handle, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK, let handle else { throw RawError("cannot open \(db)") }
        connection = handle
        func prepare(_ sql: String) throws -> OpaquePointer {
            var statement: OpaquePointer?
            guard sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK,
                  let statement else { throw RawError("prepare: \(String(cString: sqlite3_errmsg(handle)))") }
            return statement
        }
        version = try prepare("PRAGMA data_version")
        present = try prepare("""
            SELECT present FROM entries WHERE collection_id = '\(Observed.collectionName)' AND tweet_id = '\(Observed.tweet)'
            """)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw RawError("pipe") }
        stopPipe = (fds[0], fds[1])
    }

    deinit {
        sqlite3_finalize(version)
        sqlite3_finalize(present)
        sqlite3_close_v2(connection)
        close(stopPipe.read)
        close(stopPipe.write)
    }

    func start() {
        let thread = Thread { [self] in
            loop()
            stopped.signal()
        }
        thread.start()
    }

    func stop() {
        var byte: UInt8 = 1
        _ = write(stopPipe.write, &byte, 1)
        stopped.wait()
    }

    private func integer(_ statement: OpaquePointer) -> Int64 {
        defer { sqlite3_reset(statement) }
        guard sqlite3_step(statement) == SQLITE_ROW else { return -1 }
        return sqlite3_column_int64(statement, 0)
    }

    /// Reads data_version; when it changed, reports the tweet's state. True when it changed.
    private func look(_ known: inout Int64) -> Bool {
        wakes.add()
        let now = integer(version)
        guard now != known else { return false }
        known = now
        let at = monotonicNanos()
        changed(Delivery(at: at, present: integer(present) == 1))
        return true
    }

    private func loop() {
        var known = integer(version)
        switch method {
        case .poll:
            while true {
                var stop = pollfd(fd: stopPipe.read, events: Int16(POLLIN), revents: 0)
                guard poll(&stop, 1, intervalMs) == 0 else { return }  // the stop pipe (or an error)
                _ = look(&known)
            }
        case .inotify:
            let watch = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
            defer { close(watch) }
            guard watch >= 0, inotify_add_watch(watch, walPath, UInt32(IN_MODIFY)) >= 0 else {
                FileHandle.standardError.write(Data("syncbench: cannot watch \(walPath): errno \(errno)\n".utf8))
                exit(3)
            }
            var buffer = [UInt8](repeating: 0, count: 4096)
            // The looks still to come after the last event: at 1 ms, then 5 ms later.
            var followUps: [Int32] = []
            while true {
                var fds = [pollfd(fd: stopPipe.read, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: watch, events: Int16(POLLIN), revents: 0)]
                guard poll(&fds, 2, followUps.first ?? fallbackMs) >= 0 else { return }
                if fds[0].revents != 0 { return }
                if fds[1].revents != 0 {
                    while read(watch, &buffer, buffer.count) > 0 {}  // every event queued: one look covers them
                    if look(&known) { atEvent.add() }
                    followUps = [1, 5]
                } else if !followUps.isEmpty {
                    followUps.removeFirst()
                    if look(&known) { onFollowUp.add() }
                } else if look(&known) {
                    byFallback.add()
                }
            }
        }
    }
}
