import TenantGateway
import Testing

@Suite("Wall clock")
struct WallClockTests {
    @Test("times spell as ISO 8601 UTC, to the second or to the millisecond")
    func iso8601() {
        #expect(WallClock.iso8601(0) == "1970-01-01T00:00:00Z")
        #expect(WallClock.iso8601(5.9) == "1970-01-01T00:00:05Z")
        #expect(WallClock.iso8601(milliseconds: 1_700_000_000_123) == "2023-11-14T22:13:20.123Z")
        #expect(WallClock.iso8601(milliseconds: 1_700_000_000_007) == "2023-11-14T22:13:20.007Z")
    }

    @Test("the two readings of now agree")
    func nowAgrees() {
        let seconds = WallClock.now()
        let milliseconds = WallClock.nowMilliseconds()
        #expect(abs(Double(milliseconds) / 1000 - seconds) < 5)
    }
}
