import ArgumentParser
import Foundation
import Supervisor
import TenantGateway

#if canImport(Glibc)
import Glibc
#endif

/// Options of `rosetta status` and `rosetta doctor`: where to look.
struct ProbeOptions: ParsableArguments {
    @OptionGroup var socketOptions: SocketOptions

    @Option(name: .customLong("control-socket"), help: "The host's system daemon control socket (default: /run/rosettad/control.sock).",
            completion: .file())
    var controlSocket: String = SystemStatusTable.defaultControlSocket

    @Option(name: .customLong("state-dir"), help: "A user-mode daemon's state directory, for the token file (default: ~/.local/state/rosetta).",
            completion: .directory)
    var stateDirectory: String?
}

/// Gathers `DoctorFacts`: every probe `rosetta status` and `rosetta doctor` make, in the order the links are used.
struct DoctorProbe {
    let options: ProbeOptions
    let environment: [String: String]

    /// Probes everything; `probePort` also sends `GET /v1/models` with the token to the loopback port.
    func gather(probePort: Bool) -> DoctorFacts {
        let identity = UserIdentity.current(environment: environment)
        let socketPath = options.socketOptions.socket ?? identity.defaultSocketPath
        var facts = DoctorFacts(userName: identity.name, uid: identity.uid, socketPath: socketPath, controlSocketPath: options.controlSocket)
        facts.socketFile = Self.fileFacts(socketPath)
        facts.socketDirectory = Self.fileFacts(facts.socketDirectoryPath)
        facts.userServiceInstalled = FileManager.default.fileExists(atPath: identity.home + "/.config/systemd/user/rosettad.service")
        facts.systemDaemon = systemDaemon(uid: identity.uid)

        var client = ControlClient(socketPath: socketPath)
        do {
            facts.socket = .answered(status: try client.call(method: "GET", path: "/rosetta/v1/status"))
        } catch {
            facts.socket = switch error.code {
            case "not_running": facts.socketFile == nil ? .missing : .notListening
            case "refused": .permissionDenied
            default: .failed(error.message)
            }
            return facts
        }

        client.timeoutSeconds = 60  // listing models may first bring up a tunnel or fetch a discovery
        do {
            facts.models = try client.call(method: "GET", path: "/rosetta/v1/models")
        } catch {
            facts.modelsError = error.message
        }
        // After the models: listing them may have started (or failed to start) a tunnel.
        facts.tunnels = (try? client.call(method: "GET", path: "/rosetta/v1/tunnel/status"))?["tunnels"]?.arrayValue ?? []

        let token = (try? client.call(method: "GET", path: "/rosetta/v1/token"))?["token"]?.stringValue
        if let token {
            for (name, value) in environment.sorted(by: { $0.key < $1.key }) where value.hasPrefix("rst-") {
                if value == token { facts.currentTokenVariables.append(name) } else { facts.staleTokenVariables.append(name) }
            }
            if facts.mode != "system" {
                let path = (options.stateDirectory ?? identity.defaultStateDirectory) + "/token"
                facts.tokenFile = Self.tokenFile(at: path, expected: token)
            }
            if probePort, let port = facts.port {
                facts.portProbe = LoopbackProbe.get(port: port, path: "/v1/models", token: token)
            }
        }
        return facts
    }

    /// The caller's row on the system daemon's control socket.
    func systemDaemon(uid: UInt32) -> DoctorFacts.SystemDaemonAnswer {
        guard FileManager.default.fileExists(atPath: options.controlSocket) else { return .absent }
        var client = ControlClient(socketPath: options.controlSocket)
        client.timeoutSeconds = 5
        do {
            let report = try client.call(method: "GET", path: "/rosetta/v1/status")
            let row = report["tenants"]?.arrayValue?.first { $0["uid"]?.intValue == Int(uid) }
            return .answered(tenant: row)
        } catch {
            return error.code == "not_running" ? .notRunning : .failed(error.message)
        }
    }

    /// Owner, permission bits and type of a path (not following a final symlink), or `nil` when it does not exist.
    static func fileFacts(_ path: String) -> DoctorFacts.FileFacts? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return DoctorFacts.FileFacts(ownerUID: info.st_uid, mode: UInt32(info.st_mode) & 0o7777, isSocket: (info.st_mode & S_IFMT) == S_IFSOCK)
    }

    /// The token file compared with the daemon's token; its contents are never shown.
    static func tokenFile(at path: String, expected: String) -> DoctorFacts.TokenFile {
        guard let file = fileFacts(path) else { return .missing(path: path) }
        guard let data = FileManager.default.contents(atPath: path) else {
            return .unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        let stored = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return stored == expected ? .matches(path: path, file: file) : .differs(path: path, file: file)
    }
}

/// A one-shot HTTP/1.1 GET to the loopback port, for the token check.
enum LoopbackProbe {
    /// Sends `GET path` with `Authorization: Bearer token` to 127.0.0.1:`port` and returns the status, or why none came.
    static func get(port: Int, path: String, token: String, timeoutSeconds: Int = 10) -> DoctorFacts.PortProbe {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return .unreachable(String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return .unreachable(String(cString: strerror(errno))) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n\r\n".utf8)
        var offset = 0
        while offset < request.count {
            let sent = request.withUnsafeBytes { send(descriptor, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EINTR { continue }
                return .unreachable(String(cString: strerror(errno)))
            }
            offset += sent
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !received.contains(10) {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            if count < 0 { return .unreachable(errno == EAGAIN ? "no answer within \(timeoutSeconds) s" : String(cString: strerror(errno))) }
            if count == 0 { break }
            received += buffer[0..<count]
        }
        let statusLine = String(decoding: received.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/"), let status = Int(statusLine[1]) else {
            return .unreachable("the answer is not HTTP")
        }
        return .answered(status: status)
    }
}
