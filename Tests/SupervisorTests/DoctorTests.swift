import Testing
import TenantGateway

@testable import Supervisor

/// `rosetta doctor`'s report for each situation it names, built from facts without any I/O.
@Suite struct DoctorTests {
    static let socket = "/home/alice/.local/run/rosetta.sock"

    /// A healthy user-mode gateway with one plain provider.
    static func healthy() -> DoctorFacts {
        var facts = DoctorFacts(userName: "alice", uid: 1000, socketPath: socket, controlSocketPath: "/run/rosettad/control.sock")
        facts.socket = .answered(status: [
            "user": "alice", "uid": 1000, "version": "0.1.0", "state": "serving", "serving_since": 1_700_000_000,
            "socket": .string(socket), "port": 21987, "url": "http://127.0.0.1:21987",
            "upstream_slots": ["in_flight": 1, "queued": 0, "refused": 2, "max_in_flight": 8, "max_queued": 64],
        ])
        facts.socketFile = .init(ownerUID: 1000, mode: 0o600, isSocket: true)
        facts.socketDirectory = .init(ownerUID: 1000, mode: 0o700)
        facts.portProbe = .answered(status: 200)
        facts.tokenFile = .matches(path: "/home/alice/.local/state/rosetta/token", file: .init(ownerUID: 1000, mode: 0o600))
        facts.models = ["providers": [["name": "openai", "models": [["id": "gpt-test", "upstream_model": "gpt-4o", "source": "config"]]]]]
        return facts
    }

    func result(_ subject: String, in report: DoctorReport) -> DoctorResult? {
        report.results.first { $0.subject == subject }
    }

    @Test func aHealthyGatewayPassesEveryCheckAndExitsZero() {
        let report = DoctorReport(facts: Self.healthy())
        #expect(report.exitStatus == 0)
        #expect(report.results.allSatisfy { $0.outcome == .ok || $0.outcome == .skipped })
        #expect(report.results.map(\.subject) == ["daemon", "socket", "token", "token file", "openai"])
        #expect(result("daemon", in: report)?.detail.contains("user mode") == true)
        #expect(result("openai", in: report)?.detail.contains("not probed") == true)
        let text = report.render(ascii: true)
        #expect(text.hasPrefix("ok   daemon"))
        #expect(text.hasSuffix("All checks passed."))
        #expect(!report.render(ascii: false).contains("FAIL"))
        #expect(report.render(ascii: false).hasPrefix("✓ daemon"))
    }

    @Test func noDaemonInUserModeSaysHowToStartItAndSkipsTheRest() {
        var facts = Self.healthy()
        facts.socket = .missing
        facts.socketFile = nil
        let report = DoctorReport(facts: facts)
        #expect(report.exitStatus == 1)
        let daemon = result("daemon", in: report)
        #expect(daemon?.outcome == .fail)
        #expect(daemon?.detail == "no rosettad serves you: \(Self.socket) does not exist")
        #expect(daemon?.fix == "rosettad serve --user")
        #expect(report.results.dropFirst().allSatisfy { $0.outcome == .skipped })
        #expect(result("socket", in: report)?.detail == "no socket file at \(Self.socket)")
        #expect(result("providers", in: report)?.detail == "rosettad did not answer")
        #expect(report.render(ascii: true).contains("fix: rosettad serve --user"))
    }

    @Test func aStaleSocketWithTheUserServiceInstalledPointsAtSystemctl() {
        var facts = Self.healthy()
        facts.socket = .notListening
        facts.userServiceInstalled = true
        let daemon = result("daemon", in: DoctorReport(facts: facts))
        #expect(daemon?.detail.contains("exists but nothing listens on it") == true)
        #expect(daemon?.fix == "systemctl --user start rosettad")
    }

    @Test func anotherUsersSocketIsRemovedBeforeStarting() {
        var facts = Self.healthy()
        facts.socket = .permissionDenied
        facts.socketFile = .init(ownerUID: 1001, mode: 0o600, isSocket: true)
        let report = DoctorReport(facts: facts)
        #expect(result("daemon", in: report)?.fix == "rm '\(Self.socket)' && rosettad serve --user")
        #expect(result("socket", in: report)?.detail == "\(Self.socket) belongs to uid 1001, not to you (uid 1000)")
    }

