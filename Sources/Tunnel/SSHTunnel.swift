#if canImport(Glibc)
import Glibc
#endif
import Logging
import TenantGateway

/// One tenant's SSH tunnel to Argo: a lazily started `ssh -N` forwarding a private Unix socket, supervised by
/// `TunnelStateMachine` (backoff, cool-down, lock, idle stop).
///
/// `run()` is the supervising loop (a service of the tenant); requests call `socketWhenReady(within:)`.
/// When `rosetta tunnel login` has left a ControlMaster at `configuration.controlPath`, the forward is added to
/// that master (`-O forward`) instead of starting a new, non-interactive connection.
package actor SSHTunnel: UpstreamSocketSource {
    /// How the current or last connection holds the forward.
    package enum Mode: String, Sendable {
        /// A non-interactive `ssh -N -L …` of its own.
        case standalone
        /// A forward added to the ControlMaster that `rosetta tunnel login` opened.
        case controlMaster = "control_master"
    }

    /// One ssh attempt the loop runs.
    struct Attempt: Sendable {
        let id: Int
        let stop: AsyncStream<Void>
    }

    /// The configuration.
    package let configuration: SSHTunnelConfiguration
    private var machine: TunnelStateMachine { didSet { GatewayMetrics.process.tunnelStateChanged(from: oldValue.state.name, to: machine.state.name) } }
    private let logger: Logger
    private let jitter: @Sendable () -> Double
    private let readinessCheck: ReadinessCheck?
    private var waiters: [Int: (deadline: ContinuousClock.Instant, awaited: Int, continuation: CheckedContinuation<TunnelAdmission, Never>)] = [:]
    private var nextWaiterID = 0
    private var nextAttemptID = 0
    private var currentAttempt: (id: Int, stop: AsyncStream<Void>.Continuation)?
    private var currentPID: Int32?
    private var mode: Mode = .standalone
    private var upSince: ContinuousClock.Instant?
    private var attemptsStarted = 0
    /// The readiness failure that ended an attempt (its ssh exit is then reported as this failure).
    private var readinessFailure: (attempt: Int, failure: TunnelFailure)?
    private let starts: AsyncStream<Attempt>
    private let startContinuation: AsyncStream<Attempt>.Continuation

    /// Creates the tunnel in `idle`; `jitter` returns values in [0, 1) (injectable for tests).
    /// Checks the far end once the forwarded socket accepts: `nil` when a TLS handshake naming the upstream's host
    /// succeeded through `socketPath`, otherwise why it did not.
    package typealias ReadinessCheck = @Sendable (_ socketPath: String) async -> String?

    /// How many readiness checks in a row may fail before the attempt counts as a refused forward.
    static let readinessChecksBeforeFailing = 3

    /// Creates the tunnel; with `readinessCheck`, "up" also needs that check to pass, not just the socket to accept.
    package init(
        configuration: SSHTunnelConfiguration, logger: Logger, readinessCheck: ReadinessCheck? = nil,
        jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.configuration = configuration
        self.readinessCheck = readinessCheck
        self.machine = TunnelStateMachine(policy: configuration.policy)
        GatewayMetrics.process.tunnelStateChanged(from: nil, to: machine.state.name)
        var logger = logger
        logger[metadataKey: "tunnel.destination"] = "\(configuration.destination)"
        self.logger = logger
        self.jitter = jitter
        (starts, startContinuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
    }

    /// The forwarded socket's path.
    package nonisolated var socketPath: String { configuration.socketPath }

    // MARK: The supervising loop

    /// Supervises the tunnel until cancelled: starts attempts, watches deadlines; on cancellation stops ssh.
    package func run() async {
        // In system mode the supervisor prepares the directory for the tenant (owned by them, 0700) before the
        // tunnel runs; only a tunnel of the daemon's own user makes its directory here.
        if configuration.spawnIdentity == nil {
            do {
                try SecretFile.ensurePrivateDirectory(configuration.runtimeDirectory)
            } catch {
                logger.error("cannot prepare the tunnel's private directory", metadata: ["path": "\(configuration.runtimeDirectory)", "error": "\(error)"])
            }
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.timerLoop() }
            for await attempt in starts {
                group.addTask { await self.runAttempt(attempt) }
            }
            group.cancelAll()
        }
        _ = machine.shutDown()
        currentAttempt?.stop.finish()
        currentAttempt = nil
        resolveWaiters(now: .now)
    }

    /// Ends `run()`: stops ssh and refuses requests from now on.
    package func shutDown() {
        apply(machine.shutDown())
        resolveWaiters(now: .now)
        startContinuation.finish()
    }

    /// Wakes at the machine's next deadline (or a waiter's), and at least every second, to advance time.
    private func timerLoop() async {
        while !Task.isCancelled {
            let now = ContinuousClock.now
            var wake = now + .seconds(1)
            if let deadline = machine.nextDeadline(), deadline < wake { wake = deadline }
            if let earliest = waiters.values.map(\.deadline).min(), earliest < wake { wake = earliest }
            if wake > now {
                try? await Task.sleep(until: wake, clock: .continuous)
            }
            if Task.isCancelled { return }
            tick()
        }
    }

    private func tick() {
        let now = ContinuousClock.now
        apply(machine.tick(now: now, unitJitter: jitter()))
        resolveWaiters(now: now)
    }

    // MARK: Requests

    /// Waits (at most `within`) until the tunnel is up and returns the socket to connect to; starts it when idle.
    package func socketWhenReady(within: Duration) async throws(TunnelUnavailable) -> String {
        let now = ContinuousClock.now
        let (admission, command) = machine.request(now: now)
        apply(command)
        var answer = admission
        if answer == .wait {
            let id = nextWaiterID
            nextWaiterID += 1
            answer = await withCheckedContinuation { continuation in
                waiters[id] = (now + within, machine.awaitedAttempt, continuation)
                resolveWaiters(now: now)
            }
        }
        switch answer {
        case .ready:
            return configuration.socketPath
        case .refuse(let refusal):
            throw TunnelUnavailable(state: refusal.state, message: refusal.message, retryAfterSeconds: refusal.retryAfterSeconds)
        case .wait:
            let seconds = TunnelStateMachine.wholeSeconds(within)
            throw TunnelUnavailable(
                state: machine.state.name,
                message: "The SSH tunnel to Argo did not come up within \(seconds) s (state: \(machine.state.name)). Check `rosetta tunnel status`; for MFA run `rosetta tunnel login`.",
                retryAfterSeconds: 5)
        }
    }

    private func resolveWaiters(now: ContinuousClock.Instant) {
        guard !waiters.isEmpty else { return }
        for (id, waiter) in waiters {
            if let admission = machine.admissionForWaiter(awaiting: waiter.awaited, now: now) {
                waiters[id] = nil
                waiter.continuation.resume(returning: admission)
            } else if waiter.deadline <= now {
                waiters[id] = nil
                waiter.continuation.resume(returning: .wait)
            }
        }
    }

    // MARK: Commands

    /// `rosetta tunnel stop`: stops ssh now; the next request starts it again.
    package func stop() {
        apply(machine.stop())
        if mode == .controlMaster { mode = .standalone }
        resolveWaiters(now: .now)
    }

    /// `rosetta tunnel reset`: forgets failures, leaves cool-down or lock, stops ssh.
    package func reset() {
        apply(machine.reset())
        resolveWaiters(now: .now)
        logger.notice("tunnel reset")
    }

    /// The tunnel's status for `rosetta tunnel status`, without secrets.
    package func status() -> JSON {
        let now = ContinuousClock.now
        var object: JSONObject = [
            "state": .string(machine.state.name),
            "destination": .string(configuration.destination),
            "forward_to": .string("\(configuration.forwardHost):\(configuration.forwardPort)"),
            "socket": .string(configuration.socketPath),
            "control_path": .string(configuration.controlPath),
            "mode": .string(mode.rawValue),
            "attempts": JSON(attemptsStarted),
            "consecutive_failures": JSON(machine.consecutiveFailures),
            "cool_downs": JSON(machine.coolDowns),
        ]
        if let jump = configuration.jump { object["jump"] = .string(jump) }
        if let currentPID { object["ssh_pid"] = JSON(Int(currentPID)) }
        if case .up(let since) = machine.state { object["up_seconds"] = JSON(TunnelStateMachine.wholeSeconds(now - since)) }
        if let idle = configuration.policy.idleTimeout { object["idle_timeout_seconds"] = JSON(Int(idle.components.seconds)) }
        if let failure = machine.lastFailure {
            var last: JSONObject = ["class": .string(failure.kind.rawValue), "detail": .string(failure.detail)]
            if let code = failure.exitCode { last["exit_code"] = JSON(Int(code)) }
            object["last_failure"] = .object(last)
        }
        if let refusal = machine.refusal(now: now) {
            object["message"] = .string(refusal.message)
            if let seconds = refusal.retryAfterSeconds { object["retry_after_seconds"] = JSON(seconds) }
        }
        return .object(object)
    }

    /// The ssh arguments `rosetta tunnel login` runs, after removing a stale control socket.
    package func prepareLogin() async -> (executable: String, arguments: [String], controlPath: String, alreadyRunning: Bool) {
        try? SecretFile.ensurePrivateDirectory(configuration.runtimeDirectory)
        let running = await controlMasterRuns()
        if !running { unlink(configuration.controlPath) }
        return (configuration.sshExecutable, configuration.loginArguments, configuration.controlPath, running)
    }

    /// The ControlMaster answers `-O check`; a socket that does not answer is stale and removed.
    private func controlMasterRuns() async -> Bool {
        guard access(configuration.controlPath, F_OK) == 0 else { return false }
        let check = await SSHProcess.runToCompletion(
            executable: configuration.sshExecutable, arguments: configuration.controlArguments("check"),
            identity: configuration.spawnIdentity, timeout: .seconds(5))
        if check.code == 0 { return true }
        unlink(configuration.controlPath)
        logger.info("removed a stale ssh control socket", metadata: ["path": "\(configuration.controlPath)"])
        return false
    }

    // MARK: Attempts

    private func apply(_ command: TunnelCommand) {
        switch command {
        case .none:
            break
        case .startSSH:
            currentAttempt?.stop.finish()
            let (stop, continuation) = AsyncStream<Void>.makeStream()
            let id = nextAttemptID
            nextAttemptID += 1
            attemptsStarted += 1
            if attemptsStarted > 1 { GatewayMetrics.process.tunnelRestarted() }
            currentAttempt = (id, continuation)
            startContinuation.yield(Attempt(id: id, stop: stop))
        case .stopSSH:
            currentAttempt?.stop.finish()
            currentAttempt = nil
            currentPID = nil
        }
    }

    /// Runs one attempt to its end: ssh (or a forward on the ControlMaster), the readiness probe, the exit.
    private func runAttempt(_ attempt: Attempt) async {
        unlink(configuration.socketPath)
        if await controlMasterRuns() {
            await runOnControlMaster(attempt)
            return
        }
        mode = .standalone
        logger.info("starting ssh", metadata: ["attempt": "\(attempt.id)"])
        let exit = await withTaskGroup(of: SSHExit?.self, returning: SSHExit.self) { group in
            group.addTask {
                await SSHProcess.run(
                    executable: self.configuration.sshExecutable, arguments: self.configuration.standaloneArguments,
                    identity: self.configuration.spawnIdentity, grace: self.configuration.terminationGrace, stop: attempt.stop,
                    onStart: { pid in await self.started(attempt: attempt.id, pid: pid) })
            }
            group.addTask {
                if let refused = await self.probeUntilReady(attempt: attempt.id) {
                    // The far end is not the upstream: stop ssh; its exit then reports this failure.
                    await self.refuseReadiness(refused, attempt: attempt)
                }
                return nil
            }
            var exit = SSHExit(code: nil, stderr: "")
            for await finished in group {
                if let finished {
                    exit = finished
                    group.cancelAll()
                }
            }
            return exit
        }
        let failure = readinessFailure.flatMap { $0.attempt == attempt.id ? $0.failure : nil }
            ?? TunnelFailure.fromExit(code: exit.code, stderr: exit.stderr)
        readinessFailure = nil
        ended(attempt: attempt.id, failure: failure)
    }

    private func refuseReadiness(_ failure: TunnelFailure, attempt: Attempt) {
        guard let current = currentAttempt, current.id == attempt.id else { return }
        readinessFailure = (attempt.id, failure)
        current.stop.finish()
    }

    /// Adds the forward to the running ControlMaster, then watches it until stopped or the master ends.
    private func runOnControlMaster(_ attempt: Attempt) async {
        mode = .controlMaster
        logger.info("adding the forward to the ssh ControlMaster", metadata: ["attempt": "\(attempt.id)"])
        let forward = await SSHProcess.runToCompletion(
            executable: configuration.sshExecutable, arguments: configuration.controlArguments("forward"),
            identity: configuration.spawnIdentity, timeout: configuration.policy.connectTimeout)
        guard forward.code == 0 else {
            ended(attempt: attempt.id, failure: TunnelFailure.fromExit(code: forward.code, stderr: forward.stderr))
            return
        }
        if let refused = await probeUntilReady(attempt: attempt.id) {
            _ = await SSHProcess.runToCompletion(
                executable: configuration.sshExecutable, arguments: configuration.controlArguments("cancel"),
                identity: configuration.spawnIdentity, timeout: .seconds(5))
            ended(attempt: attempt.id, failure: refused)
            return
        }
        // Watch the master while the attempt is current: a stop ends the watch, a dead master is a failure.
        let failure: TunnelFailure? = await withTaskGroup(of: TunnelFailure?.self, returning: TunnelFailure?.self) { group in
            group.addTask {
                for await _ in attempt.stop { break }
                return nil
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(5))
                    if Task.isCancelled { return nil }
                    let check = await SSHProcess.runToCompletion(
                        executable: self.configuration.sshExecutable, arguments: self.configuration.controlArguments("check"),
                        identity: self.configuration.spawnIdentity, timeout: .seconds(5))
                    if check.code != 0 {
                        return TunnelFailure(kind: .network, exitCode: check.code, detail: "the ssh ControlMaster opened by `rosetta tunnel login` has ended")
                    }
                }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        if let failure {
            ended(attempt: attempt.id, failure: failure)
            return
        }
        _ = await SSHProcess.runToCompletion(
            executable: configuration.sshExecutable, arguments: configuration.controlArguments("cancel"),
            identity: configuration.spawnIdentity, timeout: .seconds(5))
        unlink(configuration.socketPath)
    }

    private func started(attempt: Int, pid: Int32) {
        guard currentAttempt?.id == attempt else { return }
        currentPID = pid
    }

    /// Polls the forwarded socket every 50 ms until it accepts and the readiness check passes, or the attempt is
    /// no longer current; returns a failure when the check keeps failing (the forward reaches something else).
    private func probeUntilReady(attempt: Int) async -> TunnelFailure? {
        var failedChecks = 0
        while !Task.isCancelled {
            guard currentAttempt?.id == attempt, case .connecting = machine.state else { return nil }
            if UnixSocketProbe.accepts(configuration.socketPath) {
                if let readinessCheck, let problem = await readinessCheck(configuration.socketPath) {
                    failedChecks += 1
                    logger.info("the forwarded socket accepts but the TLS check failed", metadata: [
                        "attempt": "\(attempt)", "check": "\(failedChecks)", "reason": "\(problem)"])
                    if failedChecks >= Self.readinessChecksBeforeFailing {
                        return TunnelFailure(
                            kind: .forwardRefused, exitCode: nil,
                            detail: "the tunnel's socket accepts, but a TLS handshake with \(configuration.forwardHost) through it failed: \(problem)")
                    }
                    try? await Task.sleep(for: .milliseconds(200))
                    continue
                }
                guard currentAttempt?.id == attempt, case .connecting = machine.state else { return nil }
                machine.connected(now: .now)
                logger.notice("tunnel up", metadata: ["attempt": "\(attempt)", "mode": "\(mode.rawValue)"])
                resolveWaiters(now: .now)
                return nil
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    private func ended(attempt: Int, failure: TunnelFailure) {
        guard currentAttempt?.id == attempt else {
            logger.debug("a stopped ssh exited", metadata: ["attempt": "\(attempt)"])
            return
        }
        currentAttempt = nil
        currentPID = nil
        let now = ContinuousClock.now
        machine.failed(failure, now: now, unitJitter: jitter())
        logger.warning("ssh tunnel ended", metadata: [
            "attempt": "\(attempt)", "failure.class": "\(failure.kind.rawValue)", "failure.detail": "\(failure.detail)",
            "tunnel.state": "\(machine.state.name)",
        ])
        unlink(configuration.socketPath)
        resolveWaiters(now: now)
    }
}
