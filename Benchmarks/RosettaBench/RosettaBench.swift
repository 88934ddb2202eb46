#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Logging
import TenantGateway

/// `rosetta-bench`: direct-to-upstream versus through-rosettad latency, throughput, CPU and stream time, in one run.
@main
struct RosettaBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rosetta-bench",
        abstract: "Measure rosettad against a fast fake upstream: direct vs through the gateway, on 127.0.0.1 only.",
        discussion: """
        Starts a fake OpenAI/Anthropic upstream in this process, starts `rosettad serve --user` against it \
        (HOME, config, socket and state in a temporary directory), and measures p50/p99 latency of \
        sequential requests, throughput at a fixed concurrency, gateway CPU per request (from /proc), \
        and a streamed answer's total time, each direct to the fake and through rosettad. \
        Exits 0 unless something broke (the targets are informational).
        """
    )

    @Option(help: "The rosettad binary to start.")
    var rosettad = ".build/release/rosettad"

    @Flag(help: "Measure only the direct numbers (no gateway is started).")
    var directOnly = false

    @Option(help: "Unmeasured sequential requests before each latency run.")
    var warmup = 200

    @Option(help: "Measured sequential requests per latency run.")
    var sequential = 2_000

    @Option(help: "Requests per throughput run.")
    var throughputRequests = 20_000

    @Option(help: "Concurrent requests in the throughput runs.")
    var concurrency = 32

    @Option(help: "Text chunks in each streamed answer.")
    var streamChunks = 200

    @Option(help: "Measured streams per stream run (after a few unmeasured ones).")
    var streamRuns = 50

    @Option(help: "The longest one measured phase may run, in seconds.")
    var phaseTimeLimit = 60

    @Option(help: "Event-loop threads of the fake upstream.")
    var fakeThreads = 1

    @Option(help: "The gateway's TCP port (0: pick a free one).")
    var gatewayPort = 0

    @Option(help: "Run only this scenario (translation, pass-through); repeat for several. Default: all.")
    var scenario: [String] = []

    @Option(help: "Isolation scenario: each tenant's max_concurrent_upstream (A runs 4× as many streaming clients).")
    var isolationCap = 8

    @Option(help: "Isolation scenario: milliseconds between the events of A's streams.")
    var isolationChunkInterval = 10

    @Option(help: "Isolation scenario: milliseconds A's clients wait after a 429 (they ignore Retry-After).")
    var isolationRetryPause = 10

    @Option(help: "Isolation scenario: B's measured sequential requests, alone and under A's load.")
    var isolationRequests = 500

    @Flag(help: "Keep the temporary directory (config, state, gateway output) for inspection.")
    var keepWorkspace = false

    mutating func validate() throws {
        guard warmup >= 0, sequential > 0, throughputRequests > 0, concurrency > 0, streamRuns > 0, phaseTimeLimit > 0, fakeThreads > 0 else {
            throw ValidationError("counts, concurrency, threads and the time limit must be positive")
        }
        let known = ["translation", "pass-through", "isolation"]
        if let unknown = scenario.first(where: { !known.contains($0) }) {
            throw ValidationError("unknown scenario \(unknown); known: \(known.joined(separator: ", "))")
        }
        guard isolationCap > 0, isolationChunkInterval > 0, isolationRetryPause >= 0, isolationRequests > 0 else {
            throw ValidationError("the isolation settings must be positive")
        }
        guard (1...FakeUpstreamResponder.maximumStreamChunks).contains(streamChunks) else {
            throw ValidationError("--stream-chunks must be 1...\(FakeUpstreamResponder.maximumStreamChunks)")
        }
    }

    func run() async throws {
        var logger = Logger(label: "rosetta-bench")
        logger.logLevel = .warning
        let fakeConfiguration = FakeUpstreamConfiguration(openAIKey: "k1", anthropicKey: "k2", defaultStreamChunks: streamChunks)
        let responder = FakeUpstreamResponder(configuration: fakeConfiguration, createdTimestamp: Int(time(nil)))
        let fake = try await FakeUpstreamServer.start(responder: responder, threads: fakeThreads)
        let client = UpstreamHTTPClient(logger: logger)
        var report = BenchReport(machine: MachineDescription.current(), settings: settingsLine(), concurrency: concurrency, streamChunks: streamChunks)
        report.fakePort = fake.port
        print("rosetta-bench: fake upstream on 127.0.0.1:\(fake.port) (\(fakeThreads) event-loop thread(s))")

        var gateway: GatewayProcess?
        var workspace: BenchWorkspace?
        if !directOnly {
            do {
                let created = try BenchWorkspace.create()
                workspace = created
                let config = GatewayProcess.configText(upstreamPort: fake.port, openAIKey: fakeConfiguration.openAIKey, anthropicKey: fakeConfiguration.anthropicKey)
                let startedAt = ContinuousClock.now
                let launched = try await GatewayProcess.launch(
                    executable: rosettad, workspace: created, config: config, port: gatewayPort,
                    client: client, startupTimeout: .seconds(30)
                )
                gateway = launched
                report.gatewayStartup = ContinuousClock.now - startedAt
                print("rosetta-bench: rosettad pid \(launched.pid) ready on 127.0.0.1:\(launched.port) after \(formatMilliseconds(report.gatewayStartup!)) ms (workspace \(created.root))")
            } catch {
                report.problems.append("rosettad could not be started, only direct numbers were measured: \(error)")
            }
        }
        let observed = gateway
        let generator = LoadGenerator(
            client: client,
            requestTimeout: .seconds(30),
            gatewayCPU: { observed?.cpuTime() },
            gatewayContextSwitches: { observed?.contextSwitches() }
        )
        let scenarios = BenchScenario.all(
            upstreamPort: fake.port,
            configuration: fakeConfiguration,
            gateway: gateway.map { (port: $0.port, token: $0.token) }
        )
        let expectedStreamText = fakeConfiguration.streamTokens(count: streamChunks).joined()
        for scenario in scenarios where self.scenario.isEmpty || self.scenario.contains(scenario.name) {
            print("rosetta-bench: scenario \(scenario.name): \(scenario.summary)")
            var results = ScenarioResults(name: scenario.name)
            let sides: [(label: String, whole: BenchRoute?, stream: BenchRoute?)] = [
                ("direct", scenario.directWhole, scenario.directStream),
                ("through rosettad", scenario.throughWhole, scenario.throughStream),
            ]
            for side in sides {
                guard let whole = side.whole, let stream = side.stream else { continue }
                do {
                    let measured = try await measure(
                        whole: whole, stream: stream, label: side.label,
                        generator: generator, expectedText: fakeConfiguration.assistantText, expectedStreamText: expectedStreamText
                    )
                    if side.label == "direct" { results.direct = measured } else { results.through = measured }
                } catch {
                    report.problems.append("\(scenario.name), \(side.label): \(error)")
                }
            }
            report.scenarios.append(results)
        }

        if let gateway {
            report.gatewayResidentKiB = gateway.residentKiB()
            let exit = gateway.stop(timeout: .seconds(15))
            report.gatewayExit = exit
            if !exit.isClean {
                report.problems.append("rosettad did not exit cleanly on SIGTERM: \(exit.description); its output:\n\(gateway.outputTail())")
            }
        }
        var isolation: IsolationResult?
        if !directOnly, self.scenario.isEmpty || self.scenario.contains("isolation") {
            print("rosetta-bench: scenario isolation: tenant A at 4× its cap of streams; tenant B's latency alone and meanwhile")
            let settings = IsolationSettings(
                cap: isolationCap, queued: isolationCap, hammerClients: 4 * isolationCap, streamChunks: 50,
                chunkIntervalMilliseconds: isolationChunkInterval, retryPauseMilliseconds: isolationRetryPause,
                measuredRequests: isolationRequests)
            do {
                let measured = try await IsolationBench.run(
                    rosettad: rosettad, upstreamPort: fake.port, configuration: fakeConfiguration, settings: settings,
                    logger: logger, timeLimit: .seconds(phaseTimeLimit))
                isolation = measured
                if measured.alone.failures + measured.underLoad.failures > 0 {
                    report.problems.append("isolation: B's requests failed: \(measured.underLoad.firstFailure ?? measured.alone.firstFailure ?? "?")")
                }
                if measured.hammerFailed > 0 {
                    report.problems.append("isolation: A's requests failed other than with 429: \(measured.hammerFirstFailure ?? "?")")
                }
            } catch {
                report.problems.append("isolation: \(error)")
            }
        }
        client.shutdown()
        report.fakeServed = fake.servedRequests
        await fake.stop()
        if let workspace {
            if keepWorkspace {
                print("rosetta-bench: kept \(workspace.root)")
            } else {
                workspace.remove()
            }
        }

        print("")
        print(report.render())
        if let isolation {
            print("")
            print(isolation.render())
        }
        for scenario in report.scenarios {
            for (label, side) in [("direct", scenario.direct), ("through rosettad", scenario.through)] {
                for failure in side?.failureSummaries ?? [] { report.problems.append("\(scenario.name), \(label): \(failure)") }
            }
        }
        if !report.problems.isEmpty {
            print("")
            print("Something broke:")
            for problem in report.problems { print("- \(problem)") }
            throw ExitCode(1)
        }
    }

    /// Validates a route pair once in full, then runs the latency, throughput and stream phases.
    private func measure(
        whole: BenchRoute,
        stream: BenchRoute,
        label: String,
        generator: LoadGenerator,
        expectedText: String,
        expectedStreamText: String
    ) async throws -> SideResults {
        var side = SideResults()
        let wholeAnswer = try await generator.exchange(whole.target)
        if let problem = AnswerValidator.checkWhole(wholeAnswer, format: whole.format, expectedText: expectedText) {
            throw BenchFailure("\(label): the whole answer is wrong: \(problem)")
        }
        let streamAnswer = try await generator.exchange(stream.target)
        let streamCheck = AnswerValidator.checkStream(streamAnswer, format: stream.format, expectedText: expectedStreamText)
        if let problem = streamCheck.problem {
            throw BenchFailure("\(label): the streamed answer is wrong: \(problem)")
        }
        side.streamContentEvents = streamCheck.contentEvents
        side.wholeResponseBytes = wholeAnswer.body.count
        side.streamResponseBytes = streamAnswer.body.count

        let limit = Duration.seconds(phaseTimeLimit)
        print("  \(label): \(sequential) sequential requests…")
        side.sequential = await generator.sequential(whole.target, warmup: warmup, count: sequential, timeLimit: limit)
        print("  \(label): \(throughputRequests) requests at concurrency \(concurrency)…")
        side.concurrent = await generator.concurrent(whole.target, count: throughputRequests, concurrency: concurrency, timeLimit: limit)
        print("  \(label): \(streamRuns) streams of \(streamChunks) chunks…")
        side.streams = await generator.sequential(stream.target, warmup: min(5, warmup), count: streamRuns, timeLimit: limit)
        return side
    }

    private func settingsLine() -> String {
        "warm-up \(warmup), \(sequential) sequential requests, \(throughputRequests) requests at concurrency \(concurrency), "
            + "\(streamRuns) streams of \(streamChunks) chunks, phase limit \(phaseTimeLimit) s, fake upstream on \(fakeThreads) thread(s)"
    }
}

/// The machine the benchmark ran on.
struct MachineDescription: Sendable {
    /// Online CPU cores.
    var cores: Int
    /// The CPU model from /proc/cpuinfo.
    var cpuModel: String
    /// Kernel name and release.
    var kernel: String
    /// The 1-, 5- and 15-minute load averages when the run started (other work on the machine skews the numbers).
    var loadAverage: String

    /// Describes the current machine.
    static func current() -> MachineDescription {
        let cores = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        var model = "unknown CPU"
        if let info = readFile("/proc/cpuinfo") {
            for line in info.split(separator: "\n") where line.hasPrefix("model name") {
                if let colon = line.firstIndex(of: ":") {
                    model = String(line[line.index(after: colon)...].drop { $0 == " " })
                }
                break
            }
        }
        var names = utsname()
        uname(&names)
        func text<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
        let load = readFile("/proc/loadavg").map { $0.split(separator: " ").prefix(3).joined(separator: " ") } ?? "unknown"
        return MachineDescription(
            cores: cores,
            cpuModel: model,
            kernel: "\(text(names.sysname)) \(text(names.release)) \(text(names.machine))",
            loadAverage: load
        )
    }
}
