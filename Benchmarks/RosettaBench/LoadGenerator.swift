#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TenantGateway

/// One request the load generator sends again and again, and the cheap check each answer must pass.
struct BenchTarget: Sendable {
    /// The full URL (always on 127.0.0.1).
    var url: String
    /// Request header fields.
    var headers: [(name: String, value: String)]
    /// The JSON request body.
    var body: [UInt8]
    /// What a complete, successful answer ends with (checked on every measured request).
    var expectedEnding: [UInt8]

    /// The upstream-client request for this target.
    func request(timeout: Duration) -> UpstreamRequest {
        UpstreamRequest(
            url: url,
            method: "POST",
            headers: headers,
            body: body,
            connectTimeout: .seconds(2),
            idleTimeout: timeout,
            totalTimeout: timeout
        )
    }
}

/// One finished request: status, body and the time from sending to the last body byte.
struct BenchExchange: Sendable {
    /// The HTTP status.
    var status: Int
    /// The whole response body.
    var body: [UInt8]
    /// From the call to the last body byte.
    var elapsed: Duration
}

/// What one measured phase produced.
struct PhaseResult: Sendable {
    /// Requests that completed with 200 and the expected ending.
    var completed = 0
    /// Requests that failed (transport error, non-200, or a body without the expected ending).
    var failures = 0
    /// The first failure's description.
    var firstFailure: String?
    /// Wall-clock time of the phase.
    var elapsed: Duration = .zero
    /// Latencies of the completed requests in milliseconds, sorted ascending.
    var latencies: [Double] = []
    /// Gateway CPU time (user + system) used during the phase, when a gateway was observed.
    var gatewayCPU: Duration?
    /// Context switches of the gateway's threads during the phase, when a gateway was observed.
    var gatewayContextSwitches: Int?
    /// CPU time the benchmark process itself (load generator + fake upstream) used during the phase.
    var benchCPU: Duration = .zero
    /// Whether the phase ended at its time limit before all requests were sent.
    var stoppedByTimeLimit = false

    /// The latency at a percentile (0...1), nearest-rank, or nil without samples.
    func percentile(_ fraction: Double) -> Double? {
        guard !latencies.isEmpty else { return nil }
        let rank = Int((Double(latencies.count) * fraction).rounded(.up))
        return latencies[min(max(rank, 1), latencies.count) - 1]
    }

    /// Completed requests per second of wall-clock time.
    var throughput: Double {
        let seconds = durationMilliseconds(elapsed) / 1_000
        return seconds > 0 ? Double(completed) / seconds : 0
    }

    /// Gateway CPU per completed request in milliseconds.
    var gatewayCPUPerRequest: Double? {
        guard let gatewayCPU, completed > 0 else { return nil }
        return durationMilliseconds(gatewayCPU) / Double(completed)
    }

    /// Gateway context switches per completed request.
    var gatewayContextSwitchesPerRequest: Double? {
        guard let gatewayContextSwitches, completed > 0 else { return nil }
        return Double(gatewayContextSwitches) / Double(completed)
    }

    /// Benchmark-process CPU per completed request in milliseconds.
    var benchCPUPerRequest: Double? {
        completed > 0 ? durationMilliseconds(benchCPU) / Double(completed) : nil
    }

    mutating func merge(_ other: PhaseResult) {
        completed += other.completed
        failures += other.failures
        if firstFailure == nil { firstFailure = other.firstFailure }
        latencies.append(contentsOf: other.latencies)
        stoppedByTimeLimit = stoppedByTimeLimit || other.stoppedByTimeLimit
    }
}

/// Drives requests through the libcurl upstream client and measures them.
struct LoadGenerator: Sendable {
    /// The client every request goes through (one curl multi handle, connections reused).
    let client: UpstreamHTTPClient
    /// The cap on one request, connect to last byte.
    let requestTimeout: Duration
    /// Samples the gateway's CPU time, or returns nil when no gateway is observed.
    let gatewayCPU: @Sendable () -> Duration?
    /// Samples the gateway's context switches, or returns nil when no gateway is observed.
    let gatewayContextSwitches: @Sendable () -> Int?

    /// The largest response body accepted.
    static let maximumBodyBytes = 64 << 20

    /// Sends one request and reads its whole body.
    func exchange(_ target: BenchTarget) async throws(UpstreamError) -> BenchExchange {
        let start = ContinuousClock.now
        let response = try await client.execute(target.request(timeout: requestTimeout))
        let body = try await response.collectBody(upTo: Self.maximumBodyBytes)
        return BenchExchange(status: response.status, body: body, elapsed: ContinuousClock.now - start)
    }

