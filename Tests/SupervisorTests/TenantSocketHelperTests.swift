#if canImport(Glibc)
import Glibc
#endif
import Supervisor
import Testing
import TenantGateway

/// The socket helper's message (JSON plus an `SCM_RIGHTS` descriptor) and the tenant runtime directory.
@Suite struct TenantSocketHelperTests {
    func socketPair() throws -> (Int32, Int32) {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw TemporaryDirectoryError(message: "socketpair failed")
        }
        return (pair[0], pair[1])
    }

    @Test func aListeningSocketCrossesTheSocketPairAndStillListens() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/run/rosetta.sock"
        defer { unlink(path); rmdir(directory.path + "/run") }
        let (daemonEnd, helperEnd) = try socketPair()
        defer { close(daemonEnd) }
        // The helper's side, in-process: create as the current user, send, exit (close its copy).
        let status = TenantSocketHelper.serve(operation: .create, path: path, channel: helperEnd)
        close(helperEnd)
        #expect(status == 0)
        let message = try TenantSocketHelper.receive(on: daemonEnd)
        guard case .success(let passed?) = message.result else {
            Issue.record("no descriptor came back: \(message.result)")
            return
        }
        defer { close(passed) }
        var info = stat()
        #expect(lstat(path, &info) == 0 && info.st_mode & 0o777 == 0o600 && info.st_mode & S_IFMT == S_IFSOCK)
        #expect(lstat(directory.path + "/run", &info) == 0 && info.st_mode & 0o777 == 0o700)
        // The passed descriptor is the listening socket bound to the path: a client connects and is accepted.
        let client = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            let bytes = Array(path.utf8)
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(connected == 0)
        let accepted = accept(passed, nil, nil)
        #expect(accepted >= 0)
        if accepted >= 0 { close(accepted) }
        #expect(fcntl(passed, F_GETFD) & FD_CLOEXEC != 0)
    }

    @Test func aRefusalComesBackAsAStructuredError() throws {
        let directory = try TemporaryDirectory()
        try directory.write("rosetta.sock", "not a socket")
        let (daemonEnd, helperEnd) = try socketPair()
        defer { close(daemonEnd) }
        let status = TenantSocketHelper.serve(operation: .create, path: directory.path + "/rosetta.sock", channel: helperEnd)
        close(helperEnd)
        #expect(status == 1)
        let message = try TenantSocketHelper.receive(on: daemonEnd)
        guard case .failure(let error) = message.result else {
            Issue.record("a file in the way was accepted")
            return
        }
        #expect(error.code == "occupied" && error.message.contains("not a socket"))
    }

    @Test func removeDeletesOnlyASocket() throws {
        let directory = try TemporaryDirectory()
        try directory.write("plain", "keep me")
        let (daemonEnd, helperEnd) = try socketPair()
        defer { close(daemonEnd); close(helperEnd) }
        #expect(TenantSocketHelper.serve(operation: .remove, path: directory.path + "/plain", channel: helperEnd) == 0)
        guard case .success(nil) = try TenantSocketHelper.receive(on: daemonEnd).result else {
            Issue.record("remove answered with a descriptor or a failure")
            return
        }
        #expect(access(directory.path + "/plain", F_OK) == 0)
    }

    @Test func noAnswerIsAnError() throws {
        let (daemonEnd, helperEnd) = try socketPair()
        close(helperEnd)
        defer { close(daemonEnd) }
        #expect(throws: TenantSocketError.self) { try TenantSocketHelper.receive(on: daemonEnd) }
    }

    @Test(.enabled(if: geteuid() == 0, "needs root to give directories away"))
    func theRuntimeDirectoryBelongsToTheTenantAndRefusesPlantedLinks() throws {
        let directory = try TemporaryDirectory()
        let base = directory.path + "/tenants"
        let runtime = TenantRuntimeDirectory(base: base, uid: 65534, gid: 65534)
        defer {
            rmdir(runtime.path + "/tunnel-argo")
            unlink(runtime.path + "/tunnel-evil")
            rmdir(runtime.path)
            rmdir(base)
        }
        try runtime.prepare(subdirectories: ["tunnel-argo"])
        var info = stat()
        #expect(lstat(base, &info) == 0 && info.st_uid == 0 && info.st_mode & 0o7777 == 0o711)
        #expect(lstat(runtime.path, &info) == 0 && info.st_uid == 65534 && info.st_mode & 0o7777 == 0o700)
        #expect(lstat(runtime.path + "/tunnel-argo", &info) == 0 && info.st_uid == 65534 && info.st_gid == 65534 && info.st_mode & 0o7777 == 0o700)
        // The tenant plants a link to a root-owned directory: it is refused, and its target is untouched.
        #expect(symlink(directory.path, runtime.path + "/tunnel-evil") == 0)
        #expect(throws: TenantSocketError.self) { try runtime.prepare(subdirectories: ["tunnel-evil"]) }
        #expect(lstat(directory.path, &info) == 0 && info.st_uid == 0)
    }

    @Test func theRuntimeBaseSitsBesideTheControlSocket() {
        var options = SystemModeOptions()
        #expect(options.tenantRuntimeBase == "/run/rosettad/tenants")
        options.controlSocketPath = "/tmp/x/run/control.sock"
        #expect(options.tenantRuntimeBase == "/tmp/x/run/tenants")
    }
}
