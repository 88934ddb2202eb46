import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Supervisor
import Testing
import TenantGateway

/// Socket-activation names, sorting of inherited descriptors, notification texts, config validation for reload, and the status line.
@Suite struct SystemdIntegrationTests {
    @Test func descriptorNamesRoundTrip() {
        #expect(SystemdSocketName("control") == .control)
        #expect(SystemdSocketName("tenant-1001") == .tenantUnix(uid: 1001))
        #expect(SystemdSocketName("tenant-tcp-1001") == .tenantTCP(uid: 1001))
        for name in ["tenant-", "tenant-tcp-", "tenant-x1", "tenant-tcp--1", "tenant-99999999999", "stored", "unknown", "Control"] {
            #expect(SystemdSocketName(name) == .unknown(name), "\(name)")
        }
        for name in [SystemdSocketName.control, .tenantUnix(uid: 0), .tenantTCP(uid: 4_294_967_294)] {
            #expect(SystemdSocketName(name.description) == name)
        }
    }

    @Test func inheritedDescriptorsAreSortedAndDuplicatesAreUnused() {
        let inherited = InheritedSockets(named: [
            (3, "control"), (4, "tenant-1001"), (5, "tenant-tcp-1001"), (6, "tenant-tcp-1002"),
            (7, "control"), (8, "tenant-1001"), (9, "mystery"),
        ])
        #expect(inherited.control == 3)
        #expect(inherited.tenants[1001] == InheritedTenantSockets(unix: 4, tcp: 5))
        #expect(inherited.tenants[1002] == InheritedTenantSockets(unix: nil, tcp: 6))
        #expect(inherited.unused.map(\.descriptor) == [7, 8, 9])
        #expect(inherited.unused.map(\.name) == ["control", "tenant-1001", "mystery"])
        #expect(InheritedSockets(named: []) == .none)
    }

    @Test func notificationTexts() {
        #expect(SystemdNotification.ready(status: "serving 2 tenants") == "READY=1\nSTATUS=serving 2 tenants")
        #expect(SystemdNotification.status("two\nlines") == "STATUS=two lines")
        #expect(SystemdNotification.reloading(monotonicMicroseconds: 42) == "RELOADING=1\nMONOTONIC_USEC=42")
        #expect(SystemdNotification.fdStore(name: "tenant-7") == "FDSTORE=1\nFDNAME=tenant-7")
        #expect(SystemdNotification.fdStoreRemove(name: "tenant-tcp-7") == "FDSTOREREMOVE=1\nFDNAME=tenant-tcp-7")
    }

    @Test func withoutNotifySocketNotifyingIsANoOp() {
        guard getenv("NOTIFY_SOCKET") == nil, getenv("WATCHDOG_USEC") == nil else { return }
        let notifier = SystemdNotifier(logger: .init(label: "test"))
        #expect(!notifier.isConnected)
        notifier.ready(status: "x")
        notifier.store([0], name: "tenant-1")
        #expect(SystemdNotifier.watchdogInterval() == nil)
    }

    @Test func aValidConfigParsesWithItsAdminGroup() throws {
        let text = "providers: {}\nmodels: {}\nadmin_group: lab-admins\n"
        let configuration = try SystemConfiguration.parse(text: text, file: "/etc/r.yaml", environment: [:]) { $0 == "lab-admins" }
        #expect(configuration.adminGroup == "lab-admins")
        #expect(configuration.gateway.models.isEmpty)
    }

    @Test func anArgoProviderWithoutUserLoadsUnderSystemdsEmptyEnvironmentAndTenantsGetTheirOwnName() throws {
        let text = "providers:\n  argo:\n    type: argo\n    base_url: https://argo.example/argoapi\nmodels: {}\nidentities:\n  alice: alab7\n"
        let configuration = try SystemConfiguration.parse(text: text, file: "/etc/r.yaml", environment: [:]) { _ in true }
        let alice = configuration.gateway.forSystemTenant(account: "alice", home: "/home/alice")
        let bob = configuration.gateway.forSystemTenant(account: "bob", home: "/home/bob")
        #expect(alice.providers.compactMap(\.argo?.user) == ["alab7"])
        #expect(bob.providers.compactMap(\.argo?.user) == ["bob"])
    }