    /// Sends `warmup` unmeasured requests, then up to `count` measured ones, one after another, within `timeLimit`.
    func sequential(_ target: BenchTarget, warmup: Int, count: Int, timeLimit: Duration) async -> PhaseResult {
        var discarded = PhaseResult()
        let warmupDeadline = ContinuousClock.now + timeLimit
        for _ in 0..<warmup where ContinuousClock.now < warmupDeadline {
            await measure(target, into: &discarded)
        }
        var result = PhaseResult()
        result.firstFailure = discarded.firstFailure
        result.failures = discarded.failures
        result.latencies.reserveCapacity(count)
        let before = sample()
        let deadline = ContinuousClock.now + timeLimit
        for _ in 0..<count {
            guard ContinuousClock.now < deadline else {
                result.stoppedByTimeLimit = true
                break
            }
            await measure(target, into: &result)
        }
        finish(&result, since: before)
        return result
    }

    /// Sends `count` requests from `concurrency` workers at once (after a short warm-up that opens the connections).
    func concurrent(_ target: BenchTarget, count: Int, concurrency: Int, timeLimit: Duration) async -> PhaseResult {
        let workers = max(1, concurrency)
        _ = await runWorkers(target, count: workers * 20, workers: workers, deadline: ContinuousClock.now + timeLimit)
        let before = sample()
        var result = await runWorkers(target, count: count, workers: workers, deadline: ContinuousClock.now + timeLimit)
        finish(&result, since: before)
        return result
    }

    private func runWorkers(_ target: BenchTarget, count: Int, workers: Int, deadline: ContinuousClock.Instant) async -> PhaseResult {
        let tickets = TicketDispenser()
        return await withTaskGroup(of: PhaseResult.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    var local = PhaseResult()
                    local.latencies.reserveCapacity(count / workers + 1)
                    while tickets.take() < count {
                        guard ContinuousClock.now < deadline else {
                            local.stoppedByTimeLimit = true
                            break
                        }
                        await measure(target, into: &local)
                    }
                    return local
                }
            }
            var merged = PhaseResult()
            for await local in group { merged.merge(local) }
            return merged
        }
    }

    private func measure(_ target: BenchTarget, into result: inout PhaseResult) async {
        do {
            let exchange = try await exchange(target)
            if exchange.status == 200, exchange.body.endsWith(target.expectedEnding) {
                result.completed += 1
                result.latencies.append(durationMilliseconds(exchange.elapsed))
            } else {
                result.failures += 1
                if result.firstFailure == nil {
                    result.firstFailure = "status \(exchange.status): \(String(decoding: exchange.body.prefix(400), as: UTF8.self))"
                }
            }
        } catch {
            result.failures += 1
            if result.firstFailure == nil { result.firstFailure = "\(error)" }
        }
    }

    private struct Sample {
        var wallClock: ContinuousClock.Instant
        var gatewayCPU: Duration?
        var gatewayContextSwitches: Int?
        var benchCPU: Duration
    }

    private func sample() -> Sample {
        Sample(wallClock: ContinuousClock.now, gatewayCPU: gatewayCPU(), gatewayContextSwitches: gatewayContextSwitches(), benchCPU: ownCPUTime())
    }

    private func finish(_ result: inout PhaseResult, since before: Sample) {
        let after = sample()
        result.elapsed = after.wallClock - before.wallClock
        if let start = before.gatewayCPU, let end = after.gatewayCPU { result.gatewayCPU = end - start }
        if let start = before.gatewayContextSwitches, let end = after.gatewayContextSwitches {
            result.gatewayContextSwitches = end - start
        }
        result.benchCPU = after.benchCPU - before.benchCPU
        result.latencies.sort()
    }
}

/// Hands out request numbers to concurrent workers.
private final class TicketDispenser: Sendable {
    private let issued = Atomic<Int>(0)

    /// The next number, starting at 0.
    func take() -> Int {
        issued.wrappingAdd(1, ordering: .relaxed).oldValue
    }
}

/// The CPU time (user + system, all threads) of this process so far.
func ownCPUTime() -> Duration {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let microseconds = (Int(usage.ru_utime.tv_sec) + Int(usage.ru_stime.tv_sec)) * 1_000_000
        + Int(usage.ru_utime.tv_usec) + Int(usage.ru_stime.tv_usec)
    return .microseconds(microseconds)
}

extension Array where Element == UInt8 {
    /// Whether the bytes end with `suffix`, ignoring trailing line breaks and spaces.
    func endsWith(_ suffix: [UInt8]) -> Bool {
        var end = count
        while end > 0, self[end - 1] == UInt8(ascii: "\n") || self[end - 1] == UInt8(ascii: "\r") || self[end - 1] == UInt8(ascii: " ") {
            end -= 1
        }
        guard end >= suffix.count else { return false }
        return self[(end - suffix.count)..<end].elementsEqual(suffix)
    }
}