    @Test func systemModeNotEnabledAsksForRosettaEnable() {
        var facts = Self.healthy()
        facts.socket = .missing
        facts.socketFile = nil
        facts.systemDaemon = .answered(tenant: nil)
        let daemon = result("daemon", in: DoctorReport(facts: facts))
        #expect(daemon?.outcome == .fail)
        #expect(daemon?.detail.contains("not enabled for you") == true)
        #expect(daemon?.fix == "rosetta enable")
    }

    @Test func aFailedSystemTenantIsReEnabled() {
        var facts = Self.healthy()
        facts.socket = .missing
        facts.socketFile = nil
        facts.systemDaemon = .answered(tenant: ["uid": 1000, "state": "failed", "error": "cannot bind the port"])
        let daemon = result("daemon", in: DoctorReport(facts: facts))
        #expect(daemon?.detail == "the host's rosettad could not start your gateway: cannot bind the port")
        #expect(daemon?.fix == "rosetta disable && rosetta enable")
    }

    @Test func aStoppedSystemDaemonNamesTheAdminAndTheUserModeAlternative() {
        var facts = Self.healthy()
        facts.socket = .missing
        facts.socketFile = nil
        facts.systemDaemon = .notRunning
        let daemon = result("daemon", in: DoctorReport(facts: facts))
        #expect(daemon?.detail.contains("installed (/run/rosettad/control.sock) but not running") == true)
        #expect(daemon?.fix?.contains("systemctl start rosettad") == true)
        #expect(daemon?.fix?.contains("rosettad serve --user") == true)
    }

    @Test func aSystemTenantIsReportedInSystemMode() {
        var facts = Self.healthy()
        facts.systemDaemon = .answered(tenant: ["uid": 1000, "state": "serving", "requests": 12, "errors": 1, "in_flight": 0])
        facts.tokenFile = .notChecked
        let report = DoctorReport(facts: facts)
        #expect(facts.mode == "system")
        #expect(result("daemon", in: report)?.detail.contains("(system mode)") == true)
        #expect(result("token file", in: report)?.detail == "kept by the host's rosettad; `rosetta token` prints it")
        #expect(report.exitStatus == 0)
    }

    @Test func aSocketOthersCanOpenFailsWithChmod() {
        var facts = Self.healthy()
        facts.socketFile = .init(ownerUID: 1000, mode: 0o666, isSocket: true)
        let report = DoctorReport(facts: facts)
        let socket = result("socket", in: report)
        #expect(socket?.outcome == .fail)
        #expect(socket?.detail == "\(Self.socket) has mode 0666; it must be 0600 so only you can connect")
        #expect(socket?.fix == "chmod 600 '\(Self.socket)'")
        #expect(report.exitStatus == 1)
    }

    @Test func anOpenSocketDirectoryFailsWithChmod() {
        var facts = Self.healthy()
        facts.socketDirectory = .init(ownerUID: 1000, mode: 0o755)
        let socket = result("socket", in: DoctorReport(facts: facts))
        #expect(socket?.detail == "the directory /home/alice/.local/run has mode 0755; it must be 0700")
        #expect(socket?.fix == "chmod 700 '/home/alice/.local/run'")
    }

    @Test func aRegularFileInPlaceOfTheSocketIsRemoved() {
        var facts = Self.healthy()
        facts.socket = .failed("rosettad sent a response that is not JSON")
        facts.socketFile = .init(ownerUID: 1000, mode: 0o644, isSocket: false)
        let socket = result("socket", in: DoctorReport(facts: facts))
        #expect(socket?.detail == "\(Self.socket) is not a socket")
        #expect(socket?.fix == "rm '\(Self.socket)' && rosettad serve --user")
    }

    @Test func aTokenFileChangedBehindTheDaemonsBackIsRotated() {
        var facts = Self.healthy()
        facts.tokenFile = .differs(path: "/s/token", file: .init(ownerUID: 1000, mode: 0o600))
        let token = result("token file", in: DoctorReport(facts: facts))
        #expect(token?.outcome == .fail)
        #expect(token?.detail.contains("holds another token than rosettad checks") == true)
        #expect(token?.fix == "rosetta token --rotate")
    }

