/// Why an ssh attempt failed, classified from its exit status and standard error.
package enum TunnelFailureClass: String, Sendable, Equatable, CaseIterable {
    /// The server refused every key ("Permission denied"): retrying with the same key risks a block at the jump host.
    case authentication
    /// The server's host key is unknown or changed ("Host key verification failed").
    case hostKey = "host_key"
    /// The network failed: no route, refused, timed out, connection closed, server stopped answering.
    case network
    /// ssh could not set up the forward (the local socket could not be bound, or the server refused it).
    case forwardRefused = "forward_refused"
    /// ssh ended for a reason it did not explain in a recognised way.
    case unexpected

    /// Whether failures of this class count toward cooling-down and lockout.
    package var countsTowardLockout: Bool {
        self == .authentication || self == .hostKey
    }

    /// Classifies an ssh exit: `exitCode` is `nil` when ssh was ended by a signal; `stderr` is its standard error.
    package static func classify(exitCode: Int32?, stderr: String) -> TunnelFailureClass {
        let text = stderr.lowercased()
        let hostKeyMarks = [
            "host key verification failed", "remote host identification has changed",
            "no matching host key", "host key for", "is not known", "key_verify failed",
        ]
        if hostKeyMarks.contains(where: text.contains) { return .hostKey }
        let authenticationMarks = [
            "permission denied", "too many authentication failures", "authentication failed",
            "no more authentication methods", "no supported authentication methods",
        ]
        if authenticationMarks.contains(where: text.contains) { return .authentication }
        let forwardMarks = [
            "could not request local forwarding", "cannot listen to", "unix_listener", "bind: address already in use",
            "forwarding failed", "administratively prohibited", "channel_setup_fwd_listener",
        ]
        if forwardMarks.contains(where: text.contains) { return .forwardRefused }
        let networkMarks = [
            "connection refused", "could not resolve hostname", "connection timed out", "operation timed out",
            "no route to host", "network is unreachable", "closed by remote host", "connection closed",
            "not responding", "connection reset", "broken pipe", "timeout, server", "kex_exchange_identification",
            "connection to", "name or service not known", "temporary failure in name resolution",
        ]
        if networkMarks.contains(where: text.contains) { return .network }
        // Killed by a signal or exited without saying why: the connection went away under it.
        if exitCode == nil || exitCode == 0 { return .network }
        return .unexpected
    }
}

/// One failed attempt, as the state machine records it.
package struct TunnelFailure: Sendable, Equatable {
    /// The class that decides what happens next.
    package var kind: TunnelFailureClass
    /// ssh's exit code, `nil` when a signal ended it.
    package var exitCode: Int32?
    /// The last meaningful line of ssh's standard error (or our own description), for status and errors.
    package var detail: String

    /// Creates a failure record.
    package init(kind: TunnelFailureClass, exitCode: Int32?, detail: String) {
        self.kind = kind
        self.exitCode = exitCode
        self.detail = detail
    }

    /// A failure from an ssh exit, classified and with its last non-empty stderr line as the detail.
    package static func fromExit(code: Int32?, stderr: String) -> TunnelFailure {
        let lines = stderr.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: " \t") }
            .filter { !$0.isEmpty && !$0.hasPrefix("Warning: Permanently added") }
        let detail = lines.last.map(String.init) ?? (code.map { "ssh exited with status \($0)" } ?? "ssh was ended by a signal")
        return TunnelFailure(kind: .classify(exitCode: code, stderr: stderr), exitCode: code, detail: detail)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var result = self
        while let first = result.first, set.contains(first) { result = result.dropFirst() }
        while let last = result.last, set.contains(last) { result = result.dropLast() }
        return result
    }
}

/// Timing and limits for a tunnel's state machine.
package struct TunnelPolicy: Sendable, Equatable {
    /// The first backoff delay after a failure.
    package var backoffBase: Duration = .seconds(1)
    /// The longest backoff delay.
    package var backoffMax: Duration = .seconds(60)
    /// Consecutive authentication (or host key) failures that start a cool-down.
    package var authenticationFailuresBeforeCoolDown: Int = 2
    /// How long a cool-down lasts.
    package var coolDown: Duration = .seconds(15 * 60)
    /// Cool-downs (without a success between them) after which the tunnel locks until reset; the next one locks.
    package var coolDownsBeforeLock: Int = 2
    /// How long a connection attempt may take before it counts as a network failure.
    package var connectTimeout: Duration = .seconds(30)
    /// How long the tunnel stays up without requests before it is stopped; `nil` keeps it up.
    package var idleTimeout: Duration? = .seconds(600)

    /// The defaults: 1 s doubling to 60 s, cool-down 15 min after 2 auth failures, lock at the 3rd cool-down.
    package init() {}
}

