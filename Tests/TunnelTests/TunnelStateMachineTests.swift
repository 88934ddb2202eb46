import Testing
@testable import Tunnel

@Suite("TunnelStateMachine")
struct TunnelStateMachineTests {
    let start = ContinuousClock.now

    func at(_ seconds: Double) -> ContinuousClock.Instant { start + .milliseconds(Int64(seconds * 1000)) }

    static let denied = TunnelFailure.fromExit(code: 255, stderr: "user@127.0.0.1: Permission denied (publickey).\r\n")
    static let refused = TunnelFailure.fromExit(code: 255, stderr: "ssh: connect to host 127.0.0.1 port 2222: Connection refused\r\n")
    static let hostKey = TunnelFailure.fromExit(code: 255, stderr: "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n")

    var policy: TunnelPolicy {
        var policy = TunnelPolicy()
        policy.backoffBase = .seconds(1)
        policy.backoffMax = .seconds(8)
        policy.coolDown = .seconds(100)
        policy.connectTimeout = .seconds(10)
        policy.idleTimeout = .seconds(50)
        return policy
    }

    // MARK: Classification

    @Test("ssh's exit status and stderr are classified as PLATFORM-NOTES describes them")
    func classification() {
        #expect(Self.denied.kind == .authentication)
        #expect(Self.denied.detail == "user@127.0.0.1: Permission denied (publickey).")
        #expect(Self.refused.kind == .network)
        #expect(Self.hostKey.kind == .hostKey)
        #expect(Self.hostKey.detail == "Host key verification failed.")
        #expect(TunnelFailureClass.classify(exitCode: 255, stderr: "Connection to 127.0.0.1 closed by remote host.\r\n") == .network)
        #expect(TunnelFailureClass.classify(exitCode: 255, stderr: "Timeout, server 127.0.0.1 not responding.\r\n") == .network)
        #expect(TunnelFailureClass.classify(exitCode: 255, stderr: "ssh: Could not resolve hostname nowhere: Name or service not known\r\n") == .network)
        #expect(TunnelFailureClass.classify(exitCode: 255, stderr: "unix_listener: cannot bind to path /x/argo.sock: Address already in use\r\nCould not request local forwarding.\r\n") == .forwardRefused)
        #expect(TunnelFailureClass.classify(exitCode: 255, stderr: "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@") == .hostKey)
        #expect(TunnelFailureClass.classify(exitCode: 255, stderr: "Received disconnect: Too many authentication failures") == .authentication)
        #expect(TunnelFailureClass.classify(exitCode: nil, stderr: "") == .network)
        #expect(TunnelFailureClass.classify(exitCode: 0, stderr: "") == .network)
        #expect(TunnelFailureClass.classify(exitCode: 1, stderr: "something odd") == .unexpected)
        #expect(TunnelFailure.fromExit(code: nil, stderr: "").detail == "ssh was ended by a signal")
        #expect(TunnelFailure.fromExit(code: 255, stderr: "Warning: Permanently added '[127.0.0.1]:2222' (ED25519) to the list of known hosts.\r\n").detail == "ssh exited with status 255")
        #expect(TunnelFailureClass.authentication.countsTowardLockout)
        #expect(TunnelFailureClass.hostKey.countsTowardLockout)
        #expect(!TunnelFailureClass.network.countsTowardLockout)
        #expect(!TunnelFailureClass.forwardRefused.countsTowardLockout)
        #expect(!TunnelFailureClass.unexpected.countsTowardLockout)
    }

    // MARK: Lazy start, up, idle

    @Test("the first request starts ssh and waits; readiness makes it up; later requests go at once")
    func lazyStart() {
        var machine = TunnelStateMachine(policy: policy)
        #expect(machine.state == .idle)
        #expect(machine.nextDeadline() == nil)
        let (admission, command) = machine.request(now: at(0))
        #expect(admission == .wait)
        #expect(command == .startSSH)
        #expect(machine.state == .connecting(since: at(0), deadline: at(10)))
        #expect(machine.admissionForWaiter(awaiting: 1, now: at(0.1)) == nil)
        // A second request while connecting waits without a second ssh.
        let second = machine.request(now: at(0.1))
        #expect(second.0 == .wait && second.1 == .none)
        machine.connected(now: at(0.3))
        #expect(machine.state == .up(since: at(0.3)))
        #expect(machine.admissionForWaiter(awaiting: 1, now: at(0.3)) == .ready)
        let third = machine.request(now: at(1))
        #expect(third.0 == .ready && third.1 == .none)
    }

