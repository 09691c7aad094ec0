import ArgumentParser
import CollectionSync
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

// B8 and B9: observation (`SyncStore.observeEntries(of:)`, `observeStatus()`).
//
// Every commit is timed from a CLOCK_MONOTONIC stamp taken right before it to the moment the
// observer's loop holds the changed value. CLOCK_MONOTONIC is one clock for every process of the
// machine (Linux), so a writer's stamp and an observer's compare across processes.

/// CLOCK_MONOTONIC in nanoseconds.
func monotonicNanos() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// p50, p90, p99 (nearest rank), min, mean and max of `nanos`, in ms.
func latencyFigures(_ nanos: [UInt64]) -> [String: Any] {
    let sorted = nanos.sorted().map { Double($0) / 1e6 }
    func rank(_ p: Double) -> Double { sorted[max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1)] }
    return ["p50_ms": rank(0.50), "p90_ms": rank(0.90), "p99_ms": rank(0.99), "min_ms": sorted[0],
            "mean_ms": sorted.reduce(0, +) / Double(sorted.count), "max_ms": sorted[sorted.count - 1]]
}

/// What the observers watch: a collection of `entries` tweets, and one more tweet that each
/// measured commit adds or removes (so that every commit changes the observed view).
enum Observed {
    static let collectionName = "custom-1000"
    /// Not among `tweetIDs(collection: 0, ...)`, which start at 100,000,000.
    static let tweet = "99999999"

    /// Opens the store at `db` and fills the collection (one call: one commit).
    static func store(_ db: String, entries: Int) async throws -> SyncStore {
        let store = try await SyncStore.open(at: db)
        if entries > 0 {
            try await store.add(try tweetIDs(collection: 0, count: entries).map { try TweetID(validating: $0) }, to: collection())
        }
        return store
    }

    static func collection() throws -> CollectionID { try CollectionID(validating: collectionName) }
    static func tweetID() throws -> TweetID { try TweetID(validating: tweet) }
}

/// This process's CPU time (user + system) and context switches, and the monotonic time.
struct Usage {
    let nanos: UInt64
    let cpuSeconds: Double
    let voluntarySwitches: Int
    let involuntarySwitches: Int

    static func now() -> Usage {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return Usage(nanos: monotonicNanos(), cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
                     voluntarySwitches: usage.ru_nvcsw, involuntarySwitches: usage.ru_nivcsw)
    }

    /// CPU used since `start`, as a share of one core over the wall time between them, and the
    /// context switches per second (a thread's wakeups show there).
    func since(_ start: Usage) -> [String: Any] {
        let wall = Double(nanos - start.nanos) / 1e9
        let cpu = cpuSeconds - start.cpuSeconds
        return ["wall_s": wall, "cpu_s": cpu, "cpu_percent": cpu / wall * 100,
                "voluntary_switches_per_s": Double(voluntarySwitches - start.voluntarySwitches) / wall,
                "involuntary_switches_per_s": Double(involuntarySwitches - start.involuntarySwitches) / wall]
    }
}

/// Ends the process when a measurement stops making progress (a change never seen would
/// otherwise hang the script): checked every `seconds`.
final class Watchdog: Sendable {
    private let count = Counter()
    private let task: Task<Void, Never>

    init(seconds: Int, _ what: String) {
        task = Task.detached { [count] in
            var last = -1
            while !Task.isCancelled {
                do { try await Task.sleep(for: .seconds(seconds)) } catch { return }
                let now = count.value
                if now == last {
                    FileHandle.standardError.write(Data("syncbench: \(what): no progress in \(seconds) s after \(now)\n".utf8))
                    exit(3)
                }
                last = now
            }
        }
    }

    func progress() { count.add() }

    deinit { task.cancel() }
}

/// B8's other process: a second syncbench (`observe-writer`) that commits when told, one line
/// on its stdin per commit, and answers each with CLOCK_MONOTONIC stamps taken right before it and
/// right after.
final class WriterProcess: @unchecked Sendable {
    // @unchecked: `output` is read on `reads` only, one line at a time; `process` and `input`
    // are used by the one task that drives the writer.
    private let process = Process()
    private let input = Pipe()
    private let output: UnsafeMutablePointer<FILE>
    private let reads = DispatchQueue(label: "syncbench.writer-output")

    /// Starts the writer and waits until its store is open.
    static func start(db: String, jitterMs: Int) async throws -> WriterProcess {
        let writer = try WriterProcess(db: db, jitterMs: jitterMs)
        guard await writer.line() == "ready" else { throw RawError("observe-writer did not start") }
        return writer
    }

    private init(db: String, jitterMs: Int) throws {
        let stdout = Pipe()
        let executable = Bundle.main.executablePath ?? CommandLine.arguments[0]
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["observe-writer", "--db", db, "--jitter-ms", String(jitterMs)]
        process.standardInput = input
        process.standardOutput = stdout
        try process.run()
        guard let file = fdopen(dup(stdout.fileHandleForReading.fileDescriptor), "r") else { throw RawError("fdopen") }
        output = file
    }