    @Test func theShippedExampleConfigLoads() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = repository.appendingPathComponent("deploy/rosettad.yaml").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let configuration = try SystemConfiguration.parse(text: text, file: path, environment: [:]) { _ in true }
        #expect(configuration.adminGroup == "rosetta-admin")
    }

    @Test func anUnknownAdminGroupIsRefusedWithItsLine() {
        let text = "providers: {}\n\nmodels: {}\nadmin_group: nobody-has-this\n"
        do {
            _ = try SystemConfiguration.parse(text: text, file: "/etc/r.yaml", environment: [:]) { _ in false }
            Issue.record("an unknown admin group was accepted")
        } catch {
            #expect(error.code == "unknown_group")
            #expect(error.description.hasPrefix("/etc/r.yaml:4: "))
            #expect(error.message.contains("nobody-has-this"))
        }
    }

    @Test func aGatewayErrorKeepsItsFileAndLine() {
        let text = "providers: {}\nmodels:\n  m:\n    provider: missing\n"
        do {
            _ = try SystemConfiguration.parse(text: text, file: "/etc/r.yaml", environment: [:])
            Issue.record("a model naming an unknown provider was accepted")
        } catch {
            #expect(error.description.hasPrefix("/etc/r.yaml:"))
            #expect(error.line != nil)
        }
    }

    @Test func readingAMissingFileIsAnErrorAndWritesNothing() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/absent.yaml"
        #expect(throws: ConfigError.self) { try SystemConfiguration.read(path: path, environment: [:]) }
        #expect(access(path, F_OK) != 0)
    }

    @Test func theReloadRecordInJSONAndTheTable() throws {
        #expect(ReloadRecord(at: 10, error: nil).json == ["at": 10, "result": "applied"])
        #expect(ReloadRecord(at: 10, error: "f:3: bad").json == ["at": 10, "result": "refused", "error": "f:3: bad"])
        let report: JSON = ["daemon": ["version": "1", "last_reload": ReloadRecord(at: 940, error: "f:3: bad").json], "tenants": []]
        #expect(SystemStatusTable.render(report, now: 1000).contains("last reload 1m ago: refused (f:3: bad)"))
        #expect(SystemStatusTable.render(["daemon": [:], "tenants": []], now: 1000).contains("last reload never"))
    }

    @Test func aBoundLoopbackPortIsRecognisedAndAUnixSocketByItsPath() throws {
        let descriptor = try SystemdSocketActivation.bindLoopbackTCP(port: 0).get()
        defer { close(descriptor) }
        let port = try #require(SystemdSocketActivation.loopbackPort(ofListening: descriptor))
        #expect(port > 0)
        #expect(!SystemdSocketActivation.isListeningUnixSocket(descriptor))
        // The same port again is in use, with the errno kept for the probe.
        guard case .failure(let error) = SystemdSocketActivation.bindLoopbackTCP(port: port) else {
            Issue.record("a second bind of \(port) succeeded")
            return
        }
        #expect(error.code == "address_in_use")

        let directory = try TemporaryDirectory()
        let path = directory.path + "/s.sock"
        let unix = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(unix); unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(unix, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        #expect(!SystemdSocketActivation.isListeningUnixSocket(unix, path: path), "not listening yet")
        #expect(listen(unix, 4) == 0)
        #expect(SystemdSocketActivation.isListeningUnixSocket(unix, path: path))
        #expect(!SystemdSocketActivation.isListeningUnixSocket(unix, path: path + ".other"))
        #expect(SystemdSocketActivation.loopbackPort(ofListening: unix) == nil)
    }
}