    @Test("an up tunnel stops after the idle time without requests, and the next request restarts it")
    func idleStop() {
        var machine = TunnelStateMachine(policy: policy)
        _ = machine.request(now: at(0))
        machine.connected(now: at(1))
        _ = machine.request(now: at(20))
        #expect(machine.nextDeadline() == at(70))
        #expect(machine.tick(now: at(69), unitJitter: 0) == .none)
        #expect(machine.tick(now: at(70), unitJitter: 0) == .stopSSH)
        #expect(machine.state == .idle)
        // ssh's exit after the stop is not a failure.
        machine.failed(Self.refused, now: at(70.1), unitJitter: 0)
        #expect(machine.state == .idle)
        #expect(machine.lastFailure == nil)
        #expect(machine.request(now: at(80)).1 == .startSSH)
    }

    @Test("without an idle timeout the tunnel stays up")
    func noIdleTimeout() {
        var policy = self.policy
        policy.idleTimeout = nil
        var machine = TunnelStateMachine(policy: policy)
        _ = machine.request(now: at(0))
        machine.connected(now: at(1))
        #expect(machine.nextDeadline() == nil)
        #expect(machine.tick(now: at(100_000), unitJitter: 0) == .none)
        #expect(machine.state == .up(since: at(1)))
    }

    @Test("a connect timeout is a network failure and stops ssh")
    func connectTimeout() {
        var machine = TunnelStateMachine(policy: policy)
        _ = machine.request(now: at(0))
        #expect(machine.nextDeadline() == at(10))
        #expect(machine.tick(now: at(9.9), unitJitter: 0) == .none)
        #expect(machine.tick(now: at(10), unitJitter: 0) == .stopSSH)
        guard case .backoff(_, let failure) = machine.state else {
            Issue.record("expected backoff, got \(machine.state)")
            return
        }
        #expect(failure.kind == .network)
        #expect(failure.detail.contains("did not accept within 10 s"))
    }

    // MARK: Backoff