    /// Asks for one commit: "add" or "remove".
    func send(_ command: String) throws {
        try input.fileHandleForWriting.write(contentsOf: Data((command + "\n").utf8))
    }

    /// The writer's next line (off the concurrency pool: the read blocks), nil at its end.
    func line() async -> String? {
        await withCheckedContinuation { continuation in
            reads.async { [self] in
                var buffer: UnsafeMutablePointer<CChar>?
                var capacity = 0
                defer { free(buffer) }
                guard getline(&buffer, &capacity, output) > 0, let buffer else { return continuation.resume(returning: nil) }
                continuation.resume(returning: String(cString: buffer).trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
    }

    /// The stamps of the writer's next commit: right before it, right after.
    func stamp() async -> (start: UInt64, end: UInt64)? {
        guard let fields = await line()?.split(separator: " "), fields.count == 2,
              let start = UInt64(fields[0]), let end = UInt64(fields[1]) else { return nil }
        return (start, end)
    }

    /// Closes its stdin and waits for it to exit.
    func finish() async throws {
        try input.fileHandleForWriting.close()
        let status: Int32 = await withCheckedContinuation { continuation in
            reads.async { [process] in
                process.waitUntilExit()
                continuation.resume(returning: process.terminationStatus)
            }
        }
        guard status == 0 else { throw RawError("observe-writer exited \(status)") }
    }

    deinit {
        fclose(output)
        if process.isRunning { process.terminate() }
    }
}

/// What an observer saw: when its loop held the value, whether the tweet was in it, and the
/// commit's stamp when it comes with the value (another process's).
struct Delivery {
    var at: UInt64
    var present: Bool
    var stamp: UInt64?
}

/// Runs `commits` commits that each add or remove the observed tweet (alternately: commit `i`
/// leaves it present when `i` is even), one at a time, each after `deliver` saw the one before;
/// returns the latencies in ns. `commit(i)` commits and returns the stamp taken right before it
/// (nil: the delivery brings it); `deliver` returns when the observer holds the next value.
func measureCommits(_ commits: Int, _ what: String, commit: (Int) async throws -> UInt64?,
                    deliver: () async throws -> Delivery) async throws -> [UInt64] {
    let watchdog = Watchdog(seconds: 10, what)
    var latencies: [UInt64] = []
    latencies.reserveCapacity(commits)
    for i in 0..<commits {
        let stamp = try await commit(i)
        let delivery = try await deliver()
        guard delivery.present == (i % 2 == 0) else {
            throw RawError("\(what): after commit \(i) the tweet is \(delivery.present ? "present" : "absent")")
        }
        guard let start = stamp ?? delivery.stamp, delivery.at >= start else {
            throw RawError("\(what): commit \(i) has no stamp, or was seen before it started")
        }
        latencies.append(delivery.at - start)
        watchdog.progress()
    }
    return latencies
}

/// B8: commit to value delivered, the commit made by this process or by another.
struct ObserveLatency: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "observe-latency",
        abstract: "B8: observation latency, commit to value delivered, one commit at a time; prints p50_ms, p99_ms, max_ms.",
        discussion: """
            An observer iterates observeEntries(of:) over a collection of ENTRIES tweets; each commit \
            adds or removes one more tweet (so each changes the view), stamped with CLOCK_MONOTONIC \
            right before it; the next commit waits until the observer's loop holds the value. \
            --writer other: the commits are made by a second syncbench process (observe-writer), \
            after a random wait of 0..JITTER ms each, so that they do not keep one phase with the \
            observer's data_version check.
            """)

    enum Writer: String, ExpressibleByArgument { case same, other }

    @Option(help: "same: this process commits; other: a second syncbench process does.") var writer: Writer
    @Option var commits = 1000
    @Option(help: "Tweets in the observed view besides the one the commits add and remove.") var entries = 100
    @Option(help: "--writer other: the most a commit waits first (default: the observation interval).")
    var jitterMs: Int?
    @Option var db: String
    @Option(help: "Also write each commit's latency and the time its commit call took, in ns, to this file, one commit a line.")
    var samples: String?

    func validate() throws {
        guard commits > 0, entries >= 0 else { throw ValidationError("--commits must be positive, --entries not negative") }
    }

    func run() async throws {
        let store = try await Observed.store(db, entries: entries)
        let collection = try Observed.collection(), tweet = try Observed.tweetID()
        let interval = seconds(SyncStore.Configuration().observationInterval) * 1000
        let jitter = jitterMs ?? Int(interval.rounded())
        // The writer opens its store before anything is observed.
        let other = writer == .other ? try await WriterProcess.start(db: db, jitterMs: jitter) : nil

        let (deliveries, delivered) = AsyncStream.makeStream(of: Delivery.self)
        let observer = Task {
            for try await view in store.observeEntries(of: collection) {
                delivered.yield(Delivery(at: monotonicNanos(), present: view.contains { $0.tweet == tweet }))
            }
        }
        defer { observer.cancel() }
        var values = deliveries.makeAsyncIterator()
        guard let first = await values.next(), !first.present else { throw RawError("no first value, or the tweet in it") }
        // The detector's first look at data_version (and the read again it causes) passes.
        try await Task.sleep(for: .milliseconds(200))

        var commitTimes: [UInt64] = []  // how long each commit call took
        let latencies = try await measureCommits(commits, "observe-latency --writer \(writer.rawValue)") { i in
            if let other {
                try other.send(i % 2 == 0 ? "add" : "remove")
                return nil  // the writer's stamp comes with the delivery
            }
            let start = monotonicNanos()
            if i % 2 == 0 { try await store.add([tweet], to: collection) } else { try await store.remove([tweet], from: collection) }
            commitTimes.append(monotonicNanos() - start)
            return start
        } deliver: {
            guard var delivery = await values.next() else { throw RawError("the observation ended") }
            if let other {
                guard let stamp = await other.stamp() else { throw RawError("observe-writer said no stamp") }
                delivery.stamp = stamp.start
                commitTimes.append(stamp.end - stamp.start)
            }
            return delivery
        }
        try await other?.finish()
        var figures = latencyFigures(latencies)
        for (key, value) in latencyFigures(commitTimes) { figures["commit_" + key] = value }
        if let samples {
            let lines = latencies.indices.map { i in "\(latencies[i]) \(commitTimes[i])" }
            try (lines.joined(separator: "\n") + "\n").write(toFile: samples, atomically: true, encoding: .utf8)
        }
        figures["writer"] = writer.rawValue
        figures["commits"] = commits
        figures["entries"] = entries
        figures["jitter_ms"] = writer == .other ? jitter : 0
        figures["interval_ms"] = interval
        try report(figures)
    }
}

/// B8's other process: opens the store, says "ready", then for each line on stdin ("add" or
/// "remove") waits 0..JITTER ms at random, stamps CLOCK_MONOTONIC, commits, stamps again and
/// prints both stamps.
struct ObserveWriter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "observe-writer",
        abstract: "B8: the other process's commits, one per line on stdin (add or remove); prints each one's stamps, before and after.",
        shouldDisplay: false)

    @Option var db: String
    @Option var jitterMs = 50

    func run() async throws {
        let store = try await SyncStore.open(at: db)
        let collection = try Observed.collection(), tweet = try Observed.tweetID()
        print("ready")
        fflush(nil)
        while let command = readLine() {
            if jitterMs > 0 { usleep(UInt32.random(in: 0...UInt32(jitterMs * 1000))) }
            let start = monotonicNanos()
            switch command {
            case "add": try await store.add([tweet], to: collection)
            case "remove": try await store.remove([tweet], from: collection)
            default: throw ValidationError("unknown command \(command)")
            }
            print(start, monotonicNanos())
            fflush(nil)
        }
    }
}

