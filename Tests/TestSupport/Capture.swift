import Foundation
import Logging
import PropertyBased
import Synchronization

/// Lines of text gathered from any number of tasks: log records (through ``handler``, every level,
/// with metadata) or anything a test records itself.
public final class LogCapture: Sendable {
    private let storage = Mutex<[String]>([])

    public init() {}

    public var lines: [String] { storage.withLock { $0 } }

    public func record(_ line: String) { storage.withLock { $0.append(line) } }

    /// A log handler at `.trace` that records into this capture.
    public var handler: Handler { Handler(capture: self) }

    public struct Handler: LogHandler {
        let capture: LogCapture
        public var metadata: Logger.Metadata = [:]
        public var logLevel: Logger.Level = .trace

        public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        public func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.record("\(event.level) \(event.message) \(merged) \(event.source)")
        }
    }
}

/// Inputs per fuzzing property: `FUZZ_EXECUTIONS` from the environment, else 2,000.
public let fuzzExecutions = ProcessInfo.processInfo.environment["FUZZ_EXECUTIONS"].flatMap(Int.init) ?? 2_000

/// A generator of elements of `alphabet` (never empty).
public func pick<T: Sendable>(_ alphabet: [T]) -> Generator<T, Shrink.Integer<Int>> {
    Gen.int(in: 0..<alphabet.count).map { alphabet[$0] }
}