    @Test("backoff doubles from the base to the cap, scaled into [½, 1] by the jitter")
    func backoffGrowth() {
        var machine = TunnelStateMachine(policy: policy)
        var delays: [Duration] = []
        var now = 0.0
        for _ in 0..<6 {
            _ = machine.request(now: at(now))
            if case .backoff = machine.state {
                now += 100
                #expect(machine.tick(now: at(now), unitJitter: 1) == .startSSH)
            }
            machine.failed(Self.refused, now: at(now), unitJitter: 0.999_999)
            guard case .backoff(let until, _) = machine.state else {
                Issue.record("expected backoff")
                return
            }
            delays.append(until - at(now))
        }
        let seconds = delays.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
        let expected: [Double] = [1, 2, 4, 8, 8, 8]
        for (got, want) in zip(seconds, expected) { #expect(abs(got - want) < 0.001) }
        #expect(machine.backoffDelay(unitJitter: 0) == .seconds(4))
        #expect(machine.backoffDelay(unitJitter: -5) == .seconds(4))
        #expect(machine.backoffDelay(unitJitter: 7) == .seconds(8))
    }

    @Test("network failures back off forever and never lock")
    func networkNeverLocks() {
        var machine = TunnelStateMachine(policy: policy)
        var now = 0.0
        for attempt in 0..<50 {
            let (_, command) = machine.request(now: at(now))
            if attempt > 0 {
                #expect(command == .none)
                now += 10
                #expect(machine.tick(now: at(now), unitJitter: 0) == .startSSH)
            } else {
                #expect(command == .startSSH)
            }
            machine.failed(Self.refused, now: at(now), unitJitter: 0)
            guard case .backoff = machine.state else {
                Issue.record("network failure \(attempt) left \(machine.state)")
                return
            }
        }
        #expect(machine.coolDowns == 0)
        #expect(machine.consecutiveFailures == 50)
    }

    @Test("waiters for a failed attempt are refused with the failure; a request during backoff waits for the next attempt")
    func waitersAfterFailure() {
        var machine = TunnelStateMachine(policy: policy)
        _ = machine.request(now: at(0))
        machine.failed(Self.refused, now: at(1), unitJitter: 0)
        #expect(machine.awaitedAttempt == 2)
        // A request that arrived during the backoff waits for the next attempt.
        #expect(machine.admissionForWaiter(awaiting: 2, now: at(1)) == nil)
        guard case .refuse(let refusal)? = machine.admissionForWaiter(awaiting: 1, now: at(1)) else {
            Issue.record("expected a refusal")
            return
        }
        #expect(refusal.state == "backoff")
        #expect(refusal.message.contains("Connection refused"))
        #expect(refusal.retryAfterSeconds == 1)
        // Nothing happens at the backoff's end while nobody wants the tunnel.
        #expect(machine.nextDeadline() == nil)
        #expect(machine.tick(now: at(5), unitJitter: 0) == .none)
        // A request after the backoff's end starts an attempt at once.
        #expect(machine.request(now: at(5)).1 == .startSSH)
        machine.failed(Self.refused, now: at(6), unitJitter: 0)
        // A request inside the backoff waits; the backoff's end starts the attempt.
        #expect(machine.request(now: at(6.5)) == (.wait, .none))
        #expect(machine.awaitedAttempt == 3)
        #expect(machine.attemptsStarted == 2)
        #expect(machine.nextDeadline() == at(7))
        #expect(machine.tick(now: at(7), unitJitter: 0) == .startSSH)
        machine.connected(now: at(7.2))
        #expect(machine.consecutiveFailures == 0)
        #expect(machine.lastFailure == Self.refused)
    }

    @Test("death while up backs off without locking, and the next request recovers")
    func deathWhileUp() {
        var machine = TunnelStateMachine(policy: policy)
        _ = machine.request(now: at(0))
        machine.connected(now: at(1))
        machine.failed(TunnelFailure.fromExit(code: nil, stderr: ""), now: at(30), unitJitter: 0)
        guard case .backoff(let until, let failure) = machine.state else {
            Issue.record("expected backoff")
            return
        }
        #expect(failure.kind == .network)
        #expect(until == at(30.5))
        #expect(machine.request(now: at(31)) == (.wait, .startSSH))
    }

    // MARK: Authentication, cool-down, lock

    @Test("two consecutive authentication failures cool down; the cool-down's end allows a new attempt")
    func coolDown() {
        var machine = TunnelStateMachine(policy: policy)
        _ = machine.request(now: at(0))
        machine.failed(Self.denied, now: at(1), unitJitter: 0)
        guard case .backoff = machine.state else {
            Issue.record("one authentication failure should only back off")
            return
        }
        #expect(machine.request(now: at(10)) == (.wait, .startSSH))
        machine.failed(Self.denied, now: at(11), unitJitter: 0)
        #expect(machine.state == .coolingDown(until: at(111), failure: Self.denied))
        #expect(machine.coolDowns == 1)
        let (admission, command) = machine.request(now: at(20))
        #expect(command == .none)
        guard case .refuse(let refusal) = admission else {
            Issue.record("cooling down must refuse")
            return
        }
        #expect(refusal.state == "cooling_down")
        #expect(refusal.message.contains("cooling down for 91 s"))
        #expect(refusal.message.contains("rosetta tunnel login"))
        #expect(refusal.message.contains("rosetta tunnel reset"))
        #expect(refusal.message.contains("Permission denied"))
        #expect(refusal.retryAfterSeconds == 91)
        #expect(machine.nextDeadline() == at(111))
        #expect(machine.tick(now: at(111), unitJitter: 0) == .none)
        #expect(machine.state == .idle)
        #expect(machine.request(now: at(112)) == (.wait, .startSSH))
    }

    @Test("a network failure between authentication failures does not reset their count, a success does")
    func countingIsConsecutiveAuthentication() {
        var machine = TunnelStateMachine(policy: policy)
        _ = machine.request(now: at(0))
        machine.failed(Self.denied, now: at(1), unitJitter: 0)
        _ = machine.request(now: at(10))
        machine.failed(Self.refused, now: at(11), unitJitter: 0)
        #expect(machine.consecutiveAuthenticationFailures == 1)
        _ = machine.request(now: at(20))
        machine.connected(now: at(21))
        #expect(machine.consecutiveAuthenticationFailures == 0)
        machine.failed(Self.refused, now: at(22), unitJitter: 0)
        _ = machine.request(now: at(30))
        machine.failed(Self.denied, now: at(31), unitJitter: 0)
        guard case .backoff = machine.state else {
            Issue.record("a first authentication failure after a success should only back off")
            return
        }
    }

    /// Drives the machine through authentication failures until it leaves backoff; returns the time reached.
    func failAuthentication(_ machine: inout TunnelStateMachine, times: Int, from now: Double, failure: TunnelFailure = denied) -> Double {
        var now = now
        for _ in 0..<times {
            if case .coolingDown(let until, _) = machine.state {
                now = Double((until - start).components.seconds) + 1
                _ = machine.tick(now: at(now), unitJitter: 0)
            }
            now += 10
            #expect(machine.request(now: at(now)).1 == .startSSH)
            machine.failed(failure, now: at(now), unitJitter: 0)
        }
        return now
    }

    @Test("the cool-down after the allowed number locks the tunnel until reset, which clears everything")
    func lockAndReset() {
        var machine = TunnelStateMachine(policy: policy)
        _ = failAuthentication(&machine, times: 4, from: 0)
        guard case .coolingDown = machine.state else {
            Issue.record("expected the second cool-down, got \(machine.state)")
            return
        }
        #expect(machine.coolDowns == 2)
        let now = failAuthentication(&machine, times: 2, from: 0)
        #expect(machine.state == .locked(failure: Self.denied))
        #expect(machine.coolDowns == 3)
        #expect(machine.nextDeadline() == nil)
        #expect(machine.tick(now: at(now + 1_000_000), unitJitter: 0) == .none)
        let (admission, command) = machine.request(now: at(now + 1_000_000))
        #expect(command == .none)
        guard case .refuse(let refusal) = admission else {
            Issue.record("locked must refuse")
            return
        }
        #expect(refusal.state == "locked")
        #expect(refusal.message.contains("locked"))
        #expect(refusal.message.contains("`rosetta tunnel reset`"))
        #expect(refusal.retryAfterSeconds == nil)
        #expect(machine.stop() == .none)
        #expect(machine.state == .locked(failure: Self.denied))
        #expect(machine.reset() == .none)
        #expect(machine.state == .idle)
        #expect(machine.coolDowns == 0 && machine.consecutiveFailures == 0 && machine.lastFailure == nil)
        #expect(machine.request(now: at(now + 1_000_001)).1 == .startSSH)
    }

    @Test("host-key failures count like authentication failures")
    func hostKeyCounts() {
        var machine = TunnelStateMachine(policy: policy)
        _ = failAuthentication(&machine, times: 2, from: 0, failure: Self.hostKey)
        guard case .coolingDown(_, let failure) = machine.state else {
            Issue.record("expected cooling down")
            return
        }
        #expect(failure.kind == .hostKey)
        #expect(machine.refusal(now: at(30))?.message.contains("host_key") == true)
    }

    @Test("a success between cool-downs starts the count again")
    func successClearsCoolDowns() {
        var machine = TunnelStateMachine(policy: policy)
        var now = failAuthentication(&machine, times: 4, from: 0)
        #expect(machine.coolDowns == 2)
        now = Double((machine.nextDeadline()! - start).components.seconds) + 1
        _ = machine.tick(now: at(now), unitJitter: 0)
        _ = machine.request(now: at(now))
        machine.connected(now: at(now + 1))
        #expect(machine.coolDowns == 0)
        _ = machine.stop()
        _ = failAuthentication(&machine, times: 2, from: now + 2)
        guard case .coolingDown = machine.state else {
            Issue.record("expected a cool-down, not a lock, got \(machine.state)")
            return
        }
    }

    @Test("login is not suggested when the machine is told so")
    func noLoginHint() {
        var machine = TunnelStateMachine(policy: policy)
        machine.suggestsLogin = false
        _ = failAuthentication(&machine, times: 2, from: 0)
        let message = machine.refusal(now: at(25))?.message ?? ""
        #expect(!message.contains("login"))
        #expect(message.contains("rosetta tunnel reset"))
    }

    // MARK: Stop, reset, shut down

    @Test("stop ends a running ssh and returns to idle; stop in backoff clears the pending demand")
    func stopCommand() {
        var machine = TunnelStateMachine(policy: policy)
        #expect(machine.stop() == .none)
        _ = machine.request(now: at(0))
        #expect(machine.stop() == .stopSSH)
        #expect(machine.state == .idle)
        _ = machine.request(now: at(1))
        machine.connected(now: at(2))
        #expect(machine.stop() == .stopSSH)
        _ = machine.request(now: at(3))
        machine.failed(Self.refused, now: at(4), unitJitter: 0)
        _ = machine.request(now: at(4.1))
        #expect(machine.demandPending)
        #expect(machine.stop() == .none)
        #expect(machine.state == .idle)
        #expect(!machine.demandPending)
    }

    @Test("reset while up stops ssh; shut down is final")
    func resetAndShutDown() {
        var machine = TunnelStateMachine(policy: policy)
        _ = machine.request(now: at(0))
        machine.connected(now: at(1))
        #expect(machine.reset() == .stopSSH)
        #expect(machine.state == .idle)
        _ = machine.request(now: at(2))
        #expect(machine.shutDown() == .stopSSH)
        #expect(machine.state == .stopped)
        let (admission, command) = machine.request(now: at(3))
        #expect(command == .none)
        guard case .refuse(let refusal) = admission else {
            Issue.record("stopped must refuse")
            return
        }
        #expect(refusal.state == "stopped")
        #expect(machine.reset() == .none)
        #expect(machine.state == .stopped)
        machine.connected(now: at(4))
        #expect(machine.state == .stopped)
        #expect(machine.shutDown() == .none)
    }

    @Test("state names are the ones status and errors show")
    func stateNames() {
        let failure = Self.refused
        let names = [
            TunnelStateMachine.State.idle, .connecting(since: at(0), deadline: at(1)), .up(since: at(0)),
            .backoff(until: at(0), failure: failure), .coolingDown(until: at(0), failure: failure),
            .locked(failure: failure), .stopped,
        ].map(\.name)
        #expect(names == ["idle", "connecting", "up", "backoff", "cooling_down", "locked", "stopped"])
    }
}
