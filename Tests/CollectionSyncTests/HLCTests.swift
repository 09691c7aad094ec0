@_spi(Worker) @testable import CollectionSync
import Testing

@Suite("Hybrid logical clock")
struct HLCTests {
    @Test("stamps follow the wall clock when it moves forward")
    func followsWallClock() {
        var clock = HybridLogicalClock()
        let a = clock.tick(wallMillis: 1_000)
        let b = clock.tick(wallMillis: 2_000)
        #expect(a == HLC(millis: 1_000))
        #expect(b == HLC(millis: 2_000))
        #expect(b.millis == 2_000 && b.logical == 0)
    }

    @Test("strictly increasing when the wall clock jumps backwards")
    func wallClockBackwards() {
        var clock = HybridLogicalClock()
        var last = clock.tick(wallMillis: 10_000)
        for wall in [9_000, 5_000, 10_000, 0, -50, 9_999] as [Int64] {
            let next = clock.tick(wallMillis: wall)
            #expect(next > last, "wall \(wall)")
            #expect(next.millis == 10_000, "the physical part must not follow the clock back")
            last = next
        }
        // Once the wall clock passes the stamps again, they follow it.
        #expect(clock.tick(wallMillis: 20_000) == HLC(millis: 20_000))
    }

    @Test("100k stamps within one millisecond are distinct and increasing")
    func burstWithinOneMillisecond() {
        var clock = HybridLogicalClock()
        var last = HLC.zero
        for _ in 0..<100_000 {
            let next = clock.tick(wallMillis: 1_700_000_000_000)
            #expect(next > last)
            last = next
        }
        // 100k > 2^16: the counter borrowed from the next millisecond rather than wrapping.
        #expect(last.rawValue - HLC(millis: 1_700_000_000_000).rawValue == 99_999)
        #expect(last.millis == 1_700_000_000_001)
        // When the wall clock catches up, stamps still do not go back.
        #expect(clock.tick(wallMillis: 1_700_000_000_001) > last)
    }

    @Test("observing a remote stamp puts later local stamps after it")
    func observeRemote() {
        var clock = HybridLogicalClock()
        _ = clock.tick(wallMillis: 1_000)
        let remote = HLC(millis: 50_000, logical: 7)
        let merged = clock.observe(remote, wallMillis: 1_001)
        #expect(merged > remote)
        #expect(clock.tick(wallMillis: 1_002) > merged)
    }

    @Test("the physical part is clamped, never crashes")
    func extremes() {
        #expect(HLC(millis: -5) == .zero)
        var clock = HybridLogicalClock(last: HLC(rawValue: .max))
        #expect(clock.tick(wallMillis: .max) == HLC(rawValue: .max))
        #expect(HLC(millis: .max).millis == HLC.maxMillis)
    }
}