    @Test func aReadableTokenFileIsMadePrivateAndRotated() {
        var facts = Self.healthy()
        facts.tokenFile = .matches(path: "/s/token", file: .init(ownerUID: 1000, mode: 0o644))
        let token = result("token file", in: DoctorReport(facts: facts))
        #expect(token?.detail == "/s/token has mode 0644; other users can read your token")
        #expect(token?.fix == "chmod 600 '/s/token' && rosetta token --rotate")
    }

    @Test func aMissingTokenFileIsNotAFailure() {
        var facts = Self.healthy()
        facts.tokenFile = .missing(path: "/s/token")
        let report = DoctorReport(facts: facts)
        #expect(result("token file", in: report)?.outcome == .skipped)
        #expect(report.exitStatus == 0)
    }

    @Test func aStaleTokenInTheEnvironmentWarnsAndExitsTwo() {
        var facts = Self.healthy()
        facts.staleTokenVariables = ["OPENAI_API_KEY"]
        let report = DoctorReport(facts: facts)
        let environment = result("environment", in: report)
        #expect(environment?.outcome == .warn)
        #expect(environment?.detail == "$OPENAI_API_KEY holds an older gateway token; requests with it get 401")
        #expect(environment?.fix == "export OPENAI_API_KEY=\"$(rosetta token)\"")
        #expect(report.exitStatus == 2)
        #expect(report.render(ascii: true).contains("WARN environment"))
        #expect(report.render(ascii: true).hasSuffix("1 warning; run the fix lines above, then `rosetta doctor` again."))
    }

    @Test func theCurrentTokenInTheEnvironmentPasses() {
        var facts = Self.healthy()
        facts.currentTokenVariables = ["ANTHROPIC_API_KEY"]
        #expect(result("environment", in: DoctorReport(facts: facts))?.detail == "$ANTHROPIC_API_KEY holds the current token")
    }

    @Test func aPortThatRefusesTheDaemonsOwnTokenIsAnotherProgram() {
        var facts = Self.healthy()
        facts.portProbe = .answered(status: 401)
        let token = result("token", in: DoctorReport(facts: facts))
        #expect(token?.outcome == .fail)
        #expect(token?.detail.contains("another program answers on port 21987") == true)
        #expect(token?.fix?.contains("ss -ltnp 'sport = :21987'") == true)
    }

    @Test func anUnreachablePortRestartsTheDaemon() {
        var facts = Self.healthy()
        facts.portProbe = .unreachable("Connection refused")
        let token = result("token", in: DoctorReport(facts: facts))
        #expect(token?.detail == "nothing answers on http://127.0.0.1:21987 (Connection refused)")
        #expect(token?.fix == "stop the running rosettad, then `rosettad serve --user`")
        var system = facts
        system.systemDaemon = .answered(tenant: ["uid": 1000, "state": "serving"])
        #expect(result("token", in: DoctorReport(facts: system))?.fix == "rosetta disable && rosetta enable")
        var service = facts
        service.userServiceInstalled = true
        #expect(result("token", in: DoctorReport(facts: service))?.fix == "systemctl --user restart rosettad")
    }

    // MARK: Providers

    static func withArgo(_ tunnel: JSON, tunnels: Int = 1) -> DoctorFacts {
        var facts = healthy()
        var providers: [JSON] = []
        facts.tunnels = []
        for index in 0..<tunnels {
            let name = index == 0 ? "argo" : "argo\(index)"
            providers.append(["name": .string(name), "models": [["id": "gpt-4o"]]])
            var status = tunnel
            status["provider"] = .string(name)
            facts.tunnels.append(status)
        }
        facts.models = ["providers": .array(providers)]
        return facts
    }

    @Test func anIdleOrUpTunnelPasses() {
        let idle = DoctorReport(facts: Self.withArgo(["state": "idle", "destination": "alice@logins.cels.anl.gov"]))
        #expect(result("argo tunnel", in: idle)?.detail == "idle; ssh to alice@logins.cels.anl.gov starts on the first Argo request")
        let up = DoctorReport(facts: Self.withArgo(["state": "up", "up_seconds": 300, "mode": "control_master", "destination": "a@b"]))
        #expect(result("argo tunnel", in: up)?.detail == "up for 5 min to a@b over your ssh ControlMaster")
        #expect(up.exitStatus == 0)
    }

