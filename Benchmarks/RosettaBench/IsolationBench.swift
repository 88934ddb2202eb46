#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
import TenantGateway

/// The isolation scenario's settings: tenant A's cap and load, and tenant B's measurement.
struct IsolationSettings: Sendable {
    /// Each tenant's `max_concurrent_upstream`.
    var cap: Int
    /// Each tenant's `max_queued`.
    var queued: Int
    /// A's concurrent streaming clients (4× the cap by default).
    var hammerClients: Int
    /// Events in one of A's streams.
    var streamChunks: Int
    /// Milliseconds between the events of A's streams (the fake upstream paces them).
    var chunkIntervalMilliseconds: Int
    /// How long A's clients wait after a 429 before trying again (they ignore `Retry-After`).
    var retryPauseMilliseconds: Int
    /// B's sequential whole requests per measurement.
    var measuredRequests: Int
}

/// What the isolation scenario measured.
struct IsolationResult: Sendable {
    var settings: IsolationSettings
    /// B's requests with no load from A.
    var alone = PhaseResult()
    /// B's requests while A hammers.
    var underLoad = PhaseResult()
    /// A's streams that completed while B measured.
    var hammerCompleted = 0
    /// A's requests refused with 429.
    var hammerRefused = 0
    /// A's requests that failed otherwise.
    var hammerFailed = 0
    /// A's first unexpected failure.
    var hammerFirstFailure: String?

    /// The report lines.
    func render() -> String {
        func line(_ label: String, _ phase: PhaseResult) -> String {
            "  \(label)  p50 \(format(phase.percentile(0.5))) ms   p99 \(format(phase.percentile(0.99))) ms   (\(phase.completed) requests, \(phase.failures) failed)"
        }
        func ratio(_ fraction: Double) -> String {
            guard let alone = self.alone.percentile(fraction), let loaded = underLoad.percentile(fraction), alone > 0 else { return "-" }
            return formatDecimal(loaded / alone, places: 2) + "×"
        }
        let s = settings
        return [
            "Isolation: two user-mode rosettad (tenants A and B), each max_concurrent_upstream \(s.cap), max_queued \(s.queued), one shared fake upstream",
            "  A: \(s.hammerClients) clients streaming \(s.streamChunks) events every \(s.chunkIntervalMilliseconds) ms, retrying \(s.retryPauseMilliseconds) ms after each 429",
            line("B alone          ", alone),
            line("B while A hammers", underLoad),
            "  B latency ratio (under load / alone): p50 \(ratio(0.5)), p99 \(ratio(0.99))",
            "  A during B's measurement: \(hammerCompleted) streams completed, \(hammerRefused) refused with 429, \(hammerFailed) other failures"
                + (hammerFirstFailure.map { " (first: \($0))" } ?? ""),
        ].joined(separator: "\n")
    }

    private func format(_ value: Double?) -> String {
        value.map { formatDecimal($0, places: 3) } ?? "-"
    }
}

/// Tenant isolation: tenant A keeps 4× its cap of streams going against a shared upstream while tenant B's
/// latency is measured, compared with B alone.
///
/// Without root, two tenants are two user-mode daemons (one per tenant, as two users would run them); each
/// applies its own cap, so A's surplus gets 429 instead of piling up work in its gateway.
enum IsolationBench {
    /// The config of each tenant: the bench models, a paced streaming model, and the cap.
    static func configText(upstreamPort: Int, openAIKey: String, anthropicKey: String, settings: IsolationSettings) -> String {
        let pacing = "\(FakeUpstreamResponder.chunkIntervalHeader): \"\(settings.chunkIntervalMilliseconds)\", \(FakeUpstreamResponder.streamChunksHeader): \"\(settings.streamChunks)\""
        return """
            # Written by rosetta-bench (isolation): the fake upstream, a paced streaming model, and the tenant's cap.
            providers:
              fake-openai: {type: openai_chat, base_url: "http://127.0.0.1:\(upstreamPort)/v1", api_key: \(openAIKey)}
              fake-paced: {type: openai_chat, base_url: "http://127.0.0.1:\(upstreamPort)/v1", api_key: \(openAIKey), headers: {\(pacing)}}
            models:
              bench-openai: {provider: fake-openai, upstream_model: fake-gpt}
              bench-paced: {provider: fake-paced, upstream_model: fake-gpt}
            limits: {max_concurrent_upstream: \(settings.cap), max_queued: \(settings.queued)}

            """
    }