/// B9: the CPU an idle process uses with N observers iterating (0: the store open, no observer,
/// the floor).
struct ObserveIdle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "observe-idle",
        abstract: "B9: CPU of idle observers: N tasks observing, nothing committed, for SECONDS; prints cpu_percent of one core.",
        discussion: """
            Opens a store on a collection of ENTRIES tweets, starts N tasks, each iterating \
            observeEntries(of:) (even ones) or observeStatus() (odd ones), waits until each holds its \
            first value and 0.5 s more, then measures this process's CPU time (getrusage, user + \
            system) over SECONDS of idleness. N = 0 is the floor: the same process with no observer.
            """)

    @Option var observers: Int
    @Option var seconds: Double = 60
    @Option var entries = 100
    @Option var db: String

    func validate() throws {
        guard observers >= 0, seconds > 0 else { throw ValidationError("--observers must not be negative, --seconds positive") }
    }

    func run() async throws {
        let store = try await Observed.store(db, entries: entries)
        let collection = try Observed.collection()
        let values = Counter()
        let (ready, readied) = AsyncStream.makeStream(of: Void.self)
        var tasks: [Task<Void, any Error>] = []
        for k in 0..<observers {
            tasks.append(Task {
                var first = true
                func got() {
                    if first { readied.yield() } else { values.add() }
                    first = false
                }
                if k % 2 == 0 {
                    for try await _ in store.observeEntries(of: collection) { got() }
                } else {
                    for try await _ in store.observeStatus() { got() }
                }
            })
        }
        var started = ready.makeAsyncIterator()
        for _ in 0..<observers { await started.next() }
        try await Task.sleep(for: .milliseconds(500))
        let before = Usage.now(), valuesBefore = values.value
        try await Task.sleep(for: .seconds(seconds))
        let after = Usage.now(), valuesAfter = values.value
        for task in tasks { task.cancel() }
        var figures = after.since(before)
        figures["observers"] = observers
        figures["entries"] = entries
        figures["values_while_idle"] = valuesAfter - valuesBefore
        try report(figures)
    }
}

/// A count shared by tasks.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}