    @Test func aLockedTunnelAfterAuthenticationFailuresNamesTunnelLogin() {
        let message = "The SSH tunnel to Argo is locked after repeated authentication failures (Permission denied (publickey)), so the jump host does not block this node; run `rosetta tunnel login` (for MFA) or fix the ssh key, then `rosetta tunnel reset`."
        let facts = Self.withArgo([
            "state": "locked", "destination": "a@b", "message": .string(message),
            "last_failure": ["class": "authentication", "detail": "Permission denied (publickey)"],
        ])
        let report = DoctorReport(facts: facts)
        let tunnel = result("argo tunnel", in: report)
        #expect(tunnel?.outcome == .fail)
        #expect(tunnel?.detail == message)
        #expect(tunnel?.fix?.hasPrefix("rosetta tunnel login") == true)
        #expect(report.exitStatus == 1)
    }

    @Test func severalTunnelsNameTheProviderInTheFix() {
        let facts = Self.withArgo(["state": "cooling_down", "last_failure": ["class": "network", "detail": "Connection refused"]], tunnels: 2)
        let report = DoctorReport(facts: facts)
        #expect(result("argo1 tunnel", in: report)?.fix?.hasPrefix("rosetta tunnel reset --provider argo1") == true)
        #expect(result("argo tunnel", in: report)?.detail == "cooling down: Connection refused")
    }

    @Test func aHostKeyFailurePointsAtKnownHosts() {
        let facts = Self.withArgo(["state": "backoff", "destination": "a@b", "last_failure": ["class": "host_key", "detail": "Host key verification failed."]])
        let fix = result("argo tunnel", in: DoctorReport(facts: facts))?.fix
        #expect(fix == "check the host key of a@b in the tunnel's known_hosts file, then `rosetta tunnel reset`")
    }

    static func withALCF(_ grant: JSON, grants: Int = 1) -> DoctorFacts {
        var facts = healthy()
        var status = facts.status!
        var globus = JSONObject()
        var providers: [JSON] = []
        for index in 0..<grants {
            let name = index == 0 ? "alcf" : "polaris"
            globus[name] = grant
            providers.append(["name": .string(name), "models": [["id": "gpt-oss", "source": "discovered", "status": "running"]]])
        }
        status["globus"] = .object(globus)
        facts.socket = .answered(status: status)
        facts.models = ["providers": .array(providers)]
        return facts
    }

    @Test func anALCFProviderWithoutLoginFailsWithRosettaLoginAlcf() {
        let report = DoctorReport(facts: Self.withALCF(["provider": "alcf", "state": "logged_out", "refreshes": 0]))
        let login = result("alcf login", in: report)
        #expect(login?.outcome == .fail)
        #expect(login?.detail == "not logged in to Globus, so its models refuse requests")
        #expect(login?.fix == "rosetta login alcf")
        #expect(report.exitStatus == 1)
    }

    @Test func aGrantNeedingLoginNamesTheProviderWhenThereAreSeveral() {
        let report = DoctorReport(facts: Self.withALCF(["state": "needs_login", "reason": "ALCF asks for a new login every 30 days."], grants: 2))
        let login = result("polaris login", in: report)
        #expect(login?.detail == "needs a new login: ALCF asks for a new login every 30 days.")
        #expect(login?.fix == "rosetta login polaris")
    }

    @Test func aValidGrantPassesAndOneAboutToExpireWithoutRefreshWarns() {
        let valid = DoctorReport(facts: Self.withALCF(["state": "valid", "expires_in_seconds": 172_000, "refreshable": true]))
        #expect(result("alcf login", in: valid)?.detail == "logged in; the token expires in 47 h 46 min and is refreshed automatically")
        #expect(valid.exitStatus == 0)
        let ending = DoctorReport(facts: Self.withALCF(["state": "valid", "expires_in_seconds": 3000, "refreshable": false]))
        #expect(result("alcf login", in: ending)?.outcome == .warn)
        #expect(result("alcf login", in: ending)?.fix == "rosetta login alcf")
    }