    /// Starts A and B, measures B alone and under A's load, stops both.
    static func run(
        rosettad: String, upstreamPort: Int, configuration: FakeUpstreamConfiguration, settings: IsolationSettings,
        logger: Logger, timeLimit: Duration
    ) async throws -> IsolationResult {
        let config = configText(upstreamPort: upstreamPort, openAIKey: configuration.openAIKey, anthropicKey: configuration.anthropicKey, settings: settings)
        // Separate clients (each its own curl thread), so A's load does not queue B's requests in the bench itself.
        let clientA = UpstreamHTTPClient(logger: logger)
        let clientB = UpstreamHTTPClient(logger: logger)
        defer {
            clientA.shutdown()
            clientB.shutdown()
        }
        var started: [(GatewayProcess, BenchWorkspace)] = []
        defer {
            for (gateway, workspace) in started {
                _ = gateway.stop(timeout: .seconds(15))
                workspace.remove()
            }
        }
        for _ in 0..<2 {
            let workspace = try BenchWorkspace.create()
            let gateway = try await GatewayProcess.launch(
                executable: rosettad, workspace: workspace, config: config, port: 0, client: clientB, startupTimeout: .seconds(30))
            started.append((gateway, workspace))
        }
        let (tenantA, tenantB) = (started[0].0, started[1].0)
        let json: [(name: String, value: String)] = [("Content-Type", "application/json")]
        func target(_ gateway: GatewayProcess, model: String, stream: Bool) -> BenchTarget {
            var body: JSONObject = ["model": .string(model), "messages": [["role": "user", "content": "Say hello in five words."]], "max_tokens": 64]
            if stream { body["stream"] = true }
            return BenchTarget(
                url: "http://127.0.0.1:\(gateway.port)/v1/chat/completions",
                headers: json + [("Authorization", "Bearer \(gateway.token)")],
                body: JSON.object(body).bytes,
                expectedEnding: stream ? Array("data: [DONE]".utf8) : Array("}".utf8))
        }
        let measuredB = target(tenantB, model: "bench-openai", stream: false)
        let hammerA = target(tenantA, model: "bench-paced", stream: true)
        let generatorB = LoadGenerator(client: clientB, requestTimeout: .seconds(30), gatewayCPU: { nil }, gatewayContextSwitches: { nil })
        let generatorA = LoadGenerator(client: clientA, requestTimeout: .seconds(60), gatewayCPU: { nil }, gatewayContextSwitches: { nil })

        var result = IsolationResult(settings: settings)
        print("  isolation: B alone, \(settings.measuredRequests) sequential requests…")
        result.alone = await generatorB.sequential(measuredB, warmup: 50, count: settings.measuredRequests, timeLimit: timeLimit)

        print("  isolation: A hammers with \(settings.hammerClients) streaming clients; B measures again…")
        let counts = HammerCounts()
        result.underLoad = await withTaskGroup(of: PhaseResult?.self) { group in
            for _ in 0..<settings.hammerClients {
                group.addTask {
                    while !counts.isStopped {
                        do {
                            let answer = try await generatorA.exchange(hammerA)
                            if answer.status == 429 {
                                counts.refused()
                                try? await Task.sleep(for: .milliseconds(settings.retryPauseMilliseconds))
                            } else if answer.status == 200, answer.body.endsWith(hammerA.expectedEnding) {
                                counts.completed()
                            } else {
                                counts.failed("status \(answer.status): \(String(decoding: answer.body.prefix(200), as: UTF8.self))")
                            }
                        } catch {
                            counts.failed("\(error)")
                        }
                    }
                    return nil
                }
            }
            group.addTask {
                // Let A reach its cap (and its queue fill) before B measures.
                try? await Task.sleep(for: .milliseconds(500))
                counts.reset()
                let measured = await generatorB.sequential(measuredB, warmup: 20, count: settings.measuredRequests, timeLimit: timeLimit)
                counts.stop()
                return measured
            }
            var measured = PhaseResult()
            for await phase in group {
                if let phase { measured = phase }
            }
            return measured
        }
        (result.hammerCompleted, result.hammerRefused, result.hammerFailed, result.hammerFirstFailure) = counts.snapshot
        return result
    }
}

/// A's outcomes, counted by every hammering client.
final class HammerCounts: Sendable {
    private struct Counts {
        var completed = 0
        var refused = 0
        var failed = 0
        var firstFailure: String?
    }
    private let counts = Mutex(Counts())
    private let stopped = Atomic<Bool>(false)

    /// Whether the clients should stop.
    var isStopped: Bool { stopped.load(ordering: .relaxed) }
    /// Tells the clients to stop after their current request.
    func stop() { stopped.store(true, ordering: .relaxed) }

    func completed() { counts.withLock { $0.completed += 1 } }
    func refused() { counts.withLock { $0.refused += 1 } }
    func failed(_ description: String) {
        counts.withLock {
            $0.failed += 1
            if $0.firstFailure == nil { $0.firstFailure = description }
        }
    }
    func reset() { counts.withLock { $0 = Counts() } }

    var snapshot: (Int, Int, Int, String?) {
        counts.withLock { ($0.completed, $0.refused, $0.failed, $0.firstFailure) }
    }
}
