import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Says when another process may have committed to a database file, so that `PRAGMA
/// data_version` is read then rather than on a busy timer. On a thread of its own (it blocks in
/// `poll(2)`), until ``stop()``.
///
/// On Linux it watches the database's folder with inotify for writes to the file and its WAL,
/// and wakes at each (all the events queued then count as one), again 1, 5 and 25 ms later (the
/// WAL's frames are written before the commit can be seen, so the look at the event may come
/// early), and every `fallback` in case all those looks came early. Measured on this project's
/// machine (Benchmarks/compare B8/B9, `syncbench detect-changes`): another process's commit seen
/// in p99 1.4 ms instead of 50 ms, and an idle observer's CPU a tenth of a 50 ms poll's.
///
/// Where inotify is unavailable (another platform, the per-user limit of instances reached, a
/// folder that cannot be watched) it wakes every `interval` instead.
final class CommitWatcher: Sendable {
    /// How the watcher wakes: by inotify events, or by the clock alone.
    enum Mode: Sendable, Equatable { case notified, polling }

    let mode: Mode
    private let stopPipe: (read: Int32, write: Int32)
    private let stopped = DispatchSemaphore(value: 0)
    private let isStopped = Stopped()

    /// Whether ``stop()`` was called, shared with the thread.
    private final class Stopped: Sendable {
        private let value = Atomic(false)
        var isSet: Bool { value.load(ordering: .acquiring) }
        /// Sets it; true the first time.
        func set() -> Bool { !value.exchange(true, ordering: .acquiringAndReleasing) }
    }

    /// The looks after an event, in ms from the previous one.
    static let followUps: [Int32] = [1, 4, 20]

    /// Starts watching `path` (and `path-wal`); `wake` is called on the watcher's thread.
    init(path: String, interval: Duration, fallback: Duration, wake: @escaping @Sendable () -> Void) {
        var pipeEnds: [Int32] = [-1, -1]
        if pipe(&pipeEnds) == 0 {
            for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        } else {
            pipeEnds = [-1, -1]
        }
        stopPipe = (pipeEnds[0], pipeEnds[1])
        let url = URL(fileURLWithPath: path)
        let names: Set<String> = [url.lastPathComponent, url.lastPathComponent + "-wal"]
        var watching = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        if watching >= 0, inotify_add_watch(watching, url.deletingLastPathComponent().path,
                                            UInt32(IN_MODIFY | IN_CREATE | IN_MOVED_TO)) < 0 {
            close(watching)
            watching = -1
        }
        let notify = watching
        mode = notify >= 0 ? .notified : .polling
        let stopFD = stopPipe.read
        let stopped = stopped
        let isStopped = isStopped
        // Without a stop pipe (no descriptor left) the thread looks at the flag every 100 ms.
        let pollMs = Self.milliseconds(interval)
        let fallbackMs = stopFD < 0 ? min(Self.milliseconds(fallback), 100) : Self.milliseconds(fallback)
        let thread = Thread {
            Self.loop(notify: notify, stop: stopFD, names: names, pollMs: pollMs, fallbackMs: fallbackMs,
                      stopping: { isStopped.isSet }, wake: wake)
            if notify >= 0 { close(notify) }
            stopped.signal()
        }
        thread.name = "collection-sync commit watcher"
        thread.start()
    }

    /// Ends the thread and closes its descriptors; returns once they are closed. Idempotent.
    func stop() {
        guard isStopped.set() else { return }
        var byte: UInt8 = 1
        if stopPipe.write >= 0 { _ = write(stopPipe.write, &byte, 1) }
        stopped.wait()
        if stopPipe.read >= 0 {
            close(stopPipe.read)
            close(stopPipe.write)
        }
    }

    deinit { stop() }

    private static func loop(notify: Int32, stop: Int32, names: Set<String>, pollMs: Int32, fallbackMs: Int32,
                             stopping: () -> Bool, wake: @Sendable () -> Void) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let every = notify < 0 ? pollMs : fallbackMs
        var followUps: ArraySlice<Int32> = []
        // The next look's time (ms, monotonic): events of other files of the folder do not move it,
        // however often they come.
        var next = monotonicMs() + Int64(every)
        while !stopping() {
            var fds = [pollfd(fd: stop, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: notify, events: Int16(POLLIN), revents: 0)]
            let timeout = Int32(clamping: max(next - monotonicMs(), 0))
            let ready = poll(&fds, notify < 0 ? 1 : 2, timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[0].revents != 0 { return }
            if notify >= 0, fds[1].revents != 0 {
                var ours = false
                while case let count = read(notify, &buffer, buffer.count), count > 0 {
                    ours = ours || mentions(names, buffer[..<count])
                }
                guard ours else { continue }  // another file of the folder
                followUps = Self.followUps[...]
            } else if monotonicMs() < next {
                continue
            } else if !followUps.isEmpty {
                followUps.removeFirst()
            }
            wake()
            next = monotonicMs() + Int64(followUps.first ?? every)
        }
    }

    private static func monotonicMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Whether the inotify events in `bytes` name one of `names`.
    private static func mentions(_ names: Set<String>, _ bytes: ArraySlice<UInt8>) -> Bool {
        // struct inotify_event { int wd; uint32_t mask, cookie, len; char name[len]; }
        var offset = bytes.startIndex
        while offset + 16 <= bytes.endIndex {
            let length = bytes[offset + 12 ..< offset + 16].reversed().reduce(0) { $0 << 8 | Int($1) }
            let name = bytes[offset + 16 ..< min(offset + 16 + length, bytes.endIndex)].prefix { $0 != 0 }
            if names.contains(String(decoding: name, as: UTF8.self)) { return true }
            offset += 16 + length
        }
        return false
    }

    private static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        return Int32(clamping: max(seconds * 1_000 + attoseconds / 1_000_000_000_000_000, 1))
    }
}