    @Test func aFailedDiscoveryWarnsWithRefresh() {
        var facts = Self.healthy()
        facts.models = ["providers": [["name": "argo", "models": [], "discovery": ["state": "failed", "last_error": "HTTP 502"]]]]
        let argo = result("argo", in: DoctorReport(facts: facts))
        #expect(argo?.outcome == .warn)
        #expect(argo?.detail == "model discovery failed: HTTP 502 (the last list is kept)")
        #expect(argo?.fix == "rosetta models --refresh")
    }

    @Test func noProvidersWarnsAndAModelsFailureFails() {
        var facts = Self.healthy()
        facts.models = ["providers": []]
        #expect(result("providers", in: DoctorReport(facts: facts))?.outcome == .warn)
        facts.models = nil
        facts.modelsError = "rosettad did not answer within 60 s"
        #expect(result("providers", in: DoctorReport(facts: facts))?.fix == "rosetta models --refresh")
    }

    @Test func clientChecksRunAfterTheStandardOnesAndAreSkippedWithoutADaemon() {
        let client = DoctorCheck(name: "claude", requirement: .daemon) { facts in
            [DoctorResult("claude", .fail, "~/.claude/settings.json points at port 1, not \(facts.port ?? 0)", fix: "rosetta setup claude")]
        }
        let report = DoctorReport(facts: Self.healthy(), clientChecks: [client])
        #expect(report.results.last == DoctorResult("claude", .fail, "~/.claude/settings.json points at port 1, not 21987", fix: "rosetta setup claude"))
        var down = Self.healthy()
        down.socket = .missing
        #expect(DoctorReport(facts: down, clientChecks: [client]).results.last?.outcome == .skipped)
    }

    // MARK: Status text

    @Test func statusTextShowsModeSocketPortTokenFileAndCounters() throws {
        var facts = Self.withALCF(["state": "logged_out"])
        facts.tunnels = [["provider": "argo", "state": "locked", "message": "locked (Permission denied)", "last_failure": ["class": "authentication"]]]
        let text = try #require(TenantStatusText.render(facts))
        #expect(text.hasPrefix("rosettad 0.1.0 serving alice (user mode), serving since 2023-11-14T22:13:20Z"))
        #expect(text.contains("unix socket  \(Self.socket)  (yours, mode 0600, directory 0700)"))
        #expect(text.contains("loopback     http://127.0.0.1:21987  (token: `rosetta token`)"))
        #expect(text.contains("token file   /home/alice/.local/state/rosetta/token  (mode 0600, holds the current token)"))
        #expect(text.contains("upstream slots: 1 in flight, 0 queued, 2 refused (max 8 in flight, 64 queued)"))
        #expect(text.contains("  argo         locked (Permission denied)\n               run: rosetta tunnel login"))
        #expect(text.contains("  alcf         not logged in to Globus, so its models refuse requests\n               run: rosetta login alcf"))
        #expect(!text.contains("rst-"))
    }

    @Test func statusJSONKeepsTheDaemonsFieldsAndAddsTheProbes() throws {
        var facts = Self.healthy()
        facts.systemDaemon = .answered(tenant: ["uid": 1000, "state": "serving", "requests": 3])
        let json = try #require(TenantStatusText.json(facts))
        #expect(json["port"]?.intValue == 21987 && json["upstream_slots"]?["max_in_flight"]?.intValue == 8)
        #expect(json["mode"]?.stringValue == "system")
        #expect(json["socket_file"]?["mode"]?.stringValue == "0600")
        #expect(json["socket_file"]?["directory_mode"]?.stringValue == "0700")
        #expect(json["token_file"]?["state"]?.stringValue == "current")
        #expect(json["system_tenant"]?["requests"]?.intValue == 3)
        #expect(json["providers"]?[0]?["name"]?.stringValue == "openai")
        #expect(TenantStatusText.requestNote(status: facts.status!, tenant: facts.systemTenant).hasPrefix("3 served, 0 errors, 0 in flight"))
    }

    @Test func durationsReadNaturally() {
        #expect(TenantStatusText.duration(45) == "45 s")
        #expect(TenantStatusText.duration(600) == "10 min")
        #expect(TenantStatusText.duration(3 * 3600 + 300) == "3 h 5 min")
        #expect(TenantStatusText.duration(3 * 86_400 + 7200) == "3 d 2 h")
    }
}
