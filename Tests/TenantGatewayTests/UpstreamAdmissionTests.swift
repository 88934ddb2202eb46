import Testing
import TenantGateway

/// The per-tenant cap on upstream requests: the state machine without I/O, the async wrapper, and the config keys.
@Suite("Upstream admission")
struct UpstreamAdmissionTests {
    @Test func admitsUpToTheCapThenQueuesThenRefuses() {
        var machine = UpstreamAdmissionStateMachine(limits: UpstreamConcurrencyLimits(maxInFlight: 2, maxQueued: 1))
        #expect(machine.acquire(id: 1) == .admitted)
        #expect(machine.acquire(id: 2) == .admitted)
        #expect(machine.acquire(id: 3) == .queued)
        #expect(machine.acquire(id: 4) == .refused)
        #expect(machine.inFlight == 2 && machine.queue == [3])
    }

    @Test func aReleasedSlotGoesToTheOldestWaiter() {
        var machine = UpstreamAdmissionStateMachine(limits: UpstreamConcurrencyLimits(maxInFlight: 1, maxQueued: 3))
        #expect(machine.acquire(id: 1) == .admitted)
        #expect(machine.acquire(id: 2) == .queued)
        #expect(machine.acquire(id: 3) == .queued)
        #expect(machine.release() == 2)
        #expect(machine.inFlight == 1 && machine.queue == [3])
        #expect(machine.release() == 3)
        #expect(machine.release() == nil)
        #expect(machine.inFlight == 0)
        // A newcomer never overtakes a waiter: with a queue, even a free slot means waiting.
        #expect(machine.acquire(id: 4) == .admitted)
    }

    @Test func aWithdrawnWaiterLeavesTheQueueAndFreesItsPlace() {
        var machine = UpstreamAdmissionStateMachine(limits: UpstreamConcurrencyLimits(maxInFlight: 1, maxQueued: 1))
        #expect(machine.acquire(id: 1) == .admitted)
        #expect(machine.acquire(id: 2) == .queued)
        #expect(machine.acquire(id: 3) == .refused)
        #expect(machine.withdraw(id: 2) == .leftQueue)
        #expect(machine.withdraw(id: 2) == .notWaiting)
        #expect(machine.withdraw(id: 1) == .notWaiting)
        #expect(machine.acquire(id: 3) == .queued)
        #expect(machine.release() == 3)
        #expect(machine.inFlight == 1)
    }

    @Test func noQueueRefusesAtOnceWhenFull() {
        var machine = UpstreamAdmissionStateMachine(limits: UpstreamConcurrencyLimits(maxInFlight: 1, maxQueued: 0))
        #expect(machine.acquire(id: 1) == .admitted)
        #expect(machine.acquire(id: 2) == .refused)
    }

    @Test func theWrapperQueuesRefusesWith429AndLetsACancelledWaiterGo() async throws {
        let admission = UpstreamAdmission(limits: UpstreamConcurrencyLimits(maxInFlight: 1, maxQueued: 1, retryAfterSeconds: 2))
        let (holding, holdingStarted) = AsyncStream<Void>.makeStream()
        let (release, releaseHolder) = AsyncStream<Void>.makeStream()
        try await withThrowingTaskGroup(of: String.self) { group in
            group.addTask {
                try await admission.withSlot { () async throws(GatewayError) -> String in
                    holdingStarted.yield()
                    for await _ in release {}
                    return "first"
                }
            }
            for await _ in holding { break }
            #expect(admission.snapshot.inFlight == 1)
            let waiter = Task {
                try await admission.withSlot { () async throws(GatewayError) -> String in "waiter" }
            }
            try await waitUntil { admission.snapshot.queued == 1 }
            do {
                _ = try await admission.withSlot { () async throws(GatewayError) -> String in "refused" }
                Issue.record("a third request was admitted")
            } catch let error as GatewayError {
                #expect(error.status == 429 && error.kind == .rateLimited && error.retryAfter == 2)
                #expect(error.code == "tenant_concurrency_limit")
            }
            waiter.cancel()
            do {
                _ = try await waiter.value
                Issue.record("a cancelled waiter ran")
            } catch let error as GatewayError {
                #expect(error.code == "client_disconnected")
            }
            #expect(admission.snapshot.queued == 0 && admission.snapshot.inFlight == 1)
            // The place the waiter left is free again; this one waits until the holder finishes.
            group.addTask { try await admission.withSlot { () async throws(GatewayError) -> String in "second" } }
            try await waitUntil { admission.snapshot.queued == 1 }
            releaseHolder.finish()
            var finished: [String] = []
            for try await name in group { finished.append(name) }
            #expect(finished.sorted() == ["first", "second"])
        }
        #expect(admission.snapshot.inFlight == 0 && admission.snapshot.queued == 0 && admission.snapshot.refused == 1)
    }

