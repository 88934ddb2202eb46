/// The measurements of one side (direct or through rosettad) of a scenario.
struct SideResults: Sendable {
    /// Sequential whole requests (latency).
    var sequential = PhaseResult()
    /// Whole requests at the configured concurrency (throughput, CPU).
    var concurrent = PhaseResult()
    /// Sequential streamed requests (total stream time).
    var streams = PhaseResult()
    /// Content events the client saw in the validated stream.
    var streamContentEvents = 0
    /// Size of a whole answer's body.
    var wholeResponseBytes = 0
    /// Size of a streamed answer's body.
    var streamResponseBytes = 0

    /// One line per phase that had failed requests or hit its time limit.
    var failureSummaries: [String] {
        var lines: [String] = []
        for (name, phase) in [("sequential", sequential), ("concurrent", concurrent), ("streams", streams)] {
            if phase.failures > 0 {
                lines.append("\(name): \(phase.failures) failed request(s), first: \(phase.firstFailure ?? "?")")
            }
            if phase.stoppedByTimeLimit {
                lines.append("\(name): stopped at the phase time limit after \(phase.completed) request(s)")
            }
        }
        return lines
    }
}

/// Both sides of one scenario.
struct ScenarioResults: Sendable {
    /// The scenario's name.
    var name: String
    /// Straight to the fake upstream.
    var direct: SideResults?
    /// Through rosettad.
    var through: SideResults?
}

/// Everything one run measured, and its rendering as a Markdown table.
struct BenchReport: Sendable {
    /// Gateway CPU per request on the translation path must stay at or under this (ms).
    static let cpuTarget = 0.10
    /// The added p50 latency must stay at or under this (ms).
    static let addedLatencyTarget = 0.25

    /// The machine.
    var machine: MachineDescription
    /// The run's parameters in one line.
    var settings: String
    /// Concurrent requests in the throughput runs.
    var concurrency: Int
    /// Text chunks per streamed answer.
    var streamChunks: Int
    /// The fake upstream's port.
    var fakePort = 0
    /// Requests the fake upstream answered.
    var fakeServed = 0
    /// From spawning rosettad to its first healthy answer.
    var gatewayStartup: Duration?
    /// The gateway's resident memory at the end of the run.
    var gatewayResidentKiB: Int?
    /// How the gateway exited.
    var gatewayExit: GatewayExit?
    /// The scenarios' results.
    var scenarios: [ScenarioResults] = []
    /// Things that broke (each makes the run exit 1).
    var problems: [String] = []

    /// The report as text: machine, settings, the results table, and notes.
    func render() -> String {
        var lines: [String] = []
        lines.append("## rosetta-bench results")
        lines.append("")
        lines.append("- Machine: \(machine.cores) cores, \(machine.cpuModel), \(machine.kernel), load average at start \(machine.loadAverage). The load generator, the fake upstream and rosettad share these cores.")
        lines.append("- Run: \(settings).")
        if let gatewayStartup { lines.append("- rosettad: ready \(formatMilliseconds(gatewayStartup)) ms after spawn" + (gatewayResidentKiB.map { "; resident memory at the end \($0 / 1024) MiB" } ?? "") + (gatewayExit.map { "; \($0.description)" } ?? "") + ".") }
        lines.append("- The fake upstream answered \(fakeServed) requests.")
        lines.append("")
        lines.append("| scenario | measure | direct | through rosettad | through/direct | target |")
        lines.append("|---|---|---:|---:|---:|---|")
        for scenario in scenarios {
            lines.append(contentsOf: rows(for: scenario))
        }
        lines.append("")
        lines.append("Latency: sequential whole requests after warm-up, send to last body byte, in ms. Throughput: completed requests per second at the stated concurrency. "
            + "Gateway CPU: utime+stime of the rosettad process (/proc/PID/stat, 10 ms ticks) over the run ÷ completed requests. "
            + "Bench CPU: this process (load generator + fake upstream), getrusage. Stream: median total time of one streamed answer (send to last byte).")
        return lines.joined(separator: "\n")
    }

    private func rows(for scenario: ScenarioResults) -> [String] {
        let direct = scenario.direct
        let through = scenario.through
        let isTranslation = scenario.name == "translation"
        var rows: [String] = []

        func row(_ measure: String, _ directValue: Double?, _ throughValue: Double?, places: Int = 3, target: String = "") {
            let ratio: String
            if let directValue, let throughValue, directValue > 0 {
                ratio = formatDecimal(throughValue / directValue, places: 2) + "×"
            } else {
                ratio = "—"
            }
            rows.append("| \(scenario.name) | \(measure) | \(format(directValue, places)) | \(format(throughValue, places)) | \(ratio) | \(target) |")
        }

        let directP50 = direct?.sequential.percentile(0.5)
        let throughP50 = through?.sequential.percentile(0.5)
        row("p50 latency (ms)", directP50, throughP50)
        row("p99 latency (ms)", direct?.sequential.percentile(0.99), through?.sequential.percentile(0.99))
        var addedTarget = ""
        var added: Double?
        if let directP50, let throughP50 {
            added = throughP50 - directP50
            addedTarget = "≤ \(formatDecimal(Self.addedLatencyTarget, places: 2)) ms: " + (added! <= Self.addedLatencyTarget ? "pass" : "miss")
        }
        rows.append("| \(scenario.name) | added p50 latency (ms) | — | \(added.map { (($0 >= 0) ? "+" : "") + formatDecimal($0, places: 3) } ?? "—") | — | \(addedTarget) |")
        row("throughput at concurrency \(concurrency) (req/s)", direct.map { $0.concurrent.throughput }, through.map { $0.concurrent.throughput }, places: 0)
        row("p50 latency at concurrency \(concurrency) (ms)", direct?.concurrent.percentile(0.5), through?.concurrent.percentile(0.5))
        let cpu = through?.concurrent.gatewayCPUPerRequest
        var cpuTarget = ""
        if isTranslation, let cpu {
            cpuTarget = "≤ \(formatDecimal(Self.cpuTarget, places: 2)) ms: " + (cpu <= Self.cpuTarget ? "pass" : "miss")
        }
        rows.append("| \(scenario.name) | gateway CPU per request at concurrency \(concurrency) (ms) | — | \(format(cpu, 3)) | — | \(cpuTarget) |")
        rows.append("| \(scenario.name) | gateway context switches per request at concurrency \(concurrency) | — | \(format(through?.concurrent.gatewayContextSwitchesPerRequest, 1)) | — | |")
        rows.append("| \(scenario.name) | gateway context switches per request, sequential | — | \(format(through?.sequential.gatewayContextSwitchesPerRequest, 1)) | — | |")
        rows.append("| \(scenario.name) | gateway CPU per request, sequential (ms) | — | \(format(through?.sequential.gatewayCPUPerRequest, 3)) | — | |")
        row("bench CPU per request at concurrency \(concurrency) (ms)", direct?.concurrent.benchCPUPerRequest, through?.concurrent.benchCPUPerRequest)
        row("\(streamChunks)-chunk stream, median total (ms)", direct?.streams.percentile(0.5), through?.streams.percentile(0.5))
        row("stream p99 total (ms)", direct?.streams.percentile(0.99), through?.streams.percentile(0.99))
        rows.append("| \(scenario.name) | gateway CPU per stream (ms) | — | \(format(through?.streams.gatewayCPUPerRequest, 3)) | — | |")
        return rows
    }

    private func format(_ value: Double?, _ places: Int) -> String {
        value.map { formatDecimal($0, places: places) } ?? "—"
    }
}
