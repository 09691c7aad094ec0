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
            a random wait of 0..INTERVAL ms, stamped right before the commit; this process sees each \
            commit on a thread of its own, by reading PRAGMA data_version every INTERVAL ms (poll) or \
            when an inotify watch on the WAL file reports IN_MODIFY (inotify: data_version then \
            confirms a commit; a wake it does not confirm is looked at again 1 ms later, up to 5 \
            times: the WAL's frames are written before the wal-index says they are committed). Then \
            the writer exits and this process's CPU is measured over IDLE seconds.
            """)

    @Option var method: ChangeDetection.Method
    @Option var commits = 200
    @Option var intervalMs = 50
    @Option var idleSeconds: Double = 10
    @Option var db: String

    func run() async throws {
        let writer = try await WriterProcess.start(db: db, jitterMs: intervalMs)  // creates the database
        let (detections, detected) = AsyncStream.makeStream(of: UInt64.self)
        let detector = try ChangeDetection(method: method, db: db, intervalMs: intervalMs) { detected.yield($0) }
        detector.start()
        var seen = detections.makeAsyncIterator()
        var delivered = 0
        try await Task.sleep(for: .milliseconds(200))
        let latencies = try await measureCommits(commits, "detect-changes --method \(method.rawValue)") { i in
            try writer.send(i % 2 == 0 ? "add" : "remove")
            return nil
        } deliver: {
            guard let at = await seen.next() else { throw RawError("the detector ended") }
            guard let line = await writer.line(), let stamp = UInt64(line) else { throw RawError("observe-writer said no stamp") }
            // Only that something changed is detected here, not what: the tweet is taken as the commit left it.
            defer { delivered += 1 }
            return Delivery(at: at, present: delivered % 2 == 0, stamp: stamp)
        }
        try await writer.finish()
        try await Task.sleep(for: .milliseconds(200))
        let before = Usage.now(), wakesBefore = detector.wakes.load(ordering: .relaxed)
        try await Task.sleep(for: .seconds(idleSeconds))
        let after = Usage.now(), wakesAfter = detector.wakes.load(ordering: .relaxed)
        detector.stop()
        var figures = latencyFigures(latencies)
        for (key, value) in after.since(before) { figures["idle_" + key] = value }
        figures["method"] = method.rawValue
        figures["commits"] = commits
        figures["interval_ms"] = intervalMs
        figures["wakes"] = detector.wakes.load(ordering: .relaxed)
        figures["idle_wakes_per_s"] = Double(wakesAfter - wakesBefore) / (Double(after.nanos - before.nanos) / 1e9)
        figures["unconfirmed_wakes"] = detector.unconfirmed.load(ordering: .relaxed)
        figures["confirmed_on_second_look"] = detector.late.load(ordering: .relaxed)
        try report(figures)
    }
}

/// The detection thread of `detect-changes`.
final class ChangeDetection: @unchecked Sendable {
    // @unchecked: `connection` and `version` are used on the detection thread only, after init.
    enum Method: String, ExpressibleByArgument { case poll, inotify }

    let method: Method
    let intervalMs: Int32
    let walPath: String
    /// Times the thread woke and read data_version.
    let wakes = Atomic<Int>(0)
    /// inotify: wakes data_version did not confirm (at the first look).
    let unconfirmed = Atomic<Int>(0)
    /// inotify: commits confirmed only on a second look, 1 ms or more after the event.
    let late = Atomic<Int>(0)
    private let connection: OpaquePointer
    private let version: OpaquePointer
    private let stopPipe: (read: Int32, write: Int32)
    private let stopped = DispatchSemaphore(value: 0)
    private let changed: @Sendable (UInt64) -> Void

    init(method: Method, db: String, intervalMs: Int, changed: @escaping @Sendable (UInt64) -> Void) throws {
        self.method = method
        self.intervalMs = Int32(intervalMs)
        self.walPath = db + "-wal"
        self.changed = changed
        var handle: OpaquePointer?
        guard sqlite3_open_v2(db, &handle, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK, let handle else { throw RawError("cannot open \(db)") }
        connection = handle
        var statement: OpaquePointer?
        guard sqlite3_prepare_v3(handle, "PRAGMA data_version", -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK,
              let statement else { throw RawError("prepare: \(String(cString: sqlite3_errmsg(handle)))") }
        version = statement
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw RawError("pipe") }
        stopPipe = (fds[0], fds[1])
    }

    deinit {
        sqlite3_finalize(version)
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

    private func dataVersion() -> Int64 {
        defer { sqlite3_reset(version) }
        guard sqlite3_step(version) == SQLITE_ROW else { return -1 }
        return sqlite3_column_int64(version, 0)
    }

    private func loop() {
        var known = dataVersion()
        switch method {
        case .poll:
            while true {
                var stop = pollfd(fd: stopPipe.read, events: Int16(POLLIN), revents: 0)
                guard poll(&stop, 1, intervalMs) == 0 else { return }  // the stop pipe (or an error)
                wakes.add(1, ordering: .relaxed)
                let now = dataVersion()
                if now != known {
                    known = now
                    changed(monotonicNanos())
                }
            }
        case .inotify:
            let watch = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
            defer { close(watch) }
            guard watch >= 0, inotify_add_watch(watch, walPath, UInt32(IN_MODIFY)) >= 0 else {
                FileHandle.standardError.write(Data("syncbench: cannot watch \(walPath): errno \(errno)\n".utf8))
                exit(3)
            }
            var buffer = [UInt8](repeating: 0, count: 4096)
            var timeout: Int32 = -1
            var looks = 0
            while true {
                var fds = [pollfd(fd: stopPipe.read, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: watch, events: Int16(POLLIN), revents: 0)]
                guard poll(&fds, 2, timeout) >= 0 else { return }
                if fds[0].revents != 0 { return }
                let event = fds[1].revents != 0
                if event { while read(watch, &buffer, buffer.count) > 0 {} }  // every event queued: one look covers them
                wakes.add(1, ordering: .relaxed)
                let now = dataVersion()
                if now != known {
                    known = now
                    if !event { late.add(1, ordering: .relaxed) }
                    changed(monotonicNanos())
                    timeout = -1
                } else if event {
                    unconfirmed.add(1, ordering: .relaxed)
                    looks = 0
                    timeout = 1
                } else {
                    looks += 1
                    timeout = looks < 5 ? 1 : -1
                }
            }
        }
    }
}
