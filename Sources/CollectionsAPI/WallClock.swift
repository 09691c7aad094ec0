import Foundation

/// A source of wall-clock time in Unix epoch milliseconds: the one wall clock of the client, the
/// engine, the store and the mock. Inject a fixed or scripted one in tests.
///
/// Deadlines and sleeps are not measured on it (a wall clock jumps): they take a `Clock`.
public struct WallClock: Sendable {
    private let read: @Sendable () -> Int64

    /// A clock that calls `read` (Unix epoch milliseconds) every time it is asked.
    public init(_ read: @escaping @Sendable () -> Int64) { self.read = read }

    /// Now, in Unix epoch milliseconds.
    public func nowMillis() -> Int64 { read() }

    /// Now, as a date.
    public func now() -> Date { Date(timeIntervalSince1970: Double(read()) / 1000) }

    /// The system's real-time clock.
    public static let system = WallClock {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }

    /// A clock stopped at `millis` (Unix epoch milliseconds).
    public static func fixed(millis: Int64) -> WallClock { WallClock { millis } }
}

extension Date {
    /// The date `millis` Unix epoch milliseconds.
    package init(millis: Int64) { self.init(timeIntervalSince1970: Double(millis) / 1000) }
    /// Unix epoch milliseconds, rounded down.
    package var millis: Int64 { Int64((timeIntervalSince1970 * 1000).rounded(.down)) }
}