/// What the tunnel's driver must do after an event.
package enum TunnelCommand: Sendable, Equatable {
    /// Nothing.
    case none
    /// Start ssh (a new attempt).
    case startSSH
    /// Stop the running ssh (SIGTERM, then SIGKILL).
    case stopSSH
}

/// The answer for a request that needs the tunnel.
package enum TunnelAdmission: Sendable, Equatable {
    /// The tunnel is up: go ahead.
    case ready
    /// An attempt is under way or will start soon: wait for the next transition.
    case wait
    /// Refused: the tunnel cannot serve now; the refusal says why and what to run.
    case refuse(TunnelRefusal)
}

/// Why requests are refused, with the state and the command that helps.
package struct TunnelRefusal: Sendable, Equatable {
    /// The state's name (`backoff`, `cooling_down`, `locked`, `stopped`).
    package var state: String
    /// A message naming the state, the cause and the command to run.
    package var message: String
    /// Seconds until a retry can succeed, when known.
    package var retryAfterSeconds: Int?
}

/// The per-tenant SSH tunnel's state machine: a value type, fed events with the time, answering with commands.
///
/// idle → connecting → up; a failed attempt → backoff (exponential with jitter) → connecting when wanted;
/// `authenticationFailuresBeforeCoolDown` consecutive authentication or host-key failures → coolingDown; the
/// cool-down after `coolDownsBeforeLock` of them → locked until `reset`. Network failures back off but never
/// count. Up without use for `idleTimeout` → idle. `shutDown` → stopped, for good.
package struct TunnelStateMachine: Sendable, Equatable {
    /// The states.
    package enum State: Sendable, Equatable {
        /// No ssh and no demand.
        case idle
        /// ssh started; waiting for the forwarded socket to accept, until `deadline`.
        case connecting(since: ContinuousClock.Instant, deadline: ContinuousClock.Instant)
        /// The forward works.
        case up(since: ContinuousClock.Instant)
        /// Waiting before the next attempt; the last failure is recorded.
        case backoff(until: ContinuousClock.Instant, failure: TunnelFailure)
        /// Too many authentication failures: no attempt until `until`.
        case coolingDown(until: ContinuousClock.Instant, failure: TunnelFailure)
        /// Locked until `rosetta tunnel reset`.
        case locked(failure: TunnelFailure)
        /// Shut down with the daemon; no more attempts.
        case stopped

        /// The state's name for status and errors.
        package var name: String {
            switch self {
            case .idle: "idle"
            case .connecting: "connecting"
            case .up: "up"
            case .backoff: "backoff"
            case .coolingDown: "cooling_down"
            case .locked: "locked"
            case .stopped: "stopped"
            }
        }
    }

    /// The current state.
    package private(set) var state: State = .idle
    /// The policy it was made with.
    package let policy: TunnelPolicy
    /// Consecutive authentication or host-key failures since the last success or cool-down.
    package private(set) var consecutiveAuthenticationFailures = 0
    /// Cool-downs since the last success or reset.
    package private(set) var coolDowns = 0
    /// Consecutive failed attempts of any class, which sets the backoff delay.
    package private(set) var consecutiveFailures = 0
    /// The last failure, kept for status after a success too.
    package private(set) var lastFailure: TunnelFailure?
    /// When a request last used (or asked for) the tunnel.
    package private(set) var lastUse: ContinuousClock.Instant?
    /// Attempts started since creation; a request waiting in backoff waits for attempt `attemptsStarted + 1`.
    package private(set) var attemptsStarted = 0
    /// Whether a request is waiting for the tunnel (so an ended backoff starts an attempt).
    package private(set) var demandPending = false
    /// A human-readable hint for MFA setups: refusals mention `rosetta tunnel login` when true.
    package var suggestsLogin = true

    /// Creates a machine in `idle`.
    package init(policy: TunnelPolicy) {
        self.policy = policy
    }

    // MARK: Requests

    /// A request wants the tunnel at `now`; returns whether it may go, must wait, or is refused, and a command.
    package mutating func request(now: ContinuousClock.Instant) -> (TunnelAdmission, TunnelCommand) {
        lastUse = now
        switch state {
        case .idle:
            demandPending = true
            startAttempt(now: now)
            return (.wait, .startSSH)
        case .connecting:
            demandPending = true
            return (.wait, .none)
        case .up:
            return (.ready, .none)
        case .backoff(let until, _):
            demandPending = true
            if until <= now {
                startAttempt(now: now)
                return (.wait, .startSSH)
            }
            return (.wait, .none)
        case .coolingDown, .locked, .stopped:
            guard let refusal = refusal(now: now) else { return (.wait, .none) }
            return (.refuse(refusal), .none)
        }
    }

    /// The attempt a request arriving now waits for: the running one, or in backoff the next one.
    package var awaitedAttempt: Int {
        if case .backoff = state { return attemptsStarted + 1 }
        return attemptsStarted
    }

    /// What a request waiting for attempt `awaited` should be told now: `nil` while it should keep waiting.
    package func admissionForWaiter(awaiting awaited: Int, now: ContinuousClock.Instant) -> TunnelAdmission? {
        switch state {
        case .up: return .ready
        case .idle, .connecting: return nil
        case .backoff:
            // The attempt it waited for failed: tell it (the next request tries again); one that arrived during
            // the backoff waits for the next attempt.
            guard awaited <= attemptsStarted else { return nil }
            return refusal(now: now).map(TunnelAdmission.refuse)
        case .coolingDown, .locked, .stopped:
            return refusal(now: now).map(TunnelAdmission.refuse)
        }
    }

    /// The refusal for the current state, or `nil` in states that do not refuse.
    package func refusal(now: ContinuousClock.Instant) -> TunnelRefusal? {
        let login = suggestsLogin ? "run `rosetta tunnel login` (for MFA) or fix the ssh key, then " : "fix the ssh key, then "
        switch state {
        case .idle, .connecting, .up:
            return nil
        case .backoff(let until, let failure):
            let seconds = Self.wholeSeconds(until - now)
            return TunnelRefusal(
                state: "backoff",
                message: "The SSH tunnel to Argo is down (\(failure.kind.rawValue): \(failure.detail)); rosetta retries in \(seconds) s. Check `rosetta tunnel status`.",
                retryAfterSeconds: max(seconds, 1))
        case .coolingDown(let until, let failure):
            let seconds = Self.wholeSeconds(until - now)
            return TunnelRefusal(
                state: "cooling_down",
                message: "The SSH tunnel to Argo is cooling down for \(seconds) s after repeated \(failure.kind.rawValue) failures (\(failure.detail)); \(login)`rosetta tunnel reset`.",
                retryAfterSeconds: max(seconds, 1))
        case .locked(let failure):
            return TunnelRefusal(
                state: "locked",
                message: "The SSH tunnel to Argo is locked after repeated \(failure.kind.rawValue) failures (\(failure.detail)), so the jump host does not block this node; \(login)`rosetta tunnel reset`.",
                retryAfterSeconds: nil)
        case .stopped:
            return TunnelRefusal(state: "stopped", message: "The SSH tunnel to Argo is shut down with the gateway.", retryAfterSeconds: nil)
        }
    }

    // MARK: ssh events

    /// The forwarded socket accepted: the tunnel is up.
    package mutating func connected(now: ContinuousClock.Instant) {
        guard case .connecting = state else { return }
        state = .up(since: now)
        consecutiveAuthenticationFailures = 0
        coolDowns = 0
        consecutiveFailures = 0
        demandPending = false
    }

    /// ssh ended (or the attempt timed out) with `failure`; `unitJitter` in [0, 1) spreads the backoff delay.
    ///
    /// Returns `.none`: ssh is already gone. An exit in a state that expects none (idle after a stop) is ignored.
    package mutating func failed(_ failure: TunnelFailure, now: ContinuousClock.Instant, unitJitter: Double) {
        switch state {
        case .connecting, .up:
            break
        case .idle, .backoff, .coolingDown, .locked, .stopped:
            return
        }
        lastFailure = failure
        consecutiveFailures += 1
        // The requests that waited for this attempt are told it failed; the next request asks again.
        demandPending = false
        if failure.kind.countsTowardLockout {
            consecutiveAuthenticationFailures += 1
            if consecutiveAuthenticationFailures >= policy.authenticationFailuresBeforeCoolDown {
                consecutiveAuthenticationFailures = 0
                coolDowns += 1
                if coolDowns > policy.coolDownsBeforeLock {
                    state = .locked(failure: failure)
                } else {
                    state = .coolingDown(until: now + policy.coolDown, failure: failure)
                }
                return
            }
        }
        state = .backoff(until: now + backoffDelay(unitJitter: unitJitter), failure: failure)
    }

    /// The delay before the next attempt after `consecutiveFailures` failures: base·2ⁿ⁻¹ capped at the maximum,
    /// scaled into [½, 1] by the jitter.
    package func backoffDelay(unitJitter: Double) -> Duration {
        let exponent = max(consecutiveFailures - 1, 0)
        var delay = policy.backoffBase
        for _ in 0..<min(exponent, 30) {
            delay = delay * 2
            if delay >= policy.backoffMax { break }
        }
        if delay > policy.backoffMax { delay = policy.backoffMax }
        let jitter = min(max(unitJitter, 0), 1)
        return delay * (0.5 + 0.5 * jitter)
    }

    // MARK: Time

    /// The next instant at which `tick` has something to do, or `nil` when only an event can change the state.
    package func nextDeadline() -> ContinuousClock.Instant? {
        switch state {
        case .connecting(_, let deadline): return deadline
        case .up:
            guard let idle = policy.idleTimeout, let lastUse else { return nil }
            return lastUse + idle
        case .backoff(let until, _): return demandPending ? until : nil
        case .coolingDown(let until, _): return until
        case .idle, .locked, .stopped: return nil
        }
    }

    /// Advances time: connect timeouts fail the attempt, idle tunnels stop, ended backoffs and cool-downs move on.
    package mutating func tick(now: ContinuousClock.Instant, unitJitter: Double) -> TunnelCommand {
        switch state {
        case .connecting(_, let deadline) where deadline <= now:
            failed(TunnelFailure(kind: .network, exitCode: nil, detail: "the forward did not accept within \(Self.wholeSeconds(policy.connectTimeout)) s"), now: now, unitJitter: unitJitter)
            return .stopSSH
        case .up:
            guard let idle = policy.idleTimeout, let lastUse, lastUse + idle <= now else { return .none }
            state = .idle
            demandPending = false
            return .stopSSH
        case .backoff(let until, _) where until <= now:
            guard demandPending else { return .none }
            startAttempt(now: now)
            return .startSSH
        case .coolingDown(let until, _) where until <= now:
            // One more attempt is allowed after a cool-down; it starts with the next request.
            state = .idle
            return .none
        default:
            return .none
        }
    }

    // MARK: Commands from the user and the daemon

    /// `rosetta tunnel stop`: stop ssh now; the next request starts it again. Keeps cool-down and lock.
    package mutating func stop() -> TunnelCommand {
        switch state {
        case .connecting, .up:
            state = .idle
            demandPending = false
            return .stopSSH
        case .backoff:
            state = .idle
            demandPending = false
            return .none
        case .idle, .coolingDown, .locked, .stopped:
            return .none
        }
    }

    /// `rosetta tunnel reset`: forget failures, leave cool-down or lock, and stop ssh.
    package mutating func reset() -> TunnelCommand {
        consecutiveAuthenticationFailures = 0
        coolDowns = 0
        consecutiveFailures = 0
        lastFailure = nil
        switch state {
        case .stopped:
            return .none
        case .connecting, .up:
            state = .idle
            demandPending = false
            return .stopSSH
        case .idle, .backoff, .coolingDown, .locked:
            state = .idle
            demandPending = false
            return .none
        }
    }

    /// The daemon is shutting down: stop for good.
    package mutating func shutDown() -> TunnelCommand {
        let running: Bool
        switch state {
        case .connecting, .up: running = true
        default: running = false
        }
        state = .stopped
        demandPending = false
        return running ? .stopSSH : .none
    }

    // MARK: Helpers

    private mutating func startAttempt(now: ContinuousClock.Instant) {
        attemptsStarted += 1
        state = .connecting(since: now, deadline: now + policy.connectTimeout)
    }

    static func wholeSeconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) + (attoseconds > 0 ? 1 : 0)
    }
}
