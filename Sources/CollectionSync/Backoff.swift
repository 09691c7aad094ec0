/// Exponential backoff with full jitter: the n-th consecutive failure waits a uniformly random
/// time in [0, min(cap, base * 2^(n-1))]. Pure; the random draw is an input.
public struct Backoff: Sendable, Hashable {
    public var base: Duration = .seconds(1)
    public var cap: Duration = .seconds(300)

    public init(base: Duration = .seconds(1), cap: Duration = .seconds(300)) {
        self.base = base
        self.cap = cap
    }

    /// The upper bound of the wait after `attempts` failed attempts (1 = the first failure).
    public func ceiling(afterAttempts attempts: Int) -> Duration {
        let exponent = min(max(attempts, 1) - 1, 30)
        let scaled = base * (1 << exponent)
        return min(scaled, cap)
    }

    /// The wait: `unit` (a draw in [0, 1]) of the ceiling.
    public func delay(afterAttempts attempts: Int, unit: Double) -> Duration {
        ceiling(afterAttempts: attempts) * min(max(unit, 0), 1)
    }
}
