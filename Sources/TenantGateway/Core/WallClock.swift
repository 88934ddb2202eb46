#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock time (`CLOCK_REALTIME`) and its ISO 8601 UTC spelling, for tokens' expiries, logs and records.
package enum WallClock {
    /// The current time in seconds since the epoch, with sub-second precision.
    @Sendable package static func now() -> Double {
        let spec = current()
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// The current time in whole milliseconds since the epoch.
    package static func nowMilliseconds() -> Int64 {
        let spec = current()
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }

    /// A time in seconds as `2026-05-01T12:00:00Z`.
    package static func iso8601(_ seconds: Double) -> String {
        dateAndTime(time_t(seconds.rounded(.down))) + "Z"
    }

    /// A time in milliseconds as `2026-05-01T12:00:00.123Z`.
    package static func iso8601(milliseconds: Int64) -> String {
        dateAndTime(time_t(milliseconds / 1000)) + "." + padded(Int32(milliseconds % 1000), 3) + "Z"
    }

    private static func current() -> timespec {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return spec
    }

    /// `YYYY-MM-DDTHH:MM:SS` in UTC.
    private static func dateAndTime(_ seconds: time_t) -> String {
        var time = seconds
        var parts = tm()
        gmtime_r(&time, &parts)
        return "\(padded(parts.tm_year + 1900, 4))-\(padded(parts.tm_mon + 1, 2))-\(padded(parts.tm_mday, 2))T"
            + "\(padded(parts.tm_hour, 2)):\(padded(parts.tm_min, 2)):\(padded(parts.tm_sec, 2))"
    }

    private static func padded(_ value: Int32, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}
