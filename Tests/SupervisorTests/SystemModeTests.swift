#if canImport(Glibc)
import Glibc
#endif
import Supervisor
import Testing
import TenantGateway

/// PAM result mapping, the missing-service-file refusal, the system config split and the status table.
@Suite struct SystemModeTests {
    @Test func onlySuccessAllows() {
        let allowed = PAMAccountCheck.decision(code: 0, pamMessage: "Success", user: "alice", service: "rosettad")
        #expect((try? allowed.get()) != nil)
        for code: Int32 in [1, 6, 7, 9, 10, 12, 13, 25] {
            let refused = PAMAccountCheck.decision(code: code, pamMessage: "message \(code)", user: "alice", service: "rosettad")
            guard case .failure(let refusal) = refused else {
                Issue.record("PAM code \(code) was not a refusal")
                continue
            }
            #expect(refusal.code == "account_refused")
            #expect(refusal.pamCode == code)
            #expect(refusal.message.contains("message \(code)") && refusal.message.contains("alice") && refusal.message.contains("rosettad"))
        }
    }

    @Test func aMissingServiceFileRefusesWithoutAskingPAM() throws {
        let directory = try TemporaryDirectory()
        let check = PAMAccountCheck(service: "rosettad-absent", configDirectory: directory.path)
        #expect(throws: PAMRefusal.self) { try check.check(user: "root") }
        do {
            try check.check(user: "root")
        } catch {
            #expect(error.code == "service_missing")
            #expect(error.message.contains(directory.path + "/rosettad-absent"))
        }
    }

    @Test func aServiceFileInAPrivateDirectoryDecides() throws {
        let directory = try TemporaryDirectory()
        try directory.write("rosettad-allow", "account required pam_permit.so\n")
        try directory.write("rosettad-deny", "account required pam_deny.so\n")
        try PAMAccountCheck(service: "rosettad-allow", configDirectory: directory.path).check(user: "root")
        do {
            try PAMAccountCheck(service: "rosettad-deny", configDirectory: directory.path).check(user: "root")
            Issue.record("pam_deny allowed the account")
        } catch {
            #expect(error.code == "account_refused")
            #expect(error.pamCode != nil && error.pamCode != 0)
            #expect(error.message.contains("rosettad-deny"))
        }
    }

    @Test func theAdminGroupIsTakenOutOfTheGatewayConfig() {
        let (gateway, group) = SystemConfigText.split("models: {}\nadmin_group: \"lab-admins\"  # who sees everything\nproviders: {}\n")
        #expect(group == "lab-admins")
        #expect(!gateway.contains("admin_group"))
        #expect(gateway.contains("models: {}") && gateway.contains("providers: {}"))
        #expect(SystemConfigText.split("models: {}\n").adminGroup == nil)
    }

    @Test func theStatusTableListsEveryTenant() throws {
        let report = try JSON.parse(Array("""
            {"daemon":{"version":"9.9","pid":42,"uptime_seconds":3700,"config":"/etc/rosettad/rosettad.yaml","control_socket":"/run/c.sock"},
             "tenants":[{"user":"alice","uid":1001,"state":"serving","port":12345,"requests":3,"errors":1,"in_flight":0,"last_used":990,"socket":"/home/alice/.local/run/rosetta.sock",
                         "tunnels":{"argo":{"state":"locked","message":"run rosetta tunnel reset"}},"grants":{"alcf":{"state":"valid","expires_at":"2026-11-23T10:00:00Z"}}},
                        {"user":"bob","uid":1002,"state":"failed","port":null,"socket":"/home/bob/.local/run/rosetta.sock","error":"no directory"}]}
            """.utf8))
        let text = SystemStatusTable.render(report, now: 1000)
        #expect(text.contains("rosettad 9.9") && text.contains("up 1h1m") && text.contains("/etc/rosettad/rosettad.yaml"))
        let alice = try #require(text.split(separator: "\n").first { $0.hasPrefix("alice") })
        #expect(alice.contains("12345") && alice.contains("10s ago") && alice.contains("serving"))
        #expect(alice.contains("argo=locked") && alice.contains("alcf=valid until 2026-11-23T10:00:00Z"))
        let bob = try #require(text.split(separator: "\n").first { $0.hasPrefix("bob") })
        #expect(bob.split(separator: " ").filter { $0 == "-" }.count >= 3)  // port, tunnels and grants unknown
        #expect(text.contains("error: no directory"))
        #expect(SystemStatusTable.render(try JSON.parse(Array(#"{"daemon":{},"tenants":[]}"#.utf8))).contains("no tenants enabled"))
    }
}

/// A failure setting up a temporary directory.
struct TemporaryDirectoryError: Error {
    var message: String
}

/// A directory under /tmp removed when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/rosettad-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TemporaryDirectoryError(message: "mkdtemp failed") }
        path = String(cString: made)
    }

    func write(_ name: String, _ text: String) throws {
        guard let file = fopen(path + "/" + name, "w") else { throw TemporaryDirectoryError(message: "fopen failed") }
        fputs(text, file)
        fclose(file)
    }

    deinit {
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { unlink(path + "/" + name) }
            }
            closedir(directory)
        }
        rmdir(path)
    }
}