    @Test func manyConcurrentCallersNeverExceedTheCap() async throws {
        let admission = UpstreamAdmission(limits: UpstreamConcurrencyLimits(maxInFlight: 3, maxQueued: 100))
        let peak = PeakCounter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<60 {
                group.addTask {
                    try await admission.withSlot { () async throws(GatewayError) in
                        await peak.enter()
                        await Task.yield()
                        await peak.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(await peak.highest <= 3)
        #expect(admission.snapshot.inFlight == 0)
    }

    @Test func configReadsTheCapsAndTheIdentityMap() throws {
        let yaml = """
            providers:
              argo: {type: argo, base_url: "https://argo.test/argoapi", user: shared}
              other: {type: openai_chat, base_url: "http://127.0.0.1:1/v1"}
            limits: {max_concurrent_upstream: 2, max_queued: 0}
            identities:
              alice: alab123
            """
        let config = try GatewayConfig.parse(yaml: yaml, file: "c.yaml", environment: [:])
        #expect(config.upstreamConcurrency.maxInFlight == 2 && config.upstreamConcurrency.maxQueued == 0)
        #expect(config.identities == ["alice": "alab123"])
        #expect(config.forSystemTenant(account: "alice", home: "/home/alice").provider(named: "argo")?.argo?.user == "alab123")
        #expect(config.forSystemTenant(account: "bob", home: "/home/bob").provider(named: "argo")?.argo?.user == "bob")
        #expect(config.provider(named: "argo")?.argo?.user == "shared")
        #expect(config.forSystemTenant(account: "bob", home: "/home/bob").provider(named: "other")?.argo == nil)
        let defaults = try GatewayConfig.parse(yaml: "providers: {}", file: "c.yaml", environment: [:])
        #expect(defaults.upstreamConcurrency == UpstreamConcurrencyLimits(maxInFlight: 16, maxQueued: 64))
    }

    @Test func tunnelPathsExpandTheTenantsHomeAndName() throws {
        let yaml = """
            providers:
              argo:
                type: argo
                base_url: "https://argo.test/argoapi"
                user: shared
                tunnel: {destination: login.example, identity_file: "%d/.ssh/id_%u", known_hosts: "/etc/ssh/known_100%%"}
            """
        let config = try GatewayConfig.parse(yaml: yaml, file: "c.yaml", environment: [:])
        let tunnel = config.forSystemTenant(account: "bob", home: "/home/bob").provider(named: "argo")?.argo?.tunnel
        #expect(tunnel?.identityFile == "/home/bob/.ssh/id_bob")
        #expect(tunnel?.knownHostsFile == "/etc/ssh/known_100%")
        #expect(config.provider(named: "argo")?.argo?.tunnel?.identityFile == "%d/.ssh/id_%u")
    }

    @Test func configRefusesBadCapsAndIdentities() {
        for yaml in [
            "limits: {max_concurrent_upstream: 0}",
            "limits: {max_queued: -1}",
            "identities: {alice: \"a b\"}",
            "identities: {\"-x\": alab}",
            "identities: [alice]",
        ] {
            #expect(throws: ConfigError.self, "\(yaml)") { try GatewayConfig.parse(yaml: yaml, file: "c.yaml", environment: [:]) }
        }
    }

    @Test func theDefaultConfigDocumentsTheNewKeys() throws {
        #expect(GatewayConfig.defaultFileText.contains("max_concurrent_upstream"))
        #expect(GatewayConfig.defaultFileText.contains("identities:"))
        _ = try GatewayConfig.parse(yaml: GatewayConfig.defaultFileText, file: "default", environment: [:])
    }
}

/// Tracks how many callers are inside at once and the highest count seen.
actor PeakCounter {
    private var current = 0
    private(set) var highest = 0

    func enter() {
        current += 1
        highest = max(highest, current)
    }

    func leave() { current -= 1 }
}

/// Polls a condition with short yields, failing after two seconds.
func waitUntil(_ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(2)
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("condition not met within 2 s")
            return
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}
